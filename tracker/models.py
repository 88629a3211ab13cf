"""The data model: sites, visitors, sessions, page views, identities, orders, costs, webhooks, users.

Per-site tables (those with `site_id`) refer to no table but `sites`, and their primary key is
`(id, site_id)`, as Citus asks (tracker/citus.py): so on PostgreSQL, while SQLite keeps `id`
alone (its row id, which it only auto-increments as the sole key). `id` alone stays unique (one
sequence per table); with `site_id` in the key the ORM's own updates and deletes name the site, so
on Citus they run on that site's shard.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from tracker.db import Base, BigId, UTCDateTime, utcnow
from tracker.limits import EXTERNAL_ID_LENGTH, TITLE_LENGTH, URL_LENGTH, UTM_LENGTH, VISITOR_KEY_LENGTH

PROVIDERS = ("shopify", "woocommerce", "stripe", "orders")


class DeliveryStatus(StrEnum):
    """Where a stored webhook delivery stands."""

    RECEIVED = "received"  # stored, not processed yet (or its processing was cut off)
    PROCESSED = "processed"
    IGNORED = "ignored"  # a topic that changes no order
    WAITING = "waiting"  # a refund whose order has not arrived yet
    FAILED = "failed"  # kept for `tracker webhooks replay`
    ERASED = "erased"  # its body is gone: the person it was about was forgotten (tracker.privacy)


# A store's retry of a delivery in one of these is answered as a duplicate.
SETTLED_DELIVERIES = frozenset({DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED, DeliveryStatus.WAITING,
                                DeliveryStatus.ERASED})
IDENTITY_KINDS = ("email", "phone")


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Per-site switches: respect_dnt, phone_region, channel rules, ...
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookSecret(Base):
    """A store's signing secret; the two newest per provider verify, so rotation loses nothing."""

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    secret: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "site_id", "provider", "created_at"),)


class Person(Base):
    """One human, joining every visitor (device) that shared an email or phone."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True,
                                         index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Visitor(Base):
    __tablename__ = "visitors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    # The first-party id the snippet keeps in the browser.
    visitor_key: Mapped[str] = mapped_column(String(VISITOR_KEY_LENGTH))
    person_id: Mapped[int | None] = mapped_column(BigId, index=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    device_type: Mapped[str | None] = mapped_column(String(16))
    browser: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("site_id", "visitor_key"),)


class Identity(Base):
    """A keyed hash of a normalised email or phone, never the value itself."""

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    value_hash: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("site_id", "kind", "value_hash"),)


# A session's visit links (see TrackedSession) and the columns it shares with the previous
# session each one names.
VISIT_LINKS: dict[str, tuple[str, ...]] = {
    "prev_visit_at": (),
    "prev_channel_visit_at": ("channel",),
    "prev_campaign_visit_at": ("utm_source", "utm_medium", "utm_campaign"),
}
# On PostgreSQL each session also keeps the local days (in its site's time zone) of its start and
# of each visit link, so that the report build groups by plain dates instead of converting four
# timestamps per session; the column of each link's day, and of the start's.
VISIT_DAYS: dict[str, str] = {
    "prev_visit_at": "prev_visit_day",
    "prev_channel_visit_at": "prev_channel_visit_day",
    "prev_campaign_visit_at": "prev_campaign_visit_day",
}
STARTED_DAY = "started_day"
# Each day column and the timestamp column whose local day it holds.
SESSION_DAYS: dict[str, str] = {STARTED_DAY: "started_at", **{day: link for link, day in VISIT_DAYS.items()}}


class TrackedSession(Base):
    """A visit: page views of one visitor with gaps under 30 minutes and one touch source."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    visitor_id: Mapped[int] = mapped_column(BigId)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pageviews: Mapped[int] = mapped_column(Integer, default=0)
    landing_url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    referrer: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    utm_source: Mapped[str] = mapped_column(String(UTM_LENGTH))
    utm_medium: Mapped[str] = mapped_column(String(UTM_LENGTH))
    utm_campaign: Mapped[str] = mapped_column(String(UTM_LENGTH))
    utm_content: Mapped[str] = mapped_column(String(UTM_LENGTH))
    utm_term: Mapped[str] = mapped_column(String(UTM_LENGTH))
    # Which click id (gclid, fbclid, ...) classified the session, if any.
    click_id: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    device_type: Mapped[str | None] = mapped_column(String(16))
    # The start of the visitor's previous session (ordered by start, then id): any, in the same
    # channel, and in the same source/medium/campaign; None when there is none. They let the report
    # count distinct visitors over any range from the sessions alone. `visits_linked` says they
    # are set; the collector and `tracker demo` write them with the session, and the report build
    # links any session stored otherwise (or re-split later) before it counts.
    prev_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prev_channel_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prev_campaign_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    visits_linked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The local days of started_at and of the links above, in the site's time zone (VISIT_DAYS),
    # written with the links on PostgreSQL (None on SQLite, whose build does not read them).
    started_day: Mapped[date | None] = mapped_column(Date)
    prev_visit_day: Mapped[date | None] = mapped_column(Date)
    prev_channel_visit_day: Mapped[date | None] = mapped_column(Date)
    prev_campaign_visit_day: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (
        Index(None, "visitor_id", "started_at"),
        Index(None, "site_id", "started_at"),
        # The sessions the build's linking step looks for: unlinked, or (PostgreSQL) undated.
        Index("ix_sessions_unlinked", "site_id", postgresql_where=~visits_linked | started_day.is_(None),
              sqlite_where=~visits_linked),
    )


