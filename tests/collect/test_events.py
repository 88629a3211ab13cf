"""POST /api/events: tokens, explicit timestamps, per-event errors, late events sessionised in place."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tracker.models import Pageview, TrackedSession, Visitor

UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile"
T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def event(site, minutes=0, **fields):
    base = {
        "site": site.public_id,
        "type": "pageview",
        "url": "https://shop.example/",
        "referrer": "",
        "visitor": "srv-1",
        "ts": (T0 + timedelta(minutes=minutes)).isoformat(),
        "ip": "198.51.100.7",
        "user_agent": UA,
    }
    base.update(fields)
    return base


def send(client, token, events):
    return client.post("/api/events", json={"events": events}, headers={"Authorization": f"Bearer {token}"})


def stored_sessions(session):
    session.rollback()
    return session.scalars(select(TrackedSession).order_by(TrackedSession.started_at)).all()


def test_requires_a_valid_token(client, site):
    assert client.post("/api/events", json={"events": []}).status_code == 401
    response = client.post("/api/events", json={"events": []}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.get_json()["error"]


def test_batch_with_per_event_errors(client, session, site, token):
    sms = "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign=vip"
    response = send(
        client,
        token,
        [
            event(site, 0, url=sms),
            event(site, 1, ts="2026-11-20T15:01:00"),  # no offset
            event(site, 2, url="ftp://x.example/"),
            "not an object",
            {**event(site, 3), "site": "unknown"},
            event(site, 4, user_agent="Googlebot/2.1 (+http://www.google.com/bot.html)"),
            event(site, 5, type="identify", email="buyer@example.com"),
            event(site, 6, type="identify", email="nope"),
            event(site, 7, ts="2026-11-20T15:07:00Z"),
        ],
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["accepted"] == 4
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 7]
    assert all(r["error"] for r in body["rejected"])
    [visit] = stored_sessions(session)
    assert (visit.utm_source, visit.utm_campaign, visit.pageviews) == ("attentive", "vip", 2)
    assert session.scalar(select(Visitor.person_id)) is not None


def test_a_late_page_view_lands_in_the_right_session(client, session, site, token):
    sms = "https://shop.example/?utm_source=attentive&utm_medium=sms"
    send(client, token, [event(site, 0, url=sms), event(site, 20), event(site, 120)])
    assert [s.pageviews for s in stored_sessions(session)] == [2, 1]
    # A page view from 10 minutes in arrives last: it joins the first session.
    send(client, token, [event(site, 10)])
    assert [s.pageviews for s in stored_sessions(session)] == [3, 1]
    # Minute 100: 20 -> 100 is a new session, 100 -> 120 joins the last one.
    send(client, token, [event(site, 100)])
    assert [s.pageviews for s in stored_sessions(session)] == [3, 2]
    # Minutes 48 and 74 bridge the two: 20 -> 48 -> 74 -> 100 are all under 30 minutes apart.
    send(client, token, [event(site, 74), event(site, 48)])
    [merged] = stored_sessions(session)
    assert merged.pageviews == 7
    assert merged.utm_source == "attentive"
    assert merged.started_at == T0 and merged.last_seen_at == T0 + timedelta(minutes=120)
    assert len({pv.session_id for pv in session.scalars(select(Pageview))}) == 1


def test_a_late_campaign_click_splits_a_session(client, session, site, token):
    send(client, token, [event(site, 0), event(site, 20)])
    send(client, token, [event(site, 10, url="https://shop.example/?utm_source=postscript&utm_medium=sms")])
    first, second = stored_sessions(session)
    assert (first.utm_source, first.pageviews) == ("(direct)", 1)
    assert (second.utm_source, second.pageviews) == ("postscript", 2)


def test_without_visitor_the_ip_and_agent_make_a_daily_key(client, session, site, token):
    response = send(client, token, [event(site, 0, visitor=None), event(site, 5, visitor=None)])
    assert response.get_json() == {"accepted": 2, "rejected": []}
    [visitor] = session.scalars(select(Visitor)).all()
    assert "198.51" not in visitor.visitor_key
    assert stored_sessions(session)[0].pageviews == 2


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"events": {}}', b'{"events": [], "events": []}'],
)
def test_malformed_batches_are_400(client, token, body):
    response = client.post(
        "/api/events",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]
