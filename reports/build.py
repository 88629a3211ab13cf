"""The nightly build: per-day attribution rollups for the default lookback, and reading them back.

Each local day is computed, written and committed on its own, so an interrupted build keeps
what it finished and a rerun simply rewrites the same days (idempotent). The report reads the
rollups only when they cover its whole range and no order, refund or session arrived since.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from reports import credit
from reports.attribution import SPLIT_MODELS
from reports.credit import DIMENSIONS, Key
from reports.models import ReportBuild, ReportRollup
from tracker.db import begin_write, utcnow
from tracker.models import Order, Refund, Site, TrackedSession

ROLLUP_LOOKBACK = 30
# Days attributed per pass: one set of queries per chunk, one commit per day.
CHUNK_DAYS = 7
ROLLUP_COLUMNS = {d: getattr(ReportRollup, d) for d in DIMENSIONS}


def days_between(date_from: date, date_to: date) -> Iterator[date]:
    day = date_from
    while day <= date_to:
        yield day
        day += timedelta(days=1)


def build_site(
    session: Session,
    site: Site,
    date_from: date,
    date_to: date,
    on_day: Callable[[date], None] | None = None,
) -> int:
    """Rebuild the rollups of `site` for local days date_from..date_to; commits after each day.

    Returns the number of days written.
    """
    tz = ZoneInfo(site.timezone)
    site_id = site.id
    written = 0
    chunk_start = date_from
    while chunk_start <= date_to:
        chunk_end = min(chunk_start + timedelta(days=CHUNK_DAYS - 1), date_to)
        sessions_mark = session.scalar(select(func.coalesce(func.max(TrackedSession.id), 0)))
        refunds_mark = session.scalar(select(func.coalesce(func.max(Refund.id), 0)))
        start, end = credit.range_bounds(chunk_start, chunk_end, tz)
        orders = credit.credited_orders(session, site, start, end, ROLLUP_LOOKBACK)
        per_day: dict[date, list[credit.CreditedOrder]] = {}
        for order in orders:
            per_day.setdefault(order.day, []).append(order)
        session.rollback()  # end the read transaction before writing
        for day in days_between(chunk_start, chunk_end):
            _write_day(session, site_id, day, per_day.get(day, []), sessions_mark, refunds_mark)
            written += 1
            if on_day:
                on_day(day)
        chunk_start = chunk_end + timedelta(days=1)
    return written


def _write_day(
    session: Session,
    site_id: int,
    day: date,
    orders: list[credit.CreditedOrder],
    sessions_mark: int,
    refunds_mark: int,
) -> None:
    begin_write(session)
    session.execute(
        delete(ReportRollup).where(
            ReportRollup.site_id == site_id, ReportRollup.day == day, ReportRollup.lookback == ROLLUP_LOOKBACK
        )
    )
    records = []
    for model in SPLIT_MODELS:
        rows = credit.credit_rows(orders, model, lambda _order, key: key)
        for key, (units, revenue, new) in rows.items():
            records.append({
                "site_id": site_id, "day": day, "lookback": ROLLUP_LOOKBACK, "model": model,
                **dict(zip(DIMENSIONS, key, strict=True)),
                "order_units": units, "revenue_minor": revenue, "new_customer_units": new,
            })
    if records:
        session.execute(ReportRollup.__table__.insert(), records)
    session.execute(
        delete(ReportBuild).where(
            ReportBuild.site_id == site_id, ReportBuild.day == day, ReportBuild.lookback == ROLLUP_LOOKBACK
        )
    )
    session.add(ReportBuild(
        site_id=site_id, day=day, lookback=ROLLUP_LOOKBACK, built_at=utcnow(),
        sessions_mark=sessions_mark, refunds_mark=refunds_mark,
    ))
    session.commit()


def built_through(session: Session, site: Site) -> date | None:
    """The latest local day whose rollups are built for the default lookback."""
    return session.scalar(
        select(func.max(ReportBuild.day)).where(
            ReportBuild.site_id == site.id, ReportBuild.lookback == ROLLUP_LOOKBACK
        )
    )


def _fresh(session: Session, query) -> bool:
    """Whether every day of the range is built and nothing that could change it arrived since."""
    if query.lookback != ROLLUP_LOOKBACK:
        return False
    site = query.site
    days, oldest, sessions_mark, refunds_mark = session.execute(
        select(
            func.count(), func.min(ReportBuild.built_at), func.min(ReportBuild.sessions_mark),
            func.min(ReportBuild.refunds_mark),
        ).where(
            ReportBuild.site_id == site.id,
            ReportBuild.lookback == ROLLUP_LOOKBACK,
            ReportBuild.day >= query.date_from,
            ReportBuild.day <= query.date_to,
        )
    ).one()
    if days != (query.date_to - query.date_from).days + 1:
        return False
    start, end = credit.range_bounds(query.date_from, query.date_to, query.tz)
    changed_order = select(Order.id).where(
        Order.site_id == site.id, Order.created_at >= start, Order.created_at < end, Order.updated_at > oldest
    )
    new_refund = (
        select(Refund.id)
        .join(Order, Order.id == Refund.order_id)
        .where(Refund.id > refunds_mark, Order.site_id == site.id, Order.created_at >= start,
               Order.created_at < end)
    )
    new_session = select(TrackedSession.id).where(
        TrackedSession.id > sessions_mark,
        TrackedSession.site_id == site.id,
        TrackedSession.started_at >= start - timedelta(days=ROLLUP_LOOKBACK),
        TrackedSession.started_at < end,
    )
    for probe in (changed_order, new_refund, new_session):
        if session.execute(probe.limit(1)).first() is not None:
            return False
    return True


def read_rollups(
    session: Session, query
) -> tuple[dict[Key, tuple[int, int, int]], tuple[int, int, int]] | None:
    """Credit per row and the totals from the rollups, or None when they cannot answer."""
    if not _fresh(session, query):
        return None
    cols = [ROLLUP_COLUMNS[d] for d in query.by]
    sums = (
        func.sum(ReportRollup.order_units),
        func.sum(ReportRollup.revenue_minor),
        func.sum(ReportRollup.new_customer_units),
    )
    where = _rollup_where(query)
    rows = {
        tuple(r[: len(cols)]): (int(r[-3]), int(r[-2]), int(r[-1]))
        for r in session.execute(select(*cols, *sums).where(*where).group_by(*cols))
    }
    totals = tuple(sum(v[i] for v in rows.values()) for i in range(3))
    return rows, totals


def read_daily(session: Session, query, dimension: str) -> dict[tuple[date, str], int] | None:
    """Revenue per (local day, dimension value) from the rollups, or None when they cannot answer."""
    if not _fresh(session, query):
        return None
    col = ROLLUP_COLUMNS[dimension]
    return {
        (day, value): int(revenue)
        for day, value, revenue in session.execute(
            select(ReportRollup.day, col, func.sum(ReportRollup.revenue_minor))
            .where(*_rollup_where(query))
            .group_by(ReportRollup.day, col)
        )
    }


def _rollup_where(query) -> tuple:
    return (
        ReportRollup.site_id == query.site.id,
        ReportRollup.lookback == ROLLUP_LOOKBACK,
        ReportRollup.model == query.model,
        ReportRollup.day >= query.date_from,
        ReportRollup.day <= query.date_to,
    )
