"""Sessionising stored hits: visitors upserted, sessions found, extended or split, page views written,
all in one transaction per batch, whether the hits come straight from requests or from `hits`."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tracker import citus
from tracker.collect import hits as raw_hits
from tracker.collect import rows
from tracker.collect.hits import Hit
from tracker.collect.rows import OpenSession
from tracker.collect.sessions import continues, partition
from tracker.models import Pageview, TrackedSession
from tracker.people import link_identity
from tracker.touch import touch_from

# Hits claimed from `hits` per transaction: large, so visitors and sessions repeat within a batch.
CLAIM_LIMIT = 5000

SESSIONS = TrackedSession.__table__
PAGEVIEWS = Pageview.__table__


def write(engine: Engine, hits: list[Hit]) -> None:
    """Store and sessionise hits in one transaction."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(sqlite_immediate=True)
            with _sqlite_writer_lock(engine), conn.begin():
                _Batch(conn, hits).run()
            return
        # PostgreSQL: the hot path drives the driver's transaction itself (pipelined commit);
        # rare work (late events, identify) goes through `conn` and its commit.
        if _Batch(conn, hits).run():
            conn.commit()


def append(engine: Engine, hits: list[Hit]) -> None:
    """Commit hits to `hits` as they are, in one statement: cheap, and enough to acknowledge them."""
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        if conn.dialect.name == "sqlite":
            conn.execution_options(sqlite_immediate=True)
            with _sqlite_writer_lock(engine), conn.begin():
                raw_hits.append(dbapi, "sqlite", hits)
            return
        raw_hits.append(dbapi, conn.dialect.name, hits)
        dbapi.commit()


