"""The ROI report: query parsing, rows per dimension, metrics, totals, and revenue per day.

Dates are local dates in the site's time zone. Without `from`/`to` the report covers the last
30 complete days: from 30 days before today up to yesterday, in the site's zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reports import credit, retention, rollups, traffic
from reports.attribution import DEFAULT_MODEL, MODELS, ORDER_SCALE, AttributionModel, DateBasis
from reports.credit import UNATTRIBUTED, Key
from tracker.days import days_between, local_day, range_bounds, runs, site_today
from tracker.errors import ReportQueryError
from tracker.models import Cost, Site
from tracker.money import exponent, format_decimal
from tracker.sites import find_site
from tracker.touch import DIMENSIONS, NOT_SET, channel_for

__all__ = [
    "DIMENSIONS", "MODELS", "ReportQuery", "ReportQueryError", "parse_report_query", "roi_report",
    "revenue_by_day",
]

DEFAULT_LOOKBACK = 30
MIN_LOOKBACK, MAX_LOOKBACK = 1, 365
DEFAULT_DAYS = 30
MAX_RANGE_DAYS = 3 * 366
DEFAULT_BY = ("source", "medium", "campaign")
# Report and build dates: any a store can have traded on (and far enough from the ends of the
# calendar for the lookback and time-zone arithmetic around them).
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2999, 12, 31)
# Days the rollups cannot answer are computed from the raw tables in at most this many spans.
MAX_LIVE_SPANS = 3


@dataclass(frozen=True)
class ReportQuery:
    site: Site
    date_from: date
    date_to: date
    model: AttributionModel = DEFAULT_MODEL
    lookback: int = DEFAULT_LOOKBACK
    by: tuple[str, ...] = DEFAULT_BY
    date_basis: DateBasis = DateBasis.ORDER

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)



def parse_report_query(session: Session, args: Mapping[str, str]) -> ReportQuery:
    """Validate report parameters (site, from, to, model, lookback, by); raises ReportQueryError."""
    site = report_site(session, args)
    yesterday = site_today(site) - timedelta(days=1)
    date_to = _parse_date(args, "to") or yesterday
    date_from = _parse_date(args, "from") or (date_to - timedelta(days=DEFAULT_DAYS - 1))
    if date_from > date_to:
        raise ReportQueryError(f"'from' ({date_from}) is after 'to' ({date_to}); swap them.")
    if (date_to - date_from).days >= MAX_RANGE_DAYS:
        raise ReportQueryError(f"A report covers at most {MAX_RANGE_DAYS} days; narrow 'from' and 'to'.")
    name = (args.get("model") or DEFAULT_MODEL).strip().lower()
    if name not in MODELS:
        raise ReportQueryError(f"Unknown model {name!r}; use one of: {', '.join(MODELS)}.")
    model = AttributionModel(name)
    raw_lookback = (args.get("lookback") or str(DEFAULT_LOOKBACK)).strip()
    try:
        lookback = int(raw_lookback)
    except ValueError:
        lookback = 0
    if not MIN_LOOKBACK <= lookback <= MAX_LOOKBACK or not raw_lookback.isdigit():
        raise ReportQueryError(
            f"'lookback' must be a whole number of days from {MIN_LOOKBACK} to {MAX_LOOKBACK}, "
            f"not {raw_lookback!r}."
        )
    basis = (args.get("date_basis") or DateBasis.ORDER).strip().lower()
    if basis not in tuple(DateBasis):
        raise ReportQueryError(f"Unknown date_basis {basis!r}; use one of: {', '.join(DateBasis)}.")
    query = ReportQuery(site, date_from, date_to, model, lookback, parse_by(args.get("by")), DateBasis(basis))
    retention.check_answerable(session, query)  # said up front (the report checks again)
    return query


def parse_by(raw: str | None) -> tuple[str, ...]:
    if raw is None or not raw.strip():
        return DEFAULT_BY
    dims = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    for dim in dims:
        if dim not in DIMENSIONS:
            raise ReportQueryError(f"Unknown dimension {dim!r} in 'by'; use any of: {', '.join(DIMENSIONS)}.")
    if len(set(dims)) != len(dims):
        raise ReportQueryError("'by' names a dimension twice; list each once.")
    return dims


def report_site(session: Session, args: Mapping[str, str]) -> Site:
    """The site a report's query names (or the only one); raises ReportQueryError."""
    ref = (args.get("site") or "").strip()
    if not ref:
        sites = session.scalars(select(Site).order_by(Site.id).limit(2)).all()
        if len(sites) == 1:
            return sites[0]
        raise ReportQueryError("Say which site: add 'site=<site id or domain>'.")
    site = find_site(session, ref)
    if site is None:
        raise ReportQueryError(f"No site {ref!r}; pass a site id or domain from `tracker sites list`.")
    return site


