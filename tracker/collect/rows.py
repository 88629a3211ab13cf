"""The hot path's SQL, one statement per step and per batch (never per row on PostgreSQL).

SQLAlchemy Core costs about half a millisecond per statement to build and bind; at thousands of
page views a second that is the whole budget, so the group commit speaks to the driver directly.
PostgreSQL gets whole arrays through `unnest`; SQLite runs in-process, where a row costs microseconds.
Timestamps are written exactly as `tracker.db.UTCDateTime` stores them.

A new session is written with its visit links (`tracker.models.VISIT_LINKS`): the start of the
visitor's previous session, of its previous one in the same channel, and of its previous one in
the same source/medium/campaign (and, on PostgreSQL, the local days of its start and of those
links). New sessions always follow the visitor's stored ones, in time order, with
increasing ids, so each link is the batch's previous new session at that level or else the latest
stored one.
"""

from __future__ import annotations

from tracker.db import sqlite_parse, sqlite_time
from tracker.models import SESSION_DAYS, VISIT_LINKS

# Session columns written at creation, in this order.
SESSION_COLUMNS = (
    "site_id", "visitor_id", "started_at", "last_seen_at", "pageviews", "landing_url", "referrer",
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "click_id", "channel",
    "device_type",
)  # fmt: skip
PAGEVIEW_COLUMNS = ("site_id", "session_id", "visitor_id", "ts", "url", "title", "referrer", "screen_width")
VISITOR_COLUMNS = ("site_id", "visitor_key", "first_seen_at", "last_seen_at", "device_type", "browser", "os")
SQLITE_CHUNK = 500

LINK_COLUMNS = tuple(VISIT_LINKS)


class OpenSession:
    """A session a batch may extend: a visitor's latest stored one (id set) or one the batch is
    creating (id None), with the page views the batch adds to it."""

    __slots__ = ("id", "visitor_id", "started_at", "last_seen_at", "landing_url", "added", "hits")

    def __init__(self, id, visitor_id, started_at, last_seen_at, landing_url):
        self.id = id
        self.visitor_id = visitor_id
        self.started_at = started_at
        self.last_seen_at = last_seen_at
        self.landing_url = landing_url
        self.added = 0
        self.hits: list = []


def for_connection(dbapi_connection, dialect: str, per_site: bool = False):
    if dialect == "postgresql":
        return PostgresRows(dbapi_connection, per_site)
    return SqliteRows(dbapi_connection)


def _columns(rows: list[tuple], count: int) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(count)]


def _pg_link(name: str, shared: tuple[str, ...], site: str) -> str:
    """A new session's link: the batch's previous new session of the visitor at this level, or
    else (COALESCE evaluates it only then) the latest stored one, found backwards on the
    (visitor_id, started_at) index. The row comparison keeps the tie rule of start, then id;
    all sub-statements share one snapshot, so `sessions` holds none of the batch's rows.
    `site` is the stored sessions' site: the new session's, or a parameter (one site's statement)."""
    partition = ", ".join(("ns.visitor_id", *(f"ns.{c}" for c in shared)))
    same = "".join(f" AND s.{c} = ns.{c}" for c in shared)
    return (
        f"COALESCE(lag(ns.started_at) OVER (PARTITION BY {partition} ORDER BY ns.n), "
        f"(SELECT max(s.started_at) FROM sessions s WHERE s.site_id = {site} "
        "AND s.visitor_id = ns.visitor_id "
        f"AND s.started_at <= ns.started_at AND (s.started_at, s.id) < (ns.started_at, ns.id){same})) "
        f"AS {name}"
    )


# The local days of the start and of each link, in the site's time zone (`z`).
_PG_DAY_COLUMNS = ", ".join(SESSION_DAYS)
_PG_DAYS = ", ".join(f"CAST(timezone(z.timezone, l.{at}) AS DATE)" for at in SESSION_DAYS.values())
_PG_LINKED_VALUES = ", ".join(f"l.{name}" for name in ("id", *SESSION_COLUMNS, *VISIT_LINKS))