class Pageview(Base):
    __tablename__ = "pageviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    session_id: Mapped[int] = mapped_column(BigId, index=True)
    visitor_id: Mapped[int] = mapped_column(BigId)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    title: Mapped[str | None] = mapped_column(String(TITLE_LENGTH))
    referrer: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    screen_width: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index(None, "site_id", "ts"),)


class WaitingHit(Base):
    """A page view as acknowledged, before sessionisation: appended in one commit per batch, then
    moved into visitors, sessions and page views (and deleted) by whichever collector claims it.
    No foreign key: the append must not lock the site row; hits of a deleted site are dropped."""

    __tablename__ = "hits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visitor_key: Mapped[str] = mapped_column(String(VISITOR_KEY_LENGTH))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    referrer: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    title: Mapped[str | None] = mapped_column(String(TITLE_LENGTH))
    screen_width: Mapped[int | None] = mapped_column(Integer)
    device_type: Mapped[str | None] = mapped_column(String(16))
    browser: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(64))


class Order(Base):
    """An order as the store last described it; money in integer minor units of `currency`."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The store's own last-modified time: an older delivery never overwrites a newer state.
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # paid, pending, cancelled, refunded, voided
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    # Which matching rule attached the order: visitor, identity, landing, or None.
    match_method: Mapped[str | None] = mapped_column(String(16))
    visitor_id: Mapped[int | None] = mapped_column(BigId)
    person_id: Mapped[int | None] = mapped_column(BigId)
    email_hash: Mapped[str | None] = mapped_column(String(64))
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    # The order's own landing page, a fallback touch when no visitor matched.
    landing_url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    referrer: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("site_id", "provider", "external_id"),
        Index(None, "site_id", "created_at"),
        Index(None, "person_id"),
        Index(None, "visitor_id"),
        # The report build finds orders changed since it last ran.
        Index(None, "site_id", "updated_at"),
    )


class Refund(Base):
    """A refund, kept even when it arrives before its order (order_id is filled in later)."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_LENGTH))
    order_external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_LENGTH))
    order_id: Mapped[int | None] = mapped_column(BigId, index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("site_id", "provider", "external_id"),
        Index(None, "site_id", "provider", "order_external_id"),
    )


class Cost(Base):
    """Spend for one day and one UTM key; empty string means the dimension is not set."""

    __tablename__ = "costs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(UTM_LENGTH))
    medium: Mapped[str] = mapped_column(String(UTM_LENGTH))
    campaign: Mapped[str] = mapped_column(String(UTM_LENGTH), default="")
    content: Mapped[str] = mapped_column(String(UTM_LENGTH), default="")
    term: Mapped[str] = mapped_column(String(UTM_LENGTH), default="")
    currency: Mapped[str] = mapped_column(String(3))
    cost_minor: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("site_id", "date", "source", "medium", "campaign", "content", "term"),
    )


class WebhookDelivery(Base):
    """The raw inbox: every delivery is committed here before the store gets its 200."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    # The provider's id for this event (Shopify webhook id, Stripe evt_, webhook-id), if any.
    delivery_key: Mapped[str | None] = mapped_column(String(EXTERNAL_ID_LENGTH))
    topic: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.RECEIVED)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_external_id: Mapped[str | None] = mapped_column(String(EXTERNAL_ID_LENGTH))

    __table_args__ = (
        UniqueConstraint("site_id", "provider", "delivery_key"),
        Index(None, "status", "received_at"),
        # An erased person's orders' deliveries (tracker.privacy).
        Index(None, "site_id", "order_external_id"),
    )


class Role(StrEnum):
    """What a report user may do: an admin sees every site; a viewer sees the sites granted."""

    ADMIN = "admin"
    VIEWER = "viewer"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # Counts the changes that end the user's logged-in sessions (password, a revoked site): a
    # session cookie carries the number it was issued with.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserSite(Base):
    """A site a viewer may see."""

    __tablename__ = "user_sites"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the clear token is shown once at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    # Every site (what tokens made before per-site access could do), or only its TokenSite rows.
    all_sites: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TokenSite(Base):
    """A site an API token of named sites may see."""

    __tablename__ = "api_token_sites"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
