"""First-sale cohorts: what the customers a touch brought are worth over the days after their first sale.

The customers whose first sale (tracker.sales: the first counted order of a person, else of a
visitor) falls in the range are grouped by the `by` dimensions of the touch the model credits
for that first sale; a split model shares a customer between the touches it splits the order
over, in 1/ORDER_SCALE parts. Per group: customers, the first orders' revenue, and the
cumulative net revenue per customer (refunds included) of every order placed within N days of
the first sale, for each horizon N. A horizon that has not fully elapsed since the range's last
day is null: the figure would still grow.

Built days (default lookback, split models) read each first sale's credit from
`report_first_sales`, written by the nightly build; other days split the first sales live.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from operator import add

from sqlalchemy import and_, bindparam, case, func, literal, literal_column, or_, select, text
from sqlalchemy.orm import Session, aliased

from reports import credit, retention, rollups
from reports.attribution import ORDER_SCALE, AttributionModel
from reports.credit import UNATTRIBUTED, Key
from reports.models import ReportFirstSale, ReportSale
from reports.roi import MAX_LIVE_SPANS, ReportQuery
from tracker.days import days_between, local_day, range_bounds, runs
from tracker.db import UTCDateTime, epoch_sql, utcnow, without_jit, without_nested_loops
from tracker.errors import ReportQueryError
from tracker.money import exponent, format_decimal
from tracker.sales import counted_sql, customer_id_sql, net_sql

DEFAULT_HORIZONS = (30, 60, 90, 180)
DEFAULT_DAYS = 90
MAX_HORIZON = 3 * 366
MAX_HORIZONS = 8
# Values per `IN (...)`, well under SQLite's and PostgreSQL's limits on a statement's parameters.
IN_CHUNK = 2_000


def default_range(args: Mapping[str, str], today: date) -> dict[str, str]:
    """The query with the cohorts' default range where it names none: the 90 days of first sales
    that end DEFAULT_HORIZONS[0] + 1 days ago, so their first horizon is complete."""
    args = dict(args)
    if not (args.get("from") or "").strip() and not (args.get("to") or "").strip():
        last = today - timedelta(days=DEFAULT_HORIZONS[0] + 1)
        args["from"], args["to"] = (last - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), last.isoformat()
    return args


def parse_horizons(raw: str | None) -> tuple[int, ...]:
    """`horizons=30,60,90`: whole days, ascending, each once; raises ReportQueryError."""
    if raw is None or not raw.strip():
        return DEFAULT_HORIZONS
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not all(p.isdigit() and 1 <= int(p) <= MAX_HORIZON for p in parts):
        raise ReportQueryError(f"'horizons' must be whole numbers of days from 1 to {MAX_HORIZON}, "
                               f"separated by commas, like 30,60,90; not {raw!r}.")
    days = sorted({int(p) for p in parts})
    if len(days) > MAX_HORIZONS:
        raise ReportQueryError(f"'horizons' takes at most {MAX_HORIZONS} values.")
    return tuple(days)


# --- the report -------------------------------------------------------------------------------


@dataclass
class _Group:
    units: int = 0  # customers in 1/ORDER_SCALE
    first_revenue: int = 0  # minor units
    value: list[int] | None = None  # per horizon: sum of units x the customer's revenue by then


def cohorts_report(
    session: Session, query: ReportQuery, horizons: tuple[int, ...] = DEFAULT_HORIZONS
) -> dict:
    """The cohorts report as the JSON API answers it."""
    site = query.site
    _start, end = range_bounds(query.date_from, query.date_to, query.tz)
    now = utcnow()
    elapsed = [end + timedelta(days=h) <= now for h in horizons]
    reach = max((h for h, done in zip(horizons, elapsed, strict=True) if done), default=0)
    # The days a horizon reaches, and one more: a day is not always 24 hours long.
    last_day = query.date_to + timedelta(days=reach + 1)
    # One look at which days are built, as far as the horizons reach.
    cov = rollups.coverage(session, site, query.date_from, last_day)
    retention.check_answerable(session, query, cov)
    n = len(horizons)
    groups: dict[Key, _Group] = defaultdict(lambda: _Group(value=[0] * n))
    total = _Group(value=[0] * n)  # each customer once, whole

    built = _built_days(query, cov)
    shares = _live_shares(session, query, built)  # the other days' (first sale id, row key, units, revenue)
    # The orders of the days the horizons reach that report_sales does not answer for (usually today's).
    live_sales = _live_sales(session, query, cov, last_day) if any(elapsed) and (built or shares) else []

    # First sales of built days: the database adds up each row's shares and values.
    if built:
        sums = _built_sums(session, query, built, cov.clean(query.date_from, last_day), horizons, elapsed)
        for key, units, revenue, *values in sums:
            group = groups[key]
            group.units, group.first_revenue, group.value = units, revenue, values
            # A split model's shares of a first sale add up to the whole customer and first order.
            total.units += units
            total.first_revenue += revenue
            total.value = list(map(add, total.value, values))
        _add_late_sales(session, query, built, live_sales, horizons, elapsed, groups, total)

    # First sales of the other days, split here.
    values = _customer_values(session, query, cov, last_day, live_sales, {s[0] for s in shares}, horizons,
                              elapsed)
    counted: set[int] = set()
    none_reached = [0] * n
    whole = query.model is AttributionModel.FULL_IMPACT  # every touched row has the whole order
    for order_id, key, units, revenue in shares:
        group = groups[key]
        group.units += units
        group.first_revenue += revenue
        reached = values.get(order_id, none_reached)
        for i in range(n):
            group.value[i] += units * reached[i]
        if order_id not in counted:
            counted.add(order_id)
            total.units += ORDER_SCALE
            for i in range(n):
                total.value[i] += ORDER_SCALE * reached[i]
            if whole:
                total.first_revenue += revenue
        if not whole:
            total.first_revenue += revenue

    exp = exponent(site.currency)
    rows = []
    for key, group in groups.items():
        row = dict(zip(query.by, key, strict=True))
        row.update(_figures(group, horizons, elapsed, exp))
        rows.append((key, group.units, row))
    rows.sort(key=lambda r: (r[0][0] == UNATTRIBUTED if r[0] else False, -r[1], r[0]))
    return {
        "site": site.public_id,
        "from": query.date_from.isoformat(),
        "to": query.date_to.isoformat(),
        "model": query.model,
        "lookback": query.lookback,
        "by": list(query.by),
        "currency": site.currency,
        "horizons": list(horizons),
        # The local day each horizon fills in: h days after the range's last day has ended.
        "complete_on": {str(h): (query.date_to + timedelta(days=h + 1)).isoformat() for h in horizons},
        "rows": [r[-1] for r in rows],
        "totals": _figures(total, horizons, elapsed, exp),
    }


def _figures(group: _Group, horizons: tuple[int, ...], elapsed: list[bool], exp: int) -> dict:
    customers = Decimal(group.units) / ORDER_SCALE
    return {
        "customers": format_decimal(customers, 2),
        "first_order_revenue": format_decimal(Decimal(group.first_revenue).scaleb(-exp), exp),
        "first_order_value": _per_customer(group.first_revenue * ORDER_SCALE, group.units, exp),
        "revenue_per_customer": {
            str(h): _per_customer(group.value[i], group.units, exp) if elapsed[i] else None
            for i, h in enumerate(horizons)
        },
    }


def _per_customer(weighted_minor: int, units: int, exp: int) -> str | None:
    """(sum of units x minor amounts) / units, in the currency's major unit."""
    if not units:
        return None
    value = (Decimal(weighted_minor) / units).scaleb(-exp)
    return str(value.quantize(Decimal(1).scaleb(-exp), rounding=ROUND_HALF_EVEN))