class PostgresRows:
    """Two round trips per batch: [upsert visitors + read their latest sessions], [write + commit]."""

    _TYPES_VISITOR = ("int", "text", "timestamptz", "timestamptz", "text", "text", "text")
    _TYPES_SESSION = (
        "int", "bigint", "timestamptz", "timestamptz", "int", "text", "text", "text", "text", "text",
        "text", "text", "text", "text", "text",
    )  # fmt: skip
    _TYPES_PAGEVIEW = ("int", "bigint", "bigint", "timestamptz", "text", "text", "text", "int", "bigint")

    def __init__(self, connection, per_site: bool = False):
        self.connection = connection
        self.cursor = connection.cursor()
        self.second = connection.cursor()
        # Citus: one statement per site, each on that site's shard (tracker.citus).
        self.per_site = per_site

    @staticmethod
    def _unnest(types: tuple[str, ...]) -> str:
        return "unnest(" + ", ".join(f"%s::{t}[]" for t in types) + ")"

    def prepare(self, visitors: list[tuple]) -> tuple[dict[tuple[int, str], int], dict[int, OpenSession]]:
        """Upsert visitors (sorted by key, so concurrent batches lock them in one order) and read
        their latest sessions in a second statement (on Citus one per site), whose snapshot comes
        after those locks."""
        names = ", ".join(VISITOR_COLUMNS)
        columns = _columns(visitors, len(VISITOR_COLUMNS))
        with self.connection.pipeline():
            self.cursor.execute(
                f"INSERT INTO visitors ({names}) SELECT * FROM {self._unnest(self._TYPES_VISITOR)} "
                f"AS t({names}) ORDER BY site_id, visitor_key "
                "ON CONFLICT (site_id, visitor_key) DO UPDATE SET "
                "last_seen_at = GREATEST(visitors.last_seen_at, EXCLUDED.last_seen_at), "
                "first_seen_at = LEAST(visitors.first_seen_at, EXCLUDED.first_seen_at), "
                "device_type = COALESCE(EXCLUDED.device_type, visitors.device_type), "
                "browser = COALESCE(EXCLUDED.browser, visitors.browser), "
                "os = COALESCE(EXCLUDED.os, visitors.os) "
                "RETURNING id, site_id, visitor_key",
                columns,
            )
            reads = self._read_latest(columns[0], columns[1])
        ids = {(site_id, key): id_ for id_, site_id, key in self.cursor.fetchall()}
        latest = {row[1]: OpenSession(*row) for read in reads for row in read.fetchall()}
        for read in reads:
            if read is not self.second:  # a site's own, opened for this batch
                read.close()
        return ids, latest

    def _read_latest(self, sites: list[int], keys: list[str]) -> list:
        """Queue the read of the visitors' latest sessions: one statement for the batch, or on Citus
        one per site, each on the site's shard (the batch's sites in one statement would ask every
        shard). Returns the cursors to fetch from."""
        if not self.per_site:
            self.second.execute(_PG_LATEST, (sites, keys))
            return [self.second]
        by_site: dict[int, list[str]] = {}
        for site_id, key in zip(sites, keys, strict=True):
            by_site.setdefault(site_id, []).append(key)
        reads = []
        for site_id, site_keys in by_site.items():
            read = self.connection.cursor()
            read.execute(_PG_LATEST_PER_SITE, (site_keys, site_id, site_id))
            reads.append(read)
        return reads

    def finish(self, sessions: list[tuple], extended: list[tuple], pageviews: list[tuple], commit: bool):
        """One statement (one per site on Citus): insert new sessions (linked), extend known ones
        (id, last seen, added, site), insert page views (a page view's last column numbers its new
        session, 1-based, or is None when session_id is known)."""
        whole = {None: (sessions, extended, pageviews)}
        parts = _by_site(sessions, extended, pageviews) if self.per_site else whole
        with self.connection.pipeline():
            for site, (new, known, views) in parts.items():
                sites = [] if site is None else [site] * len(VISIT_LINKS)
                params = (
                    _columns(new, len(SESSION_COLUMNS))
                    + sites
                    + _columns(known, 4)
                    + _columns(views, len(PAGEVIEW_COLUMNS) + 1)
                )
                self.cursor.execute(_PG_FINISH["%s" if site is not None else "ns.site_id"], params)
            if commit:
                self.connection.commit()


