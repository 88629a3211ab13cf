"""Which orders count, which touches preceded them, and the credit each report row receives.

The database does the heavy lifting (orders of a range, the sessions of their people inside the
lookback window, one query each); Python only walks the orders of the range and their touches.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, literal_column, select, type_coerce, union
from sqlalchemy.orm import Session, aliased

from reports.attribution import ORDER_SCALE, AttributionModel, TimedTouch, age_seconds, credit_parts
from tracker import citus
from tracker.days import local_day
from tracker.db import driver_cursor, without_jit
from tracker.models import Order, Refund, Site, TrackedSession, Visitor
from tracker.sales import (
    COUNTED_STATUSES,
    counted_sql,
    customer_id,
    customer_id_sql,
    customer_key,
    customer_sql,
    net_minor,
    net_sql,
)
from tracker.touch import DIMENSIONS, DIRECT, touch_from

UNATTRIBUTED = "(unattributed)"
UNATTRIBUTED_KEY = (UNATTRIBUTED,) * len(DIMENSIONS)

SQLITE_SCAN_AFTER = timedelta(days=10)
SESSION_COLUMNS = {
    "channel": TrackedSession.channel,
    "source": TrackedSession.utm_source,
    "medium": TrackedSession.utm_medium,
    "campaign": TrackedSession.utm_campaign,
    "content": TrackedSession.utm_content,
    "term": TrackedSession.utm_term,
}

Key = tuple[str, ...]


@dataclass
class CreditedOrder:
    """An order that counts: its time, local date, net revenue and the touches that share it."""

    id: int
    at: datetime
    day: date
    net_minor: int
    is_new: bool
    touches: list[tuple[TimedTouch, Key]]  # in time order; empty means unattributed
    customer: int = 0  # tracker.sales.customer_id


# How a report names the row of a share of credit: (order, its touch or None, six-dimension key) -> key.
RowKey = Callable[[CreditedOrder, TimedTouch | None, Key], Key]


def unindexed(column):
    """`column` as SQLite's planner may not look it up in an index (a unary '+'), for scans it
    would otherwise walk through the wrong index."""
    return type_coerce(literal_column(f"+{column.table.name}.{column.name}"), column.type)


def _counted(model=Order):
    return and_(model.is_test.is_(False), model.status.in_(COUNTED_STATUSES))  # as counted_sql()


def credited_orders(
    session: Session, site: Site, start: datetime, end: datetime, lookback: int
) -> list[CreditedOrder]:
    """The orders created in [start, end) that count, with their touches inside the lookback window."""
    tz = ZoneInfo(site.timezone)
    if session.get_bind().dialect.name == "postgresql":
        return _credited_orders_joined(session, site, start, end, lookback)
    refunded = (
        select(func.coalesce(func.sum(Refund.amount_minor), 0))
        .where(Refund.order_id == Order.id)
        .scalar_subquery()
    )
    v1 = aliased(Visitor)
    rows = session.execute(
        select(
            Order.id,
            Order.created_at,
            Order.status,
            Order.total_minor,
            refunded,
            Order.person_id,
            Order.visitor_id,
            v1.person_id,
            Order.landing_url,
            Order.referrer,
        )
        .outerjoin(v1, v1.id == Order.visitor_id)
        .where(Order.site_id == site.id, Order.created_at >= start, Order.created_at < end, _counted())
        .order_by(Order.created_at, Order.id)
    ).all()
    orders: dict[int, CreditedOrder] = {}
    fallback: dict[int, tuple[str | None, str | None]] = {}
    for oid, at, status, total, refunds, person, visitor, vperson, landing, referrer in rows:
        net = net_minor(status, total, refunds)
        if net <= 0:
            continue  # fully refunded: no sale left to credit
        customer = customer_id(oid, person if person is not None else vperson, visitor)
        orders[oid] = CreditedOrder(oid, at, local_day(at, tz), net, False, [], customer)
        if landing or referrer:
            fallback[oid] = (landing, referrer)
    if not orders:
        return []
    _mark_new_customers(session, site, orders)
    _attach_touches(session, site, start, end, lookback, orders)
    _landing_touches(site, orders, fallback)
    return list(orders.values())


def landing_touch(site: Site, landing: str | None, referrer: str | None) -> tuple[bool, Key] | None:
    """The touch an order without touches falls back to, at order time: its own landing URL (or
    referrer), as (is direct, six-dimension key); None when it has neither."""
    if not (landing or referrer):
        return None
    t = touch_from(landing, referrer, site.domain)
    return t.source == DIRECT, t.key


def _landing_touches(site: Site, orders: dict[int, CreditedOrder], fallback: dict[int, tuple]) -> None:
    """Each order without touches given its landing_touch()."""
    for oid, (landing, referrer) in fallback.items():
        order = orders[oid]
        if not order.touches and (touch := landing_touch(site, landing, referrer)):
            direct, key = touch
            order.touches.append((TimedTouch(order.at, direct), key))


def driver_style(sql: str) -> str:
    """A statement's `:name` parameters in the driver's `%(name)s` style, for its streaming cursor."""
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)


# On PostgreSQL, one statement (reports.build reads the same orders and touches for its split).
# The counted orders of [start, end) and the earlier counted orders of the same customers (those of
# the same person, through any of its visitors, or of the same visitor), found through their
# indexes so that a day's orders cost the same however long the history; with their net revenue
# and whether each is its person's (else visitor's) first sale; `in_range` are those from `start` on.
_COUNTED_ORDERS = """
    SELECT o.id, o.created_at, o.visitor_id, o.status, o.total_minor,
           coalesce(o.person_id, (SELECT v.person_id FROM visitors v
                                  WHERE v.id = o.visitor_id AND v.site_id = :site)) AS person_id
    FROM orders o
    WHERE o.site_id = :site AND NOT o.is_test AND """ + counted_sql("o.status")
ORDERS_CTES = """
WITH range_orders AS MATERIALIZED (""" + _COUNTED_ORDERS + """
      AND o.created_at >= :start AND o.created_at < :end
), earlier AS (""" + _COUNTED_ORDERS + """
      AND o.created_at < :start
      AND (o.person_id = ANY(ARRAY(SELECT person_id FROM range_orders WHERE person_id IS NOT NULL))
           OR o.visitor_id = ANY(ARRAY(
               SELECT vp.id FROM visitors vp
               WHERE vp.site_id = :site
                 AND vp.person_id = ANY(ARRAY(SELECT person_id FROM range_orders WHERE person_id IS NOT NULL))
               UNION SELECT visitor_id FROM range_orders WHERE visitor_id IS NOT NULL)))
), candidates AS (
    SELECT * FROM range_orders UNION ALL SELECT * FROM earlier
), counted AS (
    SELECT c.id, c.created_at, c.visitor_id, c.person_id,
           """ + net_sql("c.status", "c.total_minor", "r.refunded") + """ AS net_minor
    FROM candidates c
    LEFT JOIN (SELECT order_id, CAST(sum(amount_minor) AS BIGINT) AS refunded FROM refunds
               WHERE site_id = :site AND order_id IN (SELECT id FROM candidates)
               GROUP BY order_id) r ON r.order_id = c.id
), ranked AS (
    SELECT id, created_at, person_id, visitor_id, net_minor,
           row_number() OVER (
               PARTITION BY """ + customer_sql("id", "person_id", "visitor_id") + """
               ORDER BY created_at, id) = 1 AS is_new
    FROM counted WHERE net_minor > 0
), in_range AS (
    SELECT * FROM ranked WHERE created_at >= :start ORDER BY created_at, id
)
"""
# The sessions of every visitor of an `in_range` order's person (and the order's own visitor)
# inside the lookback window, looked up by index per order (a join over all sessions would hash
# the whole table). On Citus each table also needs the site's condition (`_on_site`), for the
# statement to go to the site's shard alone. A shard's planner without statistics (just loaded, or
# before autovacuum's first ANALYZE) would take the site and the window to the site's index of
# visits and walk the site's visits for every order, minutes on a large site. So the window is the
# touch's age, which no index reads, and the site-leading indexes of tracker.citus.SITE_INDEXES
# take the site with the visitor (or person): going through each order's visitors is then the
# cheaper way even without statistics (tests/test_citus.py). Elsewhere the plain visitor index
# serves it the same.
ORDER_TOUCHES = """
    SELECT s.id, s.started_at, s.channel, s.utm_source, s.utm_medium, s.utm_campaign, s.utm_content,
           s.utm_term
    FROM sessions s
    WHERE s.visitor_id = ANY(ARRAY(SELECT vp.id FROM visitors vp WHERE vp.person_id = c.person_id{vp_site})
                             || c.visitor_id)
      AND c.created_at - s.started_at BETWEEN interval '0' AND :window{s_site}