def _built_days(query: ReportQuery, cov) -> list[date]:
    """The range's days whose first sales report_first_sales answers for: built and unchanged
    since, when the nightly build split them as asked (default lookback, a split model)."""
    if query.lookback != rollups.ROLLUP_LOOKBACK or query.model is AttributionModel.FULL_IMPACT:
        return []
    return cov.clean(query.date_from, query.date_to)


def _on_days(column, days: list[date]) -> list:
    """Conditions keeping `column` to `days` (ascending): their span, less the days it skips."""
    where = [column >= days[0], column <= days[-1]]
    kept = set(days)
    skipped = [d for d in days_between(days[0], days[-1]) if d not in kept]
    if skipped:
        where.append(column.not_in(skipped))
    return where


def _built_sums(
    session: Session, query: ReportQuery, days: list[date], sale_days: list[date],
    horizons: tuple[int, ...], elapsed: list[bool],
) -> list[tuple]:
    """Per row of the first sales of built `days`: (*key, customer units, first-order revenue, then per
    horizon the sum of units x the customer's net revenue by then, 0 where not elapsed), from the
    rollup tables in one statement: each first sale's customer is followed through the orders of
    `sale_days` (the built days the horizons reach; _add_late_sales adds the others)."""
    fs = ReportFirstSale
    units, revenue = getattr(fs, f"units_{query.model}"), getattr(fs, f"revenue_{query.model}")
    site_id = query.site.id
    firsts = (select(fs.order_id, *(getattr(fs, d) for d in query.by), units.label("units"),
                     revenue.label("revenue"))
              .where(fs.site_id == site_id, *_on_days(fs.day, days), or_(units != 0, revenue != 0))
              .cte("firsts"))
    dims = [firsts.c[d] for d in query.by]
    sums = [func.sum(firsts.c.units), func.sum(firsts.c.revenue)]
    done = [(i, h) for i, (h, ok) in enumerate(zip(horizons, elapsed, strict=True)) if ok]
    source = firsts
    if done and sale_days:
        first, later = aliased(ReportSale, name="first_sale"), aliased(ReportSale, name="later")
        dialect = session.get_bind().dialect.name
        age = literal_column(f"{epoch_sql('later.created_at', dialect)} - "
                             f"{epoch_sql('first_sale.created_at', dialect)}")
        within = [func.sum(case((age < h * 86400, later.net_minor), else_=0)).label(f"h{i}") for i, h in done]
        reached = (
            select(first.order_id, *within)
            .join(later, and_(later.site_id == first.site_id, later.customer == first.customer,
                              later.created_at >= first.created_at))
            # Every order of those days as if it were a first sale (reading only the first sales'
            # is slower than the few extra sums for the repeat orders), each with the later orders
            # of its customer within the longest horizon.
            .where(first.site_id == site_id, *_on_days(first.day, days), age < done[-1][1] * 86400,
                   later.net_minor > 0, *_on_days(later.day, sale_days))
            .group_by(first.order_id)
            .cte("reached")
        )
        source = firsts.outerjoin(reached, reached.c.order_id == firsts.c.order_id)
        by_horizon = {i: func.sum(firsts.c.units * func.coalesce(reached.c[f"h{i}"], 0)) for i, _ in done}
        sums.extend(by_horizon.get(i, literal(0)) for i in range(len(horizons)))
    else:
        sums.extend(literal(0) for _ in horizons)
    statement = select(*dims, *sums).select_from(source).group_by(*dims)
    without_jit(session)  # its estimates are high enough to compile, which costs more than it saves
    width = len(dims)
    with without_nested_loops(session):  # right after a build the tables may have no statistics yet
        return [(tuple(r[:width]), *map(int, r[width:])) for r in session.connection().execute(statement)]


