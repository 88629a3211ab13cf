"""The nightly build: per-day attribution and traffic rollups, and rebuilding the days that changed.

Each chunk of local days is computed, written and committed on its own, so an interrupted build
keeps what it finished and a rerun simply rewrites the same days (idempotent). What reports read
of it, and which built days are still current, is reports.rollups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from contextlib import ExitStack, closing
from datetime import date, timedelta
from operator import add
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from reports import credit, links, traffic
from reports.attribution import CREDIT_WIDTH, ORDER_SCALE, SPLIT_MODELS, add_credit
from reports.bulk import Rows, replacing
from reports.credit import UNATTRIBUTED_KEY
from reports.models import ReportBuild, ReportFirstSale, ReportRollup, ReportSale
from reports.rollups import ROLLUP_LOOKBACK, coverage
from tracker.days import days_between, range_bounds, runs
from tracker.db import begin_write, in_own_thread, rebuildable, utcnow
from tracker.models import Site, TrackedSession
from tracker.touch import DIMENSIONS

# Days attributed per pass: one set of queries and one commit per chunk.
CHUNK_DAYS = 92
# A rollup row's credit columns, in the order of reports.attribution's credit rows.
MODEL_FIELDS = tuple(f"{kind}_{model}" for model in SPLIT_MODELS for kind in ("units", "revenue", "new"))
ROLLUP_FIELDS = ("site_id", "day", "lookback", *DIMENSIONS, *MODEL_FIELDS)
# Each split model's share of the customer, then of the first order's revenue.
FIRST_SALE_FIELDS = ("site_id", "day", "order_id", *DIMENSIONS, *(f"units_{model}" for model in SPLIT_MODELS),
                     *(f"revenue_{model}" for model in SPLIT_MODELS))
SALE_FIELDS = ("site_id", "day", "order_id", "customer", "created_at", "net_minor")



def build_site(
    session: Session,
    site: Site,
    date_from: date,
    date_to: date,
    on_day: Callable[[date], None] | None = None,
) -> int:
    """Rebuild the rollups of `site` for local days date_from..date_to; commits after each chunk.

    Returns the number of days written.
    """
    tz = ZoneInfo(site.timezone)
    written = 0
    # Sessions stored without their visit links (or re-split since) are linked first: the
    # traffic rollups count visitors through them.
    session.rollback()
    begin_write(session)
    links.link_visits(session, site.id)
    session.commit()
    chunk_start = date_from
    while chunk_start <= date_to:
        chunk_end = min(chunk_start + timedelta(days=CHUNK_DAYS - 1), date_to)
        session.rollback()  # end any read transaction: the chunk is written as one writer
        begin_write(session)
        rebuildable(session)
        built_at = utcnow()
        sessions_mark = session.scalar(
            select(func.coalesce(func.max(TrackedSession.id), 0)).where(TrackedSession.site_id == site.id))
        start, end = range_bounds(chunk_start, chunk_end, tz)
        # On PostgreSQL the traffic rollups are written on a connection of their own meanwhile: the
        # server counts sessions and visitors while this process splits credit.
        traffic_done = _alongside(session, site.id, traffic.build_traffic, chunk_start, chunk_end)
        # Every table the chunk rewrites gets its rows as the split makes them (on PostgreSQL each on
        # a connection of its own, opened while the server starts on the orders: its old rows are
        # deleted meanwhile, and the new ones taken in as they come), the rollups a day at a time.
        # If anything fails, the orders' read is ended (its connection is then free to roll back)
        # and the writes abandoned.
        with ExitStack() as writes:
            orders = writes.enter_context(closing(
                credit.orders_to_split(session, site, start, end, ROLLUP_LOOKBACK)))
            rollups, first_sale, sale = (
                writes.enter_context(replacing(session, table.__table__, fields, table.site_id == site.id,
                                                *where, table.day >= chunk_start, table.day <= chunk_end))
                for table, fields, where in (
                    (ReportRollup, ROLLUP_FIELDS, (ReportRollup.lookback == ROLLUP_LOOKBACK,)),
                    (ReportFirstSale, FIRST_SALE_FIELDS, ()), (ReportSale, SALE_FIELDS, ())))
            _split(site.id, orders, rollups, first_sale, sale)
        if traffic_done is None:
            traffic.build_traffic(session, site, chunk_start, chunk_end)
        else:  # committed; the days count as built only with this chunk's commit
            traffic_done.result()
        session.execute(
            delete(ReportBuild).where(
                ReportBuild.site_id == site.id, ReportBuild.lookback == ROLLUP_LOOKBACK,
                ReportBuild.day >= chunk_start, ReportBuild.day <= chunk_end,
            )
        )
        days = list(days_between(chunk_start, chunk_end))
        session.execute(ReportBuild.__table__.insert(), [
            {"site_id": site.id, "day": day, "lookback": ROLLUP_LOOKBACK, "built_at": built_at,
             "sessions_mark": sessions_mark} for day in days
        ])
        session.commit()
        for day in days:
            written += 1
            if on_day:
                on_day(day)
        chunk_start = chunk_end + timedelta(days=1)
    return written


def _alongside(session: Session, site_id: int, work: Callable[..., None], first: date, last: date
               ) -> Future | None:
    """Run `work(session, site, first, last)` in a thread with its own session and commit it
    (PostgreSQL only; SQLite has a single writer, so the caller does the work in line)."""
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        return None

    def run() -> None:
        with Session(engine) as other:
            rebuildable(other)
            work(other, other.get(Site, site_id), first, last)
            other.commit()

    return in_own_thread(run)


def _split(site_id: int, orders: Iterable[credit.PlainOrder], rollups: Rows, first_sale: Rows, sale: Rows
           ) -> None:
    """Credit of every split model per (local day, touch key), as rows for report_rollups written to
    `rollups`; for the cohorts, each first sale among the orders with each key's share of it, as
    rows for report_first_sales written to `first_sale`, and every order with its customer and net
    revenue, as rows for report_sales written to `sale`.

    Tens of thousands of orders a night pass through here: an order whose touches all share one
    key (most of them) gives it everything under every model, summed once and copied to each
    model's columns; the others are split by each model (reports.attribution). The orders come in
    time order (credit.orders_to_split), so a day's rollups are written once orders two days later
    arrive (a local day can come back for a while where clocks go back across midnight), while the
    split goes on."""
    width = CREDIT_WIDTH
    scale = ORDER_SCALE
    models = len(SPLIT_MODELS)
    # Per local day not written yet: each key's orders taken whole (units, revenue, new), and the
    # credit rows of the keys of split orders.
    open_days: dict[date, tuple[dict[tuple, list[int]], dict[tuple, list[int]]]] = {}
    current = latest = None

    for order_id, day, net_minor, new, touches, customer, at in orders:
        if day != current:
            if latest is None or day > latest:
                latest = day
                for done in [d for d in open_days if d < day - _DAY]:
                    _write_day(rollups, site_id, done, *open_days.pop(done))
            if day not in open_days:
                open_days[day] = (defaultdict(lambda: [0, 0, 0]), {})
            whole, cells = open_days[day]
            current = day
        sale.write_row((site_id, day, order_id, customer, at, net_minor))
        n = len(touches)
        first_key = touches[0][2] if n else UNATTRIBUTED_KEY
        if n <= 1 or all(t[2] == first_key for t in touches):  # one key takes it all
            total = whole[first_key]
            total[0] += scale
            total[1] += net_minor
            total[2] += scale if new else 0
            if new:
                # the whole customer and first order, under every model
                first_sale.write_row((site_id, day, order_id, *first_key, *(scale,) * models,
                                      *(net_minor,) * models))
            continue
        rows = []
        for _, _, key in touches:
            row = cells.get(key)
            if row is None:
                row = cells[key] = [0] * width
            rows.append(row)
        if not new:
            add_credit(rows, [t[0] for t in touches], [t[1] for t in touches], net_minor, new)
            continue
        # A first sale: its own parts, added to the day's rows and kept per key.
        parts = [[0] * width for _ in touches]
        add_credit(parts, [t[0] for t in touches], [t[1] for t in touches], net_minor, new)
        shares: dict[tuple, list[int]] = {}
        for (_, _, key), part, row in zip(touches, parts, rows, strict=True):
            row[:] = map(add, row, part)
            share = shares.get(key)
            shares[key] = part if share is None else list(map(add, share, part))
        for key, share in shares.items():
            if any(share):
                # units, then revenue
                first_sale.write_row((site_id, day, order_id, *key, *share[0::3], *share[1::3]))
    for day in sorted(open_days):
        _write_day(rollups, site_id, day, *open_days[day])


_DAY = timedelta(days=1)


def _write_day(rollups: Rows, site_id: int, day: date, whole: dict[tuple, list[int]],
               cells: dict[tuple, list[int]]) -> None:
    """One local day's rollup rows: the split keys' credit plus the orders taken whole, copied to
    every model's columns."""
    width = CREDIT_WIDTH
    for key, total in whole.items():
        row = cells.get(key)
        if row is None:
            row = cells[key] = [0] * width
        for at in range(0, width, 3):
            row[at] += total[0]
            row[at + 1] += total[1]
            row[at + 2] += total[2]
    for key, row in cells.items():
        rollups.write_row((site_id, day, ROLLUP_LOOKBACK, *key, *row))


