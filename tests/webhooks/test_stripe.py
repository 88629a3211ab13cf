"""Stripe events: Checkout sessions, payment intents and cumulative charge refunds."""

from __future__ import annotations

import json
import time


def test_a_paid_checkout_session_is_an_order_in_minor_units(send, session, wh):
    response = send.stripe(wh.stripe_event("checkout.session.completed", wh.checkout_session()))
    assert response.status_code == 200, response.get_json()
    (order,) = wh.orders_of(session)
    assert (order.external_id, order.total_minor, order.currency, order.status) == (
        "pi_3PqRsTuVwXyZ0001", 4900, "USD", "paid")
    assert order.match_method == "visitor" and not order.is_test


def test_the_visitor_id_may_come_in_metadata(send, session, wh):
    obj = wh.checkout_session(client_reference_id=None, metadata={"tracker_vid": "v_meta"})
    send.stripe(wh.stripe_event("checkout.session.completed", obj))
    (order,) = wh.orders_of(session)
    assert order.match_method == "visitor"


def test_test_mode_events_are_test_orders(send, session, wh):
    obj = wh.checkout_session(livemode=False)
    send.stripe(wh.stripe_event("checkout.session.completed", obj, livemode=False))
    (order,) = wh.orders_of(session)
    assert order.is_test


def test_a_delayed_payment_counts_once_it_succeeds(send, session, wh):
    unpaid = wh.checkout_session(payment_status="unpaid")
    send.stripe(wh.stripe_event("checkout.session.completed", unpaid, created=1791000000))
    (order,) = wh.orders_of(session)
    assert (order.status, order.paid_at) == ("pending", None)
    paid = wh.checkout_session(payment_status="paid")
    send.stripe(wh.stripe_event("checkout.session.async_payment_succeeded", paid, created=1791086400))
    (order,) = wh.orders_of(session)
    assert order.status == "paid" and order.paid_at.timestamp() == 1791086400


def test_the_success_arriving_before_the_completion_stays_paid(send, session, wh):
    paid = wh.checkout_session(payment_status="paid")
    send.stripe(wh.stripe_event("checkout.session.async_payment_succeeded", paid, created=1791086400))
    unpaid = wh.checkout_session(payment_status="unpaid")
    send.stripe(wh.stripe_event("checkout.session.completed", unpaid, created=1791000000))
    (order,) = wh.orders_of(session)
    assert order.status == "paid"


def test_the_session_and_its_payment_intent_are_one_order(send, session, wh):
    intent = {"id": "pi_3PqRsTuVwXyZ0001", "object": "payment_intent", "amount": 4900,
              "amount_received": 4900, "currency": "usd", "created": 1790999950, "livemode": True,
              "metadata": {}, "invoice": None, "receipt_email": None, "status": "succeeded"}
    send.stripe(wh.stripe_event("payment_intent.succeeded", intent, created=1790999990))
    send.stripe(wh.stripe_event("checkout.session.completed", wh.checkout_session(), created=1791000000))
    (order,) = wh.orders_of(session)
    assert order.total_minor == 4900 and order.match_method == "visitor"


def test_zero_and_three_decimal_currencies_are_already_minor_units(send, session, wh):
    for currency in ("jpy", "kwd"):
        obj = wh.checkout_session(payment_intent=f"pi_{currency}", currency=currency, amount_total=1500)
        send.stripe(wh.stripe_event("checkout.session.completed", obj))
    orders = {o.external_id: o for o in wh.orders_of(session)}
    assert (orders["pi_jpy"].total_minor, orders["pi_jpy"].currency) == (1500, "JPY")
    assert (orders["pi_kwd"].total_minor, orders["pi_kwd"].currency) == (1500, "KWD")


def charge(amount_refunded: int) -> dict:
    return {"id": "ch_3PqRsTuVwXyZ0001", "object": "charge", "amount": 4900, "amount_captured": 4900,
            "amount_refunded": amount_refunded, "currency": "usd", "payment_intent": "pi_3PqRsTuVwXyZ0001",
            "refunded": amount_refunded == 4900, "livemode": True}


def test_cumulative_charge_refunds_subtract_once(send, session, wh):
    early = send.stripe(wh.stripe_event("charge.refunded", charge(1000), event_id="evt_r1"))
    assert early.get_json()["status"] == "waiting"  # the refund came before the order
    send.stripe(wh.stripe_event("checkout.session.completed", wh.checkout_session()))
    send.stripe(wh.stripe_event("charge.refunded", charge(2500), event_id="evt_r2"))
    send.stripe(wh.stripe_event("charge.refunded", charge(1000), event_id="evt_r1"))  # a late retry
    (order,) = wh.orders_of(session)
    (refund,) = wh.refunds_of(session)
    assert (refund.amount_minor, refund.order_id) == (2500, order.id)
    assert wh.net_minor(session, order) == 2400


def test_a_retried_event_is_one_delivery(send, session, wh):
    event = wh.stripe_event("checkout.session.completed", wh.checkout_session(), event_id="evt_same")
    send.stripe(event)
    assert send.stripe(event).get_json()["status"] == "duplicate"
    assert len(wh.deliveries(session)) == 1


def test_other_events_are_ignored(send, session, wh):
    response = send.stripe(wh.stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"


def test_an_old_or_foreign_signature_is_refused(client, secrets, wh):
    body = json.dumps(wh.stripe_event("checkout.session.completed", wh.checkout_session())).encode()
    url = f"/webhooks/stripe/{secrets.public_id}"
    for header in (wh.stripe_signature(body, timestamp=int(time.time()) - 600),
                   wh.stripe_signature(body, secret="whsec_someone_else"), None):
        headers = {"Content-Type": "application/json"}
        if header:
            headers["Stripe-Signature"] = header
        assert client.post(url, data=body, headers=headers).status_code == 401