def _add_late_sales(
    session: Session, query: ReportQuery, days: list[date], live_sales: list[Sale],
    horizons: tuple[int, ...], elapsed: list[bool], groups: dict[Key, _Group], total: _Group,
) -> None:
    """Add to the rows of the first sales of built `days` their customers' orders that report_sales
    does not answer for (`live_sales`: not built yet, or changed since; usually today's few)."""
    seconds = [(i, h * 86400) for i, (h, done) in enumerate(zip(horizons, elapsed, strict=True)) if done]
    if not seconds:
        return
    late = [sale for sale in live_sales if sale[3] > 0]
    if not late:
        return
    site_id = query.site.id
    s, fs = ReportSale, ReportFirstSale
    at = literal_column(epoch_sql(f"{s.__tablename__}.created_at", session.get_bind().dialect.name))
    built_firsts = select(fs.order_id).where(fs.site_id == site_id, *_on_days(fs.day, days))
    firsts = {
        customer: (order_id, first_at)
        for chunk in _chunks({sale[2] for sale in late})
        for order_id, customer, first_at in session.connection().execute(
            select(s.order_id, s.customer, at).where(s.site_id == site_id, *_on_days(s.day, days),
                                                     s.customer.in_(chunk), s.order_id.in_(built_firsts))
        )
    }
    added: dict[int, list[int]] = {}  # first sale: its customer's late revenue within each horizon
    for _oid, sale_at, customer, net in late:
        first = firsts.get(customer)
        if first is None or sale_at < first[1]:
            continue
        sums = added.setdefault(first[0], [0] * len(horizons))
        for i, limit in seconds:
            if sale_at - first[1] < limit:
                sums[i] += net
    if not added:
        return
    units, revenue = getattr(fs, f"units_{query.model}"), getattr(fs, f"revenue_{query.model}")
    shares = (
        row for chunk in _chunks(added) for row in session.connection().execute(
            select(fs.order_id, *(getattr(fs, d) for d in query.by), units).where(
                fs.site_id == site_id, *_on_days(fs.day, days), fs.order_id.in_(chunk),
                or_(units != 0, revenue != 0)))
    )
    for order_id, *key, share in shares:
        group, sums = groups[tuple(key)], added[order_id]
        for i, _ in seconds:
            group.value[i] += share * sums[i]
    for sums in added.values():
        for i, _ in seconds:
            total.value[i] += ORDER_SCALE * sums[i]