def refresh_site(session: Session, site: Site, on_day: Callable[[date], None] | None = None) -> int:
    """Rebuild the built days that changed since (orders, refunds, merges, late sessions) and mark
    the others current as of now, so that reports only look for changes since this run.

    Returns the number of days rebuilt.
    """
    site_id = site.id
    first, last = session.execute(
        select(func.min(ReportBuild.day), func.max(ReportBuild.day)).where(
            ReportBuild.site_id == site_id, ReportBuild.lookback == ROLLUP_LOOKBACK)
    ).one()
    if first is None:
        return 0
    checked_at = utcnow()
    mark = session.scalar(select(func.coalesce(func.max(TrackedSession.id), 0)))
    cov = coverage(session, site, first, last)
    changed = set(cov.stale)
    if cov.late_days:  # a late visit shifts its visitor's later days too: rebuild from there on
        changed.update(days_between(min(cov.late_days), last))
    rebuilt = sum(build_site(session, site, a, b, on_day) for a, b in runs(changed))
    session.rollback()  # end the read transaction; the marks are written as one writer
    begin_write(session)
    session.execute(
        update(ReportBuild)
        .where(ReportBuild.site_id == site_id, ReportBuild.lookback == ROLLUP_LOOKBACK,
               ReportBuild.built_at < checked_at)
        .values(built_at=checked_at, sessions_mark=mark)
    )
    session.commit()
    return rebuilt
