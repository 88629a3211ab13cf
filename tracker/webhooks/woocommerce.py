"""WooCommerce order webhooks: topics, signature, statuses, refunds and order-attribution meta."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode, urlsplit

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
from tracker.webhooks.signatures import verify_woocommerce

ORDER_TOPICS = {"order.created", "order.updated", "order.restored"}
DELETE_TOPICS = {"order.deleted"}
# The form-encoded ping WooCommerce sends, unsigned, when a webhook is created or activated.
PING = re.compile(rb"webhook_id=\d{1,20}")
VISITOR_META = ("_tracker_vid", "tracker_vid")
UTM_META = ("source", "medium", "campaign", "content", "term")
# Values WooCommerce's attribution writes when there was no campaign at all.
NO_VALUE = {"", "(none)", "(direct)", "(not set)", "typein"}
PAID = {"processing", "completed"}
ZERO = {"cancelled": OrderStatus.CANCELLED, "refunded": OrderStatus.REFUNDED, "failed": OrderStatus.VOIDED,
        "trash": OrderStatus.VOIDED}


def is_ping(body: bytes) -> bool:
    return PING.fullmatch(body.strip()) is not None


def verify(body: bytes, headers, secrets: list[str]) -> None:
    verify_woocommerce(body, headers.get("X-WC-Webhook-Signature"), secrets)


def describe(headers, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(topic, delivery key). WooCommerce's delivery id changes on every send, so the key is the
    webhook, the order and its modification time: a resend of the same state is one delivery."""
    topic = headers.get("X-WC-Webhook-Topic")
    webhook = headers.get("X-WC-Webhook-ID")
    modified = payload.get("date_modified_gmt")
    if webhook and payload.get("id") is not None and isinstance(modified, str):
        return topic, f"{webhook}:{topic}:{payload.get('id')}:{modified}"[:128]
    return topic, None


def parse(topic: str | None, payload: dict[str, Any], headers, site) -> Changes | None:
    topic = (topic or "").strip().lower()
    if topic in DELETE_TOPICS:
        return Changes(deleted=[external_id(payload.get("id"), "order id")])
    if topic not in ORDER_TOPICS:
        return None
    order = order_facts(payload, site.currency, site.domain)
    refunds = []
    for refund in map(mapping, items(payload.get("refunds"))):
        refunds.append(
            RefundFacts(
                external_id=external_id(refund.get("id"), "refund id"),
                order_external_id=order.external_id,
                amount_minor=abs(money_minor(refund.get("total"), order.currency, "refund total")),
                currency=order.currency,
                # WooCommerce's order JSON gives no refund date: the order's modification time.
                created_at=order.source_updated_at or order.created_at,
            )
        )
    return Changes(orders=[order], refunds=refunds)


def order_facts(order: dict[str, Any], default_currency: str, domain: str) -> OrderFacts:
    currency = currency_code(order.get("currency") or default_currency)
    if order.get("total") is None:
        raise InvalidOrder("The order has no total.")
    created = parse_time(order.get("date_created_gmt"), "date_created_gmt") or parse_time(
        order.get("date_created"), "date_created"
    )
    modified = parse_time(order.get("date_modified_gmt"), "date_modified_gmt") or parse_time(
        order.get("date_modified"), "date_modified"
    )
    paid_at = parse_time(order.get("date_paid_gmt"), "date_paid_gmt")
    created = created or modified
    if created is None:
        raise InvalidOrder("The order has no date_created_gmt.")
    state = (text_or_none(order.get("status")) or "").lower()
    if state in ZERO:
        status = ZERO[state]
    elif state in PAID or paid_at is not None:  # on-hold or pending count once date_paid_gmt is set
        status = OrderStatus.PAID
    else:
        status = OrderStatus.PENDING
    if status == OrderStatus.PAID and paid_at is None:
        paid_at = parse_time(order.get("date_completed_gmt"), "date_completed_gmt") or modified or created
    meta = _meta(order.get("meta_data"))
    billing = mapping(order.get("billing"))
    landing, referrer = _landing(meta, domain)
    return OrderFacts(
        external_id=external_id(order.get("id"), "order id"),
        created_at=created,
        source_updated_at=modified or created,
        paid_at=paid_at if status in PAID_STATUSES else None,
        status=status,
        currency=currency,
        total_minor=money_minor(order.get("total"), currency, "total"),
        visitor_key=next((meta[k] for k in VISITOR_META if meta.get(k)), None),
        email=first_text(billing.get("email")),
        phone=first_text(billing.get("phone"), mapping(order.get("shipping")).get("phone")),
        landing_url=landing,
        referrer=referrer,
    )


def _meta(entries: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in map(mapping, items(entries)):
        key, value = entry.get("key"), entry.get("value")
        if isinstance(key, str) and isinstance(value, str | int) and not isinstance(value, bool):
            found.setdefault(key, str(value).strip())
    return found


def _landing(meta: dict[str, str], domain: str) -> tuple[str | None, str | None]:
    """The order's landing page from WooCommerce's order attribution (8.5+).

    The entry page is kept when it carries its own query; otherwise the recorded UTMs are
    written back onto it (or onto the home page) so the landing reads like a real visit.
    """
    entry = text_or_none(meta.get("_wc_order_attribution_session_entry"))
    referrer = text_or_none(meta.get("_wc_order_attribution_referrer"))
    utms = {}
    for name in UTM_META:
        value = meta.get(f"_wc_order_attribution_utm_{name}", "")
        if value.strip().lower() not in NO_VALUE:
            utms[f"utm_{name}"] = value.strip()
    if entry and urlsplit(entry).query:
        return entry, referrer
    if utms:
        base = entry or f"https://{domain}/"
        return f"{base}?{urlencode(utms)}", referrer
    return entry, referrer
