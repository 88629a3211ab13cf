"""Visit links written by the collector: every session it creates in order arrives linked to the
visitor's previous visit (any, same channel, same campaign) exactly as the report defines them;
sessions re-split by late page views are left to the report build, which then mends the visitor.

Page views go through POST /collect (one at a time, or acknowledged on the raw append and drained
later in one batch) and POST /api/events (one request, one batch), on the database under test."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import and_, func, or_, select, type_coerce

from reports.links import expected_links, link_visits
from tracker.collect.sessionise import append, drain
from tracker.db import UTCDateTime, get_engine
from tracker.models import STARTED_DAY, VISIT_DAYS, VISIT_LINKS, TrackedSession, Visitor, WaitingHit

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
SHOP = "https://shop.example/"
WELCOME = SHOP + "?utm_source=attentive&utm_medium=sms&utm_campaign=welcome"
WINBACK = SHOP + "products/hoodie?utm_source=postscript&utm_medium=sms&utm_campaign=winback"
WEEKLY = SHOP + "?utm_source=klaviyo&utm_medium=email&utm_campaign=weekly"
GOOGLE = "https://www.google.com/"


class View:
    """A page view at T0 + `minutes` by `visitor`."""

    def __init__(self, visitor: str, minutes: float, url: str = SHOP + "products/tee", referrer: str = ""):
        self.visitor, self.minutes, self.url, self.referrer = visitor, minutes, url, referrer

    @property
    def ts(self) -> datetime:
        return T0 + timedelta(minutes=self.minutes)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# Visitors browsing in turns. ann: SMS welcome, direct, another SMS campaign, welcome again, then
# organic search; bob: welcome, email, welcome; cat: direct twice; dee: an SMS landing and, at the
# same instant, an email one (two sessions starting together: they link in id order).
DAY_ONE = [
    View("ann", 0, WELCOME), View("ann", 2), View("dee", 10, WELCOME), View("dee", 10, WEEKLY),
    View("bob", 30, WELCOME), View("cat", 50, SHOP), View("ann", 60, SHOP), View("ann", 64),
    View("bob", 100, WEEKLY), View("ann", 120, WINBACK), View("cat", 130, SHOP), View("dee", 140),
]  # fmt: skip
DAY_TWO = [
    View("ann", 180, WELCOME), View("bob", 200, WELCOME), View("ann", 181), View("ann", 240, SHOP, GOOGLE),
    View("dee", 250, WEEKLY), View("ann", 300, WINBACK), View("bob", 301, WELCOME), View("ann", 302),
    View("bob", 340, SHOP),
]  # fmt: skip


@pytest.fixture
def clock(monkeypatch):
    """The collector's clock, set per page view (every entrance stamps hits on arrival in one place)."""
    now = [T0]
    monkeypatch.setattr("tracker.collect.intake.utcnow", lambda: now[0])
    return now


