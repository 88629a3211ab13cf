"""Shopify deliveries over HTTP: signature, money, statuses, refunds, ordering and matching."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tracker.identity import hash_email, hash_phone
from tracker.models import Identity, Visitor
from tracker.people import link_identity

KEY = "test-secret-key-0123456789abcdef"


def test_paid_order_is_recorded_in_shop_money_with_its_landing(send, session, wh):
    response = send.shopify(wh.shopify_order())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "processed"
    (order,) = wh.orders_of(session)
    assert order.external_id == "5678901234567890123"  # above 2^53, exact
    assert (order.total_minor, order.currency, order.status, order.is_test) == (19900, "USD", "paid", False)
    assert order.created_at.isoformat() == "2026-10-05T15:20:00+00:00"
    assert order.paid_at is not None
    assert order.landing_url == (
        "https://shop.example/products/crème?utm_source=attentive&utm_medium=sms&utm_campaign=fall+drop"
    )
    assert order.email_hash == hash_email(KEY, "jon.snow@example.com")
    assert order.phone_hash is None or order.phone_hash == hash_phone(KEY, "+16135550142")


def test_cart_attribute_matches_the_visitor_and_the_email_joins_that_visitor(send, session, wh, site):
    send.shopify(wh.shopify_order())
    (order,) = wh.orders_of(session)
    visitor = session.scalars(select(Visitor).where(Visitor.visitor_key == "v_9f8e7d6c5b4a")).one()
    assert (order.match_method, order.visitor_id) == ("visitor", visitor.id)
    assert order.person_id is not None and visitor.person_id == order.person_id
    kinds = {i.kind for i in session.scalars(select(Identity).where(Identity.person_id == order.person_id))}
    assert kinds == {"email", "phone"}


def test_a_purchase_on_the_laptop_joins_the_phone_that_clicked_the_sms(send, session, wh, site):
    phone_visitor = Visitor(site_id=site.id, visitor_key="v_phone")
    session.add(phone_visitor)
    session.flush()
    link_identity(session, site.id, phone_visitor.id, "email", hash_email(KEY, "jon.snow@example.com"))
    session.commit()
    send.shopify(wh.shopify_order(note_attributes=[{"name": "_tracker_vid", "value": "v_laptop"}]))
    (order,) = wh.orders_of(session)
    session.expire_all()
    laptop = session.scalars(select(Visitor).where(Visitor.visitor_key == "v_laptop")).one()
    phone = session.scalars(select(Visitor).where(Visitor.id == phone_visitor.id)).one()
    assert laptop.person_id == phone.person_id == order.person_id


def test_without_a_visitor_id_the_email_finds_the_identified_person(send, session, wh, site):
    visitor = Visitor(site_id=site.id, visitor_key="v_identified")
    session.add(visitor)
    session.flush()
    person = link_identity(session, site.id, visitor.id, "phone", hash_phone(KEY, "+1 613 555 0142"))
    session.commit()
    send.shopify(wh.shopify_order(note_attributes=[], email=None, contact_email=None, customer=None))
    (order,) = wh.orders_of(session)
    assert (order.match_method, order.person_id, order.visitor_id) == ("identity", person, None)


def test_without_visitor_or_identity_the_landing_utms_attribute_the_order(send, session, wh):
    send.shopify(wh.shopify_order(note_attributes=[], customer=None, email=None, contact_email=None,
                                  billing_address=None))
    (order,) = wh.orders_of(session)
    assert (order.match_method, order.person_id) == ("landing", None)


def test_a_plain_landing_or_checkout_path_leaves_the_order_unattributed(send, session, wh):
    anonymous = dict(note_attributes=[], customer=None, email=None, contact_email=None, billing_address=None)
    send.shopify(wh.shopify_order(id=1, landing_site="/collections/all", referring_site=None, **anonymous))
    send.shopify(wh.shopify_order(id=2, landing_site="/wallets/checkouts.json", **anonymous))
    send.shopify(wh.shopify_order(id=3, landing_site="/", referring_site="https://shop.example/cart",
                                  **anonymous))
    send.shopify(wh.shopify_order(id=4, landing_site="/", referring_site="https://www.google.com/",
                                  **anonymous))
    orders = {o.external_id: o for o in wh.orders_of(session)}
    assert [orders[k].match_method for k in "1234"] == [None, None, None, "landing"]
    assert orders["2"].landing_url is None
    assert orders["4"].referrer == "https://www.google.com/"


def test_create_updated_and_paid_of_one_order_count_once(send, session, wh):
    pending = wh.shopify_order(financial_status="pending", updated_at="2026-10-05T11:20:00-04:00")
    assert send.shopify(pending, "orders/create").status_code == 200
    paid = wh.shopify_order(financial_status="paid", updated_at="2026-10-05T11:25:00-04:00")
    assert send.shopify(paid, "orders/paid").status_code == 200
    assert send.shopify(paid, "orders/updated").status_code == 200
    (order,) = wh.orders_of(session)
    assert order.status == "paid"
    assert order.paid_at.isoformat() == "2026-10-05T15:25:00+00:00"
    assert len(wh.deliveries(session)) == 3


def test_a_retried_delivery_is_stored_and_counted_once(send, session, wh):
    first = send.shopify(wh.shopify_order(), webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    again = send.shopify(wh.shopify_order(), webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.get_json()["status"] == "duplicate"
    assert len(wh.deliveries(session)) == 1 and len(wh.orders_of(session)) == 1


def test_a_cancellation_arriving_before_the_creation_stays_cancelled(send, session, wh):
    cancelled = wh.shopify_order(cancelled_at="2026-10-05T12:00:00-04:00", financial_status="voided",
                                 updated_at="2026-10-05T12:00:00-04:00")
    send.shopify(cancelled, "orders/cancelled")
    send.shopify(wh.shopify_order(), "orders/create")
    send.shopify(wh.shopify_order(), "orders/paid")
    (order,) = wh.orders_of(session)
    assert order.status == "cancelled"
    assert wh.net_minor(session, order) == 0


def test_unpaid_orders_count_once_paid(send, session, wh):
    send.shopify(wh.shopify_order(financial_status="authorized"))
    (order,) = wh.orders_of(session)
    assert (order.status, order.paid_at, wh.net_minor(session, order)) == ("pending", None, 0)


def test_test_orders_are_marked(send, session, wh):
    send.shopify(wh.shopify_order(test=True))
    (order,) = wh.orders_of(session)
    assert order.is_test and wh.net_minor(session, order) == 0


def test_a_refund_before_its_order_is_kept_and_counted_once(send, session, wh):
    refund = wh.shopify_refund(amount="10.00")
    early = send.shopify(refund, "refunds/create")
    assert early.status_code == 200 and early.get_json()["status"] == "waiting"
    (stored,) = wh.refunds_of(session)
    assert (stored.amount_minor, stored.order_id) == (1000, None)

    send.shopify(wh.shopify_order(), "orders/create")
    # orders/updated lists the same refund again: it still subtracts once.
    send.shopify(wh.shopify_order(financial_status="partially_refunded", refunds=[refund],
                                  updated_at="2026-10-07T09:00:01-04:00"), "orders/updated")
    (order,) = wh.orders_of(session)
    (stored,) = wh.refunds_of(session)
    assert stored.order_id == order.id
    assert wh.net_minor(session, order) == 19900 - 1000
    assert {d.status for d in wh.deliveries(session)} == {"processed"}


def test_refund_money_comes_from_the_string_transactions_not_the_float_line_items(send, session, wh):
    send.shopify(wh.shopify_order())
    send.shopify(wh.shopify_refund(amount="25.50"), "refunds/create")
    (refund,) = wh.refunds_of(session)
    assert refund.amount_minor == 2550


def test_a_fully_refunded_order_nets_to_zero(send, session, wh):
    send.shopify(wh.shopify_order())
    send.shopify(wh.shopify_refund(amount="50.00"), "refunds/create")
    send.shopify(wh.shopify_order(financial_status="refunded", updated_at="2026-10-08T10:00:00-04:00"),
                 "orders/updated")
    (order,) = wh.orders_of(session)
    assert order.status == "refunded" and wh.net_minor(session, order) == 0


def test_unknown_topics_are_acknowledged_and_kept_as_ignored(send, session, wh):
    response = send.shopify({"id": 1, "title": "Shirt"}, "products/update")
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert [d.status for d in wh.deliveries(session)] == ["ignored"] and wh.orders_of(session) == []


def test_bad_signatures_are_refused_with_401(client, secrets, wh):
    body = wh.php_json(wh.shopify_order())
    url = f"/webhooks/shopify/{secrets.public_id}"
    headers = wh.shopify_headers(body, "orders/create")
    for value in (None, "", headers["X-Shopify-Hmac-Sha256"].encode().hex(),
                  wh.b64_hmac(b"wrong", body)):
        sent = dict(headers)
        sent.pop("X-Shopify-Hmac-Sha256")
        if value is not None:
            sent["X-Shopify-Hmac-Sha256"] = value
        response = client.post(url, data=body, headers=sent)
        assert response.status_code == 401 and "error" in response.get_json()


def test_the_previous_secret_verifies_during_a_rotation(client, secrets, session, wh):
    from tracker.sites import add_secret

    add_secret(session, secrets, "shopify", "the-new-secret")
    session.commit()
    body = wh.php_json(wh.shopify_order())
    for secret in (wh.SHOPIFY_SECRET, "the-new-secret"):
        headers = wh.shopify_headers(body, "orders/create", secret=secret)
        response = client.post(f"/webhooks/shopify/{secrets.public_id}", data=body, headers=headers)
        assert response.status_code == 200


def test_malformed_json_with_a_valid_signature_is_400(send, session, wh):
    for body in (b'{"id": 1,', b'{"id": NaN}', b'{"id": 1, "id": 2}', b'{"email": "\\udc00"}'):
        response = send.shopify(None, body=body)
        assert response.status_code == 400 and "error" in response.get_json()
    assert wh.deliveries(session) == []


def test_oversized_unknown_site_and_unknown_provider(client, secrets, wh):
    big = b'{"id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(f"/webhooks/shopify/{secrets.public_id}", data=big,
                           headers=wh.shopify_headers(big, "orders/create"))
    assert response.status_code == 413 and "error" in response.get_json()
    huge = b"x" * (3 * 1024 * 1024)
    assert client.post(f"/webhooks/shopify/{secrets.public_id}", data=huge).status_code == 413
    body = wh.php_json(wh.shopify_order())
    response = client.post("/webhooks/shopify/nosuchsite", data=body, headers=wh.shopify_headers(body, "x"))
    assert response.status_code == 404 and "error" in response.get_json()
    assert client.post(f"/webhooks/magento/{secrets.public_id}", data=body).status_code == 404


def test_the_site_can_be_addressed_by_domain(client, secrets, wh):
    body = wh.php_json(wh.shopify_order())
    response = client.post("/webhooks/shopify/shop.example", data=body,
                           headers=wh.shopify_headers(body, "orders/create"))
    assert response.status_code == 200


@pytest.mark.parametrize("landing", ["/?yclid=42", "/?ttclid=7", "/?utm_source=attentive&utm_medium=txt"])
def test_a_landing_with_any_click_id_the_report_knows_attributes_the_order(send, session, wh, landing):
    # The webhook matches a landing by the same click ids as the collector (tracker.touch).
    send.shopify(wh.shopify_order(note_attributes=[], customer=None, email=None, contact_email=None,
                                  billing_address=None, landing_site=landing, referring_site=None))
    (order,) = wh.orders_of(session)
    assert order.match_method == "landing"


def test_a_bare_referring_site_counts_like_a_full_address(send, session, wh):
    anonymous = dict(note_attributes=[], customer=None, email=None, contact_email=None, billing_address=None)
    for number, referrer in ((1, "www.pinterest.com/pin/1"), (2, "checkout.shopify.com")):
        send.shopify(wh.shopify_order(id=number, landing_site="/", referring_site=referrer, **anonymous))
    orders = {o.external_id: o for o in wh.orders_of(session)}
    assert [orders[k].match_method for k in "12"] == ["landing", None]