"""


def _on_site(sql: str, citus: bool) -> str:
    """ORDER_TOUCHES within a statement: with the site's condition on Citus, without elsewhere."""
    if citus:
        return (sql.replace("{vp_site}", " AND vp.site_id = :site")
                .replace("{s_site}", " AND s.site_id = :site"))
    return sql.replace("{vp_site}", "").replace("{s_site}", "")


_JOINED_SQL = {on_citus: driver_style(_on_site(ORDERS_CTES + """
SELECT c.id, c.created_at, CAST(timezone(:zone, c.created_at) AS DATE), c.net_minor, c.is_new, t.started_at,
       t.channel, t.utm_source, t.utm_medium, t.utm_campaign, t.utm_content, t.utm_term,
       """ + customer_id_sql("c.id", "c.person_id", "c.visitor_id") + """
FROM in_range c
LEFT JOIN LATERAL (""" + ORDER_TOUCHES + """) t ON true
ORDER BY c.created_at, c.id, t.started_at, t.id
""", on_citus)) for on_citus in (False, True)}
STREAM_CHUNK = 2_000


def _credited_orders_joined(
    session: Session, site: Site, start: datetime, end: datetime, lookback: int
) -> list[CreditedOrder]:
    """credited_orders() on PostgreSQL: one statement, plain rows, one pass in Python."""
    params = {"site": site.id, "start": start, "end": end, "zone": site.timezone,
              "window": timedelta(days=lookback)}
    without_jit(session)
    connection = session.connection()
    # Rows are taken in chunks as the server produces them, so this loop runs while the server
    # is still looking up the later orders' touches (plain tuples, on the session's transaction).
    orders: dict[int, CreditedOrder] = {}
    order = None
    touches = None
    sql = _JOINED_SQL[citus.on(connection)]
    with driver_cursor(connection, sql) as cursor:
        for row in cursor.stream(sql, params, size=STREAM_CHUNK):
            if order is None or order.id != row[0]:
                order = orders[row[0]] = CreditedOrder(*row[:5], [], row[12])
                touches = order.touches
            if row[5] is not None:
                key = row[6:12]  # channel, source, medium, campaign, content, term
                touches.append((TimedTouch(row[5], key[1] == DIRECT), key))
    landing_fallback(session, site, orders)
    return list(orders.values())


