"""A person's data: `tracker people export` and `tracker people forget` (CONTRACT: "Privacy and the
data lifecycle"), through the collector, the webhooks, the report and the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.webhooks.conftest import secrets, send  # noqa: F401  (fixtures: signed deliveries)
from tracker.cli import main
from tracker.credentials import hash_token, new_token
from tracker.models import (
    ApiToken,
    DeliveryStatus,
    Identity,
    Order,
    Pageview,
    Person,
    TrackedSession,
    Visitor,
    WaitingHit,
    WebhookDelivery,
)

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1"
ANN, BOB = "v_ann_phone_123", "v_bob_laptop_456"
ANN_EMAIL = "Ann.Person@Example.com"


def _page(client, site, visitor: str, url: str, **extra):
    body = {"site": site.public_id, "visitor": visitor, "event": "pageview", "url": url, **extra}
    response = client.post("/collect", data=json.dumps(body), headers={"User-Agent": BROWSER},
                           content_type="text/plain")
    assert response.status_code == 202


def _order(send, order_id: str, visitor: str, email: str, total: str):  # noqa: F811
    now = datetime.now(UTC)
    data = {"id": order_id, "created_at": now.isoformat().replace("+00:00", "Z"), "total": total,
            "currency": "USD", "status": "paid", "visitor": visitor, "email": email,
            "landing_url": f"https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign={order_id}"}
    assert send.orders(data).status_code == 200


@pytest.fixture
def shop(client, site, send, session):  # noqa: F811
    """Ann (identified by email, an SMS visit, a page view, an order) and Bob (a search visit, an order)."""
    _page(client, site, ANN, "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign=welcome")
    _page(client, site, ANN, "https://shop.example/products/tea", title="Tea")
    _page(client, site, ANN, "https://shop.example/cart", email=ANN_EMAIL, event="identify")
    _page(client, site, BOB, "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=brand")
    _order(send, "ANN-1", ANN, ANN_EMAIL, "40.00")
    _order(send, "BOB-1", BOB, "bob@example.org", "25.00")
    token = new_token()
    session.add(ApiToken(name="report", token_hash=hash_token(token), prefix=token[:8]))
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def _report(client, site, headers) -> dict:
    today = datetime.now(UTC).date()
    query = f"site={site.public_id}&from={today - timedelta(days=1)}&to={today}&by=source,medium,campaign"
    response = client.get(f"/api/reports/roi?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _revenue(report: dict, campaign: str) -> str | None:
    for row in report["rows"]:
        if row.get("campaign") == campaign:
            return row["revenue"]
    return None


def _held(session, site_id: int) -> dict[str, int]:
    session.rollback()  # a fresh snapshot (reading `site.id` may have begun one before the change)
    count = {}
    for name, model in (("visitors", Visitor), ("sessions", TrackedSession), ("pageviews", Pageview),
                        ("identities", Identity), ("persons", Person), ("hits", WaitingHit)):
        count[name] = session.scalar(select(func.count()).select_from(model).where(model.site_id == site_id))
    session.rollback()
    return count


def test_export_prints_everything_held_about_the_person(runner, site, shop):
    result = runner.invoke(main, ["people", "export", site.public_id, "--email", ANN_EMAIL.upper()])
    assert result.exit_code == 0, result.output
    held = json.loads(result.output)
    assert held["site"] == "shop.example"
    assert [v["visitor_id"] for v in held["visitors"]] == [ANN]
    assert [i["kind"] for i in held["identities"]] == ["email"]
    assert ANN_EMAIL.lower() not in result.output.lower()  # held only as a keyed hash
    assert held["sessions"][0]["utm_campaign"] == "welcome"
    assert held["sessions"][0]["landing_url"].startswith("https://shop.example/?utm_source=attentive")
    assert {p["url"] for p in held["pageviews"]} >= {"https://shop.example/products/tea"}
    assert [(o["order_id"], o["total"], o["currency"]) for o in held["orders"]] == [("ANN-1", "40.00", "USD")]
    assert "BOB" not in result.output and BOB not in result.output
    # The same person by their visitor id.
    by_visitor = runner.invoke(main, ["people", "export", "shop.example", "--visitor", ANN])
    by_visitor = json.loads(by_visitor.output)
    assert by_visitor["orders"] == held["orders"] and by_visitor["identities"] == held["identities"]


def test_forget_erases_the_person_and_keeps_their_order_unattributed(runner, client, site, shop, session):
    before = _report(client, site, shop)
    assert _revenue(before, "welcome") == "40.00"
    held_before = _held(session, site.id)

    result = runner.invoke(main, ["people", "forget", site.public_id, "--email", ANN_EMAIL])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith("Erased on shop.example: 1 identities, 1 visitors, 1 sessions, "
                                    "2 page views, 0 waiting hits, 1 webhook bodies; ")
    assert "1 orders kept without any link to the person" in result.output

    held = _held(session, site.id)
    # Bob (a visitor, an SMS-less visit, a page view, the email his order carried) is all that is left.
    assert held_before == {"visitors": 2, "sessions": 2, "pageviews": 3, "identities": 2, "persons": 2,
                           "hits": 0}
    assert held == {"visitors": 1, "sessions": 1, "pageviews": 1, "identities": 1, "persons": 1, "hits": 0}
    ann = session.scalar(select(Order).where(Order.external_id == "ANN-1"))
    assert (ann.visitor_id, ann.person_id, ann.email_hash, ann.phone_hash, ann.landing_url) == (None,) * 5
    bob = session.scalar(select(Order).where(Order.external_id == "BOB-1"))
    assert bob.visitor_id is not None and bob.email_hash is not None
    bodies = session.execute(select(WebhookDelivery.order_external_id, WebhookDelivery.status,
                                    func.length(WebhookDelivery.body))).all()
    assert ("ANN-1", DeliveryStatus.ERASED, 0) in bodies
    assert any(order == "BOB-1" and length > 0 for order, _, length in bodies)
    session.rollback()

    after = _report(client, site, shop)
    assert after["totals"]["revenue"] == before["totals"]["revenue"]
    assert _revenue(after, "welcome") is None
    assert _revenue(after, "(unattributed)") == "40.00"
    assert _revenue(after, "brand") == _revenue(before, "brand")

    again = runner.invoke(main, ["people", "forget", site.public_id, "--email", ANN_EMAIL])
    assert again.exit_code == 0
    assert "0 identities, 0 visitors, 0 sessions, 0 page views, 0 waiting hits, 0 webhook bodies; " \
           "0 orders" in again.output


def test_forget_after_the_nightly_build_stops_crediting_the_campaign(runner, client, site, shop):
    today = datetime.now(UTC).date()
    built = runner.invoke(main, ["reports", "build", "--site", site.public_id,
                                 "--from", str(today - timedelta(days=1)), "--to", str(today)])
    assert built.exit_code == 0, built.output
    assert _revenue(_report(client, site, shop), "welcome") == "40.00"
    assert runner.invoke(main, ["people", "forget", "shop.example", "--visitor", ANN]).exit_code == 0
    report = _report(client, site, shop)
    # The built day's visit counts may still include the erased visit (a count, nobody's data) until
    # the nightly build redoes the day; the campaign is credited nothing.
    assert _revenue(report, "welcome") in (None, "0.00")
    assert _revenue(report, "(unattributed)") == "40.00"


@pytest.mark.parametrize("args, message", [
    ([], "Name the person with exactly one of --email, --phone or --visitor."),
    (["--email", "a@b.example", "--visitor", "v1"], "Name the person with exactly one of"),
    (["--email", "not-an-email"], "An email address needs exactly one @"),
    (["--phone", "12"], "phone number"),
])
def test_naming_the_person_badly_is_one_sentence(runner, site, args, message):
    for command in ("forget", "export"):
        result = runner.invoke(main, ["people", command, site.public_id, *args])
        assert result.exit_code == 1
        assert message in result.output and result.output.count("\n") == 1


# --- Shopify's compliance topics -------------------------------------------------------------

SHOP = {"shop_id": 954889, "shop_domain": "shop-example.myshopify.com"}


def _compliance(send, topic: str, data: dict, webhook_id: str):  # noqa: F811
    response = send.shopify(data, topic=topic, webhook_id=webhook_id)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_customers_redact_forgets_the_customer_and_its_own_body(send, client, site, shop, session):  # noqa: F811
    before = _report(client, site, shop)
    request = {**SHOP, "customer": {"id": 191167, "email": ANN_EMAIL, "phone": "+16135550142"},
               "orders_to_redact": [1, 2]}
    answer = _compliance(send, "customers/redact", request, "redact-1")
    assert answer["status"] == DeliveryStatus.ERASED
    assert _held(session, site.id)["identities"] == 1  # Bob's
    after = _report(client, site, shop)
    assert after["totals"]["revenue"] == before["totals"]["revenue"]
    assert _revenue(after, "welcome") is None and _revenue(after, "(unattributed)") == "40.00"
    bodies = dict(session.execute(select(WebhookDelivery.topic, func.length(WebhookDelivery.body))).all())
    assert bodies["customers/redact"] == 0  # the request named the person: its body is gone too
    session.rollback()
    assert _compliance(send, "customers/redact", request, "redact-1")["status"] == "duplicate"


def test_shop_redact_erases_the_sites_visit_data(send, client, site, shop, session):  # noqa: F811
    before = _report(client, site, shop)
    assert _compliance(send, "shop/redact", SHOP, "shop-redact-1")["status"] == DeliveryStatus.ERASED
    assert _held(session, site.id) == {"visitors": 0, "sessions": 0, "pageviews": 0, "identities": 0,
                                       "persons": 0, "hits": 0}
    orders = session.execute(select(Order.external_id, Order.total_minor, Order.visitor_id, Order.email_hash)
                             .order_by(Order.external_id)).all()
    assert orders == [("ANN-1", 4000, None, None), ("BOB-1", 2500, None, None)]
    session.rollback()
    after = _report(client, site, shop)
    assert after["totals"]["revenue"] == before["totals"]["revenue"]
    assert _revenue(after, "(unattributed)") == "65.00"


def test_a_data_request_is_recorded_listed_and_exported(send, runner, site, shop):  # noqa: F811
    request = {**SHOP, "orders_requested": [299938, 280263], "data_request": {"id": 9999},
               "customer": {"id": 191167, "email": ANN_EMAIL, "phone": "+16135550142"}}
    assert _compliance(send, "customers/data_request", request, "data-request-1")["status"] == "ignored"
    listing = runner.invoke(main, ["people", "requests", "shop.example"])
    assert listing.exit_code == 0, listing.output
    header, row = listing.output.splitlines()
    assert header.split()[:3] == ["request", "received", "site"]
    assert "shop.example  9999" in row and "191167" in row and ANN_EMAIL.lower() not in listing.output
    command = row[row.index("tracker people export"):].split()  # tracker people export SITE --request N
    exported = runner.invoke(main, command[1:])
    assert exported.exit_code == 0, exported.output
    held = json.loads(exported.output)
    assert [v["visitor_id"] for v in held["visitors"]] == [ANN]
    assert [o["order_id"] for o in held["orders"]] == ["ANN-1"]


# --- nothing personal in logs or tables ------------------------------------------------------

CLIENT_IP = "127.0.0.23"  # a loopback address of its own, so that it can be searched for
PHONE = "+1 613 555 0199"


def _from_client_ip(port: int, data: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), source_address=(CLIENT_IP, 0), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _all_rows(session) -> str:
    from tracker.db import Base

    session.rollback()
    text = "\n".join(str(row) for table in Base.metadata.sorted_tables
                     for row in session.execute(table.select()))
    session.rollback()
    return text


def test_no_ip_email_or_phone_reaches_a_log_or_a_table(config_env, site, session, database_url, tmp_path):
    from tests.test_database_waits import Server

    server = Server(config_env)
    try:
        bad = _from_client_ip(server.port, b"NOT-HTTP /\\x00 nonsense\r\n\r\n")
        assert bad.startswith(b"HTTP/1.1 400")
        for event in ({"event": "pageview", "url": "https://shop.example/?utm_source=postscript&utm_medium=sms"},
                      {"event": "identify", "url": "https://shop.example/account", "email": ANN_EMAIL,
                       "phone": PHONE}):
            body = json.dumps({"site": site.public_id, "visitor": "v_private_1", **event}).encode()
            head = (f"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                    f"User-Agent: {BROWSER}\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n").encode()
            assert _from_client_ip(server.port, head + body).startswith(b"HTTP/1.1 202")
        pixel = f"GET /collect.gif?site={site.public_id}&url=https%3A%2F%2Fshop.example%2F HTTP/1.1\r\n" \
                f"Host: x\r\nUser-Agent: {BROWSER}\r\nConnection: close\r\n\r\n"
        assert _from_client_ip(server.port, pixel.encode()).startswith(b"HTTP/1.1 200")
    finally:
        log = server.stop()
    assert "Invalid request from a client" in log  # gunicorn said what happened, without the address
    stored = _all_rows(session)
    assert "v_private_1" in stored  # the visit is there...
    for secret in (CLIENT_IP, ANN_EMAIL, ANN_EMAIL.lower(), "6135550199", "613 555 0199"):
        assert secret not in log, f"{secret} in the server's log"
        assert secret not in stored, f"{secret} in a table"  # ...not who made it
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        raw = b"".join(Path(name).read_bytes() for name in (path, path + "-wal") if Path(name).exists())
        for secret in (CLIENT_IP, ANN_EMAIL.lower(), "6135550199"):
            assert secret.encode() not in raw


def test_forget_while_page_views_keep_arriving(runner, app, site, shop, session):
    """The collector keeps acknowledging (and storing) other visitors' page views meanwhile."""
    import threading

    stop, acknowledged, refused = threading.Event(), [], []

    def browse():
        client = app.test_client()
        n = 0
        while not stop.is_set() or n < 20:
            n += 1
            body = {"site": site.public_id, "visitor": f"v_busy_{n}", "event": "pageview",
                    "url": f"https://shop.example/busy/{n}"}
            response = client.post("/collect", data=json.dumps(body), headers={"User-Agent": BROWSER},
                                   content_type="text/plain")
            (acknowledged if response.status_code == 202 else refused).append(n)

    browsing = threading.Thread(target=browse)
    browsing.start()
    try:
        for args in (["--email", ANN_EMAIL], ["--visitor", BOB]):
            result = runner.invoke(main, ["people", "forget", site.public_id, *args])
            assert result.exit_code == 0, result.output
    finally:
        stop.set()
        browsing.join(30)
    assert refused == [] and len(acknowledged) >= 20
    session.rollback()
    # (a page view acknowledged under load may wait in `hits` to be sessionised)
    stored = {*session.scalars(select(Visitor.visitor_key)), *session.scalars(select(WaitingHit.visitor_key))}
    assert {f"v_busy_{n}" for n in acknowledged} <= stored
    assert ANN not in stored and BOB not in stored
