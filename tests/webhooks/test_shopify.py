"""Shopify deliveries: signature, money, statuses, refunds, ordering and matching."""

from __future__ import annotations


def test_paid_order_is_recorded_in_shop_money_with_its_landing(send, session, wh, site):
    response = send.shopify(wh.shopify_order())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "processed"
    (order,) = wh.orders_of(session)
    assert order.external_id == "5678901234567890123"
    assert (order.total_minor, order.currency, order.status) == (19900, "USD", "paid")
    assert order.created_at.isoformat() == "2026-10-05T15:20:00+00:00"
    assert order.match_method == "visitor"
    assert order.landing_url.startswith("https://shop.example/products/cr")
    assert "utm_medium=sms" in order.landing_url