# An order as the nightly split sees it: (id, local day, net minor units, is a new customer's,
# touches, customer, time) with touches in time order as (age in whole seconds, is direct,
# six-dimension key) and the customer as tracker.sales.customer_id.
PlainOrder = tuple[int, date, int, bool, list[tuple[int, bool, Key]], int, datetime]


def _plain(order: CreditedOrder) -> PlainOrder:
    at = order.at
    return order.id, order.day, order.net_minor, order.is_new, [
        (age_seconds(at - touch.at), touch.direct, key) for touch, key in order.touches], order.customer, at


# The split's own read of credited_orders() on PostgreSQL: the same orders and touches, with
# only what the split needs (a touch's age in whole seconds, rounded as attribution.age_seconds()),
# and, for an order without touches, its landing URL and referrer (landing_touch()), so that every
# order comes in its place in time. They are looked up only for such an order: joined instead, the
# planner would hash every order of the site and sort the whole result again.
_PLAIN_SQL = {on_citus: driver_style(_on_site(ORDERS_CTES + """
SELECT c.id, CAST(timezone(:zone, c.created_at) AS DATE), c.net_minor, c.is_new,
       CAST(greatest(floor(extract(epoch FROM c.created_at - t.started_at) + 0.5), 0) AS BIGINT),
       t.utm_source = :direct, t.channel, t.utm_source, t.utm_medium, t.utm_campaign, t.utm_content,
       t.utm_term, """ + customer_id_sql("c.id", "c.person_id", "c.visitor_id") + """, c.created_at,
       """ + ", ".join(f"""CASE WHEN t.id IS NULL THEN
           (SELECT o.{column} FROM orders o WHERE o.site_id = :site AND o.id = c.id) END"""
                       for column in ("landing_url", "referrer")) + """
FROM in_range c
LEFT JOIN LATERAL (""" + ORDER_TOUCHES + """) t ON true
ORDER BY c.created_at, c.id, t.started_at, t.id
""", on_citus)) for on_citus in (False, True)}


