"""The generic orders webhook, signed like Standard Webhooks."""

from __future__ import annotations

import json
import time


def order(**overrides) -> dict:
    data = {"id": "A-1001", "created_at": "2026-10-05T15:20:00.123456789Z", "total": "20.00",
            "currency": "USD", "status": "paid", "visitor": "v_generic", "email": "Ann@Example.com",
            "landing_url": "https://shop.example/?utm_source=klaviyo&utm_medium=sms", "test": False}
    data.update(overrides)
    return data


def test_an_order_is_recorded_and_matched(send, session, wh):
    response = send.orders(order())
    assert response.status_code == 200, response.get_json()
    (row,) = wh.orders_of(session)
    assert (row.external_id, row.total_minor, row.status) == ("A-1001", 2000, "paid")
    assert row.match_method == "visitor"
    assert row.created_at.isoformat() == "2026-10-05T15:20:00.123456+00:00"


def test_a_later_delivery_updates_the_order_and_refunds_count_once(send, session, wh):
    send.orders(order())
    refunds = [{"id": "r1", "amount": "5.00", "created_at": "2026-10-06T00:00:00Z"}]
    send.orders(order(refunds=refunds, updated_at="2026-10-06T00:00:00Z"))
    send.orders(order(refunds=refunds, updated_at="2026-10-06T00:00:01Z"))
    (row,) = wh.orders_of(session)
    assert wh.net_minor(session, row) == 1500
    send.orders(order(status="cancelled", updated_at="2026-10-07T00:00:00Z"))
    (row,) = wh.orders_of(session)
    assert row.status == "cancelled" and wh.net_minor(session, row) == 0


def test_refunded_status_without_refund_lines_nets_to_zero(send, session, wh):
    send.orders(order(status="refunded"))
    (row,) = wh.orders_of(session)
    assert wh.net_minor(session, row) == 0


def test_three_decimal_money_and_test_orders(send, session, wh):
    send.orders(order(id="K-1", total="12.345", currency="KWD", test=True))
    (row,) = wh.orders_of(session)
    assert (row.total_minor, row.currency, row.is_test) == (12345, "KWD", True)


def test_the_same_webhook_id_is_one_delivery(send, session, wh):
    send.orders(order(), msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    again = send.orders(order(), msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    assert again.get_json()["status"] == "duplicate" and len(wh.deliveries(session)) == 1


def test_an_unusable_order_is_400_and_kept_in_the_inbox(send, session, wh):
    for bad in (order(status="shipped"), order(total=None), order(currency="XYZ"), order(total="-1.00")):
        response = send.orders(bad)
        assert response.status_code == 400 and "error" in response.get_json()
    assert {d.status for d in wh.deliveries(session)} == {"failed"} and wh.orders_of(session) == []


def test_stale_or_unsigned_deliveries_are_refused(client, secrets, wh):
    body = json.dumps(order()).encode()
    url = f"/webhooks/orders/{secrets.public_id}"
    stale = wh.standard_headers(body, timestamp=int(time.time()) - 400)
    assert client.post(url, data=body, headers=stale).status_code == 401
    ahead = wh.standard_headers(body, timestamp=int(time.time()) + 400)
    assert client.post(url, data=body, headers=ahead).status_code == 401
    foreign = wh.standard_headers(body, secret="whsec_" + "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk=")
    assert client.post(url, data=body, headers=foreign).status_code == 401
    assert client.post(url, data=body, headers={"Content-Type": "application/json"}).status_code == 401