def _parse_date(args: Mapping[str, str], name: str) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ReportQueryError(f"'{name}' must be a date like 2026-11-25, not {raw!r}.") from None
    if not FIRST_DATE <= value <= LAST_DATE:
        raise ReportQueryError(f"'{name}' must be a date from {FIRST_DATE} to {LAST_DATE}, not {raw!r}.")
    return value


# --- the report -------------------------------------------------------------------------------


def roi_report(session: Session, query: ReportQuery) -> dict:
    """The report as the JSON API answers it: one row per dimension combination, and totals."""

    site, currency = query.site, query.site.currency
    cov = rollups.coverage(session, site, query.date_from, query.date_to)
    attributed, totals_att, built_through = attributed_rows(session, query, cov)
    sessions, sessions_total = traffic_rows(session, query, cov)
    costs, cost_total = cost_rows(session, site, query.date_from, query.date_to, query.by)

    keys = set(attributed) | set(sessions) | set(costs)
    rows = []
    for key in keys:
        units, revenue, new = attributed.get(key, (0, 0, 0))
        n_sessions, n_visitors = sessions.get(key, (0, 0))
        row = dict(zip(query.by, key, strict=True))
        row.update(metrics(n_sessions, n_visitors, units, revenue, new, costs.get(key, 0), currency))
        rows.append((key, revenue, units, n_sessions, row))
    rows.sort(key=lambda r: (r[0][0] == UNATTRIBUTED if r[0] else False, -r[1], -r[2], -r[3], r[0]))
    units, revenue, new = totals_att
    return {
        "site": site.public_id,
        "from": query.date_from.isoformat(),
        "to": query.date_to.isoformat(),
        "model": query.model,
        "lookback": query.lookback,
        "date_basis": query.date_basis,
        "currency": currency,
        "built_through": built_through.isoformat() if built_through else None,
        "rows": [r[-1] for r in rows],
        "totals": metrics(*sessions_total, units, revenue, new, cost_total, currency),
    }


def traffic_rows(
    session: Session, query: ReportQuery, cov=None
) -> tuple[dict[Key, tuple[int, int]], tuple[int, int]]:
    """Sessions and distinct visitors per row and in total, for sessions started inside the range.

    From the traffic rollups when every day is built and current and the grouping is one they
    keep; otherwise counted from the sessions themselves.
    """

    if cov is None:
        cov = rollups.coverage(session, query.site, query.date_from, query.date_to)
    retention.check_answerable(session, query, cov)
    level = traffic.level_of(query.by)
    if not cov.traffic_current or level is None:
        start, end = range_bounds(query.date_from, query.date_to, query.tz)
        return credit.session_rows(session, query.site, start, end, query.by)
    args = (session, query.site, query.date_from, query.date_to)
    sessions, total_sessions = traffic.read_sessions(*args, query.by)
    visitors = traffic.read_visitors(*args, level, query.by)
    total_visitors = sum(traffic.read_visitors(*args, 0, ()).values())
    rows = {key: (n, visitors.get(key, 0)) for key, n in sessions.items()}
    return rows, (total_sessions, total_visitors)


