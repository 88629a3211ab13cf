"""Who may see which sites: report users (admins and viewers) and API tokens, and the one check
every page, CSV, JSON and ingestion API goes through.

A caller sees every site, or only the sites named for it. Once a request knows its caller
(`tracker.auth.bearer_token`, `reports.auth.current_user`), its database session hides every
other site: each ORM query the request makes that reads `sites` gets `sites.id IN (…)`
(`_only_visible_sites`, installed on the request sessions by `init_app`). So a site the caller may
not see answers exactly like a site that does not exist, on every route, including routes added
later. The collector's site cache, which reads sites outside the request's session, asks
`Access.allows`.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, g, has_request_context
from sqlalchemy import delete, event, func, or_, select, update
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from tracker.credentials import hash_password, hash_token, new_token
from tracker.db import session_factory
from tracker.errors import TrackerError
from tracker.models import ApiToken, Role, Site, TokenSite, User, UserSite


class AccessError(TrackerError):
    """A user or token command that cannot be done as asked."""


@dataclass(frozen=True)
class Access:
    """The sites a caller may see: `site_ids` None means every site."""

    site_ids: frozenset[int] | None

    def allows(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids


EVERY_SITE = Access(None)


def of_user(db: Session, user: User) -> Access:
    if user.role == Role.ADMIN:
        return EVERY_SITE
    return Access(frozenset(db.scalars(select(UserSite.site_id).where(UserSite.user_id == user.id))))


def of_token(db: Session, token: ApiToken) -> Access:
    if token.all_sites:
        return EVERY_SITE
    return Access(frozenset(db.scalars(select(TokenSite.site_id).where(TokenSite.token_id == token.id))))


# --- the request's caller --------------------------------------------------------------------


def set_caller(access: Access) -> None:
    """From now on, this request's session shows only the sites `access` allows."""
    g.tracker_access = access


def caller() -> Access | None:
    """The current request's access, once its caller is known."""
    return g.get("tracker_access") if has_request_context() else None


def init_app(app: Flask) -> None:
    event.listen(session_factory(app), "do_orm_execute", _only_visible_sites)


def _only_visible_sites(state: ORMExecuteState) -> None:
    access = caller()
    if access is None or access.site_ids is None or not state.is_select:
        return
    state.statement = state.statement.options(
        with_loader_criteria(Site, Site.id.in_(sorted(access.site_ids)), include_aliases=True)
    )


# --- users -----------------------------------------------------------------------------------


def find_user(db: Session, email: str) -> User:
    user = db.scalar(select(User).where(User.email == email))
    if user is None:
        raise AccessError(f"There is no user {email}; `tracker users list` shows them.")
    return user


def add_user(db: Session, email: str, password: str, sites: list[Site], admin: bool) -> User:
    """A new report user: the install's first is an admin; later ones are admins only when asked,
    else viewers of at least one site."""
    if db.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccessError(f"A user {email} already exists.")
    first = db.scalar(select(func.count()).select_from(User)) == 0
    if admin and sites:
        raise AccessError("An admin sees every site; give either --admin or --site, not both.")
    if not (first or admin or sites):
        raise AccessError("Say what the user may see: --site SITE (one or more), or --admin for every site.")
    role = Role.ADMIN if first or admin else Role.VIEWER
    user = User(email=email, password_hash=hash_password(password), role=role)
    db.add(user)
    db.flush()
    for site in sites if role == Role.VIEWER else []:
        db.add(UserSite(user_id=user.id, site_id=site.id))
    db.flush()
    return user


def grant(db: Session, user: User, site: Site) -> bool:
    """Let a viewer see `site`; False when they already could."""
    if user.role == Role.ADMIN:
        raise AccessError(f"{user.email} is an admin and sees every site already.")
    if db.get(UserSite, (user.id, site.id)) is not None:
        return False
    db.add(UserSite(user_id=user.id, site_id=site.id))
    db.flush()
    return True


def revoke(db: Session, user: User, site: Site) -> bool:
    """Take `site` from a viewer and end their logged-in sessions; False when they could not see it."""
    if user.role == Role.ADMIN:
        raise AccessError(f"{user.email} is an admin and sees every site; remove the user instead.")
    removed = db.execute(delete(UserSite).where(UserSite.user_id == user.id, UserSite.site_id == site.id))
    if not removed.rowcount:
        return False
    _end_sessions(db, user)
    return True


def set_password(db: Session, user: User, password: str) -> None:
    """A new password; the user's logged-in sessions end."""
    user.password_hash = hash_password(password)
    _end_sessions(db, user)


def remove_user(db: Session, user: User) -> None:
    db.delete(user)
    db.flush()


def _end_sessions(db: Session, user: User) -> None:
    db.execute(update(User).where(User.id == user.id).values(session_epoch=User.session_epoch + 1))
    db.flush()


def sites_of_users(db: Session) -> dict[int, list[str]]:
    """Each viewer's sites by domain."""
    return _domains(db, UserSite.user_id, UserSite.site_id)


def _domains(db: Session, owner, site_id) -> dict[int, list[str]]:
    """The domains of the sites a link table grants, by owner (a user or a token), sorted."""
    found: dict[int, list[str]] = {}
    for owner_id, domain in db.execute(select(owner, Site.domain).join(Site, Site.id == site_id)
                                       .order_by(Site.domain)):
        found.setdefault(owner_id, []).append(domain)
    return found


# --- API tokens ------------------------------------------------------------------------------


def add_token(db: Session, name: str, sites: list[Site]) -> tuple[ApiToken, str]:
    """A new token (every site when `sites` is empty); returns it and the clear token, shown once."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AccessError("A token name needs 1 to 100 characters.")
    if db.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise AccessError(f"A token named {name!r} already exists; pick another name or revoke it first.")
    clear = new_token()
    token = ApiToken(name=name, token_hash=hash_token(clear), prefix=clear[:8], all_sites=not sites)
    db.add(token)
    db.flush()
    for site in sites:
        db.add(TokenSite(token_id=token.id, site_id=site.id))
    db.flush()
    return token, clear


def revoke_token(db: Session, ref: str) -> ApiToken:
    """Delete the token named `ref` (or whose first characters `ref` gives): its next request is a 401."""
    ref = ref.strip()
    found = list(db.scalars(select(ApiToken).where(or_(ApiToken.name == ref, ApiToken.prefix == ref))))
    if not found and len(ref) >= 4:
        found = [t for t in db.scalars(select(ApiToken)) if t.prefix.startswith(ref)]
    if not found:
        raise AccessError(f"No token is named or starts with {ref!r}; `tracker tokens list` shows them.")
    if len(found) > 1:
        raise AccessError(f"{len(found)} tokens match {ref!r}; give the token's name.")
    db.delete(found[0])
    db.flush()
    return found[0]


def sites_of_tokens(db: Session) -> dict[int, list[str]]:
    """Each token of named sites' sites by domain."""
    return _domains(db, TokenSite.token_id, TokenSite.site_id)