# The latest session of each visitor of a batch: its visitors as (site, key) pairs, or (PER_SITE)
# one site's keys and the site twice, a statement Citus sends to that site's shard alone.
_LATEST = ("SELECT DISTINCT ON (s.visitor_id) s.id, s.visitor_id, s.started_at, s.last_seen_at, "
           "s.landing_url FROM {keys} "
           "JOIN visitors v ON v.site_id = {site} AND v.visitor_key = k.visitor_key "
           "JOIN sessions s ON s.site_id = {site_again} AND s.visitor_id = v.id "
           "ORDER BY s.visitor_id, s.started_at DESC, s.id DESC")
_PG_LATEST = _LATEST.format(keys="unnest(%s::int[], %s::text[]) AS k(site_id, visitor_key)", site="k.site_id",
                            site_again="v.site_id")
_PG_LATEST_PER_SITE = _LATEST.format(keys="unnest(%s::text[]) AS k(visitor_key)", site="%s", site_again="%s")


def _finish_statement(site: str) -> str:
    names = ", ".join(SESSION_COLUMNS)
    links = ", ".join(LINK_COLUMNS)
    pv_names = ", ".join(PAGEVIEW_COLUMNS)
    linked = ", ".join(_pg_link(name, shared, site) for name, shared in VISIT_LINKS.items())
    unnest = PostgresRows._unnest
    return (
        "WITH new_sessions AS MATERIALIZED ("
        "SELECT nextval(pg_get_serial_sequence('sessions', 'id')) AS id, t.* "
        f"FROM {unnest(PostgresRows._TYPES_SESSION)} WITH ORDINALITY AS t({names}, n)), "
        f"linked AS (SELECT ns.*, {linked} FROM new_sessions ns), "
        f"inserted AS (INSERT INTO sessions (id, {names}, {links}, {_PG_DAY_COLUMNS}, visits_linked) "
        f"SELECT {_PG_LINKED_VALUES}, {_PG_DAYS}, true "
        "FROM linked l JOIN sites z ON z.id = l.site_id), "
        "extended AS (UPDATE sessions SET last_seen_at = u.seen, "
        "pageviews = sessions.pageviews + u.added "
        "FROM unnest(%s::bigint[], %s::timestamptz[], %s::int[], %s::int[]) AS u(id, seen, added, site_id) "
        "WHERE sessions.id = u.id AND sessions.site_id = u.site_id) "
        f"INSERT INTO pageviews ({pv_names}) SELECT p.site_id, COALESCE(p.session_id, ns.id), "
        "p.visitor_id, p.ts, p.url, p.title, p.referrer, p.screen_width "
        f"FROM {unnest(PostgresRows._TYPES_PAGEVIEW)} AS p({pv_names}, session_n) "
        "LEFT JOIN new_sessions ns ON ns.n = p.session_n"
    )


# The batch's statement, whose stored sessions are those of each new session's site, or of the
# one site given as a parameter.
_PG_FINISH = {site: _finish_statement(site) for site in ("ns.site_id", "%s")}


def _by_site(sessions: list[tuple], extended: list[tuple], pageviews: list[tuple]) -> dict:
    """A batch split by site: each site's new sessions, extended ones and page views, the page
    views' numbers of new sessions counted within their site."""
    parts: dict[int, tuple[list, list, list]] = {}
    numbers = {}
    for n, row in enumerate(sessions, 1):
        part = parts.setdefault(row[0], ([], [], []))
        part[0].append(row)
        numbers[n] = len(part[0])
    for row in extended:
        parts.setdefault(row[3], ([], [], []))[1].append(row)
    for row in pageviews:
        number = row[-1]
        part = parts.setdefault(row[0], ([], [], []))
        part[2].append(row if number is None else (*row[:-1], numbers[number]))
    return parts