def orders_to_split(
    session: Session, site: Site, start: datetime, end: datetime, lookback: int
) -> Iterator[PlainOrder]:
    """credited_orders() as the nightly split reads them (PlainOrder), in time order. On PostgreSQL
    they stream from the server as it finds them, with only what the split needs."""
    if session.get_bind().dialect.name != "postgresql":
        yield from map(_plain, credited_orders(session, site, start, end, lookback))
        return
    without_jit(session)
    connection = session.connection()
    params = {"site": site.id, "start": start, "end": end, "zone": site.timezone,
              "window": timedelta(days=lookback), "direct": DIRECT}
    current, order = None, None
    sql = _PLAIN_SQL[citus.on(connection)]
    with driver_cursor(connection, sql) as cursor:
        for row in cursor.stream(sql, params, binary=True, size=STREAM_CHUNK):
            if row[0] != current:
                if order is not None:
                    yield order
                current = row[0]
                order = (current, row[1], row[2], row[3], [], row[12], row[13])
                if row[6] is None:  # no touches (a session's channel is never null)
                    if touch := landing_touch(site, row[14], row[15]):
                        order[4].append((0, *touch))  # at order time
                    continue
            order[4].append((row[4], row[5], row[6:12]))
    if order is not None:
        yield order


def landing_fallback(session: Session, site: Site, orders: dict[int, CreditedOrder]) -> None:
    """Give each order without touches its own landing URL (or referrer) as its touch, if it has one."""
    untouched = [oid for oid, o in orders.items() if not o.touches]
    if untouched:
        fallback = {
            oid: (landing, referrer)
            for oid, landing, referrer in session.execute(
                select(Order.id, Order.landing_url, Order.referrer).where(
                    Order.site_id == site.id, Order.id.in_(untouched))
            )
            if landing or referrer
        }
        _landing_touches(site, orders, fallback)