def post(client, site, view: View):
    body = {"site": site.public_id, "url": view.url, "referrer": view.referrer, "visitor": view.visitor,
            "event": "pageview"}  # fmt: skip
    response = client.post(
        "/collect",
        data=json.dumps(body),
        headers={"User-Agent": IPHONE, "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 202


class Collector:
    """Delivers page views the way the collector receives them in one of its modes."""

    def __init__(self, mode, app, client, site, clock, token, monkeypatch):
        self.mode, self.app, self.client, self.site = mode, app, client, site
        self.clock, self.token, self.monkeypatch = clock, token, monkeypatch

    def send(self, views: list[View]) -> None:
        getattr(self, self.mode)(views)

    def one_at_a_time(self, views):
        """POST /collect per page view, each sessionised before its answer (a quiet site)."""
        for view in views:
            self.clock[0] = view.ts
            post(self.client, self.site, view)

    def backlog(self, views):
        """POST /collect per page view, each acknowledged on its append to `hits` (as under load),
        then the backlog sessionised in one batch."""
        engine = get_engine(self.app)
        with self.monkeypatch.context() as patch:
            patch.setattr("tracker.collect.writer.write", append)
            self.one_at_a_time(views)
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(WaitingHit)) == len(views)
        assert drain(engine) == len(views)  # fewer than a claim's limit: one batch

    def one_request(self, views):
        """POST /api/events with every page view: one batch."""
        events = [
            {"site": self.site.public_id, "type": "pageview", "url": v.url, "referrer": v.referrer,
             "visitor": v.visitor, "ts": v.ts.isoformat(), "user_agent": IPHONE}
            for v in views
        ]  # fmt: skip
        response = self.client.post(
            "/api/events", json={"events": events}, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status_code == 202
        assert response.get_json()["accepted"] == len(views)


MODES = ["one_at_a_time", "backlog", "one_request"]


@pytest.fixture(params=MODES)
def collector(request, app, client, site, clock, token, monkeypatch):
    return Collector(request.param, app, client, site, clock, token, monkeypatch)


def stored(session, site) -> dict[int, tuple]:
    """Each session's stored (links..., visits_linked)."""
    session.rollback()  # a fresh snapshot: the collector committed on its own connection
    s = TrackedSession
    rows = session.execute(
        select(s.id, *(getattr(s, name) for name in VISIT_LINKS), s.visits_linked).where(s.site_id == site.id)
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def expected(session, site) -> dict[int, tuple]:
    """Each session's links as the report defines them, with visits_linked True."""
    session.rollback()
    wanted = expected_links(site.id).subquery()
    links = (type_coerce(wanted.c[name], UTCDateTime) for name in VISIT_LINKS)
    rows = session.execute(select(wanted.c.id, *links))
    return {row[0]: (*row[1:], True) for row in rows}


def differing(session, site) -> int:
    """Sessions whose stored links differ from the report's, compared in the database (on SQLite:
    as stored text, so the links must be written in the very format of `started_at`)."""
    session.rollback()
    s = TrackedSession
    wanted = expected_links(site.id).subquery()
    return session.scalar(
        select(func.count())
        .select_from(s)
        .join(wanted, wanted.c.id == s.id)
        .where(s.site_id == site.id)
        .where(or_(*(getattr(s, name).is_distinct_from(wanted.c[name]) for name in VISIT_LINKS)))
    )


def journey(session, site, visitor: str) -> list[tuple]:
    """A visitor's sessions in order: (started_at, source, campaign, *links)."""
    session.rollback()
    s = TrackedSession
    rows = session.execute(
        select(s.started_at, s.utm_source, s.utm_campaign, *(getattr(s, name) for name in VISIT_LINKS))
        .join(Visitor, and_(Visitor.site_id == s.site_id, Visitor.id == s.visitor_id))
        .where(Visitor.visitor_key == visitor)
        .order_by(s.started_at, s.id)
    )
    return [tuple(row) for row in rows]


def unlinked_visitors(session, site) -> set[str]:
    session.rollback()
    s = TrackedSession
    return set(
        session.scalars(
            select(Visitor.visitor_key)
            .join(s, and_(s.site_id == Visitor.site_id, s.visitor_id == Visitor.id))
            .where(s.site_id == site.id, ~s.visits_linked)
            .distinct()
        )
    )


def local_days(session, site) -> list[tuple]:
    """Each session's stored days (start, then each link's) beside the local dates, in the site's
    time zone, of its start and links; in time order."""
    session.rollback()
    s = TrackedSession
    tz = ZoneInfo(site.timezone)
    rows = session.execute(
        select(s.started_at, *(getattr(s, name) for name in VISIT_LINKS),
               getattr(s, STARTED_DAY), *(getattr(s, day) for day in VISIT_DAYS.values()))
        .where(s.site_id == site.id)
        .order_by(s.started_at, s.id)
    )
    half = 1 + len(VISIT_LINKS)
    return [(tuple(row[half:]), tuple(at and at.astimezone(tz).date() for at in row[:half])) for row in rows]


def assert_linked_as_the_report_defines(session, site):
    links = stored(session, site)
    assert links, "the collector stored no sessions"
    assert links == expected(session, site)
    assert differing(session, site) == 0
    if session.get_bind().dialect.name == "postgresql":  # the days the build groups by
        for days, wanted in local_days(session, site):
            assert days == wanted


def test_sessions_arrive_linked(collector, session, site):
    collector.send(DAY_ONE)
    assert_linked_as_the_report_defines(session, site)
    collector.send(DAY_TWO)  # links to stored sessions and to earlier ones of the same batch
    assert_linked_as_the_report_defines(session, site)
    assert link_visits(session, site.id) == 0  # the nightly build has nothing to relink
    assert link_visits(session, site.id, everything=True) == 0

    assert journey(session, site, "ann") == [
        (at(0), "attentive", "welcome", None, None, None),
        (at(60), "(direct)", "(not set)", at(0), None, None),
        (at(120), "postscript", "winback", at(60), at(0), None),  # SMS again, another campaign
        (at(180), "attentive", "welcome", at(120), at(120), at(0)),
        (at(240), "google", "(not set)", at(180), None, None),
        (at(300), "postscript", "winback", at(240), at(180), at(120)),
    ]
    assert journey(session, site, "bob") == [
        (at(30), "attentive", "welcome", None, None, None),
        (at(100), "klaviyo", "weekly", at(30), None, None),
        (at(200), "attentive", "welcome", at(100), at(30), at(30)),
        (at(301), "attentive", "welcome", at(200), at(200), at(200)),
        (at(340), "(direct)", "(not set)", at(301), None, None),
    ]
    # Two sessions starting at the same instant: the later id follows the earlier one.
    assert journey(session, site, "dee") == [
        (at(10), "attentive", "welcome", None, None, None),
        (at(10), "klaviyo", "weekly", at(10), None, None),
        (at(140), "(direct)", "(not set)", at(10), None, None),
        (at(250), "klaviyo", "weekly", at(140), at(10), at(10)),
    ]
    assert [row[3:] for row in journey(session, site, "cat")] == [
        (None, None, None),
        (at(50), at(50), at(50)),
    ]


# Late page views: each lands before a visitor's latest session, so the visitor is re-split.
LATE = [
    View("ann", 90, WEEKLY),  # a new session between two stored ones: later visits now follow it
    View("bob", 220),  # joins a stored session (nothing moves)
    View("eve", 20),  # bridges eve's first two sessions into one: the second is deleted
    View("cat", -60, WINBACK),  # before all of cat's sessions: a new first visit
    View("fay", 400, WEEKLY),  # a new visitor, in order, in the same batch
]  # fmt: skip
EVE = [View("eve", 0, SHOP), View("eve", 40, SHOP), View("eve", 150, WINBACK), View("eve", 160)]


def test_late_page_views_leave_their_visitors_to_the_build(collector, session, site):
    collector.send(DAY_ONE + EVE)
    collector.send(DAY_TWO)
    collector.send(LATE)
    # Every visitor re-split has its sessions from the late page view on rewritten unlinked; the
    # visitor new in the same batch arrives linked.
    assert unlinked_visitors(session, site) == {"ann", "bob", "eve", "cat"}
    rewritten = {sid for sid, links in stored(session, site).items() if not links[3]}
    assert len(rewritten) == 6 + 3 + 2 + 3  # ann from 60 on (one more now), bob from 200, eve, cat
    # Sessions the collector creates in order afterwards arrive linked all the same, also for a
    # visitor whose earlier sessions wait for the build.
    known = set(stored(session, site))
    collector.send([View("ann", 500, WELCOME), View("gus", 500, WELCOME), View("gus", 540, SHOP)])
    now, wanted = stored(session, site), expected(session, site)
    created = now.keys() - known
    assert len(created) == 3
    assert {sid: now[sid] for sid in created} == {sid: wanted[sid] for sid in created}
    assert {sid for sid, links in now.items() if not links[3]} == rewritten

    assert link_visits(session, site.id) > 0
    session.commit()
    assert_linked_as_the_report_defines(session, site)
    assert link_visits(session, site.id) == 0
    assert link_visits(session, site.id, everything=True) == 0

    assert journey(session, site, "ann")[1:4] == [
        (at(60), "(direct)", "(not set)", at(0), None, None),
        (at(90), "klaviyo", "weekly", at(60), None, None),
        (at(120), "postscript", "winback", at(90), at(0), None),
    ]
    assert journey(session, site, "eve") == [
        (at(0), "(direct)", "(not set)", None, None, None),
        (at(150), "postscript", "winback", at(0), None, None),
    ]
    assert [row[:4] for row in journey(session, site, "cat")] == [
        (at(-60), "postscript", "winback", None),
        (at(50), "(direct)", "(not set)", at(-60)),
        (at(130), "(direct)", "(not set)", at(50)),
    ]


# Around local midnight in New York (05:00 UTC in November), where UTC and local days differ.
MIDNIGHT = [
    View("hal", 600, WELCOME),  # 20:00 local on the 20th (01:00 UTC on the 21st)
    View("hal", 835, WELCOME),  # 23:55 local: a new session (hours later), the same local day
    View("ivy", 845, SHOP),  # 00:05 local on the 21st
    View("hal", 850),  # 00:10 local on the 21st: joins the session of 23:55
    View("hal", 900, WEEKLY),  # 01:00 local on the 21st: a new session, hal's first of that day
]  # fmt: skip


def test_sessions_keep_their_local_days_on_postgresql(collector, session, site):
    collector.send(MIDNIGHT)
    assert_linked_as_the_report_defines(session, site)
    if session.get_bind().dialect.name != "postgresql":
        return
    d20, d21 = date(2026, 11, 20), date(2026, 11, 21)
    assert [days for days, _ in local_days(session, site)] == [
        (d20, None, None, None),  # hal, 20:00
        (d20, d20, d20, d20),  # hal, 23:55: after a visit of the same day, same campaign
        (d21, None, None, None),  # ivy, 00:05
        (d21, d20, None, None),  # hal, 01:00: the email visit after the SMS one of the evening
    ]
