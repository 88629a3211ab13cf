"""Each session's links to its visitor's previous session: any, in the same channel, in the same
source/medium/campaign (the stored report levels that count distinct visitors).

A visitor is counted once over a range of days, on the first day it is seen there; a session is
a visitor's first of a day in a row exactly when its previous visit in that row started on an
earlier local day (or never). With the links stored, the nightly build counts visitors with one
scan of the sessions instead of sorting every visitor's history.

The collector and `tracker demo` write the links with each session. Any session stored otherwise
(or re-split by a late page view) is unlinked (`visits_linked` false); `link_visits` recomputes
every session of those visitors in one statement before the build counts. On PostgreSQL the
sessions also keep the local days of their start and of each link (`tracker.models.VISIT_DAYS`),
which the build groups by; they are set with the links, in the site's time zone.
"""

from __future__ import annotations

from sqlalchemy import Date, cast, func, or_, select, update
from sqlalchemy.orm import Session

from tracker.models import SESSION_DAYS, VISIT_LINKS, Site, TrackedSession

# The most visitors link_visits() names one by one; with more it relinks the whole site.
MAX_NAMED_VISITORS = 5_000


def expected_links(site_id: int, visitors=None, zone: str | None = None):
    """A query of (session id, *the links it should have) for a site's sessions (or those of the
    visitors in `visitors`, a list or subquery of visitor ids); with `zone` (PostgreSQL), also the
    local days of the start and of each link (SESSION_DAYS)."""
    s = TrackedSession
    where = [s.site_id == site_id]
    if visitors is not None:
        where.append(s.visitor_id.in_(visitors))
    links = {
        name: func.lag(s.started_at).over(
            partition_by=[s.visitor_id, *(getattr(s, c) for c in shared)], order_by=[s.started_at, s.id])
        for name, shared in VISIT_LINKS.items()
    }
    days = []
    if zone is not None:
        dated = {"started_at": s.started_at, **links}
        days = [cast(func.timezone(zone, dated[at]), Date).label(day) for day, at in SESSION_DAYS.items()]
    return select(s.id, *(link.label(name) for name, link in links.items()), *days).where(*where)


def unlinked_count(session: Session, site_id: int) -> int:
    """How many of the site's sessions wait for their links (all of them, once, after an upgrade)."""
    s = TrackedSession
    return session.scalar(select(func.count()).where(s.site_id == site_id, ~s.visits_linked)) or 0


def link_visits(session: Session, site_id: int, everything: bool = False) -> int:
    """Link every session of the site's visitors that have an unlinked session (of all its visitors
    with `everything`); returns how many sessions changed. No commit."""
    s = TrackedSession
    postgres = session.get_bind().dialect.name == "postgresql"
    visitors = None
    if not everything:
        # On PostgreSQL also a session stored without its days (by an older collector); the
        # partial index ix_sessions_unlinked holds exactly these.
        unlinked = (s.site_id == site_id, or_(~s.visits_linked, s.started_day.is_(None)) if postgres
                    else ~s.visits_linked)
        # The visitors are named in the statement: joined to a subquery instead, a planner that
        # has no statistics yet (a new site's first build) compares every unlinked visitor with
        # every session of the site. Past a few thousand, the whole site is relinked in one sort.
        found = session.scalars(
            select(s.visitor_id).where(*unlinked).distinct().limit(MAX_NAMED_VISITORS + 1)).all()
        if not found:
            return 0
        if len(found) <= MAX_NAMED_VISITORS:
            visitors = found
    zone = None
    if postgres:
        zone = session.scalar(select(Site.timezone).where(Site.id == site_id))
    wanted = expected_links(site_id, visitors, zone).subquery("wanted")
    columns = [*VISIT_LINKS, *(SESSION_DAYS if zone else ())]
    changed = or_(~s.visits_linked, *(getattr(s, name).is_distinct_from(wanted.c[name]) for name in columns))
    result = session.execute(
        update(s)
        .where(s.id == wanted.c.id, changed)
        .values(**{name: wanted.c[name] for name in columns}, visits_linked=True)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
