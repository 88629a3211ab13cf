"""Recording orders and refunds exactly once, converging on the store's newest state."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from tracker import privacy
from tracker.db import insert_for, utcnow
from tracker.models import DeliveryStatus, Order, Refund, Site, WebhookDelivery
from tracker.sales import OrderStatus
from tracker.webhooks.matching import match
from tracker.webhooks.payload import Changes, OrderFacts, RefundFacts

# The refund row standing for "the rest" of an order the store marks fully refunded.
REST_SUFFIX = ":rest"


def apply(session: Session, site: Site, provider: str, changes: Changes, secret_key: str) -> bool:
    """Record a delivery's changes; returns False when a refund still waits for its order."""
    complete = True
    for facts in changes.orders:
        apply_order(session, site, provider, facts, secret_key)
    for refund in changes.refunds:
        complete = apply_refund(session, site, provider, refund) and complete
    for order_id in changes.deleted:
        _lock(session, site.id, provider, order_id)
        session.execute(
            update(Order)
            .where(Order.site_id == site.id, Order.provider == provider, Order.external_id == order_id)
            .values(status=OrderStatus.VOIDED)
        )
    if changes.forget is not None:
        privacy.forget_customer(session, site, secret_key, changes.forget.email, changes.forget.phone,
                                provider, changes.forget.order_ids)
    if changes.erase_site:
        privacy.erase_site(session, site.id)
    return complete


def _lock(session: Session, site_id: int, provider: str, order_id: str) -> None:
    """Serialise work on one order (PostgreSQL); SQLite writers are already serialised."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"{site_id}:{provider}:{order_id}".encode()).digest()
    session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)}
    )


def _newer(facts: OrderFacts, order: Order) -> bool:
    """Does this delivery describe a state at least as new as the stored one?"""
    new, old = facts.source_updated_at, order.source_updated_at
    if new is None or old is None:  # no store time to compare: the later delivery wins
        return True
    if new != old:
        return new > old
    return OrderStatus(facts.status).rank >= OrderStatus(order.status).rank


def apply_order(session: Session, site: Site, provider: str, facts: OrderFacts, secret_key: str) -> Order:
    _lock(session, site.id, provider, facts.external_id)
    key = (Order.site_id == site.id, Order.provider == provider, Order.external_id == facts.external_id)
    insert = insert_for(session)
    inserted = session.scalar(
        insert(Order)
        .values(
            site_id=site.id,
            provider=provider,
            external_id=facts.external_id,
            created_at=facts.created_at,
            source_updated_at=facts.source_updated_at,
            paid_at=facts.paid_at,
            status=facts.status,
            is_test=facts.is_test,
            currency=facts.currency,
            total_minor=facts.total_minor,
        )
        .on_conflict_do_nothing(index_elements=["site_id", "provider", "external_id"])
        .returning(Order.id)
    )
    order = session.scalars(
        select(Order).where(*key).with_for_update().execution_options(populate_existing=True)
    ).one()
    if inserted is None:
        if _newer(facts, order):
            order.status = facts.status
            order.created_at = facts.created_at
            order.source_updated_at = facts.source_updated_at or order.source_updated_at
            order.is_test = facts.is_test
            order.currency = facts.currency
            order.total_minor = facts.total_minor
        if facts.paid_at is not None and (order.paid_at is None or facts.paid_at < order.paid_at):
            order.paid_at = facts.paid_at
    match(session, site, order, facts, secret_key)
    session.flush()
    # Refunds that arrived first now find their order, and so do the deliveries that carried them.
    session.execute(
        update(Refund)
        .where(
            Refund.site_id == site.id,
            Refund.provider == provider,
            Refund.order_external_id == facts.external_id,
            Refund.order_id.is_(None),
        )
        .values(order_id=order.id)
    )
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.status == DeliveryStatus.WAITING,
            WebhookDelivery.site_id == site.id,
            WebhookDelivery.provider == provider,
            WebhookDelivery.order_external_id == facts.external_id,
        )
        .values(status=DeliveryStatus.PROCESSED, error=None)
    )
    _settle_full_refund(session, site, provider, order)
    return order


def apply_refund(session: Session, site: Site, provider: str, facts: RefundFacts) -> bool:
    """Record a refund once by its id (a cumulative amount only grows); True when its order is known."""
    _lock(session, site.id, provider, facts.order_external_id)
    order = session.scalars(
        select(Order)
        .where(
            Order.site_id == site.id,
            Order.provider == provider,
            Order.external_id == facts.order_external_id,
        )
        .with_for_update()
    ).one_or_none()
    insert = insert_for(session)
    session.execute(
        insert(Refund)
        .values(
            site_id=site.id,
            provider=provider,
            external_id=facts.external_id,
            order_external_id=facts.order_external_id,
            order_id=order.id if order else None,
            amount_minor=facts.amount_minor,
            currency=facts.currency,
            created_at=facts.created_at,
        )
        .on_conflict_do_nothing(index_elements=["site_id", "provider", "external_id"])
    )
    session.execute(
        update(Refund)
        .where(
            Refund.site_id == site.id,
            Refund.provider == provider,
            Refund.external_id == facts.external_id,
            Refund.amount_minor < facts.amount_minor,
        )
        .values(amount_minor=facts.amount_minor)
    )
    if order is None:
        return False
    order.updated_at = utcnow()  # refunds change the order's net revenue: report rollups look here
    _settle_full_refund(session, site, provider, order)
    return True


def _settle_full_refund(session: Session, site: Site, provider: str, order: Order) -> None:
    """An order the store calls refunded nets to zero even when not every refund was delivered."""
    rest_id = order.external_id + REST_SUFFIX
    of_order = (
        Refund.site_id == site.id,
        Refund.provider == provider,
        Refund.order_external_id == order.external_id,
    )
    amount = 0
    if order.status == OrderStatus.REFUNDED:
        others = session.scalar(
            select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
                *of_order, Refund.external_id != rest_id
            )
        )
        amount = max(0, order.total_minor - int(others))
    rest = session.scalars(select(Refund).where(*of_order, Refund.external_id == rest_id)).one_or_none()
    if rest is not None:
        if amount:
            rest.amount_minor = amount
        else:
            session.delete(rest)
    elif amount:
        session.add(
            Refund(
                site_id=site.id,
                provider=provider,
                external_id=rest_id,
                order_external_id=order.external_id,
                order_id=order.id,
                amount_minor=amount,
                currency=order.currency,
                created_at=order.source_updated_at or order.created_at,
            )
        )
    session.flush()