def _attach_touches(
    session: Session,
    site: Site,
    start: datetime,
    end: datetime,
    lookback: int,
    orders: dict[int, CreditedOrder],
) -> None:
    """Sessions of each order's person (all their visitors) or visitor, within the lookback window."""
    window = timedelta(days=lookback)
    in_range = and_(Order.site_id == site.id, Order.created_at >= start, Order.created_at < end, _counted())
    v1, v2 = aliased(Visitor), aliased(Visitor)
    by_person = (
        select(Order.id.label("order_id"), v2.id.label("visitor_id"), Order.created_at.label("at"))
        .outerjoin(v1, v1.id == Order.visitor_id)
        .join(v2, v2.person_id == func.coalesce(Order.person_id, v1.person_id))
        .where(in_range)
    )
    by_visitor = select(
        Order.id.label("order_id"), Order.visitor_id.label("visitor_id"), Order.created_at.label("at")
    ).where(in_range, Order.visitor_id.is_not(None))
    ov = union(by_person, by_visitor).subquery("ov")
    s = TrackedSession
    # Each order's own visitors' sessions, found by visitor: without statistics SQLite would rather
    # walk all of the site's sessions of the window for every order (tens of seconds for a few
    # thousand orders), through the site's index.
    site_col = unindexed(s.site_id)
    rows = session.execute(
        select(
            ov.c.order_id,
            s.id,
            s.started_at,
            s.channel,
            s.utm_source,
            s.utm_medium,
            s.utm_campaign,
            s.utm_content,
            s.utm_term,
        )
        .join(s, s.visitor_id == ov.c.visitor_id)
        .where(site_col == site.id, s.started_at >= start - window, s.started_at <= ov.c.at)
        .order_by(ov.c.order_id, s.started_at, s.id)
    ).all()
    for oid, _sid, at, channel, source, medium, campaign, content, term in rows:
        order = orders.get(oid)
        if order is None or at < order.at - window:
            continue
        key = (channel, source, medium, campaign, content, term)
        order.touches.append((TimedTouch(at, source == DIRECT), key))


def _mark_new_customers(session: Session, site: Site, orders: dict[int, CreditedOrder]) -> None:
    """An order is a new customer's when it is the first sale of its person (or visitor) ever."""
    refunded = (
        select(func.coalesce(func.sum(Refund.amount_minor), 0))
        .where(Refund.order_id == Order.id)
        .scalar_subquery()
    )
    v1 = aliased(Visitor)
    person = func.coalesce(Order.person_id, v1.person_id)
    last = max(o.at for o in orders.values())
    rows = session.execute(
        select(Order.id, person, Order.visitor_id, Order.status, Order.total_minor, refunded)
        .outerjoin(v1, v1.id == Order.visitor_id)
        .where(
            Order.site_id == site.id,
            Order.created_at <= last,
            _counted(),
        )
        .order_by(Order.created_at, Order.id)
    ).all()
    seen: set[tuple[str, int]] = set()  # customers whose first sale is behind
    for oid, person_id, visitor_id, status, total, refunds in rows:
        if net_minor(status, total, refunds) <= 0:
            continue
        key = customer_key(oid, person_id, visitor_id)
        if key not in seen:
            seen.add(key)
            if oid in orders:
                orders[oid].is_new = True


def project(dims: Sequence[str]) -> Callable[[Key], Key]:
    """A function mapping a full six-dimension key to the report's dimensions."""
    idx = [DIMENSIONS.index(d) for d in dims]
    return lambda key: tuple(key[i] for i in idx)


def credit_rows(
    orders: Iterable[CreditedOrder], model: str, keyfunc: RowKey
) -> dict[Key, list[int]]:
    """Sum credit per row: {key: [orders in 1/ORDER_SCALE, revenue minor, new customers in 1/ORDER_SCALE]}.

    `keyfunc(order, touch, six-dimension key)` names the row (the touch is None for an
    unattributed order); for full_impact each row an order touches gets the whole order once,
    however many of its touches fall in that row.
    """
    rows: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for order in orders:
        if model == AttributionModel.FULL_IMPACT:
            for key in touched_rows(order, keyfunc):
                _add(rows[key], ORDER_SCALE, order.net_minor, order.is_new)
            continue
        for touch, key, unit, part in credit_shares(order, model):
            row = rows[keyfunc(order, touch, key)]
            row[0] += unit
            row[1] += part
            row[2] += unit if order.is_new else 0
    return dict(rows)


