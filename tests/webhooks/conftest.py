"""Signed deliveries as the stores send them: their JSON bytes, their headers, their signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid

import pytest
from sqlalchemy import select

from tracker.models import Order, Refund, WebhookDelivery

SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789abcdef"
# WooCommerce shows the secret HTML-escaped in places; it signs with the decoded one.
WOO_SECRET = "k3y&amp;with&lt;entities"
WOO_SIGNING_KEY = "k3y&with<entities"
STRIPE_SECRET = "whsec_test_5f3c0e2a9b8d7c6e5f4a3b2c1d0e9f8a"
ORDERS_SECRET = "whsec_" + base64.b64encode(b"generic-orders-signing-key-32byt").decode()

_ids = itertools.count(1)


def php_json(data) -> bytes:
    """JSON as PHP's json_encode and Shopify write it: `/` as `\\/`, non-ASCII and `&` as \\uXXXX."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").replace("&", "\\u0026").encode()


def b64_hmac(key: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def shopify_headers(body: bytes, topic: str, webhook_id: str | None = None, secret=SHOPIFY_SECRET) -> dict:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": b64_hmac(secret.encode(), body),
        "X-Shopify-Shop-Domain": "shop-example.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2024-08-03T18:28:37.234647458Z",
    }


def woo_headers(body: bytes, topic: str = "order.updated", webhook_id: str = "7") -> dict:
    resource, event = topic.split(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
        "X-WC-Webhook-Source": "https://shop.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": b64_hmac(WOO_SIGNING_KEY.encode(), body),
        "X-WC-Webhook-ID": webhook_id,
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
    }


def stripe_signature(body: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    v1 = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}"


def standard_headers(body: bytes, msg_id: str | None = None, timestamp: int | None = None,
                     secret: str = ORDERS_SECRET) -> dict:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    t = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = b64_hmac(key, f"{msg_id}.{t}.".encode() + body)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": t,
        "webhook-signature": f"v1,{signature}",
    }


def shopify_order(**overrides) -> dict:
    """An order as Shopify's orders/create sample has it (trimmed to the fields that matter)."""
    order = {
        "id": 5678901234567890123,
        "admin_graphql_api_id": "gid://shopify/Order/5678901234567890123",
        "app_id": 580111,
        "browser_ip": "203.0.113.7",
        "buyer_accepts_marketing": False,
        "cancel_reason": None,
        "cancelled_at": None,
        "cart_token": "Z2NwLXVzLWVhc3QxOjAxSjg",
        "checkout_id": 37123456789012,
        "confirmation_number": "X7TQ9ZP2A",
        "confirmed": True,
        "contact_email": "Jon.Snow@Example.com",
        "created_at": "2026-10-05T11:20:00-04:00",
        "currency": "USD",
        "current_total_price": "199.00",
        "customer_locale": "en-US",
        "email": "Jon.Snow@Example.com",
        "financial_status": "paid",
        "fulfillment_status": None,
        "landing_site": "/products/crème?utm_source=attentive&utm_medium=sms&utm_campaign=fall+drop",
        "name": "#1001",
        "note": None,
        "note_attributes": [{"name": "_tracker_vid", "value": "v_9f8e7d6c5b4a"}],
        "phone": None,
        "presentment_currency": "EUR",
        "processed_at": "2026-10-05T11:20:00-04:00",
        "referring_site": "",
        "source_name": "web",
        "subtotal_price": "189.00",
        "tags": "",
        "test": False,
        "total_price": "199.00",
        "total_price_set": {
            "shop_money": {"amount": "199.00", "currency_code": "USD"},
            "presentment_money": {"amount": "183.50", "currency_code": "EUR"},
        },
        "updated_at": "2026-10-05T11:20:01-04:00",
        "customer": {
            "id": 7012345678901234567,
            "email": "jon.snow@example.com",
            "phone": "+16135550142",
            "first_name": "Jon",
            "last_name": "Snów",
        },
        "billing_address": {"first_name": "Jon", "city": "Montréal", "phone": "(613) 555-0142"},
        "line_items": [
            {
                "id": 13688971493691234,
                "name": "Crème brûlée kit",
                "price": "189.00",
                "price_set": {
                    "shop_money": {"amount": "189.00", "currency_code": "USD"},
                    "presentment_money": {"amount": "174.25", "currency_code": "EUR"},
                },
                "quantity": 1,
            }
        ],
        "refunds": [],
    }
    order.update(overrides)
    return order


def shopify_refund(
    refund_id=890088186047892319, order_id=5678901234567890123, amount="10.00", **extra
) -> dict:
    """refunds/create as Shopify's sample: float line items beside the string transaction amount."""
    refund = {
        "id": refund_id,
        "order_id": order_id,
        "created_at": "2026-10-07T09:00:00-04:00",
        "note": "Things were damaged",
        "processed_at": "2026-10-07T09:00:00-04:00",
        "restock": False,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "refund_line_items": [
            {
                "id": 487817672276298627,
                "quantity": 1,
                "line_item_id": 13688971493691234,
                "restock_type": "no_restock",
                "subtotal": 189.0,
                "total_tax": 0.0,
                "subtotal_set": {
                    "shop_money": {"amount": "189.00", "currency_code": "USD"},
                    "presentment_money": {"amount": "174.25", "currency_code": "EUR"},
                },
                "total_tax_set": {
                    "shop_money": {"amount": "0.00", "currency_code": "USD"},
                    "presentment_money": {"amount": "0.00", "currency_code": "EUR"},
                },
            }
        ],
        "transactions": [
            {
                "id": 245135271310201130 + next(_ids),
                "order_id": order_id,
                "kind": "refund",
                "gateway": "bogus",
                "status": "success",
                "amount": amount,
                "currency": "USD",
                "created_at": "2026-10-07T09:00:00-04:00",
            }
        ],
        "order_adjustments": [],
    }
    refund.update(extra)
    return refund


