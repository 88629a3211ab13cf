"""Stripe events: Checkout sessions, payment intents and refunds, in Stripe's minor units."""

from __future__ import annotations

from typing import Any

from tracker.sales import OrderStatus
from tracker.webhooks.payload import (
    Changes,
    InvalidOrder,
    OrderFacts,
    RefundFacts,
    currency_code,
    external_id,
    first_text,
    from_unix,
    mapping,
    text_or_none,
)
from tracker.webhooks.signatures import verify_stripe

SESSION_TYPES = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
}
PAYMENT_TYPES = {"payment_intent.succeeded"}
REFUND_TYPES = {"charge.refunded"}
VISITOR_METADATA = ("tracker_vid", "_tracker_vid")


def verify(body: bytes, headers, secrets: list[str]) -> None:
    verify_stripe(body, headers.get("Stripe-Signature"), secrets)


def describe(headers, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(event type, event id): Stripe retries an event under the same evt_ id."""
    event_id = payload.get("id")
    return text_or_none(payload.get("type")), event_id if isinstance(event_id, str) else None


def parse(topic: str | None, payload: dict[str, Any], headers, site) -> Changes | None:
    kind = (topic or "").strip()
    obj = mapping(mapping(payload.get("data")).get("object"))
    if kind in SESSION_TYPES:
        return Changes(orders=[session_facts(kind, payload, obj)])
    if kind in PAYMENT_TYPES:
        if obj.get("invoice"):  # a subscription's invoice: its checkout session is the order
            return None
        return Changes(orders=[payment_facts(payload, obj)])
    if kind in REFUND_TYPES:
        return Changes(refunds=[charge_refund(payload, obj)])
    return None


def order_id_of(obj: dict[str, Any]) -> str:
    """Orders are keyed by their PaymentIntent, so a session and its payment count once."""
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if isinstance(intent, str) and intent.strip():
        return intent.strip()
    return external_id(obj.get("id"), "object id")


def session_facts(kind: str, event: dict[str, Any], session: dict[str, Any]) -> OrderFacts:
    at = _event_time(event)
    payment_status = session.get("payment_status")
    if kind.endswith("async_payment_failed"):
        status = OrderStatus.VOIDED
    elif kind.endswith("async_payment_succeeded") or payment_status in ("paid", "no_payment_required"):
        status = OrderStatus.PAID
    else:  # unpaid: a delayed method (bank debit, voucher) that settles later
        status = OrderStatus.PENDING
    metadata = mapping(session.get("metadata"))
    details = mapping(session.get("customer_details"))
    return OrderFacts(
        external_id=order_id_of(session),
        created_at=from_unix(session.get("created"), "session created") or at,
        source_updated_at=at,
        paid_at=at if status == OrderStatus.PAID else None,
        status=status,
        is_test=_is_test(event, session),
        currency=currency_code(session.get("currency"), "session currency"),
        total_minor=_amount(session.get("amount_total"), "amount_total"),
        visitor_key=first_text(
            session.get("client_reference_id"), *(metadata.get(k) for k in VISITOR_METADATA)
        ),
        email=first_text(details.get("email"), session.get("customer_email")),
        phone=first_text(details.get("phone")),
        landing_url=text_or_none(metadata.get("landing_url")),
    )


def payment_facts(event: dict[str, Any], intent: dict[str, Any]) -> OrderFacts:
    at = _event_time(event)
    metadata = mapping(intent.get("metadata"))
    received = intent.get("amount_received")
    return OrderFacts(
        external_id=external_id(intent.get("id"), "payment intent id"),
        created_at=from_unix(intent.get("created"), "payment intent created") or at,
        source_updated_at=at,
        paid_at=at,
        status=OrderStatus.PAID,
        is_test=_is_test(event, intent),
        currency=currency_code(intent.get("currency"), "payment intent currency"),
        total_minor=_amount(received if received is not None else intent.get("amount"), "amount_received"),
        visitor_key=first_text(*(metadata.get(k) for k in VISITOR_METADATA)),
        email=first_text(intent.get("receipt_email")),
        landing_url=text_or_none(metadata.get("landing_url")),
    )


def charge_refund(event: dict[str, Any], charge: dict[str, Any]) -> RefundFacts:
    """`amount_refunded` is cumulative: one refund row per charge holds the largest total seen."""
    return RefundFacts(
        external_id=external_id(charge.get("id"), "charge id"),
        order_external_id=order_id_of(charge),
        amount_minor=_amount(charge.get("amount_refunded"), "amount_refunded"),
        currency=currency_code(charge.get("currency"), "charge currency"),
        created_at=_event_time(event),
    )


def _event_time(event: dict[str, Any]):
    at = from_unix(event.get("created"), "event created")
    if at is None:
        raise InvalidOrder("The event has no created time.")
    return at


def _is_test(event: dict[str, Any], obj: dict[str, Any]) -> bool:
    return event.get("livemode") is False or obj.get("livemode") is False


def _amount(value: Any, what: str) -> int:
    """Stripe amounts are already integer minor units (JPY 1500 is ¥1500, KWD 1500 is 1.500)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 10**15:
        raise InvalidOrder(f"The {what} must be a whole number of minor units.")
    return value