def _sqlite_link(shared: tuple[str, ...]) -> str:
    """A new session's link, read before its row exists: the batch's earlier rows are already in
    `sessions`, and its rowid will exceed every stored one, so "before it in (started_at, id)
    order" is "started_at <= its own". Parameters are numbered as SESSION_COLUMNS, from 1."""
    number = {name: index for index, name in enumerate(SESSION_COLUMNS, 1)}
    same = "".join(f" AND {c} = ?{number[c]}" for c in shared)
    return (
        f"(SELECT max(started_at) FROM sessions WHERE visitor_id = ?{number['visitor_id']} "
        f"AND started_at <= ?{number['started_at']}{same})"
    )


_SQLITE_INSERT_SESSION = (
    f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}, {', '.join(LINK_COLUMNS)}, visits_linked) VALUES ("
    + ", ".join(f"?{number}" for number in range(1, len(SESSION_COLUMNS) + 1))
    + "".join(f", {_sqlite_link(shared)}" for shared in VISIT_LINKS.values())
    + ", 1)"
)


class SqliteRows:
    """SQLite runs in-process: a statement per row costs microseconds, and RETURNING is per row."""

    def __init__(self, connection):
        self.connection = connection
        self.cursor = connection.cursor()

    def prepare(self, visitors: list[tuple]) -> tuple[dict[tuple[int, str], int], dict[int, OpenSession]]:
        names = ", ".join(VISITOR_COLUMNS)
        sql = (
            f"INSERT INTO visitors ({names}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (site_id, visitor_key) DO UPDATE SET "
            "last_seen_at = max(visitors.last_seen_at, excluded.last_seen_at), "
            "first_seen_at = min(visitors.first_seen_at, excluded.first_seen_at), "
            "device_type = coalesce(excluded.device_type, visitors.device_type), "
            "browser = coalesce(excluded.browser, visitors.browser), "
            "os = coalesce(excluded.os, visitors.os) "
            "RETURNING id"
        )
        ids = {}
        for site_id, key, first, last, device, browser, os_ in visitors:
            self.cursor.execute(
                sql, (site_id, key, sqlite_time(first), sqlite_time(last), device, browser, os_)
            )
            ids[(site_id, key)] = self.cursor.fetchone()[0]
        return ids, self._latest(list(ids.values()))

    def _latest(self, visitor_ids: list[int]) -> dict[int, OpenSession]:
        found: dict[int, OpenSession] = {}
        for start in range(0, len(visitor_ids), SQLITE_CHUNK):
            chunk = visitor_ids[start : start + SQLITE_CHUNK]
            marks = ", ".join("?" * len(chunk))
            self.cursor.execute(
                "SELECT id, visitor_id, started_at, last_seen_at, landing_url FROM sessions "
                f"WHERE visitor_id IN ({marks}) AND started_at = (SELECT max(started_at) FROM sessions "
                "AS newest WHERE newest.visitor_id = sessions.visitor_id) ORDER BY id",
                chunk,
            )
            # Two sessions starting at the same instant: the later id wins.
            for id_, visitor_id, started, seen, landing in self.cursor.fetchall():
                found[visitor_id] = OpenSession(
                    id_, visitor_id, sqlite_parse(started), sqlite_parse(seen), landing
                )
        return found

    def finish(self, sessions: list[tuple], extended: list[tuple], pageviews: list[tuple], commit: bool):
        """As PostgresRows.finish; the caller's transaction commits."""
        new_ids = []
        for row in sessions:
            row = list(row)
            row[2], row[3] = sqlite_time(row[2]), sqlite_time(row[3])
            self.cursor.execute(_SQLITE_INSERT_SESSION, row)
            new_ids.append(self.cursor.lastrowid)
        if extended:
            self.cursor.executemany(
                "UPDATE sessions SET last_seen_at = ?, pageviews = pageviews + ? WHERE id = ?",
                [(sqlite_time(seen), added, id_) for id_, seen, added, _ in extended],
            )
        sql = f"INSERT INTO pageviews ({', '.join(PAGEVIEW_COLUMNS)}) VALUES ({', '.join('?' * 8)})"
        self.cursor.executemany(
            sql,
            [
                (s, sess if sess is not None else new_ids[n - 1], v, sqlite_time(ts), u, t, r, w)
                for s, sess, v, ts, u, t, r, w, n in pageviews
            ],
        )
