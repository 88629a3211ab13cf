"""WooCommerce deliveries: the ping, the entity-decoded secret, statuses, refunds and attribution meta."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


def test_the_unsigned_ping_gets_exactly_200(client, secrets, session, wh):
    response = client.post(
        f"/webhooks/woocommerce/{secrets.public_id}",
        data=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"},
    )
    assert response.status_code == 200
    assert wh.deliveries(session) == []


def test_a_paid_order_with_attribution_meta_gets_a_synthesised_landing(send, session, wh):
    response = send.woo(wh.woo_order(), "order.created")
    assert response.status_code == 200, response.get_json()
    (order,) = wh.orders_of(session)
    assert (order.external_id, order.total_minor, order.currency) == ("4750", 5490, "USD")
    assert order.status == "paid"
    assert order.created_at.isoformat() == "2026-10-06T20:30:00+00:00"
    assert order.paid_at.isoformat() == "2026-10-06T20:31:00+00:00"
    query = parse_qs(urlsplit(order.landing_url).query)
    assert urlsplit(order.landing_url).path == "/sale/"
    assert query == {"utm_source": ["postscript"], "utm_medium": ["sms"], "utm_campaign": ["black friday"]}
    assert order.match_method == "landing" and order.email_hash is not None


def test_direct_attribution_values_do_not_make_a_campaign(send, session, wh):
    meta = [
        {"id": 1, "key": "_wc_order_attribution_source_type", "value": "typein"},
        {"id": 2, "key": "_wc_order_attribution_utm_source", "value": "(direct)"},
        {"id": 3, "key": "_wc_order_attribution_utm_medium", "value": ""},
    ]
    send.woo(wh.woo_order(meta_data=meta))
    (order,) = wh.orders_of(session)
    assert order.match_method is None and order.landing_url is None


def test_the_tracker_visitor_meta_matches_the_visitor(send, session, wh):
    meta = [{"id": 9, "key": "_tracker_vid", "value": "v_woo_123"}]
    send.woo(wh.woo_order(meta_data=meta))
    (order,) = wh.orders_of(session)
    assert order.match_method == "visitor" and order.visitor_id is not None


def test_pending_without_payment_counts_once_paid(send, session, wh):
    pending = wh.woo_order(status="pending", date_paid=None, date_paid_gmt=None)
    send.woo(pending, "order.created")
    (order,) = wh.orders_of(session)
    assert (order.status, order.paid_at) == ("pending", None)
    on_hold_paid = wh.woo_order(status="on-hold", date_modified_gmt="2026-10-06T21:00:00",
                                date_paid_gmt="2026-10-06T20:59:00")
    send.woo(on_hold_paid)
    (order,) = wh.orders_of(session)
    assert order.status == "paid" and order.paid_at.isoformat() == "2026-10-06T20:59:00+00:00"
    assert len(wh.orders_of(session)) == 1


def test_a_yen_store_sends_whole_yen(send, session, wh):
    send.woo(wh.woo_order(currency="JPY", total="1500"))
    (order,) = wh.orders_of(session)
    assert (order.total_minor, order.currency) == (1500, "JPY")


def test_refunds_carry_negative_totals_and_subtract_once(send, session, wh):
    refunds = [{"id": 4801, "reason": "damaged", "total": "-10.00"}]
    send.woo(wh.woo_order(refunds=refunds, date_modified_gmt="2026-10-07T10:00:00"))
    send.woo(wh.woo_order(refunds=refunds, date_modified_gmt="2026-10-07T11:00:00", customer_note="x"))
    (order,) = wh.orders_of(session)
    (refund,) = wh.refunds_of(session)
    assert refund.amount_minor == 1000 and wh.net_minor(session, order) == 4490


def test_cancelled_and_failed_orders_count_zero(send, session, wh):
    send.woo(wh.woo_order(id=1, status="cancelled"))
    send.woo(wh.woo_order(id=2, status="failed", date_paid_gmt=None))
    assert [(o.status, wh.net_minor(session, o)) for o in wh.orders_of(session)] == [
        ("cancelled", 0), ("voided", 0)]


def test_an_older_update_does_not_undo_a_newer_one(send, session, wh):
    send.woo(wh.woo_order(status="cancelled", date_modified_gmt="2026-10-08T00:00:00"))
    send.woo(wh.woo_order(status="processing", date_modified_gmt="2026-10-06T20:31:00"))
    (order,) = wh.orders_of(session)
    assert order.status == "cancelled"


def test_the_same_state_sent_twice_is_one_delivery(send, session, wh):
    send.woo(wh.woo_order())
    again = send.woo(wh.woo_order())
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert len(wh.deliveries(session)) == 1


def test_a_signature_with_the_escaped_secret_or_none_is_refused(client, secrets, wh):
    body = wh.php_json(wh.woo_order())
    headers = wh.woo_headers(body)
    headers["X-WC-Webhook-Signature"] = wh.b64_hmac(b"not-the-secret", body)
    url = f"/webhooks/woocommerce/{secrets.public_id}"
    assert client.post(url, data=body, headers=headers).status_code == 401
    del headers["X-WC-Webhook-Signature"]
    assert client.post(url, data=body, headers=headers).status_code == 401


def test_a_deleted_order_counts_zero(send, session, wh):
    send.woo(wh.woo_order())
    send.woo({"id": 4750}, "order.deleted")
    (order,) = wh.orders_of(session)
    assert order.status == "voided"
