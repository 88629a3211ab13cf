"""The raw inbox: stored before the 200, failures kept and replayed, outages answered 5xx, races safe."""

from __future__ import annotations

import threading

from tracker.app import create_app
from tracker.cli import main
from tracker.db import session_factory
from tracker.webhooks.inbox import store
from tracker.webhooks.sealing import unseal


def test_the_exact_bytes_and_headers_are_kept(client, secrets, session, wh):
    body = wh.php_json(wh.shopify_order())
    headers = {**wh.shopify_headers(body, "orders/create"), "Cookie": "session=secret"}
    client.post(f"/webhooks/shopify/{secrets.public_id}", data=body, headers=headers)
    (delivery,) = wh.deliveries(session)
    kept = unseal(client.application.config["TRACKER"].secret_key, delivery.body)
    assert kept == body and b"\\/products\\/cr\\u00e8me" in kept
    assert delivery.headers["x-shopify-topic"] == "orders/create" and "cookie" not in delivery.headers
    assert (delivery.status, delivery.attempts, delivery.topic) == ("processed", 1, "orders/create")


def test_a_delivery_stored_but_never_processed_is_replayed(app, secrets, session, runner, wh):
    # A worker killed between the commit and the processing leaves the delivery `received`.
    body = wh.php_json(wh.shopify_order())
    with app.app_context():
        db = session_factory(app)()
        headers = wh.shopify_headers(body, "orders/create")
        key = app.config["TRACKER"].secret_key
        store(db, secrets.id, "shopify", "w-1", "orders/create", headers, body, key)
        db.close()
    assert wh.orders_of(session) == []
    listed = runner.invoke(main, args=["webhooks", "list"], catch_exceptions=False)
    assert listed.exit_code == 0 and "received: 1" in listed.output
    replayed = runner.invoke(main, args=["webhooks", "replay"], catch_exceptions=False)
    assert replayed.exit_code == 0, replayed.output
    assert "1 processed" in replayed.output
    assert len(wh.orders_of(session)) == 1
    assert runner.invoke(main, args=["webhooks", "replay"]).output.strip().endswith("nothing to do.")


def test_a_store_retry_finishes_an_unprocessed_delivery(app, secrets, session, send, wh):
    body = wh.php_json(wh.shopify_order())
    with app.app_context():
        db = session_factory(app)()
        headers = wh.shopify_headers(body, "orders/create")
        key = app.config["TRACKER"].secret_key
        store(db, secrets.id, "shopify", "w-2", "orders/create", headers, body, key)
        db.close()
    response = send.shopify(None, webhook_id="w-2", body=body)
    assert response.status_code == 200 and response.get_json()["status"] == "processed"
    assert len(wh.orders_of(session)) == 1


def test_a_failing_delivery_is_acknowledged_kept_and_shown_to_the_operator(send, session, runner, wh):
    response = send.shopify(wh.shopify_order(currency="XYZ", total_price_set=None))
    assert response.status_code == 200  # safely stored: the store must not retry forever
    assert response.get_json()["status"] == "failed"
    (delivery,) = wh.deliveries(session)
    assert delivery.status == "failed" and "XYZ" in delivery.error
    listed = runner.invoke(main, args=["webhooks", "list", "--status", "failed"])
    assert "failed: 1" in listed.output and "XYZ" in listed.output
    replayed = runner.invoke(main, args=["webhooks", "replay"])
    assert replayed.exit_code == 1 and "Traceback" not in replayed.output
    assert "still fail" in replayed.output


def test_replay_names_an_unknown_delivery_in_one_sentence(runner, secrets):
    result = runner.invoke(main, args=["webhooks", "replay", "999999"])
    assert result.exit_code == 1 and "No stored delivery with id 999999" in result.output


def test_a_database_outage_is_a_5xx_so_the_store_retries(tmp_path, wh):
    down = create_app({
        "TRACKER_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/unreachable",
        "TRACKER_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "TRACKER_INSTANCE_PATH": str(tmp_path / "instance"),
    })
    body = wh.php_json(wh.shopify_order())
    response = down.test_client().post("/webhooks/shopify/abc123", data=body,
                                       headers=wh.shopify_headers(body, "orders/create"))
    assert response.status_code == 503 and "error" in response.get_json()


def test_parallel_deliveries_of_one_order_count_once(app, secrets, session, wh):
    refund = wh.shopify_refund(amount="10.00")
    order = wh.shopify_order(financial_status="partially_refunded", refunds=[refund])
    body = wh.php_json(order)
    refund_body = wh.php_json(refund)
    url = f"/webhooks/shopify/{secrets.public_id}"
    jobs = []
    for n in range(8):
        topic = ("orders/create", "orders/updated", "orders/paid")[n % 3]
        jobs.append((body, wh.shopify_headers(body, topic)))
        jobs.append((body, wh.shopify_headers(body, "orders/create", webhook_id="same-delivery")))
        jobs.append((refund_body, wh.shopify_headers(refund_body, "refunds/create")))
    barrier = threading.Barrier(len(jobs))
    codes = []

    def post(job):
        client = app.test_client()
        barrier.wait()
        codes.append(client.post(url, data=job[0], headers=job[1]).status_code)

    threads = [threading.Thread(target=post, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * len(jobs)
    (stored,) = wh.orders_of(session)
    (kept_refund,) = wh.refunds_of(session)
    assert kept_refund.order_id == stored.id
    assert wh.net_minor(session, stored) == 19900 - 1000
    statuses = [d.status for d in wh.deliveries(session)]
    assert len(statuses) == 8 + 1 + 8 and set(statuses) == {"processed"}


def test_buyer_emails_and_phones_are_not_stored_in_clear(client, secrets, session, wh):
    order = wh.shopify_order()
    order["phone"] = "+15555550123"
    body = wh.php_json(order)
    assert b"Jon.Snow@Example.com" in body
    headers = wh.shopify_headers(body, "orders/create")
    client.post(f"/webhooks/shopify/{secrets.public_id}", data=body, headers=headers)
    (delivery,) = wh.deliveries(session)
    stored = bytes(delivery.body)
    for clear in (b"Jon.Snow@Example.com", b"jon.snow@example.com", b"5555550123"):
        assert clear.lower() not in stored.lower()
    assert delivery.status == "processed"
