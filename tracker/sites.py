"""Sites and their webhook secrets: creation, lookup and validation."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from tracker.errors import SiteError
from tracker.models import PROVIDERS, Site, WebhookSecret
from tracker.money import InvalidMoney, normalise_currency

SECRETS_KEPT_PER_PROVIDER = 2
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")


def normalise_domain(domain: str) -> str:
    value = domain.strip().lower()
    value = re.sub(r"^https?://", "", value).split("/")[0].split(":")[0]
    if value.startswith("www."):
        value = value[4:]
    if not _DOMAIN_RE.match(value):
        raise SiteError(f"{domain!r} is not a domain name (e.g. shop.example.com).")
    return value


def check_timezone(name: str) -> str:
    if name not in available_timezones():
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise SiteError(
                f"{name!r} is not a known time zone; use an IANA name such as America/New_York."
            ) from None
    return name


def _check_database_knows(session: Session, timezone: str) -> None:
    """PostgreSQL dates sessions and orders in the site's zone itself (its own copy of the zone
    database, which may be older than Python's): a zone it does not know could store no visit."""
    if session.get_bind().dialect.name != "postgresql":
        return
    try:
        with session.begin_nested():
            session.execute(text("SELECT now() AT TIME ZONE :zone"), {"zone": timezone})
    except DBAPIError:
        raise SiteError(
            f"The database does not know the time zone {timezone!r}; update its time zone data "
            "or pick a neighbouring zone with the same clock."
        ) from None


def create_site(session: Session, domain: str, timezone: str = "UTC", currency: str = "USD") -> Site:
    """Add a site; the caller commits. Raises SiteError on bad or duplicate values."""
    domain = normalise_domain(domain)
    timezone = check_timezone(timezone)
    try:
        currency = normalise_currency(currency)
    except InvalidMoney as exc:
        raise SiteError(str(exc)) from None
    if session.scalar(select(Site.id).where(Site.domain == domain)) is not None:
        raise SiteError(f"A site for {domain} already exists.")
    _check_database_knows(session, timezone)
    site = Site(
        public_id=secrets.token_hex(6),
        domain=domain,
        timezone=timezone,
        currency=currency,
        settings={},
    )
    session.add(site)
    session.flush()
    return site


def find_site(session: Session, ref: str) -> Site | None:
    """A site by its public id or its domain."""
    ref = (ref or "").strip()
    if not ref:
        return None
    site = session.scalar(select(Site).where(Site.public_id == ref))
    if site is None:
        site = session.scalar(select(Site).where(Site.domain == ref.lower()))
    return site


def require_site(session: Session, ref: str) -> Site:
    site = find_site(session, ref)
    if site is None:
        raise SiteError(f"No site {ref!r}; `tracker sites add DOMAIN` creates one.")
    return site


def standard_key(secret: str) -> bytes | None:
    """The HMAC key of a Standard Webhooks secret (the generic orders webhook): the base64-decoded
    part after `whsec_`; None when it does not decode."""
    encoded = secret.strip()
    if encoded.startswith("whsec_"):
        encoded = encoded[len("whsec_"):]
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def add_secret(session: Session, site: Site, provider: str, secret: str) -> WebhookSecret:
    """Store a webhook secret; older ones beyond the two newest are dropped."""
    if provider not in PROVIDERS:
        raise SiteError(f"Unknown provider {provider!r}; use one of: {', '.join(PROVIDERS)}.")
    secret = secret.strip()
    if not secret:
        raise SiteError("The secret is empty.")
    if provider == "orders" and not standard_key(secret):
        raise SiteError(
            "An orders secret is whsec_ followed by the base64 signing key; this one does not decode."
        )
    row = WebhookSecret(site_id=site.id, provider=provider, secret=secret)
    session.add(row)
    session.flush()
    rows = session.scalars(
        select(WebhookSecret)
        .where(WebhookSecret.site_id == site.id, WebhookSecret.provider == provider)
        .order_by(WebhookSecret.created_at.desc(), WebhookSecret.id.desc())
    ).all()
    for old in rows[SECRETS_KEPT_PER_PROVIDER:]:
        session.delete(old)
    return row


def secrets_for(session: Session, site_id: int, provider: str) -> list[str]:
    """The secrets that currently verify deliveries from `provider`, newest first."""
    return list(
        session.scalars(
            select(WebhookSecret.secret)
            .where(WebhookSecret.site_id == site_id, WebhookSecret.provider == provider)
            .order_by(WebhookSecret.created_at.desc(), WebhookSecret.id.desc())
            .limit(SECRETS_KEPT_PER_PROVIDER)
        )
    )


# --- how long raw visits are kept (reports.retention deletes them) ---------------------------

RETENTION = "retention_days"
KEPT_FROM = "kept_from"
MAX_RETENTION_DAYS = 3650


def retention_days(site: Site) -> int:
    """Days of raw visits the site keeps; 0 keeps them for ever."""
    return int((site.settings or {}).get(RETENTION) or 0)


def kept_from(site: Site) -> date | None:
    """The first local day whose raw visits are all still kept; None when none were deleted."""
    value = (site.settings or {}).get(KEPT_FROM)
    return date.fromisoformat(value) if value else None


def set_setting(site: Site, name: str, value) -> None:
    site.settings = {**(site.settings or {}), name: value}
    flag_modified(site, "settings")


def set_retention(site: Site, days: int) -> None:
    if not 0 <= days <= MAX_RETENTION_DAYS:
        raise SiteError(f"Keep visits for 0 (for ever) to {MAX_RETENTION_DAYS} days, not {days}.")
    set_setting(site, RETENTION, days)