class Appender:
    """`append` on a connection the writer keeps between batches: no pool checkout, no ping, and on
    PostgreSQL one round trip (the insert runs in autocommit: its own transaction, committed
    before the server answers; a pipeline would poll the socket and cost more CPU)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._held = None

    def __call__(self, engine: Engine, hits: list[Hit]) -> None:
        if self._held is None:
            self._held = engine.raw_connection()
            if engine.dialect.name == "postgresql":
                self._held.dbapi_connection.autocommit = True
        dbapi = self._held.dbapi_connection
        if engine.dialect.name == "sqlite":
            with _sqlite_writer_lock(engine):
                try:
                    dbapi.execute("BEGIN IMMEDIATE")
                    raw_hits.append(dbapi, "sqlite", hits)
                    dbapi.execute("COMMIT")
                except BaseException:
                    if dbapi.in_transaction:
                        dbapi.execute("ROLLBACK")
                    raise
            return
        try:
            raw_hits.append(dbapi, engine.dialect.name, hits)
        except BaseException:
            held, self._held = self._held, None
            held.invalidate()  # lost or broken: a fresh connection is the safe retry
            raise

    def release(self) -> None:
        """Hand the connection back to the pool (the writer is going idle)."""
        held, self._held = self._held, None
        if held is not None:
            if self.engine.dialect.name == "postgresql":
                held.dbapi_connection.autocommit = False  # as the pool hands connections out
            held.close()


def sessionise_backlog(engine: Engine, limit: int = CLAIM_LIMIT) -> int:
    """Claim up to `limit` of the oldest waiting hits and sessionise them in one transaction;
    returns how many were claimed (0: nothing waits, or other processes hold the rest)."""
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        if conn.dialect.name == "sqlite":
            conn.execution_options(sqlite_immediate=True)
            with _sqlite_writer_lock(engine), conn.begin():
                count, claimed = raw_hits.claim(dbapi, "sqlite", limit)
                if claimed:
                    _Batch(conn, claimed).run()
            return count
        count, claimed = raw_hits.claim(dbapi, conn.dialect.name, limit)
        if not claimed:
            dbapi.commit()  # hits of deleted sites are dropped; nothing else was claimed
            return count
        if _Batch(conn, claimed).run():
            conn.commit()
        return count


def drain(engine: Engine, limit: int = CLAIM_LIMIT) -> int:
    """Sessionise every waiting hit (for tests, the benchmark and operators); returns how many this
    call sessionised. Hits another process has claimed are waited for, so on return `hits` is
    empty and every page view acknowledged before the call is in `pageviews`."""
    total = 0
    while True:
        count = sessionise_backlog(engine, limit)
        total += count
        if count:
            continue
        with engine.connect() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM hits LIMIT 1").first() is None:
                return total
        time.sleep(0.05)  # claimed by another process, not yet committed


@contextmanager
def _sqlite_writer_lock(engine: Engine):
    """Queue collector processes on a file lock rather than on SQLite's busy handler, which sleeps
    in growing steps (up to 100 ms) and so turns two writers into a convoy."""
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    key = (os.getpid(), database)  # a forked child needs its own open file: flock is per file
    fd = _LOCK_FILES.get(key)
    if fd is None:
        fd = _LOCK_FILES[key] = os.open(database + ".collector-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


_LOCK_FILES: dict[tuple[int, str], int] = {}


def _session_values(landing_url, referrer, site_host, started_at, last_seen_at, count, device_type):
    touch = touch_from(landing_url, referrer, site_host)
    return {
        "started_at": started_at,
        "last_seen_at": last_seen_at,
        "pageviews": count,
        "landing_url": landing_url,
        "referrer": referrer,
        "utm_source": touch.source,
        "utm_medium": touch.medium,
        "utm_campaign": touch.campaign,
        "utm_content": touch.content,
        "utm_term": touch.term,
        "click_id": touch.click_id,
        "channel": touch.channel,
        "device_type": device_type,
    }


def _pageview_row(hit: Hit, visitor_id: int, session_id: int) -> dict:
    return {
        "site_id": hit.site_id,
        "session_id": session_id,
        "visitor_id": visitor_id,
        "ts": hit.ts,
        "url": hit.url,
        "title": hit.title,
        "referrer": hit.referrer,
        "screen_width": hit.width,
    }


class _Batch:
    def __init__(self, conn: Connection, hits: list[Hit]):
        self.conn = conn
        self.hits = hits
        self.rows = rows.for_connection(conn.connection.dbapi_connection, conn.dialect.name, citus.on(conn))

    def run(self) -> bool:
        """Write the batch; True when the caller must still commit (the hot path commits itself)."""
        visitor_ids, latest = self._upsert_visitors()
        by_visitor: dict[int, list[Hit]] = {}
        for hit in self.hits:
            if hit.pageview:
                by_visitor.setdefault(visitor_ids[(hit.site_id, hit.visitor_key)], []).append(hit)
        linked = [hit for hit in self.hits if hit.identities]
        rebuild = self._sessionise(by_visitor, latest, commit=not linked)
        for visitor_id, hits in rebuild:
            self._rebuild(visitor_id, hits)
        if not (linked or rebuild):
            return False
        if linked:
            if not self.conn.in_transaction():
                self.conn.begin()  # the session joins this transaction instead of owning its own
            with Session(bind=self.conn) as orm:
                for hit in sorted(linked, key=lambda h: h.ts):
                    visitor_id = visitor_ids[(hit.site_id, hit.visitor_key)]
                    for kind, value_hash in hit.identities:
                        link_identity(orm, hit.site_id, visitor_id, kind, value_hash)
                orm.flush()
        return True

    def _upsert_visitors(self):
        latest: dict[tuple[int, str], list] = {}
        for hit in self.hits:
            key = (hit.site_id, hit.visitor_key)
            row = latest.get(key)
            if row is None:
                latest[key] = [
                    hit.site_id,
                    hit.visitor_key,
                    hit.ts,
                    hit.ts,
                    hit.device_type,
                    hit.browser,
                    hit.os,
                ]
                continue
            row[2] = min(row[2], hit.ts)
            if hit.ts >= row[3]:
                row[3] = hit.ts
                if hit.device_type is not None:
                    row[4:7] = [hit.device_type, hit.browser, hit.os]
        # A fixed order makes concurrent processes lock shared visitors in the same order.
        return self.rows.prepare([tuple(latest[key]) for key in sorted(latest)])

    def _sessionise(self, by_visitor: dict[int, list[Hit]], latest: dict, commit: bool) -> list:
        """Fast path for page views that extend or follow a visitor's latest session; returns
        the visitors whose page views arrived out of order (to rebuild)."""
        created: list[OpenSession] = []
        extended: list[OpenSession] = []
        rebuild: list[tuple[int, list[Hit]]] = []
        for visitor_id, hits in by_visitor.items():
            if len(hits) > 1:
                hits.sort(key=lambda h: h.ts)
            current = latest.get(visitor_id)  # read for this batch: the batch may extend it
            plan: list[OpenSession] = []
            for hit in hits:
                joins = False
                if current is not None:
                    joins = continues(
                        current.started_at, current.last_seen_at, current.landing_url, hit.ts, hit.url
                    )
                    if joins is None:  # out of order: it lands inside or before known sessions
                        break
                if not joins:
                    current = OpenSession(None, visitor_id, hit.ts, hit.ts, hit.url)
                    plan.append(current)
                elif current.id is not None and not current.added:
                    plan.append(current)
                if hit.ts > current.last_seen_at:
                    current.last_seen_at = hit.ts
                current.added += 1
                current.hits.append(hit)
            else:
                for opened in plan:
                    (extended if opened.id is not None else created).append(opened)
                continue
            rebuild.append((visitor_id, hits))

        values = []
        pageviews = []
        for number, opened in enumerate(created, 1):
            landing = opened.hits[0]
            touch = touch_from(landing.url, landing.referrer, landing.site_host)
            values.append(
                (
                    landing.site_id, opened.visitor_id, opened.started_at, opened.last_seen_at,
                    opened.added, landing.url, landing.referrer, touch.source, touch.medium,
                    touch.campaign, touch.content, touch.term, touch.click_id, touch.channel,
                    landing.device_type,
                )
            )  # fmt: skip
            pageviews.extend(
                (h.site_id, None, opened.visitor_id, h.ts, h.url, h.title, h.referrer, h.width, number)
                for h in opened.hits
            )
        for opened in extended:
            pageviews.extend(
                (h.site_id, opened.id, opened.visitor_id, h.ts, h.url, h.title, h.referrer, h.width, None)
                for h in opened.hits
            )
        if pageviews or commit:
            self.rows.finish(
                values, [(o.id, o.last_seen_at, o.added, o.hits[0].site_id) for o in extended], pageviews,
                commit and not rebuild,
            )
        return rebuild

    def _rebuild(self, visitor_id: int, hits: list[Hit]) -> None:
        """Re-split a visitor's sessions from the one before `hits` on (late or backfilled events).

        Every session it keeps from there on is rewritten unlinked (`visits_linked` false), since a
        re-split moves starts and touches that later visits link to; the report build then relinks
        all of the visitor's sessions (`reports.links.link_visits`)."""
        first = min(hit.ts for hit in hits)
        anchor = self.conn.scalar(
            select(func.max(SESSIONS.c.started_at)).where(
                SESSIONS.c.visitor_id == visitor_id, SESSIONS.c.started_at <= first
            )
        )
        query = select(SESSIONS.c.id, SESSIONS.c.device_type).where(SESSIONS.c.visitor_id == visitor_id)
        if anchor is not None:
            query = query.where(SESSIONS.c.started_at >= anchor)
        old = self.conn.execute(query.order_by(SESSIONS.c.started_at, SESSIONS.c.id)).all()
        views: list[_ResplitPageview] = []
        if old:
            rows = self.conn.execute(
                select(
                    PAGEVIEWS.c.id,
                    PAGEVIEWS.c.ts,
                    PAGEVIEWS.c.url,
                    PAGEVIEWS.c.referrer,
                    PAGEVIEWS.c.session_id,
                ).where(PAGEVIEWS.c.session_id.in_([row.id for row in old]))
            )
            views = [_ResplitPageview(r.ts, r.url, r.referrer, r.id, r.session_id, None) for r in rows]
        views.extend(_ResplitPageview(h.ts, h.url, h.referrer, None, None, h) for h in hits)
        views.sort(key=lambda v: (v.ts, v.id is None, v.id or 0))
        site_id, site_host = hits[0].site_id, hits[0].site_host
        groups = partition(views)
        for number, group in enumerate(groups):
            landing = views[group[0]]
            device = landing.hit.device_type if landing.hit else None
            if device is None and old:
                device = old[min(number, len(old) - 1)].device_type
            values = _session_values(
                landing.url, landing.referrer, site_host, landing.ts, views[group[-1]].ts, len(group), device
            )
            values["visits_linked"] = False
            if number < len(old):
                session_id = old[number].id
                self.conn.execute(update(SESSIONS).where(SESSIONS.c.id == session_id).values(**values))
            else:
                session_id = self.conn.scalar(
                    insert(SESSIONS)
                    .values(site_id=site_id, visitor_id=visitor_id, **values)
                    .returning(SESSIONS.c.id)
                )
            for index in group:
                views[index].new_session_id = session_id
        moved = [
            {"pid": v.id, "sid": v.new_session_id}
            for v in views
            if v.id is not None and v.session_id != v.new_session_id
        ]
        if moved:
            self.conn.execute(
                update(PAGEVIEWS)
                .where(PAGEVIEWS.c.id == bindparam("pid"))
                .values(session_id=bindparam("sid")),
                moved,
            )
        self.conn.execute(
            insert(Pageview),
            [_pageview_row(v.hit, visitor_id, v.new_session_id) for v in views if v.hit is not None],
        )
        surplus = [row.id for row in old[len(groups) :]]
        if surplus:
            self.conn.execute(delete(SESSIONS).where(SESSIONS.c.id.in_(surplus)))


class _ResplitPageview:
    """A page view during a rebuild: stored (id) or arriving (hit)."""

    __slots__ = ("ts", "url", "referrer", "id", "session_id", "hit", "new_session_id")

    def __init__(self, ts, url, referrer, id, session_id, hit):
        self.ts = ts
        self.url = url
        self.referrer = referrer
        self.id = id
        self.session_id = session_id
        self.hit = hit
        self.new_session_id = None
