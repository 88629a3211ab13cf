"""The raw hits table: one multi-row append per group commit, and claiming batches to sessionise.

A page view is acknowledged once its row in `hits` is committed. Any collector process, on any
host, later claims hits (deleting them in the transaction that writes their page views), so a
killed process loses nothing and no hit is sessionised twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.db import sqlite_parse, sqlite_time

HIT_COLUMNS = (
    "site_id", "visitor_key", "ts", "url", "referrer", "title", "screen_width",
    "device_type", "browser", "os",
)  # fmt: skip
_NAMES = ", ".join(HIT_COLUMNS)
_PG_ROW = "(" + ", ".join(["%s"] * len(HIT_COLUMNS)) + ")"
_SQLITE_APPEND = f"INSERT INTO hits ({_NAMES}) VALUES ({', '.join('?' * len(HIT_COLUMNS))})"
# SKIP LOCKED: concurrent claimers take disjoint batches instead of queueing on each other. One
# site at a time (the site with the oldest waiting hit first), so that on Citus the statement runs
# on the shard of that site (Citus locks rows only in a statement that reaches one shard).
_PG_WAITING_SITES = "SELECT site_id FROM hits GROUP BY site_id ORDER BY min(id)"
_PG_CLAIM = (
    "DELETE FROM hits WHERE site_id = %s AND id IN "
    "(SELECT id FROM hits WHERE site_id = %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
    f"RETURNING {_NAMES}"
)
# SQLite: the caller holds the single writer lock, so the oldest hits are nobody else's.
_SQLITE_CLAIM = f"DELETE FROM hits WHERE id IN (SELECT id FROM hits ORDER BY id LIMIT ?) RETURNING {_NAMES}"


@dataclass(slots=True)
class Hit:
    """One page view or identify, validated and ready to store (no raw IP: it never gets here)."""

    site_id: int
    site_host: str
    visitor_key: str
    ts: datetime
    pageview: bool = True
    url: str | None = None
    referrer: str | None = None
    title: str | None = None
    width: int | None = None
    device_type: str | None = None
    browser: str | None = None
    os: str | None = None
    identities: tuple[tuple[str, str], ...] = ()

    @property
    def raw(self) -> bool:
        """Can it wait in `hits`? Plain page views only; identifies link people at once."""
        return self.pageview and not self.identities


def append(dbapi_connection, dialect: str, hits: list[Hit]) -> None:
    """Insert hits in one statement (PostgreSQL) or one executemany (SQLite); the caller commits."""
    cursor = dbapi_connection.cursor()
    if dialect == "postgresql":
        # One multi-row VALUES: psycopg binds scalars in C (arrays for unnest bind in Python), and
        # batch sizes repeat, so each statement text is soon prepared.
        cursor.execute(
            f"INSERT INTO hits ({_NAMES}) VALUES " + ", ".join([_PG_ROW] * len(hits)),
            [
                value
                for h in hits
                for value in (h.site_id, h.visitor_key, h.ts, h.url, h.referrer, h.title, h.width,
                              h.device_type, h.browser, h.os)
            ],
        )  # fmt: skip
        return
    cursor.executemany(
        _SQLITE_APPEND,
        [
            (h.site_id, h.visitor_key, sqlite_time(h.ts), h.url, h.referrer, h.title, h.width,
             h.device_type, h.browser, h.os)
            for h in hits
        ],
    )  # fmt: skip


def claim(dbapi_connection, dialect: str, limit: int) -> tuple[int, list[Hit]]:
    """Delete up to `limit` of the oldest unclaimed hits inside the caller's transaction; returns how
    many were claimed and the hits to sessionise (those of sites that no longer exist are dropped)."""
    cursor = dbapi_connection.cursor()
    if dialect == "postgresql":
        cursor.execute(_PG_WAITING_SITES)
        rows = []
        for (site_id,) in cursor.fetchall():
            if len(rows) >= limit:
                break
            cursor.execute(_PG_CLAIM, (site_id, site_id, limit - len(rows)))
            rows += cursor.fetchall()
    else:
        cursor.execute(_SQLITE_CLAIM, (limit,))
        rows = [(*row[:2], sqlite_parse(row[2]), *row[3:]) for row in cursor.fetchall()]
    if not rows:
        return 0, []
    site_ids = sorted({row[0] for row in rows})
    marks = ", ".join(["%s" if dialect == "postgresql" else "?"] * len(site_ids))
    cursor.execute(f"SELECT id, domain FROM sites WHERE id IN ({marks})", site_ids)
    hosts = dict(cursor.fetchall())
    return len(rows), [
        Hit(site_id, hosts[site_id], key, ts, True, url, referrer, title, width, device, browser, os_)
        for site_id, key, ts, url, referrer, title, width, device, browser, os_ in rows
        if site_id in hosts
    ]
