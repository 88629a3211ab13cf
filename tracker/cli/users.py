"""`tracker users` and `tracker tokens`: who may open the reports and the API, and which sites."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from tracker import access
from tracker.audit import audit
from tracker.console import db_session, print_table, user_errors, when
from tracker.identity import normalise_email
from tracker.models import ApiToken, Role, Site, User
from tracker.sites import require_site


@click.group("users")
def users_group() -> None:
    """Manage the people who can open the reports, and the sites each may see."""


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


def _sites(session, refs: tuple[str, ...]) -> list[Site]:
    return list({site.id: site for site in (require_site(session, ref) for ref in refs)}.values())


@users_group.command("add")
@click.argument("email")
@click.option("--site", "site_refs", multiple=True, help="A site the user may see (repeat for more).")
@click.option("--admin", is_flag=True, help="Every site, and managing users.")
@user_errors
def users_add(email: str, site_refs: tuple[str, ...], admin: bool) -> None:
    """Create a report user (the password is read from stdin): an admin, or a viewer of --site."""
    address = normalise_email(email)
    password = _read_password()
    with db_session() as session:
        user = access.add_user(session, address, password, _sites(session, site_refs), admin)
        sites = access.sites_of_users(session).get(user.id, [])
        role = user.role
    audit("users.add", user=address, role=role, sites=",".join(sites) or "all")
    if role == Role.ADMIN:
        click.echo(f"Created user {address}, an admin: sees every site.")
    else:
        click.echo(f"Created user {address}, a viewer of {', '.join(sites)}.")


@users_group.command("grant")
@click.argument("email")
@click.argument("site_ref", metavar="SITE")
@user_errors
def users_grant(email: str, site_ref: str) -> None:
    """Let a viewer see SITE."""
    address, domain, changed = _change_sites(email, site_ref, access.grant, "users.grant")
    click.echo(f"{address} {'may now see' if changed else 'could already see'} {domain}.")


@users_group.command("revoke")
@click.argument("email")
@click.argument("site_ref", metavar="SITE")
@user_errors
def users_revoke(email: str, site_ref: str) -> None:
    """Take SITE from a viewer; their logged-in sessions end at once."""
    address, domain, changed = _change_sites(email, site_ref, access.revoke, "users.revoke")
    if changed:
        click.echo(f"{address} may no longer see {domain}; their sessions are ended.")
    else:
        click.echo(f"{address} could not see {domain}; nothing changed.")


def _change_sites(email: str, site_ref: str, change, event: str) -> tuple[str, str, bool]:
    """Grant or revoke (`change`, from tracker.access) a viewer's site, audited as `event` when it
    changed anything: (the address, the site's domain, whether it changed)."""
    address = normalise_email(email)
    with db_session() as session:
        site = require_site(session, site_ref)
        changed = change(session, access.find_user(session, address), site)
        domain = site.domain
    if changed:
        audit(event, user=address, site=domain)
    return address, domain, changed


@users_group.command("list")
@user_errors
def users_list() -> None:
    """Every user: email, role, sites, last login."""
    with db_session() as session:
        users = list(session.scalars(select(User).order_by(User.email)))
        sites = access.sites_of_users(session)
        rows = [(u.email, u.role, _scope(u.role == Role.ADMIN, sites.get(u.id)),
                 when(u.last_login_at, "never")) for u in users]
    if not rows:
        click.echo("No users yet; `tracker users add EMAIL` creates the first (an admin).")
        return
    print_table(("email", "role", "sites", "last login"), rows)


@users_group.command("remove")
@click.argument("email")
@user_errors
def users_remove(email: str) -> None:
    """Remove a user; their logged-in sessions end at once."""
    address = normalise_email(email)
    with db_session() as session:
        access.remove_user(session, access.find_user(session, address))
    audit("users.remove", user=address)
    click.echo(f"Removed user {address}.")


@users_group.command("password")
@click.argument("email")
@user_errors
def users_password(email: str) -> None:
    """Set a user's password (read from stdin); their logged-in sessions end."""
    address = normalise_email(email)
    password = _read_password()
    with db_session() as session:
        access.set_password(session, access.find_user(session, address), password)
    audit("users.password", user=address)
    click.echo(f"Set a new password for {address}; their other sessions are ended.")


@click.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("add")
@click.argument("name")
@click.option("--site", "site_refs", multiple=True, help="A site the token may see (repeat); none: all.")
@user_errors
def tokens_add(name: str, site_refs: tuple[str, ...]) -> None:
    """Create an API token; prints it once, on the last line."""
    with db_session() as session:
        sites = _sites(session, site_refs)
        token, clear = access.add_token(session, name, sites)
        name, domains = token.name, [site.domain for site in sites]
    scope = ", ".join(sorted(domains)) if domains else "every site"
    audit("tokens.add", token=name, sites=",".join(sorted(domains)) or "all")
    click.echo(f"Created token {name!r} for {scope}. It is shown only once:")
    click.echo(clear)


@tokens_group.command("list")
@user_errors
def tokens_list() -> None:
    """Every token: name, first characters, sites, created, last used (never the token itself)."""
    with db_session() as session:
        tokens = list(session.scalars(select(ApiToken).order_by(ApiToken.name)))
        sites = access.sites_of_tokens(session)
        rows = [(t.name, t.prefix + "…", _scope(t.all_sites, sites.get(t.id)), when(t.created_at, ""),
                 when(t.last_used_at, "never")) for t in tokens]
    if not rows:
        click.echo("No tokens yet; `tracker tokens add NAME` creates one.")
        return
    print_table(("name", "starts with", "sites", "created", "last used"), rows)


@tokens_group.command("revoke")
@click.argument("ref", metavar="NAME|PREFIX")
@user_errors
def tokens_revoke(ref: str) -> None:
    """Revoke a token by its name or first characters: its next request is refused (401)."""
    with db_session() as session:
        token = access.revoke_token(session, ref)
        name = token.name
    audit("tokens.revoke", token=name)
    click.echo(f"Revoked token {name!r}.")


def _scope(every: bool, domains: list[str] | None) -> str:
    return "(every site)" if every else ", ".join(domains or []) or "(none)"