def attributed_rows(
    session: Session, query: ReportQuery, cov=None
) -> tuple[dict[Key, tuple[int, int, int]], tuple[int, int, int], date | None]:
    """Credit per row, the range's totals (orders, revenue, new customers) and how far rollups reach.

    Built days that nothing changed since are read from the rollups (default lookback, split
    models); the other days are computed from the raw tables.
    """

    rows, totals = credit_by(session, query, query.by, cov)
    return rows, totals, rollups.built_through(session, query.site)


def credit_by(
    session: Session, query: ReportQuery, dims: tuple[str, ...], cov=None, per_day: bool = False
) -> tuple[dict[Key, tuple[int, int, int]], tuple[int, int, int]]:
    """Credit per row (keys start with the local day when `per_day`) and the range's totals."""

    retention.check_answerable(session, query, cov, dims)
    if query.date_basis is DateBasis.CLICK:
        return _credit_by_click(session, query, dims, per_day)
    rows: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    live_days: set[date] = set(days_between(query.date_from, query.date_to))
    if query.lookback == rollups.ROLLUP_LOOKBACK and query.model is not AttributionModel.FULL_IMPACT:
        if cov is None:
            cov = rollups.coverage(session, query.site, query.date_from, query.date_to)
        clean = cov.clean(query.date_from, query.date_to)
        for key, values in rollups.rollup_credit(session, query, clean, dims, per_day).items():
            rows[key] = list(values)
        live_days -= set(clean)
    proj = credit.project(dims)
    keyfunc = (lambda order, _touch, key: (order.day, *proj(key))) if per_day else \
        (lambda _order, _touch, key: proj(key))
    live_orders = 0
    live_revenue = 0
    live_new = 0
    spans = runs(live_days)
    if len(spans) > MAX_LIVE_SPANS:  # one set of queries over them all beats many small ones
        spans = [(spans[0][0], spans[-1][1])]
    for first, last in spans:
        start, end = range_bounds(first, last, query.tz)
        orders = credit.credited_orders(session, query.site, start, end, query.lookback)
        orders = [o for o in orders if o.day in live_days]
        for key, values in credit.credit_rows(orders, query.model, keyfunc).items():
            row = rows[key]
            for i in range(3):
                row[i] += values[i]
        live_orders += len(orders)
        live_revenue += sum(o.net_minor for o in orders)
        live_new += sum(1 for o in orders if o.is_new)
    if query.model is AttributionModel.FULL_IMPACT:  # rows overlap; the totals count each order once
        totals = (ORDER_SCALE * live_orders, live_revenue, ORDER_SCALE * live_new)
    else:
        totals = tuple(sum(v[i] for v in rows.values()) for i in range(3))
    return {k: tuple(v) for k, v in rows.items()}, totals


def _credit_by_click(
    session: Session, query: ReportQuery, dims: tuple[str, ...], per_day: bool
) -> tuple[dict[Key, tuple[int, int, int]], tuple[int, int, int]]:
    """credit_by() with each credited share dated by its touch's session start (DateBasis.CLICK).

    A share counts when its touch started inside the range, whenever its order came: the orders
    read run from the range's first day up to today. An order without a touch is dated by itself
    (a landing-page touch is the order's own time). Always from the raw tables: the rollups are
    kept by order day.
    """
    tz = query.tz
    start, end = range_bounds(query.date_from, max(query.date_to, site_today(query.site)), tz)
    orders = credit.credited_orders(session, query.site, start, end, query.lookback)
    proj = credit.project(dims)

    def dated(order, touch, key):
        return (order.day if touch is None else local_day(touch.at, tz), *proj(key))

    rows: dict[Key, tuple[int, int, int]] = {}
    for key, values in credit.credit_rows(orders, query.model, dated).items():
        if query.date_from <= key[0] <= query.date_to:
            rows[key if per_day else key[1:]] = _plus(rows.get(key if per_day else key[1:]), values)
    if query.model is AttributionModel.FULL_IMPACT:  # rows overlap; the totals count each order once
        counted = [o for o in orders if any(
            query.date_from <= (o.day if t is None else local_day(t.at, tz)) <= query.date_to
            for t, _ in (o.touches or [(None, None)]))]
        totals = (ORDER_SCALE * len(counted), sum(o.net_minor for o in counted),
                  ORDER_SCALE * sum(1 for o in counted if o.is_new))
    else:
        totals = tuple(sum(v[i] for v in rows.values()) for i in range(3))
    return rows, totals


