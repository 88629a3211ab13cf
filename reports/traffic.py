"""Traffic rollups: sessions and exact distinct visitors per report row, per local day.

Sessions add up over days. Distinct visitors do not, so each grouping the pages offer (a
"level": the totals, channel, and the source → term path cut at each depth) keeps, per local day
and row, how many visitors were seen that day and when each was last seen before in the same row
(`prev_day`). Over any range [from, to] a visitor is counted once, on its first day inside the
range: exactly the entries whose `prev_day` is absent or before `from`. A grouping outside the
levels is counted from the sessions themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from operator import itemgetter
from zoneinfo import ZoneInfo

from sqlalchemy import (
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from reports.bulk import bulk_insert
from reports.credit import SESSION_COLUMNS, Key, scan_columns
from reports.models import ReportSessions, ReportVisitors
from tracker.days import range_bounds
from tracker.db import UTCDateTime, without_jit
from tracker.models import STARTED_DAY, VISIT_DAYS, VISIT_LINKS, Site, TrackedSession
from tracker.touch import DIMENSIONS

# Each level costs the build one sorted pass over the sessions: the totals, Mission Control's
# channels and the report's default grouping are kept; other groupings count from the sessions.
LEVELS: tuple[tuple[str, ...], ...] = ((), ("channel",), ("source", "medium", "campaign"))
# A report covers at most this many days (reports.roi.MAX_RANGE_DAYS): an earlier visit can never
# fall inside a report that also contains the day, so it need not be looked up.
HISTORY_DAYS = 3 * 366
# The dimensions the sessions rollup keeps: those of the stored levels (a grouping by content or
# term is counted from the sessions, visitors and sessions alike); the others are stored as ''.
STORED_DIMS = tuple(d for d in DIMENSIONS if any(d in level for level in LEVELS))
assert STORED_DIMS == DIMENSIONS[: len(STORED_DIMS)]
SESSION_DIMS = SESSION_COLUMNS
BUILD_WORK_MEM = "128MB"
STREAM_ROWS = 20_000


def level_of(dims: Sequence[str]) -> int | None:
    """The stored level answering a grouping by `dims` (in any order), or None."""
    wanted = set(dims)
    for index, level in enumerate(LEVELS):
        if set(level) == wanted and len(level) == len(dims):
            return index
    return None


def _offset_minutes(tz: ZoneInfo, at: datetime) -> int:
    return int(at.astimezone(tz).utcoffset().total_seconds() // 60)


def sqlite_local_date(column, tz: ZoneInfo, start: datetime, end: datetime):
    """SQLite's SQL for the local date of a UTC timestamp column, valid for instants in [start, end)
    (PostgreSQL reads the days stored with the visit links instead). SQLite knows no time zones:
    shift by the UTC offset, changing it at each transition."""
    segments: list[tuple[datetime, int]] = []  # (instant the offset ends, offset in minutes)
    at, offset = start, _offset_minutes(tz, start)
    step = timedelta(hours=6)
    while at < end:
        nxt = min(at + step, end)
        if _offset_minutes(tz, nxt) != offset:
            lo, hi = at, nxt  # bisect to the minute
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if _offset_minutes(tz, mid) == offset:
                    lo = mid
                else:
                    hi = mid
            segments.append((hi, offset))
            offset = _offset_minutes(tz, hi)
            at = hi
        else:
            at = nxt

    def shifted(minutes: int):
        return func.date(column, literal_column(f"'{minutes:+d} minutes'"))

    if not segments:
        return shifted(offset)
    whens = [(column < bindparam(None, until, type_=UTCDateTime), shifted(off)) for until, off in segments]
    return case(*whens, else_=shifted(offset))


def build_traffic(session: Session, site: Site, date_from: date, date_to: date) -> None:
    """Rewrite the sessions and visitors rollups of local days date_from..date_to (no commit)."""
    tz = ZoneInfo(site.timezone)
    start, end = range_bounds(date_from, date_to, tz)
    history = range_bounds(date_from - timedelta(days=HISTORY_DAYS), date_to, tz)[0]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # group in memory (hash) rather than sorting through temporary files
        session.execute(text(f"SET LOCAL work_mem = '{BUILD_WORK_MEM}'"))
        without_jit(session)  # compiling the scan's expressions costs more than it saves
    for r in (ReportSessions, ReportVisitors):
        session.execute(delete(r).where(r.site_id == site.id, r.day >= date_from, r.day <= date_to))
    s = TrackedSession
    site_col, started_col = scan_columns(session, start, end)
    in_range = (site_col == site.id, started_col >= start, started_col < end)
    # The sessions are counted in the same pass as the visitors.
    if dialect == "postgresql":  # the sessions' visit links (linked by the build beforehand)
        _levels_linked(session, site, in_range)
        return

    # Per level: each visitor's sessions (with the history before the range, for the visitors
    # active in it) in time order, and a session's previous day in the same row. Only a visitor's
    # first session of a day in a row has prev_day < day; counting those per (day, prev_day, row)
    # is exact.
    first_visit = session.scalar(select(func.min(s.started_at)).where(s.site_id == site.id))
    if first_visit is None:
        return
    visits = [site_col == site.id, started_col >= history, started_col < end]
    if first_visit < start:
        visits.append(s.visitor_id.in_(select(s.visitor_id).where(*in_range)))
    day = sqlite_local_date(s.started_at, tz, history, end).label("day")
    _levels_in_python(session, site, date_from, day, visits)


# Each level's visit link: the one whose shared session columns are the level's dimensions.
LEVEL_LINKS = tuple(
    next(name for name, shared in VISIT_LINKS.items() if shared == tuple(SESSION_DIMS[d].key for d in level))
    for level in LEVELS
)


def _levels_linked(session: Session, site: Site, in_range) -> None:
    """Every level's visitors and the sessions per day and row from one scan of the range's
    sessions, on PostgreSQL, through the visit links (see reports.links).

    A session's previous visit in a level's row started on an earlier local day (or never) exactly
    when it is its visitor's first that day in that row, and that earlier day is the `prev_day`
    the rollup keeps; otherwise it is the same day. The sessions are grouped by day, each level's
    previous day and the dimensions once (a few groups per row of a report), and each rollup sums
    those groups.
    """
    s = TrackedSession
    # The local days stored with the links (tracker.models.VISIT_DAYS): plain dates, grouped as
    # they are stored, where converting four timestamps per session cost as much as the rest of
    # the scan. The linking step has just dated every session (only one an older collector stored
    # since then could still lack its days: it waits for the next build).
    prevs = {index: getattr(s, VISIT_DAYS[link]) for index, link in enumerate(LEVEL_LINKS)}
    started_day = getattr(s, STARTED_DAY)
    day = started_day.label("day")
    in_range = (*in_range, started_day.is_not(None))
    keys = [day, *(prev.label(f"prev_{index}") for index, prev in prevs.items()),
            *(SESSION_DIMS[d].label(d) for d in STORED_DIMS)]
    grouped = select(*keys, func.count().label("sessions")).where(*in_range).group_by(*keys).cte("grouped")
    g = grouped.c
    dims = [g[d] for d in STORED_DIMS]
    writes = [insert(ReportSessions.__table__).from_select(
        ["site_id", "day", *DIMENSIONS, "sessions"],
        select(literal(site.id), g.day, *dims, *(literal("") for _ in DIMENSIONS[len(dims):]),
               func.sum(g.sessions)).group_by(g.day, *dims),
    )]
    for index in prevs:
        level = LEVELS[index]
        prev = g[f"prev_{index}"]
        writes.append(insert(ReportVisitors.__table__).from_select(
            ["site_id", "level", "day", "prev_day", *DIMENSIONS, "visitors"],
            select(literal(site.id), literal(index), g.day, prev,
                   *(g[d] if d in level else literal("") for d in DIMENSIONS), func.sum(g.sessions))
            .where(or_(prev.is_(None), prev < g.day))
            .group_by(g.day, prev, *(g[d] for d in level)),
        ))
    *before, last = writes
    for number, write in enumerate(before):
        last = last.add_cte(write.cte(f"written_{number}"))
    session.execute(last)


def _levels_in_python(session: Session, site: Site, date_from: date, day, visits) -> None:
    """The same counts, and the sessions per day and row, in one streamed pass in visitor order
    (SQLite sorts far slower than this)."""
    s = TrackedSession
    levels = range(len(LEVELS))
    rows = session.connection().execute(
        select(s.visitor_id, day, *SESSION_DIMS.values())
        .where(*visits)
        .order_by(s.visitor_id, s.started_at)
        .with_hint(s, "INDEXED BY ix_sessions_visitor_id_started_at", "sqlite")
    )
    first = date_from.isoformat()
    # A row's key in each level: () for the totals, else its dimension values (offset by the
    # visitor id and day at the front of the row).
    getters = [
        itemgetter(*(DIMENSIONS.index(d) + 2 for d in LEVELS[index])) if LEVELS[index] else _no_key
        for index in levels
    ]
    counts: list[dict] = [defaultdict(int) for _ in levels]
    work = list(zip(getters, counts, strict=True))
    current, seen = None, []
    per_day: dict[tuple, int] = defaultdict(int)  # (day, *STORED_DIMS): sessions
    stored_end = 2 + len(STORED_DIMS)
    cursor = rows.cursor  # plain tuples: the columns need no conversion on SQLite
    while chunk := cursor.fetchmany(STREAM_ROWS):
        for row in chunk:
            row_day = row[1]
            counting = row_day >= first
            if counting:
                per_day[row[1:stored_end]] += 1
            if row[0] != current:
                current, seen = row[0], [{} for _ in levels]
            for (getter, count), last in zip(work, seen):  # noqa: B905 (same length by construction)
                key = getter(row)
                prev = last.get(key)
                if prev != row_day:  # in time order, so an earlier day (or none)
                    last[key] = row_day
                    if counting:
                        count[(row_day, prev, key)] += 1
    rows.close()
    out = []
    for index, count in zip(levels, counts, strict=True):
        level = LEVELS[index]
        for (row_day, prev, key), n in count.items():
            values = dict(zip(level, key if len(level) > 1 else (key,) * len(level), strict=True))
            out.append((site.id, index, row_day, prev, *(values.get(d, "") for d in DIMENSIONS), n))
    bulk_insert(session, ReportVisitors.__tablename__,
                ["site_id", "level", "day", "prev_day", *DIMENSIONS, "visitors"], out)
    unstored = [""] * (len(DIMENSIONS) - len(STORED_DIMS))
    bulk_insert(session, ReportSessions.__tablename__, ["site_id", "day", *DIMENSIONS, "sessions"],
                [(site.id, *key, *unstored, n) for key, n in per_day.items()])


def _no_key(_row) -> tuple:
    return ()


def read_sessions(session: Session, site: Site, date_from: date, date_to: date, dims: Sequence[str]):
    """Sessions per row and in total from the rollups (`dims` those of a stored level)."""
    cols = [getattr(ReportSessions, d) for d in dims]
    rows = {
        tuple(r[:-1]): int(r[-1])
        for r in session.execute(
            select(*cols, func.sum(ReportSessions.sessions))
            .where(ReportSessions.site_id == site.id, ReportSessions.day >= date_from,
                   ReportSessions.day <= date_to)
            .group_by(*cols)
        )
    }
    return rows, sum(rows.values())


def read_visitors(
    session: Session, site: Site, date_from: date, date_to: date, level: int, dims: Sequence[str]
) -> dict[Key, int]:
    """Distinct visitors per row of a stored level (dims in the report's order)."""
    v = ReportVisitors
    cols = [getattr(v, d) for d in dims]
    return {
        tuple(r[:-1]): int(r[-1])
        for r in session.execute(
            select(*cols, func.coalesce(func.sum(v.visitors), 0))
            .where(
                v.site_id == site.id, v.level == level, v.day >= date_from, v.day <= date_to,
                or_(v.prev_day.is_(None), v.prev_day < date_from),
            )
            .group_by(*cols)
        )
    }
