"""Every wait on the database is bounded: no request, command or background thread waits for ever.

When the database hangs (a network partition, a stuck lock, a full disk, a SQLite file locked by
another process), each caller must still answer in time: a store's webhook before the store gives
up on it (Shopify waits 5 s), a load balancer's health check, a page view, a report page.

A thread says how long its database work may take:

- `within(seconds)`: a deadline for everything that follows (one request, one batch of the
  collector's writer);
- otherwise the engine's statement limit: no single statement of a command or a background job
  may take longer (the deadline moves on with each statement).

and every wait ends by then:

- acquiring a pooled connection: the pool waits at most the time left (`BoundedPool`);
- connecting: the driver's connect timeout is the time left (at least libpq's floor of 2 s on
  PostgreSQL); with no time left, no attempt is made;
- a statement or a commit: a watchdog thread breaks the connections held by a thread whose time
  is up. On PostgreSQL it shuts the socket down (a server that does not answer would not answer a
  cancel request either); on SQLite, whose waits are for a lock, the busy timeout is the time
  left and the watchdog interrupts a statement still running. The waiting thread gets the
  driver's OperationalError; SQLAlchemy discards a broken connection.

The dialect differences of this feature live here; `tracker.db.make_engine` installs it.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool

log = logging.getLogger(__name__)

# How often the watchdog looks for threads whose time is up.
TICK = 0.05
# libpq counts a connect timeout in whole seconds and never less than 2.
PG_CONNECT_FLOOR = 2
# SQLite's busy timeout when nothing shorter is asked for (what make_engine sets on connect).
SQLITE_BUSY_DEFAULT = 30.0


class _State:
    """One thread's deadline and the connections it holds (id -> (dbapi connection, pool entry info))."""

    __slots__ = ("deadline", "fixed", "limit", "held")

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.fixed = False  # a `within` deadline (else it moves on with each statement)
        self.limit: float | None = None  # the statement limit of the engine last used
        self.held: dict[int, tuple[object, dict]] = {}


_local = threading.local()
# Guards every state's deadline and held connections, `_armed` and `_holders`.
_lock = threading.Lock()
_armed: set[_State] = set()  # the states the watchdog looks at: a deadline is set
_holders: dict[int, _State] = {}  # id of a held connection -> the state holding it
_watchdog: list = [None, 0]  # [thread, pid]


def _state() -> _State:
    state = getattr(_local, "state", None)
    if state is None:
        state = _local.state = _State()
    return state


