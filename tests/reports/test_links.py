"""Visit links: each session knows its visitor's previous visit (any, same channel, same campaign)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from reports.links import link_visits
from tests.reports.conftest import World, utc
from tracker.models import TrackedSession


def links(session, sid):
    row = session.scalars(select(TrackedSession).where(TrackedSession.id == sid)).one()
    session.refresh(row)
    return row.prev_visit_at, row.prev_channel_visit_at, row.prev_campaign_visit_at, row.visits_linked


def test_sessions_stored_directly_are_linked_by_the_build_step(session, site):
    w = World(session, site)
    v, other = w.visitor(), w.visitor()
    a = w.visit(v, "2026-11-01 10:00", "attentive", "sms", "welcome")
    b = w.visit(v, "2026-11-02 09:00")  # direct
    c = w.visit(v, "2026-11-03 08:00", "postscript", "sms", "winback")  # SMS again, other campaign
    d = w.visit(v, "2026-11-04 07:00", "attentive", "sms", "welcome")
    e = w.visit(other, "2026-11-02 12:00", "attentive", "sms", "welcome")
    session.commit()
    assert links(session, a)[3] is False

    assert link_visits(session, site.id) == 5
    session.commit()
    assert links(session, a) == (None, None, None, True)
    assert links(session, b) == (utc("2026-11-01 10:00"), None, None, True)
    assert links(session, c) == (utc("2026-11-02 09:00"), utc("2026-11-01 10:00"), None, True)
    assert links(session, d) == (
        utc("2026-11-03 08:00"), utc("2026-11-03 08:00"), utc("2026-11-01 10:00"), True)
    assert links(session, e) == (None, None, None, True)
    assert link_visits(session, site.id) == 0  # nothing left unlinked
    assert link_visits(session, site.id, everything=True) == 0  # and what is linked is right


def test_a_late_session_relinks_its_visitor_only(session, site):
    w = World(session, site)
    v, other = w.visitor(), w.visitor()
    first = w.visit(v, "2026-11-01 10:00", "attentive", "sms", "welcome")
    last = w.visit(v, "2026-11-05 10:00", "attentive", "sms", "welcome")
    w.visit(other, "2026-11-02 12:00")
    link_visits(session, site.id)
    session.commit()
    # A visit between the two arrives later (stored unlinked): the later visit now follows it.
    between = w.visit(v, "2026-11-03 10:00", "attentive", "sms", "welcome")
    session.commit()
    assert link_visits(session, site.id) == 2
    session.commit()
    assert links(session, between)[:3] == (utc("2026-11-01 10:00"),) * 3
    assert links(session, last)[:3] == (utc("2026-11-03 10:00"),) * 3
    assert links(session, first)[:3] == (None, None, None)


def test_sessions_starting_at_the_same_instant_link_in_id_order(session, site):
    w = World(session, site)
    v = w.visitor()
    a = w.visit(v, "2026-11-01 10:00", "attentive", "sms", "welcome")
    b = w.visit(v, "2026-11-01 10:00", "attentive", "sms", "welcome")
    link_visits(session, site.id)
    session.commit()
    assert links(session, a)[:3] == (None, None, None)
    assert links(session, b)[:3] == (utc("2026-11-01 10:00"),) * 3


def test_wrong_links_are_found_and_mended(session, site):
    w = World(session, site)
    v = w.visitor()
    w.visit(v, "2026-11-01 10:00")
    b = w.visit(v, "2026-11-02 10:00")
    link_visits(session, site.id)
    session.execute(update(TrackedSession).where(TrackedSession.id == b).values(prev_visit_at=None))
    session.commit()
    assert link_visits(session, site.id, everything=True) == 1
    session.commit()
    assert session.scalar(select(TrackedSession.prev_visit_at).where(TrackedSession.id == b)) == utc(
        "2026-11-01 10:00")


def days(session, sid):
    row = session.scalars(select(TrackedSession).where(TrackedSession.id == sid)).one()
    session.refresh(row)
    return row.started_day, row.prev_visit_day, row.prev_channel_visit_day, row.prev_campaign_visit_day


def test_the_build_step_gives_postgresql_sessions_their_local_days(session, site):
    """The days are the site's (New York: midnight is 05:00 UTC in November), set with the links on
    PostgreSQL and mended with them; SQLite's build does not read them."""
    w = World(session, site)
    v = w.visitor()
    evening = w.visit(v, "2026-11-02 03:30", "attentive", "sms", "welcome")  # 22:30 on Nov 1
    night = w.visit(v, "2026-11-02 04:50", "attentive", "sms", "welcome")  # 23:50 on Nov 1
    morning = w.visit(v, "2026-11-02 05:10")  # 00:10 on Nov 2, direct
    session.commit()
    link_visits(session, site.id)
    session.commit()
    if session.get_bind().dialect.name != "postgresql":
        assert days(session, morning) == (None, None, None, None)
        return
    nov1, nov2 = date(2026, 11, 1), date(2026, 11, 2)
    assert days(session, evening) == (nov1, None, None, None)
    assert days(session, night) == (nov1, nov1, nov1, nov1)
    assert days(session, morning) == (nov2, nov1, None, None)

    session.execute(update(TrackedSession).where(TrackedSession.id == morning).values(started_day=nov1))
    session.commit()
    assert link_visits(session, site.id, everything=True) == 1
    session.commit()
    assert days(session, morning) == (nov2, nov1, None, None)


def test_a_linked_session_stored_without_its_days_is_dated_by_the_build_step(session, site):
    """As an older collector would store it during an upgrade: linked, but without its days."""
    w = World(session, site)
    v = w.visitor()
    first = w.visit(v, "2026-11-01 10:00")
    second = w.visit(v, "2026-11-02 04:00")  # 23:00 on Nov 1 in New York
    link_visits(session, site.id)
    session.execute(update(TrackedSession).where(TrackedSession.id == second).values(
        started_day=None, prev_visit_day=None, prev_channel_visit_day=None, prev_campaign_visit_day=None))
    session.commit()
    changed = link_visits(session, site.id)
    session.commit()
    if session.get_bind().dialect.name != "postgresql":
        assert changed == 0  # SQLite keeps no days
        return
    assert changed == 1
    nov1 = date(2026, 11, 1)
    assert days(session, second) == (nov1, nov1, nov1, nov1)
    assert days(session, first) == (nov1, None, None, None)


def test_many_unlinked_visitors_relink_the_whole_site(session, site, monkeypatch):
    """Past the visitors it names one by one, the step relinks every session of the site, with
    the same links (and only the sessions whose links change count)."""
    monkeypatch.setattr("reports.links.MAX_NAMED_VISITORS", 1)
    w = World(session, site)
    v, other, linked = w.visitor(), w.visitor(), w.visitor()
    a = w.visit(linked, "2026-11-01 10:00")
    b = w.visit(linked, "2026-11-02 10:00")
    assert link_visits(session, site.id) == 2  # one visitor: named
    session.commit()
    first = w.visit(v, "2026-11-01 10:00", "attentive", "sms", "welcome")
    second = w.visit(v, "2026-11-03 10:00", "attentive", "sms", "welcome")
    third = w.visit(other, "2026-11-02 12:00")
    session.commit()
    assert link_visits(session, site.id) == 3  # two visitors: the whole site, a and b unchanged
    session.commit()
    assert links(session, second) == (utc("2026-11-01 10:00"),) * 3 + (True,)
    assert links(session, first) == links(session, third) == links(session, a) == (None, None, None, True)
    assert links(session, b) == (utc("2026-11-01 10:00"),) * 3 + (True,)
    assert link_visits(session, site.id) == 0
