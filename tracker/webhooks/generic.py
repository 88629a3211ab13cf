"""The generic orders webhook: our own JSON order, signed like Standard Webhooks."""

from __future__ import annotations

from typing import Any

from tracker.sales import PAID_STATUSES, OrderStatus
from tracker.webhooks.payload import (
    Changes,
    InvalidOrder,
    OrderFacts,
    RefundFacts,
    currency_code,
    external_id,
    first_text,
    items,
    mapping,
    money_minor,
    parse_time,
    text_or_none,
)
from tracker.webhooks.signatures import verify_standard


def verify(body: bytes, headers, secrets: list[str]) -> None:
    verify_standard(
        body,
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
        secrets,
    )


def describe(headers, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    topic = payload.get("type") if isinstance(payload.get("type"), str) else "order"
    return topic, headers.get("webhook-id")


def parse(topic: str | None, payload: dict[str, Any], headers, site) -> Changes | None:
    # An envelope {"type": ..., "data": {...}} is accepted as well as the bare order.
    order = mapping(payload.get("data")) if isinstance(payload.get("data"), dict) else payload
    facts = order_facts(order, site.currency)
    refunds = []
    for refund in map(mapping, items(order.get("refunds"))):
        refunds.append(
            RefundFacts(
                external_id=external_id(refund.get("id"), "refund id"),
                order_external_id=facts.external_id,
                amount_minor=abs(money_minor(refund.get("amount"), facts.currency, "refund amount")),
                currency=facts.currency,
                created_at=parse_time(refund.get("created_at"), "refund created_at") or facts.created_at,
            )
        )
    return Changes(orders=[facts], refunds=refunds)


def order_facts(order: dict[str, Any], default_currency: str) -> OrderFacts:
    """The order as sent; without `updated_at` the later delivery wins (retries may reorder them)."""
    status = (text_or_none(order.get("status")) or OrderStatus.PAID).lower()
    if status not in set(OrderStatus):
        raise InvalidOrder(
            f"The status must be one of {', '.join(sorted(OrderStatus))}, not {status[:20]!r}."
        )
    if order.get("total") is None:
        raise InvalidOrder("The order needs a total, e.g. \"20.00\".")
    currency = currency_code(order.get("currency") or default_currency)
    created = parse_time(order.get("created_at"), "created_at")
    if created is None:
        raise InvalidOrder("The order needs a created_at time (ISO-8601).")
    updated = parse_time(order.get("updated_at"), "updated_at")
    paid_at = parse_time(order.get("paid_at"), "paid_at")
    test = order.get("test", False)
    if not isinstance(test, bool):
        raise InvalidOrder("test must be true or false.")
    return OrderFacts(
        external_id=external_id(order.get("id"), "order id"),
        created_at=created,
        source_updated_at=updated,
        paid_at=(paid_at or created) if status in PAID_STATUSES else None,
        status=OrderStatus(status),
        is_test=test,
        currency=currency,
        total_minor=_total(order.get("total"), currency),
        visitor_key=first_text(order.get("visitor")),
        email=first_text(order.get("email")),
        phone=first_text(order.get("phone")),
        landing_url=text_or_none(order.get("landing_url")),
        referrer=text_or_none(order.get("referrer")),
    )


def _total(value: Any, currency: str) -> int:
    total = money_minor(value, currency, "total")
    if total < 0:
        raise InvalidOrder("The total must not be negative; send refunds in `refunds`.")
    return total
