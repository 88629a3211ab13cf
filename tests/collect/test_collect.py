"""POST /collect end to end on the database under test: sessions, touches, identify, bots, privacy."""

import json

import pytest
from sqlalchemy import select

from tracker.models import Identity, Pageview, TrackedSession, Visitor

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
LANDING = (
    "https://shop.example/products/hoodie?utm_source=Attentive&utm_medium=SMS"
    "&utm_campaign=Black+Friday%20Drop&utm_content=%20msg-1%20"
)


def post(client, site, ua=IPHONE, **fields):
    body = {"site": site.public_id, "visitor": "v-1", "referrer": "", "event": "pageview", **fields}
    return client.post(
        "/collect",
        data=json.dumps(body),
        headers={"User-Agent": ua, "Content-Type": "text/plain;charset=UTF-8"},
    )


def sessions(session):
    session.rollback()  # a fresh snapshot: the collector committed on its own connection
    return session.scalars(select(TrackedSession).order_by(TrackedSession.started_at)).all()


def pageviews(session):
    session.rollback()  # a fresh snapshot: the collector committed on its own connection
    return session.scalars(select(Pageview).order_by(Pageview.ts)).all()


def test_utm_landing_makes_one_session_with_normalised_utms(client, session, site):
    response = post(client, site, url=LANDING)
    assert response.status_code == 202
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    [visit] = sessions(session)
    assert (visit.utm_source, visit.utm_medium, visit.utm_campaign, visit.utm_content, visit.utm_term) == (
        "attentive", "sms", "black friday drop", "msg-1", "(not set)",
    )  # fmt: skip
    assert visit.channel == "SMS"
    assert visit.pageviews == 1
    assert visit.device_type == "mobile"
    visitor = session.scalar(select(Visitor))
    assert (visitor.visitor_key, visitor.device_type, visitor.os) == ("v-1", "mobile", "iOS")


def test_second_page_view_joins_the_session(client, session, site):
    post(client, site, url=LANDING)
    post(client, site, url="https://shop.example/cart", referrer=LANDING)
    [visit] = sessions(session)
    assert visit.pageviews == 2
    assert [pv.session_id for pv in pageviews(session)] == [visit.id, visit.id]
    assert visit.utm_source == "attentive"


def test_direct_session_reads_direct_none(client, session, site):
    post(client, site, url="https://shop.example/")
    [visit] = sessions(session)
    assert (visit.utm_source, visit.utm_medium, visit.utm_campaign, visit.channel) == (
        "(direct)", "(none)", "(not set)", "Direct",
    )  # fmt: skip


def test_google_referrer_is_organic_search(client, session, site):
    post(client, site, url="https://shop.example/", referrer="https://www.google.com/")
    [visit] = sessions(session)
    assert (visit.utm_source, visit.utm_medium, visit.channel) == ("google", "organic", "Organic Search")


def test_thirty_one_minutes_later_is_a_new_session(client, session, site):

    post(client, site, url=LANDING)
    # Age the stored session instead of sleeping: the next hit comes 31 minutes after it.
    [visit] = sessions(session)
    from datetime import timedelta

    from sqlalchemy import update

    earlier = visit.started_at - timedelta(minutes=31)
    session.execute(update(TrackedSession).values(started_at=earlier, last_seen_at=earlier))
    session.execute(update(Pageview).values(ts=earlier))
    session.commit()
    post(client, site, url="https://shop.example/cart")
    first, second = sessions(session)
    assert first.pageviews == second.pageviews == 1
    assert second.utm_source == "(direct)"


def test_new_utms_start_a_new_session_and_the_same_do_not(client, session, site):
    post(client, site, url=LANDING)
    post(client, site, url=LANDING)  # a reload of the landing page
    post(client, site, url="https://shop.example/?utm_source=postscript&utm_medium=sms&utm_campaign=vip")
    first, second = sessions(session)
    assert first.pageviews == 2
    assert (second.utm_source, second.utm_campaign) == ("postscript", "vip")