def _chunks(values: Iterable[int]) -> Iterator[list[int]]:
    """`values` in lists of at most IN_CHUNK, each one statement's `IN (...)`."""
    values = list(values)
    for start in range(0, len(values), IN_CHUNK):
        yield values[start:start + IN_CHUNK]


def _live_shares(session: Session, query: ReportQuery, built: list[date]) -> list[tuple[int, Key, int, int]]:
    """Every first sale on the range's days other than `built` as (order id, row key, customer
    units, first-order revenue), split as the report asks."""
    proj = credit.project(query.by)
    shares: list[tuple[int, Key, int, int]] = []
    live_days = set(days_between(query.date_from, query.date_to)) - set(built)
    spans = runs(live_days)
    if len(spans) > MAX_LIVE_SPANS:
        spans = [(spans[0][0], spans[-1][1])]
    for first, last in spans:
        start, end = range_bounds(first, last, query.tz)
        for order in credit.credited_orders(session, query.site, start, end, query.lookback):
            if not order.is_new or order.day not in live_days:
                continue
            if query.model is AttributionModel.FULL_IMPACT:
                shares.extend((order.id, key, ORDER_SCALE, order.net_minor)
                              for key in credit.touched_rows(order, lambda _o, _t, k: proj(k)))
                continue
            for _touch, key, units, revenue in credit.credit_shares(order, query.model):
                shares.append((order.id, proj(key), units, revenue))
    return shares


# A site's counted orders placed in [:start, :until) with their time (and as seconds since 1970),
# customer (tracker.sales.customer_id_sql) and net revenue, in time order.
CUSTOMER_ORDERS = """
SELECT id, created_at, at, {customer}, net FROM (
    SELECT o.id, o.created_at, o.visitor_id, {at} AS at, {net} AS net,
           coalesce(o.person_id, (SELECT v.person_id FROM visitors v
                                  WHERE v.id = o.visitor_id AND v.site_id = :site)) AS person_id
    FROM orders o
    LEFT JOIN (SELECT order_id, sum(amount_minor) AS refunded FROM refunds WHERE site_id = :site
               GROUP BY order_id) r ON r.order_id = o.id
    WHERE o.site_id = :site AND o.created_at >= :start AND o.created_at < :until AND NOT o.is_test
      AND {counted}
) counted
ORDER BY created_at, id
"""
# (order id, seconds since 1970, customer, net minor units), in time order
Sale = tuple[int, float, int, int]


