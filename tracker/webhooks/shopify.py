"""Shopify order and refund webhooks: topics, signature, and what their JSON means for revenue."""

from __future__ import annotations

from typing import Any

from tracker.sales import PAID_STATUSES, OrderStatus
from tracker.webhooks.payload import (
    Changes,
    Forget,
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
from tracker.webhooks.signatures import verify_shopify

ORDER_TOPICS = {
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
}
REFUND_TOPICS = {"refunds/create"}
DELETE_TOPICS = {"orders/delete"}
# Shopify's mandatory compliance topics (tracker.privacy).
CUSTOMER_REDACT = "customers/redact"
SHOP_REDACT = "shop/redact"
DATA_REQUEST = "customers/data_request"
VISITOR_ATTRIBUTES = ("_tracker_vid", "tracker_vid")
# Shopify's financial statuses of an order that has been paid (refunds arrive on their own).
SHOPIFY_PAID = {"paid", "partially_paid", "partially_refunded"}


def verify(body: bytes, headers, secrets: list[str]) -> None:
    verify_shopify(body, headers.get("X-Shopify-Hmac-Sha256"), secrets)


def describe(headers, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(topic, delivery key): the per-delivery X-Shopify-Webhook-Id is what retries repeat."""
    return headers.get("X-Shopify-Topic"), headers.get("X-Shopify-Webhook-Id")


def parse(topic: str | None, payload: dict[str, Any], headers, site) -> Changes | None:
    topic = (topic or "").strip().lower()
    if topic in ORDER_TOPICS:
        order = order_facts(payload, site.currency)
        refunds = [
            refund_facts(r, order.external_id, order.currency) for r in items(payload.get("refunds"))
        ]
        return Changes(orders=[order], refunds=refunds)
    if topic in REFUND_TOPICS:
        order_id = external_id(payload.get("order_id"), "refund's order_id")
        return Changes(refunds=[refund_facts(payload, order_id, None, site.currency)])
    if topic in DELETE_TOPICS:
        return Changes(deleted=[external_id(payload.get("id"), "order id")])
    if topic == CUSTOMER_REDACT:
        customer = mapping(payload.get("customer"))
        order_ids = tuple(external_id(i, "orders_to_redact") for i in items(payload.get("orders_to_redact")))
        return Changes(forget=Forget(text_or_none(customer.get("email")), text_or_none(customer.get("phone")),
                                     order_ids))
    if topic == SHOP_REDACT:
        return Changes(erase_site=True)
    # customers/data_request: the delivery itself is the record (`tracker people requests`).
    return None


def order_facts(order: dict[str, Any], default_currency: str) -> OrderFacts:
    shop_money = mapping(mapping(order.get("total_price_set")).get("shop_money"))
    if shop_money.get("amount") is not None:
        currency = currency_code(shop_money.get("currency_code") or order.get("currency") or default_currency)
        total = money_minor(shop_money["amount"], currency, "total_price_set.shop_money.amount")
    elif order.get("total_price") is not None:
        currency = currency_code(order.get("currency") or default_currency)
        total = money_minor(order["total_price"], currency, "total_price")
    else:
        raise InvalidOrder("The order has neither total_price_set nor total_price.")
    created = parse_time(order.get("created_at"), "created_at")
    updated = parse_time(order.get("updated_at"), "updated_at")
    processed = parse_time(order.get("processed_at"), "processed_at")
    created = created or processed or updated
    if created is None:
        raise InvalidOrder("The order has no created_at.")
    financial = (text_or_none(order.get("financial_status")) or "").lower()
    if order.get("cancelled_at"):
        status = OrderStatus.CANCELLED
    elif financial == "voided":
        status = OrderStatus.VOIDED
    elif financial == "refunded":
        status = OrderStatus.REFUNDED
    elif financial in SHOPIFY_PAID:
        status = OrderStatus.PAID
    else:  # pending, authorized, or unknown: counts once paid
        status = OrderStatus.PENDING
    customer = mapping(order.get("customer"))
    return OrderFacts(
        external_id=external_id(order.get("id"), "order id"),
        created_at=created,
        source_updated_at=updated or created,
        # Shopify has no paid-at field: the state's own time is when it was first seen paid.
        paid_at=(updated or created) if status in PAID_STATUSES else None,
        status=status,
        is_test=order.get("test") is True,
        currency=currency,
        total_minor=total,
        visitor_key=_note_attribute(order.get("note_attributes")),
        email=first_text(order.get("email"), order.get("contact_email"), customer.get("email")),
        phone=first_text(
            order.get("phone"),
            customer.get("phone"),
            mapping(order.get("billing_address")).get("phone"),
            mapping(order.get("shipping_address")).get("phone"),
        ),
        landing_url=text_or_none(order.get("landing_site")),
        referrer=text_or_none(order.get("referring_site")),
    )


def refund_facts(
    refund: dict[str, Any], order_id: str, order_currency: str | None, default_currency: str | None = None
) -> RefundFacts:
    """A refund's money is its successful `refund` transactions (decimal strings).

    Shopify's refund line items carry floats and do not always agree with the money that
    moved; they are used (through their string `*_set.shop_money` twins) only when the
    refund has no transactions at all.
    """
    refund = mapping(refund)
    currency = order_currency
    total = 0
    transactions = [
        t for t in map(mapping, items(refund.get("transactions"))) if (t.get("kind") or "refund") == "refund"
    ]
    if transactions:
        for tx in transactions:
            if (tx.get("status") or "success") != "success":
                continue
            shop = mapping(mapping(tx.get("amount_set")).get("shop_money"))
            amount, code = (
                (shop.get("amount"), shop.get("currency_code"))
                if shop.get("amount") is not None
                else (tx.get("amount"), tx.get("currency"))
            )
            currency = currency or currency_code(code or default_currency)
            total += abs(money_minor(amount, currency, "refund transaction amount"))
    else:
        for line in map(mapping, items(refund.get("refund_line_items"))):
            for key in ("subtotal_set", "total_tax_set"):
                shop = mapping(mapping(line.get(key)).get("shop_money"))
                if shop.get("amount") is None:
                    continue
                currency = currency or currency_code(shop.get("currency_code") or default_currency)
                total += abs(money_minor(shop["amount"], currency, f"refund line item {key}"))
    created = parse_time(refund.get("created_at"), "refund created_at") or parse_time(
        refund.get("processed_at"), "refund processed_at"
    )
    if created is None:
        raise InvalidOrder("The refund has no created_at.")
    return RefundFacts(
        external_id=external_id(refund.get("id"), "refund id"),
        order_external_id=order_id,
        amount_minor=total,
        currency=currency or currency_code(default_currency),
        created_at=created,
    )


def _note_attribute(attributes: Any) -> str | None:
    for attribute in map(mapping, items(attributes)):
        if attribute.get("name") in VISITOR_ATTRIBUTES:
            return text_or_none(attribute.get("value"))
    if isinstance(attributes, dict):  # some apps post the cart attributes as an object
        for name in VISITOR_ATTRIBUTES:
            if text_or_none(attributes.get(name)):
                return text_or_none(attributes.get(name))
    return None