def test_click_id_session(client, session, site):
    post(client, site, url="https://shop.example/?gclid=Cj0KCQiA")
    [visit] = sessions(session)
    assert (visit.utm_source, visit.utm_medium, visit.click_id, visit.channel) == (
        "google", "cpc", "gclid", "Paid Search",
    )  # fmt: skip


def test_identify_links_the_visitor_and_devices_share_a_person(client, session, site):
    post(client, site, url=LANDING, email=" Shopper@Example.com ")
    post(
        client, site, ua=DESKTOP, visitor="laptop-1", url="https://shop.example/", email="shopper@example.com"
    )
    session.rollback()  # a fresh snapshot: the collector committed on its own connection
    phone, laptop = session.scalars(select(Visitor).order_by(Visitor.id)).all()
    assert phone.person_id is not None
    assert phone.person_id == laptop.person_id
    [identity] = session.scalars(select(Identity)).all()
    assert "shopper" not in identity.value_hash


def test_identify_event_without_page_view(client, session, site):
    response = post(client, site, event="identify", url="https://shop.example/", phone="(415) 555-0132")
    assert response.status_code == 202
    assert session.scalar(select(Identity.kind)) == "phone"
    assert pageviews(session) == []


@pytest.mark.parametrize(
    "fields",
    [{"email": "not-an-email"}, {"phone": "12"}, {"email": 42}],
)
def test_invalid_identify_is_rejected(client, session, site, fields):
    response = post(client, site, url="https://shop.example/", **fields)
    assert response.status_code == 400
    assert "error" in response.get_json()
    assert pageviews(session) == []


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 "
        "Safari/537.36",
        "",
        "curl/8.4.0",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    ],
)
def test_bots_get_202_and_nothing_is_stored(client, session, site, ua):
    response = post(client, site, ua=ua, url=LANDING)
    assert response.status_code == 202
    assert pageviews(session) == []
    assert session.scalars(select(Visitor)).all() == []


def test_webdriver_flag_stores_nothing(client, session, site):
    assert post(client, site, url=LANDING, webdriver=True).status_code == 202
    assert pageviews(session) == []


def test_unknown_site_gets_the_same_202_and_nothing_is_stored(client, session, site):
    response = client.post(
        "/collect",
        data=json.dumps({"site": "nosuchsite", "url": LANDING, "visitor": "v-1"}),
        headers={"User-Agent": IPHONE},
    )
    assert response.status_code == 202
    assert response.data == b""
    assert pageviews(session) == []


def test_ip_is_never_stored(app, session, site):
    client = app.test_client()
    client.post(
        "/collect",
        data=json.dumps({"site": site.public_id, "url": LANDING, "visitor": "v-1"}),
        headers={"User-Agent": IPHONE},
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )
    client.get(
        f"/collect.gif?site={site.public_id}&url=https://shop.example/nojs",
        headers={"User-Agent": IPHONE},
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )
    from tracker.db import get_engine

    with get_engine(app).connect() as conn:
        for table in ("visitors", "sessions", "pageviews"):
            rows = conn.exec_driver_sql(f"SELECT * FROM {table}").all()
            assert rows
            assert "203.0.113" not in repr(rows)


def test_preflight_answers_cors(client):
    response = client.options("/collect", headers={"Origin": "https://shop.example"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_pixel_records_a_page_view_and_is_never_cached(client, session, site):
    response = client.get(
        f"/collect.gif?site={site.public_id}&url=https%3A%2F%2Fshop.example%2F%3Futm_source%3Dattentive"
        "%26utm_medium%3Dsms&referrer=",
        headers={"User-Agent": IPHONE},
    )
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert response.data.startswith(b"GIF89a")
    assert "no-store" in response.headers["Cache-Control"]
    [visit] = sessions(session)
    assert (visit.utm_source, visit.channel) == ("attentive", "SMS")
    # The same browser and network again today: the same (anonymous) visitor and session.
    client.get(
        f"/collect.gif?site={site.public_id}&url=https://shop.example/p2", headers={"User-Agent": IPHONE}
    )
    [visit] = sessions(session)
    assert visit.pageviews == 2
