"""What the reports read of the nightly build: which built days are still current, and the credit
their rollups hold.

A report reads the rollups of the days that are built and unchanged since, and computes the other
days (not built, or touched by a later order change, refund, person merge or late session) from
the raw tables (reports.credit). reports.build writes the rollups and uses `coverage` to find the
days to rebuild.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from reports.credit import Key
from reports.models import ReportBuild, ReportRollup
from tracker.days import days_between, local_day, local_days, range_bounds
from tracker.models import Order, Site, TrackedSession, Visitor
from tracker.sites import kept_from
from tracker.touch import DIMENSIONS

# The lookback the rollups are built for; reports with another lookback are computed live.
ROLLUP_LOOKBACK = 30
ROLLUP_COLUMNS = {d: getattr(ReportRollup, d) for d in DIMENSIONS}


def built_through(session: Session, site: Site) -> date | None:
    """The latest local day whose rollups are built for the default lookback."""
    return session.scalar(
        select(func.max(ReportBuild.day)).where(
            ReportBuild.site_id == site.id, ReportBuild.lookback == ROLLUP_LOOKBACK
        )
    )


# --- which built days are still current --------------------------------------------------------


@dataclass
class Coverage:
    """For a range of local days: which are built and still current for credit and for traffic."""

    built: dict[date, tuple[datetime, int]] = field(default_factory=dict)  # day: (built_at, sessions mark)
    stale: set[date] = field(default_factory=set)  # built, but an order, refund or touch changed since
    late_days: set[date] = field(default_factory=set)  # built, then a session of that day arrived
    traffic_current: bool = False

    def clean(self, date_from: date, date_to: date) -> list[date]:
        return [d for d in days_between(date_from, date_to) if d in self.built and d not in self.stale]


def coverage(session: Session, site: Site, date_from: date, date_to: date) -> Coverage:
    """Which days of the range the rollups may answer for (see the module docstring)."""
    tz = ZoneInfo(site.timezone)
    result = Coverage()
    result.built = {
        day: (built_at, mark)
        for day, built_at, mark in session.execute(
            select(ReportBuild.day, ReportBuild.built_at, ReportBuild.sessions_mark).where(
                ReportBuild.site_id == site.id, ReportBuild.lookback == ROLLUP_LOOKBACK,
                ReportBuild.day >= date_from, ReportBuild.day <= date_to,
            )
        )
    }
    if not result.built:
        return result
    start, end = range_bounds(date_from, date_to, tz)
    # Days built alike (by one build, or checked by one refresh) share when and the newest session
    # then: a change since matters only to days whose figures it can reach, so the night after
    # a build reads only what changed, however long the history.
    alike_at: dict[datetime, list[date]] = defaultdict(list)
    alike_mark: dict[int, list[date]] = defaultdict(list)
    for day, (built_at, mark) in result.built.items():
        alike_at[built_at].append(day)
        alike_mark[mark].append(day)

    def spans(alike: dict) -> list[tuple]:
        """(value, start of the first day, end of the last) of days built alike."""
        return [(value, *range_bounds(min(days), max(days), tz)) for value, days in alike.items()]

    def stale_after(day: date, when: datetime) -> None:
        built = result.built.get(day)
        if built is not None and when > built[0]:
            result.stale.add(day)

    # Orders changed since (status, total, refunds, matching, person merges bump updated_at): their
    # own day, and the later orders of the same person, whose "new customer" may have flipped.
    v = aliased(Visitor)
    person = func.coalesce(Order.person_id, v.person_id)
    changed = session.execute(
        select(Order.created_at, Order.updated_at, person, Order.visitor_id)
        .outerjoin(v, and_(v.id == Order.visitor_id, v.site_id == Order.site_id))
        .where(Order.site_id == site.id, Order.updated_at > min(alike_at),
               or_(*(and_(Order.updated_at > built_at, Order.created_at < hi)
                     for built_at, _, hi in spans(alike_at))))
    ).all()
    for created, updated, _person, _visitor in changed:
        stale_after(local_day(created, tz), updated)
    # A customer is a person, else a visitor (tracker.sales.customer_key).
    by_person: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    by_visitor: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for created, updated, p, vid in changed:
        if p is not None:
            by_person[p].append((created, updated))
        elif vid is not None:
            by_visitor[vid].append((created, updated))
    if by_person or by_visitor:
        earliest = min(c for c, *_ in changed)
        later = session.execute(
            select(Order.created_at, person, Order.visitor_id)
            .outerjoin(v, and_(v.id == Order.visitor_id, v.site_id == Order.site_id))
            .where(
                Order.site_id == site.id, Order.created_at >= max(start, earliest), Order.created_at < end,
                or_(person.in_(list(by_person)), Order.visitor_id.in_(list(by_visitor))),
            )
        ).all()
        for created, p, vid in later:
            before = [updated for c_created, updated in (*by_person.get(p, ()), *by_visitor.get(vid, ()))
                      if c_created < created]
            if before:
                stale_after(local_day(created, tz), max(before))
    # Sessions recorded after a day was built: touches of that day's orders within the lookback. A
    # day is stale when the newest late session that started in the lookback before it is newer
    # than the day's mark.
    window = timedelta(days=ROLLUP_LOOKBACK)
    s = TrackedSession
    late = session.execute(
        select(s.id, s.started_at)
        .where(s.id > min(alike_mark), s.site_id == site.id,
               or_(*(and_(s.id > mark, s.started_at >= lo - window, s.started_at < hi)
                     for mark, lo, hi in spans(alike_mark))))
        .order_by(s.id)  # walks the new sessions by id (SQLite would rather scan the days' index)
    )
    day_of = local_days(start - window, end, tz)
    newest: dict[date, int] = {}
    for sid, started in late:
        first = day_of(started)
        if newest.get(first, 0) < sid:
            newest[first] = sid
    for first, sid in newest.items():
        if result.built.get(first, (None, sid))[1] < sid:
            result.late_days.add(first)  # its day's traffic was counted without it
        for day in days_between(max(first, date_from), min(first + window + timedelta(days=1), date_to)):
            if result.built.get(day, (None, sid))[1] < sid:
                result.stale.add(day)
    # Days whose raw visits are gone (reports.retention): their rollups are final.
    first_kept = kept_from(site)
    if first_kept is not None:
        result.stale = {d for d in result.stale if d >= first_kept}
        result.late_days = {d for d in result.late_days if d >= first_kept}
    result.traffic_current = len(result.built) == (date_to - date_from).days + 1 and not result.late_days
    return result


def rollup_credit(
    session: Session, query, days: list[date], dims: tuple[str, ...], per_day: bool = False
) -> dict[Key, tuple[int, int, int]]:
    """Credit per row from the rollups of the given (built, current) days; keys start with the day
    when `per_day`."""
    if not days:
        return {}
    cols = [ROLLUP_COLUMNS[d] for d in dims]
    if per_day:
        cols = [ReportRollup.day, *cols]
    model = query.model
    sums = tuple(func.sum(getattr(ReportRollup, f"{kind}_{model}")) for kind in ("units", "revenue", "new"))
    where = [
        ReportRollup.site_id == query.site.id,
        ReportRollup.lookback == ROLLUP_LOOKBACK,
        ReportRollup.day >= days[0],
        ReportRollup.day <= days[-1],
    ]
    skipped = [d for d in days_between(days[0], days[-1]) if d not in set(days)]
    if skipped:
        where.append(ReportRollup.day.not_in(skipped))
    return {
        tuple(r[: len(cols)]): (int(r[-3]), int(r[-2]), int(r[-1]))
        for r in session.execute(
            # A key this model gave nothing (other models did) is no row of the report.
            select(*cols, *sums).where(*where).group_by(*cols).having(or_(sums[0] != 0, sums[1] != 0))
        )
    }