def touched_rows(order: CreditedOrder, keyfunc: RowKey) -> list[Key]:
    """The rows an order touched, each once (full impact gives each the whole order)."""
    touches = order.touches or [(None, UNATTRIBUTED_KEY)]
    return list(dict.fromkeys(keyfunc(order, touch, key) for touch, key in touches))


def credit_shares(order: CreditedOrder, model: str) -> Iterator[tuple[TimedTouch | None, Key, int, int]]:
    """One order's credit under a split model: (touch, six-dimension key, order units, revenue minor)
    per credited touch; an unattributed order is one share without a touch."""
    if not order.touches:
        yield None, UNATTRIBUTED_KEY, ORDER_SCALE, order.net_minor
        return
    if len(order.touches) == 1:
        touch, key = order.touches[0]
        yield touch, key, ORDER_SCALE, order.net_minor
        return
    at = order.at
    ages = [age_seconds(at - touch.at) for touch, _ in order.touches]
    units, revenue = credit_parts(model, ages, [touch.direct for touch, _ in order.touches], order.net_minor)
    for (touch, key), part, unit in zip(order.touches, revenue, units, strict=True):
        if part or unit:
            yield touch, key, unit, part


def _add(row: list[int], units: int, revenue: int, is_new: bool) -> None:
    row[0] += units
    row[1] += revenue
    row[2] += units if is_new else 0


def scan_columns(session: Session, start: datetime, end: datetime) -> tuple:
    """The sessions' site and start columns to select [start, end) by. Over a long range a plain
    table scan beats SQLite's index walk with a lookup per row: there a unary '+' keeps its planner
    off the index."""
    site_col, started_col = TrackedSession.site_id, TrackedSession.started_at
    if session.get_bind().dialect.name == "sqlite" and end - start > SQLITE_SCAN_AFTER:
        return unindexed(site_col), unindexed(started_col)
    return site_col, started_col


def sessions_started(session: Session, site: Site, start: datetime, end: datetime) -> tuple:
    """The conditions for a site's sessions that started in [start, end) (see scan_columns)."""
    site_col, started_col = scan_columns(session, start, end)
    return site_col == site.id, started_col >= start, started_col < end


def session_rows(
    session: Session, site: Site, start: datetime, end: datetime, dims: Sequence[str]
) -> tuple[dict[Key, tuple[int, int]], tuple[int, int]]:
    """Sessions and distinct visitors per row for sessions started in [start, end), and the totals."""
    cols = [SESSION_COLUMNS[d] for d in dims]
    where = sessions_started(session, site, start, end)
    if session.get_bind().dialect.name == "postgresql":
        return _session_rows_hashed(session, cols, where)
    counts = (func.count(), func.count(func.distinct(TrackedSession.visitor_id)))
    rows = {
        tuple(r[: len(cols)]): (r[-2], r[-1])
        for r in session.execute(select(*cols, *counts).where(*where).group_by(*cols))
    }
    total = session.execute(select(*counts).where(*where)).one()
    return rows, (total[0], total[1])


def _session_rows_hashed(session: Session, cols: list, where: tuple):
    """PostgreSQL sorts for COUNT(DISTINCT); grouping by visitor first lets it hash instead."""
    per_visitor = (
        select(*[c.label(f"d{i}") for i, c in enumerate(cols)], TrackedSession.visitor_id,
               func.count().label("n"))
        .where(*where)
        .group_by(*cols, TrackedSession.visitor_id)
        .subquery()
    )
    dims = [per_visitor.c[f"d{i}"] for i in range(len(cols))]
    rows = {
        tuple(r[: len(cols)]): (int(r[-2]), int(r[-1]))
        for r in session.execute(
            select(*dims, func.sum(per_visitor.c.n), func.count()).group_by(*dims)
        )
    }
    visitors = select(TrackedSession.visitor_id).where(*where).group_by(TrackedSession.visitor_id).subquery()
    total_visitors = session.scalar(select(func.count()).select_from(visitors))
    total_sessions = sum(v[0] for v in rows.values())
    return rows, (total_sessions, int(total_visitors or 0))

