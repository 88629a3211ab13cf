"""`tracker digest send`: the morning email through a real SMTP server on localhost (aiosmtpd), in
plain and STARTTLS modes."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import re
import socket
import ssl
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import update

from reports.roi import ReportQuery, roi_report
from tests.webhooks.conftest import ORDERS_SECRET, standard_headers
from tracker.cli import main
from tracker.credentials import hash_password
from tracker.days import site_today
from tracker.models import DeliveryStatus, Role, User, UserSite, WebhookDelivery
from tracker.sites import add_secret, create_site

CAMPAIGN = "<script>alert(1)</script> flash sale"


class Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's hook name)
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _certificate(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(params=["plain", "starttls"])
def smtp(request, tmp_path, monkeypatch):
    inbox = Inbox()
    port = _free_port()
    options = {}
    if request.param == "starttls":
        cert, key = _certificate(tmp_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        options = {"tls_context": context, "require_starttls": True}
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this server's certificate
    controller = Controller(inbox, hostname="localhost", port=port, **options)
    controller.start()
    inbox.url = f"smtp://localhost:{port}"
    inbox.mode = request.param
    yield inbox
    controller.stop()


@pytest.fixture
def store(session, client):
    site = create_site(session, "shop.example", timezone="America/New_York", currency="USD")
    add_secret(session, site, "orders", ORDERS_SECRET)
    session.add(User(email="owner@shop.example", password_hash=hash_password("x" * 12), role=Role.ADMIN))
    other = create_site(session, "other.example")
    session.flush()
    viewer = User(email="client@other.example", password_hash=hash_password("x" * 12), role=Role.VIEWER)
    session.add(viewer)
    session.commit()
    session.add(UserSite(user_id=viewer.id, site_id=other.id))
    session.commit()
    yesterday = site_today(site) - timedelta(days=1)
    noon = dt.datetime.combine(yesterday, dt.time(12), tzinfo=ZoneInfo("America/New_York"))
    order = {"id": "D-1", "created_at": noon.isoformat(), "total": "120.00", "currency": "USD",
             "status": "paid", "landing_url": "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign="
                            + CAMPAIGN.replace(" ", "+")}
    body = json.dumps(order).encode()
    response = client.post(f"/webhooks/orders/{site.public_id}", data=body, headers=standard_headers(body))
    assert response.status_code == 200, response.get_json()
    return site, yesterday


def _send(runner, smtp, *args):
    env = {"TRACKER_SMTP_URL": smtp.url, "TRACKER_MAIL_FROM": "reports@tracker.example",
           "TRACKER_BASE_URL": "https://reports.example"}
    return runner.invoke(main, ["digest", "send", *args], env=env)


def test_the_digest_arrives_with_both_parts_and_the_reports_figures(runner, smtp, store, session):
    site, yesterday = store
    result = _send(runner, smtp, "--site", site.public_id)
    assert result.exit_code == 0, result.output
    assert [e.rcpt_tos for e in smtp.envelopes] == [["owner@shop.example"]]  # not the other site's viewer
    (mail,) = smtp.messages
    assert mail["From"] == "reports@tracker.example" and mail["To"] == "owner@shop.example"
    assert "shop.example" in mail["Subject"] and yesterday.strftime("%d %b") in mail["Subject"]
    assert mail["Date"] and mail["Message-ID"].endswith("@tracker.example>")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    # The figures are the ROI report's for the same range, model and lookback.
    report = roi_report(session, ReportQuery(site, yesterday, yesterday, by=("channel",)))
    month = roi_report(session, ReportQuery(site, yesterday - timedelta(days=29), yesterday, by=("channel",)))
    assert report["totals"]["revenue"] == "120.00"
    for figure in (report["totals"]["revenue"], month["totals"]["revenue"], report["totals"]["orders"]):
        assert figure in text and figure in html
    assert "Attribution coverage: 100%" in text
    assert f"https://reports.example/reports/roi?site={site.public_id}&preset=custom&from={yesterday}" in text
    # A campaign named like a script is text in both parts.
    assert CAMPAIGN.lower() in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; flash sale" in html
    assert "<img" not in html and "<link" not in html
    # No page view was ever received: that is an alert, with its figure; nothing else is wrong.
    assert "No page view received in the last 24 hours (none was ever received)" in text
    assert "webhook" not in text and "outside the range" not in text and "new spelling" not in text


def test_no_alert_when_page_views_arrive(runner, smtp, store, client):
    site, _ = store
    body = {"site": site.public_id, "visitor": "v_live", "event": "pageview", "url": "https://shop.example/"}
    assert client.post("/collect", data=json.dumps(body), content_type="text/plain",
                       headers={"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"}).status_code == 202
    assert _send(runner, smtp, "--site", site.public_id).exit_code == 0
    assert "No page view" not in smtp.messages[0].get_body(("plain",)).get_content()


def test_sent_once_per_recipient_and_date(runner, smtp, store):
    site, _ = store
    assert _send(runner, smtp, "--site", site.public_id).exit_code == 0
    again = _send(runner, smtp, "--site", site.public_id)
    assert again.exit_code == 0 and "nothing to send (already sent)" in again.output
    assert len(smtp.messages) == 1
    extra = _send(runner, smtp, "--site", site.public_id, "--to", "Boss@Shop.example")
    assert extra.exit_code == 0 and [e.rcpt_tos for e in smtp.envelopes][-1] == ["boss@shop.example"]


def test_failing_deliveries_are_an_alert(runner, smtp, store, session):
    site, _ = store
    session.execute(update(WebhookDelivery).values(status=DeliveryStatus.FAILED))
    session.commit()
    assert _send(runner, smtp, "--site", site.public_id).exit_code == 0
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "1 webhook deliveries failed in the last 48 hours" in text


def test_an_unreachable_mail_server_is_one_sentence(runner, store):
    site, _ = store
    port = _free_port()
    result = runner.invoke(main, ["digest", "send", "--site", site.public_id],
                           env={"TRACKER_SMTP_URL": f"smtp://127.0.0.1:{port}"})
    assert result.exit_code == 1
    assert result.output.startswith(f"Cannot reach the mail server 127.0.0.1:{port}")
    assert result.output.count("\n") == 1
    unset = runner.invoke(main, ["digest", "send"], env={"TRACKER_SMTP_URL": ""})
    assert unset.exit_code == 1 and unset.output.startswith("No mail server is configured")


def _order(client, site, order_id: str, when: dt.datetime, total: str, campaign: str = "weekly") -> None:
    body = json.dumps({"id": order_id, "created_at": when.isoformat(), "total": total, "currency": "USD",
                       "status": "paid", "landing_url": "https://shop.example/?utm_source=attentive"
                       f"&utm_medium=sms&utm_campaign={campaign}"}).encode()
    assert client.post(f"/webhooks/orders/{site.public_id}", data=body,
                       headers=standard_headers(body)).status_code == 200


def test_sms_revenue_outside_its_weekday_range_is_an_alert(runner, smtp, store, client):
    site, yesterday = store
    for weeks, total in ((1, "50.00"), (2, "60.00"), (3, "55.00"), (4, "70.00")):
        noon = dt.datetime.combine(yesterday - timedelta(weeks=weeks), dt.time(12),
                                   tzinfo=ZoneInfo("America/New_York"))
        _order(client, site, f"W-{weeks}", noon, total)
    assert _send(runner, smtp, "--site", site.public_id).exit_code == 0
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert ("Yesterday's SMS revenue, 120.00 USD, is outside the range of the same weekday over the previous "
            "4 weeks (50.00 to 70.00).") in text


def test_a_new_spelling_of_a_campaign_is_an_alert_and_none_without_it(runner, smtp, store, client, session):
    from tracker.credentials import hash_token, new_token
    from tracker.models import ApiToken

    site, yesterday = store
    token = new_token()
    session.add(ApiToken(name="server", token_hash=hash_token(token), prefix=token[:8]))
    session.commit()
    tz = ZoneInfo("America/New_York")

    def visit(campaign: str, day: dt.date, visitor: str) -> None:
        ts = dt.datetime.combine(day, dt.time(10), tzinfo=tz).isoformat()
        event = {"site": site.public_id, "type": "pageview", "visitor": visitor, "ts": ts,
                 "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
                 "url": f"https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign={campaign}"}
        response = client.post("/api/events", json={"events": [event]},
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 202 and response.get_json()["accepted"] == 1

    visit("black friday", yesterday - timedelta(days=5), "v_a")
    day_before = str(yesterday - timedelta(days=1))
    assert _send(runner, smtp, "--site", site.public_id, "--date", day_before).exit_code == 0
    assert "new spelling" not in smtp.messages[-1].get_body(("plain",)).get_content()
    visit("Black-Friday", yesterday, "v_b")
    assert _send(runner, smtp, "--site", site.public_id).exit_code == 0
    text = smtp.messages[-1].get_body(("plain",)).get_content()
    assert 'A new spelling splits the campaign "black friday": "black-friday" appeared yesterday' in text


def test_mission_control_shows_the_same_alerts_on_top(runner, smtp, store, client):
    from tests.pages.conftest import csrf_from

    site, _ = store
    assert _send(runner, smtp, "--site", site.public_id).exit_code == 0
    emailed = smtp.messages[0].get_body(("plain",)).get_content()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"email": "owner@shop.example", "password": "x" * 12, "csrf_token": token})
    html = client.get(f"/?site={site.public_id}").get_data(as_text=True)
    alerts = re.findall(r"<p class=\"alert\" role=\"status\">([^<]+)</p>", html)
    assert alerts and html.index('class="alerts"') < html.index('class="kpis"')
    for alert in alerts:
        assert f"! {unescape(alert)}" in emailed


def test_clicks_that_do_not_land_are_an_alert(runner, smtp, store, client, session, tmp_path):
    from tracker.credentials import hash_token, new_token
    from tracker.models import ApiToken

    site, yesterday = store
    token = new_token()
    session.add(ApiToken(name="server", token_hash=hash_token(token), prefix=token[:8]))
    session.commit()
    tz = ZoneInfo("America/New_York")
    for n in range(2):  # two visits landed from the "spring" SMS yesterday
        event = {"site": site.public_id, "type": "pageview", "visitor": f"v_spring_{n}",
                 "ts": dt.datetime.combine(yesterday, dt.time(10 + n), tzinfo=tz).isoformat(),
                 "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
                 "url": "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign=spring"}
        assert client.post("/api/events", json={"events": [event]},
                           headers={"Authorization": f"Bearer {token}"}).status_code == 202
    claims = tmp_path / "claims.csv"
    claims.write_text(f"date,platform,campaign,attributed_revenue,clicks\n{yesterday},Attentive,Spring,80,3\n"
                      f"{yesterday},attentive,summer,10,40\n")
    assert runner.invoke(main, ["claims", "import", str(claims), "--site", site.public_id]).exit_code == 0
    assert _send(runner, smtp, "--site", site.public_id).exit_code == 0
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert ('attentive reported 40 clicks on "summer" yesterday but 0 visits landed from it (0%): its links '
            "may be losing their UTMs.") in text
    assert '"spring"' not in text  # 2 of 3 clicks landed
