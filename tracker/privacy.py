"""A person's data on one site: what is held about them (export) and erasing it (forget).

A person is found by an email, a phone (as their keyed hashes) or a visitor id, and is everyone
those join: the person the identity or visitor belongs to, with every device (visitor) and every
identity of that person. Erasing removes their identities, visitors, sessions, page views and
waiting hits, and the sealed webhook bodies of their orders (which carry their email and address).
Their orders stay (they are the store's revenue) but lose every link to them: visitor, person,
email and phone hashes, landing page. They count as `(unattributed)` from then on; bumping their
`updated_at` makes the rollups of their days stale, so reports recompute those days until the
nightly build rebuilds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from tracker.db import utcnow
from tracker.errors import TrackerError
from tracker.identity import identity_hash, normalise_email, normalise_phone
from tracker.models import (
    DeliveryStatus,
    Identity,
    Order,
    Pageview,
    Person,
    Site,
    TrackedSession,
    Visitor,
    WaitingHit,
    WebhookDelivery,
)
from tracker.money import from_minor

# What an erased delivery keeps in place of its sealed body.
ERASED_BODY = b""


class PersonError(TrackerError):
    """How the person was named does not work (a malformed email or phone, none or several)."""


@dataclass
class Subject:
    """Everything that identifies one person on one site (the subject of an erasure or export)."""

    site_id: int
    person_ids: set[int] = field(default_factory=set)
    visitor_ids: set[int] = field(default_factory=set)
    visitor_keys: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)  # identity hashes: emails and phones
    # Orders a store names as the person's (provider, external ids).
    provider: str | None = None
    order_ids: set[str] = field(default_factory=set)

    def orders(self):
        """The condition for their orders."""
        links = []
        if self.order_ids:
            links.append((Order.provider == self.provider) & Order.external_id.in_(self.order_ids))
        if self.person_ids:
            links.append(Order.person_id.in_(self.person_ids))
        if self.visitor_ids:
            links.append(Order.visitor_id.in_(self.visitor_ids))
        if self.hashes:
            links += [Order.email_hash.in_(self.hashes), Order.phone_hash.in_(self.hashes)]
        return (Order.site_id == self.site_id) & or_(*links) if links else None


def find_subject(db: Session, site: Site, secret_key: str, email: str | None = None,
                phone: str | None = None, visitor: str | None = None) -> Subject:
    """The person named by exactly one of email, phone or visitor id (nothing held: an empty one)."""
    if sum(value is not None for value in (email, phone, visitor)) != 1:
        raise PersonError("Name the person with exactly one of --email, --phone or --visitor.")
    found = Subject(site_id=site.id)
    if visitor is not None:
        row = db.execute(select(Visitor.id, Visitor.person_id).where(
            Visitor.site_id == site.id, Visitor.visitor_key == visitor.strip())).first()
        found.visitor_keys.add(visitor.strip())
        if row is not None:
            found.visitor_ids.add(row.id)
            if row.person_id is not None:
                found.person_ids.add(row.person_id)
    else:
        try:
            if email is not None:
                value_hash = identity_hash(secret_key, "email", normalise_email(email))
            else:
                region = (site.settings or {}).get("phone_region") or "US"
                value_hash = identity_hash(secret_key, "phone", normalise_phone(phone, region))
        except TrackerError as exc:
            raise PersonError(str(exc)) from None
        found.hashes.add(value_hash)
        found.person_ids.update(db.scalars(select(Identity.person_id).where(
            Identity.site_id == site.id, Identity.value_hash == value_hash)))
    if found.person_ids:
        found.hashes.update(db.scalars(select(Identity.value_hash).where(
            Identity.person_id.in_(found.person_ids))))
        devices = db.execute(select(Visitor.id, Visitor.visitor_key).where(
            Visitor.person_id.in_(found.person_ids))).all()
        found.visitor_ids.update(row.id for row in devices)
        found.visitor_keys.update(row.visitor_key for row in devices)
    return found


@dataclass(frozen=True)
class Erased:
    identities: int
    visitors: int
    sessions: int
    pageviews: int
    hits: int
    orders: int
    deliveries: int

    def sentence(self, domain: str) -> str:
        return (f"Erased on {domain}: {self.identities} identities, {self.visitors} visitors, "
                f"{self.sessions} sessions, {self.pageviews} page views, {self.hits} waiting hits, "
                f"{self.deliveries} webhook bodies; {self.orders} orders kept without any link to the "
                "person.")


def forget(db: Session, person: Subject) -> Erased:
    """Erase the person (the caller commits); idempotent: a second run finds nothing left."""
    site_id, visitors = person.site_id, person.visitor_ids
    orders = person.orders()
    order_ids = list(db.scalars(select(Order.external_id).where(orders))) if orders is not None else []
    deliveries = 0
    if order_ids:
        deliveries = db.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.site_id == site_id, WebhookDelivery.order_external_id.in_(order_ids),
                   WebhookDelivery.status != DeliveryStatus.ERASED)
            .values(body=ERASED_BODY, headers={}, status=DeliveryStatus.ERASED, error=None)
        ).rowcount
        db.execute(
            update(Order).where(orders).values(
                visitor_id=None, person_id=None, email_hash=None, phone_hash=None, landing_url=None,
                referrer=None, match_method=None, updated_at=utcnow(),
            )
        )
    pageviews = sessions = hits = visitor_count = identities = 0
    if visitors:
        # Page views by their sessions (indexed), the sessions by their visitors (indexed).
        visits = select(TrackedSession.id).where(TrackedSession.visitor_id.in_(visitors)).scalar_subquery()
        pageviews = db.execute(delete(Pageview).where(Pageview.session_id.in_(visits))).rowcount
        sessions = db.execute(delete(TrackedSession).where(TrackedSession.visitor_id.in_(visitors))).rowcount
    if person.visitor_keys:
        hits = db.execute(delete(WaitingHit).where(
            WaitingHit.site_id == site_id, WaitingHit.visitor_key.in_(person.visitor_keys))).rowcount
    if visitors:
        visitor_count = db.execute(delete(Visitor).where(Visitor.id.in_(visitors))).rowcount
    if person.person_ids:
        identities = db.execute(delete(Identity).where(Identity.person_id.in_(person.person_ids))).rowcount
        db.execute(delete(Person).where(Person.id.in_(person.person_ids)))
    return Erased(identities, visitor_count, sessions, pageviews, hits, len(order_ids), deliveries)


def export(db: Session, subject: Subject) -> dict:
    """Everything held about the subject, as JSON-ready values (times in UTC, ISO 8601)."""
    visitors = sorted(subject.visitor_ids)

    def when(value) -> str | None:
        return value.isoformat() if value is not None else None

    identities = db.execute(select(Identity.kind, Identity.created_at).where(
        Identity.person_id.in_(subject.person_ids)).order_by(Identity.created_at)).all() \
        if subject.person_ids else []
    orders = subject.orders()
    held_orders = [] if orders is None else db.scalars(select(Order).where(orders).order_by(Order.created_at))
    return {
        "identities": [{"kind": kind, "held_as": "keyed hash (the address itself is not stored)",
                        "since": when(created)} for kind, created in identities],
        "visitors": [
            {"visitor_id": v.visitor_key, "first_seen_at": when(v.first_seen_at),
             "last_seen_at": when(v.last_seen_at), "device_type": v.device_type, "browser": v.browser,
             "os": v.os}
            for v in db.scalars(select(Visitor).where(Visitor.id.in_(visitors)).order_by(Visitor.id))
        ],
        "sessions": [
            {"started_at": when(s.started_at), "last_seen_at": when(s.last_seen_at),
             "landing_url": s.landing_url, "referrer": s.referrer, "utm_source": s.utm_source,
             "utm_medium": s.utm_medium, "utm_campaign": s.utm_campaign, "utm_content": s.utm_content,
             "utm_term": s.utm_term, "channel": s.channel, "pageviews": s.pageviews}
            for s in db.scalars(select(TrackedSession).where(TrackedSession.visitor_id.in_(visitors))
                                .order_by(TrackedSession.started_at))
        ],
        "pageviews": [
            {"ts": when(p.ts), "url": p.url, "title": p.title, "referrer": p.referrer}
            for p in db.scalars(select(Pageview).join(TrackedSession, and_(
                TrackedSession.site_id == Pageview.site_id, TrackedSession.id == Pageview.session_id)).where(
                Pageview.site_id == subject.site_id, TrackedSession.visitor_id.in_(visitors))
                .order_by(Pageview.ts))
        ],
        "waiting_pageviews": [
            {"ts": when(h.ts), "url": h.url, "title": h.title, "referrer": h.referrer}
            for h in db.scalars(select(WaitingHit).where(
                WaitingHit.site_id == subject.site_id, WaitingHit.visitor_key.in_(subject.visitor_keys))
                .order_by(WaitingHit.ts))
        ] if subject.visitor_keys else [],
        "orders": [
            {"provider": o.provider, "order_id": o.external_id, "created_at": when(o.created_at),
             "status": o.status, "total": str(from_minor(o.total_minor, o.currency)),
             "currency": o.currency, "landing_url": o.landing_url}
            for o in held_orders
        ],
    }


def forget_customer(db: Session, site: Site, secret_key: str, email: str | None, phone: str | None,
                    provider: str, order_ids: tuple[str, ...] = ()) -> Erased:
    """A store's erasure request (Shopify's customers/redact)."""
    return forget(db, customer(db, site, secret_key, email, phone, provider, order_ids))


def customer(db: Session, site: Site, secret_key: str, email: str | None, phone: str | None,
             provider: str, order_ids=()) -> Subject:
    """A store's customer as a subject: the person by their email and by their phone (either may
    be missing or malformed), and the orders the store names."""
    subject = Subject(site_id=site.id, provider=provider, order_ids=set(order_ids))
    for kind, value in (("email", email), ("phone", phone)):
        if not value:
            continue
        try:
            found = find_subject(db, site, secret_key, **{kind: value})
        except PersonError:  # a malformed address was never stored as an identity
            continue
        subject.person_ids |= found.person_ids
        subject.visitor_ids |= found.visitor_ids
        subject.visitor_keys |= found.visitor_keys
        subject.hashes |= found.hashes
    return subject


def erase_site(db: Session, site_id: int) -> None:
    """Erase a site's visit data and identities (Shopify's shop/redact): every page view, visit,
    visitor, waiting hit, identity and person; orders keep their totals and lose their links."""
    for model in (Pageview, TrackedSession, WaitingHit):
        db.execute(delete(model).where(model.site_id == site_id))
    db.execute(update(Order).where(Order.site_id == site_id).values(
        visitor_id=None, person_id=None, email_hash=None, phone_hash=None, landing_url=None, referrer=None,
        match_method=None, updated_at=utcnow()))
    for model in (Visitor, Identity, Person):
        db.execute(delete(model).where(model.site_id == site_id))