def woo_order(**overrides) -> dict:
    """An order as WooCommerce's REST API v3 renders it in order.created / order.updated."""
    order = {
        "id": 4750,
        "parent_id": 0,
        "number": "4750",
        "order_key": "wc_order_Q6tuhq12KJOel",
        "created_via": "checkout",
        "version": "9.4.2",
        "status": "processing",
        "currency": "USD",
        "date_created": "2026-10-06T16:30:00",
        "date_created_gmt": "2026-10-06T20:30:00",
        "date_modified": "2026-10-06T16:31:00",
        "date_modified_gmt": "2026-10-06T20:31:00",
        "discount_total": "0.00",
        "shipping_total": "5.00",
        "total": "54.90",
        "total_tax": "0.00",
        "prices_include_tax": False,
        "customer_id": 0,
        "customer_ip_address": "203.0.113.9",
        "customer_user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)",
        "billing": {
            "first_name": "Zoë",
            "last_name": "Müller",
            "email": "zoe@example.org",
            "phone": "+1 415 555 0199",
        },
        "shipping": {"first_name": "Zoë", "phone": ""},
        "payment_method": "stripe",
        "payment_method_title": "Credit card",
        "transaction_id": "pi_3Q0abc",
        "date_paid": "2026-10-06T16:31:00",
        "date_paid_gmt": "2026-10-06T20:31:00",
        "date_completed": None,
        "date_completed_gmt": None,
        "meta_data": [
            {"id": 101, "key": "_wc_order_attribution_source_type", "value": "utm"},
            {"id": 102, "key": "_wc_order_attribution_utm_source", "value": "postscript"},
            {"id": 103, "key": "_wc_order_attribution_utm_medium", "value": "sms"},
            {"id": 104, "key": "_wc_order_attribution_utm_campaign", "value": "black friday"},
            {"id": 105, "key": "_wc_order_attribution_session_entry", "value": "https://shop.example/sale/"},
            {"id": 106, "key": "_wc_order_attribution_referrer", "value": ""},
        ],
        "line_items": [{"id": 315, "name": "Café mug", "quantity": 2, "total": "49.90"}],
        "refunds": [],
    }
    order.update(overrides)
    return order


def stripe_event(event_type: str, obj: dict, event_id: str | None = None, created: int = 1791000000,
                 livemode: bool = True) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": obj},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def checkout_session(**overrides) -> dict:
    session = {
        "id": "cs_live_a1B2c3D4e5F6g7H8",
        "object": "checkout.session",
        "amount_subtotal": 4900,
        "amount_total": 4900,
        "client_reference_id": "v_stripe_visitor",
        "created": 1790999900,
        "currency": "usd",
        "customer_details": {"email": "Buyer@Example.com", "phone": None, "name": "Ana"},
        "customer_email": None,
        "livemode": True,
        "metadata": {},
        "mode": "payment",
        "payment_intent": "pi_3PqRsTuVwXyZ0001",
        "payment_status": "paid",
        "status": "complete",
    }
    session.update(overrides)
    return session


@pytest.fixture
def secrets(session, site):
    from tracker.sites import add_secret

    for provider, secret in (
        ("shopify", SHOPIFY_SECRET),
        ("woocommerce", WOO_SECRET),
        ("stripe", STRIPE_SECRET),
        ("orders", ORDERS_SECRET),
    ):
        add_secret(session, site, provider, secret)
    session.commit()
    return site


@pytest.fixture
def send(client, secrets):
    """Post signed deliveries to the site's endpoints: send.shopify(order, topic), send.woo(...), ..."""
    site = secrets

    class Sender:
        def shopify(self, data, topic="orders/create", webhook_id=None, body=None):
            body = body if body is not None else php_json(data)
            return client.post(
                f"/webhooks/shopify/{site.public_id}",
                data=body,
                headers=shopify_headers(body, topic, webhook_id),
            )

        def woo(self, data, topic="order.updated", body=None):
            body = body if body is not None else php_json(data)
            return client.post(
                f"/webhooks/woocommerce/{site.public_id}", data=body, headers=woo_headers(body, topic)
            )

        def stripe(self, event, body=None):
            body = body if body is not None else json.dumps(event, indent=2).encode()
            return client.post(
                f"/webhooks/stripe/{site.public_id}",
                data=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body)},
            )

        def orders(self, data, msg_id=None, body=None):
            body = body if body is not None else json.dumps(data).encode()
            return client.post(
                f"/webhooks/orders/{site.public_id}", data=body, headers=standard_headers(body, msg_id)
            )

    return Sender()


def orders_of(session, provider=None) -> list[Order]:
    session.rollback()  # a fresh snapshot: what the app committed since
    query = select(Order).order_by(Order.id)
    if provider:
        query = query.where(Order.provider == provider)
    return list(session.scalars(query))


def refunds_of(session) -> list[Refund]:
    session.rollback()  # a fresh snapshot: what the app committed since
    return list(session.scalars(select(Refund).order_by(Refund.id)))


def net_minor(session, order: Order) -> int:
    """What the order contributes to revenue, by the contract's rules."""
    if order.is_test or order.status in ("cancelled", "voided", "pending"):
        return 0
    refunded = sum(r.amount_minor for r in refunds_of(session) if r.order_external_id == order.external_id
                   and r.provider == order.provider)
    return order.total_minor - refunded


def deliveries(session) -> list[WebhookDelivery]:
    session.rollback()  # a fresh snapshot: what the app committed since
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


@pytest.fixture
def wh():
    """These helpers, for the tests (conftest modules are not importable under importlib mode)."""
    import sys

    return sys.modules[__name__]