def customer_orders(session: Session, site_id: int, start: datetime, until: datetime) -> list[tuple]:
    """CUSTOMER_ORDERS's rows: (order id, created_at, seconds since 1970, customer, net minor units)."""
    dialect = session.get_bind().dialect.name
    without_jit(session)  # the per-order lookups of the visitor's person
    statement = text(CUSTOMER_ORDERS.format(
        at=epoch_sql("o.created_at", dialect), counted=counted_sql("o.status"),
        customer=customer_id_sql("id", "person_id", "visitor_id"),
        net=net_sql("o.status", "o.total_minor", "r.refunded", dialect),
    )).bindparams(bindparam("start", type_=UTCDateTime), bindparam("until", type_=UTCDateTime)).columns(
        created_at=UTCDateTime)
    # On the connection: plain rows, without the ORM's handling of each.
    return session.connection().execute(statement, {"site": site_id, "start": start, "until": until}).all()


def _live_sales(session: Session, query: ReportQuery, cov, last_day: date) -> list[Sale]:
    """Every counted order of the days from the range's first to `last_day` that report_sales does
    not answer for (not built, or changed since), from the orders themselves, in time order."""
    live = set(days_between(query.date_from, last_day)) - set(cov.clean(query.date_from, last_day))
    spans = runs(live)
    if len(spans) > MAX_LIVE_SPANS:  # one statement over them all beats many small ones
        spans = [(spans[0][0], spans[-1][1])]
    tz = query.tz
    sales: list[Sale] = []
    for first, last in spans:
        start, end = range_bounds(first, last, tz)
        rows = customer_orders(session, query.site.id, start, end)
        sales.extend((oid, at, customer, net) for oid, created, at, customer, net in rows
                     if local_day(created, tz) in live)
    return sales


def _sales(session: Session, query: ReportQuery, cov, last_day: date, live_sales: list[Sale]) -> list[Sale]:
    """Every counted order of the days from the range's first to `last_day`: from report_sales on
    built days that nothing changed since, and `live_sales` (_live_sales) for the others."""
    clean = cov.clean(query.date_from, last_day)  # the same for every lookback and model
    built: list[Sale] = []
    if clean:
        t = ReportSale
        at = literal_column(epoch_sql(f"{t.__tablename__}.created_at", session.get_bind().dialect.name))
        built = session.connection().execute(
            select(t.order_id, at, t.customer, t.net_minor).where(t.site_id == query.site.id,
                                                                   *_on_days(t.day, clean))
            .order_by(t.created_at, t.order_id)
        ).all()
    return list(heapq.merge(built, live_sales, key=lambda sale: (sale[1], sale[0])))


def _customer_values(
    session: Session, query: ReportQuery, cov, last_day: date, live_sales: list[Sale], first_sales: set[int],
    horizons: tuple[int, ...], elapsed: list[bool],
) -> Mapping[int, list[int]]:
    """For each first sale: its customer's net revenue (minor units) from every counted order placed
    within each horizon of it (up to `last_day`), the first order included (0 for a horizon not
    elapsed)."""
    if not first_sales or not any(elapsed):
        return {}
    sales = _sales(session, query, cov, last_day, live_sales)
    seconds = [(i, h * 86400) for i, (h, done) in enumerate(zip(horizons, elapsed, strict=True)) if done]
    firsts: dict[int, tuple[list[int], float]] = {}  # customer -> (the first sale's values, its time)
    values: dict[int, list[int]] = {}
    for oid, at, customer, net in sales:
        if oid in first_sales:
            reached = values[oid] = [0] * len(horizons)
            firsts[customer] = (reached, at)
            at = 0.0
        else:
            first = firsts.get(customer)
            if first is None:
                continue
            reached, first_at = first
            at -= first_at
        if net <= 0:
            continue
        for i, limit in seconds:
            if at < limit:
                reached[i] += net
    return values
