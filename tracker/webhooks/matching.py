"""Attaching an order to a visitor or person: explicit visitor id, then email/phone, then its landing."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.db import insert_for
from tracker.identity import hash_email, hash_phone
from tracker.limits import URL_LENGTH, VISITOR_KEY
from tracker.models import Order, Site, Visitor
from tracker.people import link_identity, person_for_identity
from tracker.touch import carries_campaign, referrer_source
from tracker.webhooks.payload import OrderFacts

# Paths Shopify puts in landing_site that are not a page anybody landed on.
NOT_LANDINGS = ("/wallets/", "/admin", "/checkouts/", "/api/", "/cart/")
RANK = {"visitor": 3, "identity": 2, "landing": 1, None: 0}


def landing_url(value: str | None, domain: str) -> str | None:
    """An absolute landing URL; Shopify's relative `landing_site` is read on the shop's own host."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("//"):
        value = "https:" + value
    elif value.startswith("/"):
        value = f"https://{domain}{value}"
    elif not value.lower().startswith(("http://", "https://")):
        value = f"https://{domain}/{value}"
    parts = urlsplit(value)
    path = parts.path.lower()
    if path.startswith(NOT_LANDINGS) or path.endswith(".json"):
        return None
    return value[:URL_LENGTH]


def visitor_for_key(session: Session, site_id: int, key: str, seen_at) -> int:
    """The visitor with this snippet id, created when the order arrives before its page views."""
    found = session.scalar(
        select(Visitor.id).where(Visitor.site_id == site_id, Visitor.visitor_key == key)
    )
    if found is not None:
        return found
    insert = insert_for(session)
    session.execute(
        insert(Visitor)
        .values(site_id=site_id, visitor_key=key, first_seen_at=seen_at, last_seen_at=seen_at)
        .on_conflict_do_nothing(index_elements=["site_id", "visitor_key"])
    )
    return session.scalar(
        select(Visitor.id).where(Visitor.site_id == site_id, Visitor.visitor_key == key)
    )


def match(session: Session, site: Site, order: Order, facts: OrderFacts, secret_key: str) -> None:
    """Store the order's identity hashes, landing and referrer; attach it by the contract's precedence.

    A match never gets worse: a later delivery without the visitor id keeps the earlier match.
    """
    email_hash = hash_email(secret_key, facts.email)
    phone_hash = hash_phone(secret_key, facts.phone, (site.settings or {}).get("phone_region", "US"))
    order.email_hash = email_hash or order.email_hash
    order.phone_hash = phone_hash or order.phone_hash
    landing = landing_url(facts.landing_url, site.domain)
    if landing and not order.landing_url:
        order.landing_url = landing
    if facts.referrer and not order.referrer:
        order.referrer = facts.referrer.strip()[:URL_LENGTH]

    key = facts.visitor_key if facts.visitor_key and VISITOR_KEY.fullmatch(facts.visitor_key) else None
    if key and order.match_method != "visitor":
        order.visitor_id = visitor_for_key(session, site.id, key, facts.created_at)
        order.match_method = "visitor"
    if order.match_method == "visitor" and order.visitor_id is not None:
        person_id = session.scalar(
            select(Visitor.person_id).where(Visitor.site_id == site.id, Visitor.id == order.visitor_id))
        # The order's email and phone identify the visitor who bought: cross-device joins here.
        for kind, value_hash in (("email", order.email_hash), ("phone", order.phone_hash)):
            if value_hash:
                person_id = link_identity(session, site.id, order.visitor_id, kind, value_hash)
        order.person_id = person_id
        return
    for kind, value_hash in (("email", order.email_hash), ("phone", order.phone_hash)):
        person_id = value_hash and person_for_identity(session, site.id, kind, value_hash)
        if person_id:
            order.person_id = person_id
            order.match_method = "identity"
            return
    # The landing counts as a touch when the report would credit it to a campaign or another site
    # (tracker.touch: the same click ids, payment pages and own hosts as for page views).
    if RANK[order.match_method] < RANK["landing"] and (
        carries_campaign(order.landing_url) or referrer_source(order.referrer, (site.domain,)) is not None
    ):
        order.match_method = "landing"