def _plus(row: tuple[int, int, int] | None, values) -> tuple[int, int, int]:
    return tuple(values) if row is None else tuple(a + b for a, b in zip(row, values, strict=True))


def cost_rows(
    session: Session, site: Site, date_from: date, date_to: date, dims: tuple[str, ...]
) -> tuple[dict[Key, int], int]:
    """Spend per row and in total.

    A cost joins the rows by the dimensions it carries: `channel` is derived from its source
    and medium; a dimension it does not carry (say content, on a cost keyed by campaign)
    reads '(not set)', so the spend shows on its own row rather than being guessed apart.
    """
    grouped = session.execute(
        select(Cost.source, Cost.medium, Cost.campaign, Cost.content, Cost.term, func.sum(Cost.cost_minor))
        .where(Cost.site_id == site.id, Cost.date >= date_from, Cost.date <= date_to)
        .group_by(Cost.source, Cost.medium, Cost.campaign, Cost.content, Cost.term)
    ).all()
    rows: dict[Key, int] = defaultdict(int)
    total = 0
    for source, medium, campaign, content, term, amount in grouped:
        values = {
            "channel": channel_for(source or NOT_SET, medium or NOT_SET),
            "source": source or NOT_SET,
            "medium": medium or NOT_SET,
            "campaign": campaign or NOT_SET,
            "content": content or NOT_SET,
            "term": term or NOT_SET,
        }
        rows[tuple(values[d] for d in dims)] += int(amount)
        total += int(amount)
    return dict(rows), total


def metrics(
    sessions: int, visitors: int, order_units: int, revenue_minor: int, new_units: int, cost_minor: int,
    currency: str,
) -> dict:
    """A row's figures as strings (money and ratios) or null where a denominator is zero."""
    exp = exponent(currency)
    orders = Decimal(order_units) / ORDER_SCALE
    revenue = Decimal(revenue_minor).scaleb(-exp)
    cost = Decimal(cost_minor).scaleb(-exp)
    return {
        "sessions": sessions,
        "visitors": visitors,
        "orders": format_decimal(orders, 2),
        "revenue": format_decimal(revenue, exp),
        "new_customers": format_decimal(Decimal(new_units) / ORDER_SCALE, 2),
        "cost": format_decimal(cost, exp),
        "roi": _ratio(revenue - cost, cost, 2),
        "roas": _ratio(revenue, cost, 2),
        "cpa": _ratio(cost, orders, exp),
        "aov": _ratio(revenue, orders, exp),
        "conversion_rate": _ratio(orders, Decimal(sessions), 4),
    }


def _ratio(numerator: Decimal, denominator: Decimal, places: int) -> str | None:
    if not denominator:
        return None
    value = (numerator / denominator).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return str(value)


# --- revenue per day ------------------------------------------------------------------------


def revenue_by_day(
    session: Session, query: ReportQuery, dimension: str = "channel"
) -> dict[str, dict[date, Decimal]]:
    """Net revenue credited per value of one dimension and per local day, for daily charts."""
    if dimension not in DIMENSIONS:
        raise ReportQueryError(f"Unknown dimension {dimension!r}; use one of: {', '.join(DIMENSIONS)}.")
    exp = exponent(query.site.currency)
    rows, _ = credit_by(session, query, (dimension,), per_day=True)
    cached = {key: values[1] for key, values in rows.items()}
    out: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for (day, value), minor in cached.items():
        out[value][day] = Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))
    return {value: dict(sorted(days.items())) for value, days in out.items()}