def remaining() -> float | None:
    """Seconds left to the current thread's deadline (never negative), or None without one."""
    state = _state()
    if state.deadline is None:
        return None
    return max(0.0, state.deadline - time.monotonic())


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Bound the database work of the block (nested blocks never extend an outer deadline)."""
    state = _state()
    saved = (state.deadline, state.fixed)
    deadline = time.monotonic() + seconds
    if state.fixed and state.deadline is not None:
        deadline = min(deadline, state.deadline)
    with _lock:
        state.deadline, state.fixed = deadline, True
        _arm(state)
        held = list(state.held.values())
    for connection, info in held:
        _set_busy(connection, info)
    try:
        yield
    finally:
        with _lock:
            state.deadline, state.fixed = saved
            if not state.fixed:  # back to the statement limit, counted from now
                _reset(state)


def _reset(state: _State) -> None:
    """Outside `within` (lock held): armed with the statement limit while connections are held."""
    if state.held and state.limit is not None:
        state.deadline = time.monotonic() + state.limit
        _arm(state)
    else:
        state.deadline = None
        _armed.discard(state)


def _arm(state: _State) -> None:
    """Watch the state (lock held); start the watchdog in this process if it is not running."""
    _armed.add(state)
    thread, pid = _watchdog
    if thread is None or pid != os.getpid() or not thread.is_alive():
        thread = threading.Thread(target=_watch, name="tracker-db-watchdog", daemon=True)
        _watchdog[:] = [thread, os.getpid()]
        thread.start()


def _watch() -> None:
    while True:
        time.sleep(TICK)
        now = time.monotonic()
        with _lock:
            for state in list(_armed):
                if state.deadline is None or state.deadline > now:
                    continue
                for key, (connection, _info) in list(state.held.items()):
                    # Once per connection: a broken one fails its next use at once anyway, and an
                    # interrupted SQLite connection must be able to roll back.
                    del state.held[key]
                    _holders.pop(key, None)
                    _break(connection)
                if not state.fixed:
                    _reset(state)


def _break(connection) -> None:
    """End whatever the connection is waiting for (the watchdog's lock is held)."""
    try:
        if isinstance(connection, sqlite3.Connection):
            connection.interrupt()
            return
        fd = connection.pgconn.socket
        # A duplicate of the descriptor: shutting it down ends the socket for every descriptor
        # (the driver's wait returns at once), and closing the duplicate leaves the driver's own.
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception as exc:  # already closed or lost: nothing is waiting on it
        log.debug("database watchdog: %s", exc)
        return
    log.warning("database did not answer in time; connection broken so that its caller can answer")


def _hold(connection, info: dict, limit: float) -> None:
    """The current thread now holds `connection` (checked out, or connected, by it)."""
    state = _state()
    key = id(connection)
    with _lock:
        state.limit = limit
        previous = _holders.get(key)
        if previous is not None and previous is not state:
            previous.held.pop(key, None)
        _holders[key] = state
        state.held[key] = (connection, info)
        if state.fixed:
            _arm(state)
        else:
            _reset(state)
    _set_busy(connection, info)


def _release(connection) -> None:
    """`connection` went back to the pool, or is being closed: never break it from now on (it may
    be returned by another thread: the pool's cleanup, garbage collection)."""
    key = id(connection)
    with _lock:
        state = _holders.pop(key, None)
        if state is None:
            return
        state.held.pop(key, None)
        if not state.fixed and not state.held:
            _reset(state)


def _statement(limit: float) -> None:
    """A statement starts: outside a `within` block, the thread has `limit` seconds for it."""
    state = _state()
    if state.fixed or not state.held:
        return
    with _lock:
        state.limit = limit
        _reset(state)


def _set_busy(connection, info: dict) -> None:
    """SQLite waits for another process's lock for the busy timeout: at most the time left."""
    if not isinstance(connection, sqlite3.Connection):
        return
    left = remaining()
    seconds = SQLITE_BUSY_DEFAULT if left is None else min(SQLITE_BUSY_DEFAULT, left)
    millis = max(1, int(seconds * 1000))
    if info.get("busy_ms") != millis:
        connection.execute(f"PRAGMA busy_timeout={millis}")
        info["busy_ms"] = millis


def connect_timeout(dialect_name: str, configured: float, dbapi) -> float:
    """The driver's connect timeout for a connection made now; raises the driver's
    OperationalError when the thread has no time left to connect."""
    left = remaining()
    if left is not None and left <= 0:
        raise dbapi.OperationalError("no time left to connect to the database")
    seconds = configured if left is None else min(configured, left)
    if dialect_name == "postgresql":
        return max(PG_CONNECT_FLOOR, math.ceil(seconds))
    return seconds


# What drivers say when the database did not answer (in time, or at all), rather than about the
# statement: psycopg's and libpq's messages, SQLite's busy and interrupted statements.
_UNANSWERED = (
    "timeout", "timed out", "connect", "closed", "terminat", "locked", "interrupted", "no time left",
)


def unanswered(exc: BaseException) -> bool:
    """Whether a database error means that the database did not answer, so trying again later
    may succeed (a missing table or a bad statement would fail again)."""
    if isinstance(exc, (InterfaceError, PoolTimeout)):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if exc.connection_invalidated:
        return True
    message = str(exc.orig).lower()
    return any(word in message for word in _UNANSWERED)


class BoundedPool(QueuePool):
    """SQLAlchemy's queue pool whose wait for a free connection is bounded by the time left, and
    whose connections count as held from the moment they leave the pool (so the liveness ping
    before a checkout is bounded too)."""

    statement_limit = 600.0  # set by `install`

    @property
    def _timeout(self) -> float:
        left = remaining()
        return self._configured_timeout if left is None else max(0.001, min(self._configured_timeout, left))

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._configured_timeout = value

    def recreate(self) -> BoundedPool:
        # QueuePool.recreate passes the timeout as read now (bounded by a deadline); keep ours.
        pool = super().recreate()
        pool._configured_timeout = self._configured_timeout
        pool.statement_limit = self.statement_limit
        return pool

    def _do_get(self):
        record = super()._do_get()
        if record.dbapi_connection is not None:
            _hold(record.dbapi_connection, record.info, self.statement_limit)
        return record


def install(engine: Engine, connect_seconds: float, statement_limit: float) -> None:
    """Bound every wait of `engine`'s connections (called by make_engine)."""
    name = engine.dialect.name
    dbapi = engine.dialect.loaded_dbapi
    if isinstance(engine.pool, BoundedPool):
        engine.pool.statement_limit = statement_limit

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, _cargs, cparams):
        seconds = connect_timeout(name, connect_seconds, dbapi)
        if name == "postgresql":
            cparams["connect_timeout"] = seconds
        else:
            cparams["timeout"] = seconds

    @event.listens_for(engine, "connect")
    def _connected(connection, record):
        _hold(connection, record.info, statement_limit)

    @event.listens_for(engine, "checkout")
    def _checkout(connection, record, _proxy):
        _hold(connection, record.info, statement_limit)

    for pool_event in ("checkin", "invalidate", "soft_invalidate", "close", "detach", "close_detached"):
        event.listen(engine, pool_event, _release_event(pool_event))

    if name == "postgresql":
        # A connection broken here (or lost) has nothing to roll back when it returns to the pool;
        # trying would only log a traceback. The pool's ping replaces it at its next checkout.
        rollback = engine.dialect.do_rollback

        def do_rollback(connection) -> None:
            if not getattr(getattr(connection, "dbapi_connection", connection), "broken", False):
                rollback(connection)

        engine.dialect.do_rollback = do_rollback

    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn, _cursor, _statement_text, _parameters, _context, _executemany):
        _statement(statement_limit)


def _release_event(name: str):
    # Each pool event passes the DBAPI connection first; the rest differ.
    def handler(connection, *_args):
        if connection is not None:
            _release(connection)

    handler.__name__ = f"_release_on_{name}"
    return handler
