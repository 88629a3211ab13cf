"""Database plumbing: the declarative base, column types, engines and the per-request session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from tracker import citus
from tracker import waits as bounded_waits
from tracker.config import Waits
from tracker.waits import BoundedPool

if TYPE_CHECKING:  # Flask only at request time: command-line tools start without it
    from flask import Flask

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite databases that live in one connection (one per process, shared by its threads).
MEMORY_URLS = ("sqlite://", "sqlite:///:memory:")

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sqlite_time(value: datetime) -> str:
    """A timestamp as UTCDateTime stores it on SQLite, for statements sent to the driver directly."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_parse(value: str) -> datetime:
    """A timestamp read from SQLite by the driver directly, as UTCDateTime returns it."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def epoch_sql(column: str, dialect: str) -> str:
    """A UTCDateTime column as seconds since 1970 (a float), for arithmetic in SQL on either dialect."""
    if dialect == "postgresql":
        return f"date_part('epoch', {column})"  # a float; extract() would give a numeric
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def without_jit(session: Session) -> None:
    """For the rest of the transaction, PostgreSQL runs statements without compiling them (JIT): for
    per-order lookups and scans of millions of rows its estimates are high enough to compile, which
    costs more than running them. Does nothing on SQLite."""
    _set_local(session, "jit", "off")


@contextmanager
def without_nested_loops(session: Session) -> Iterator[None]:
    """Within the block, PostgreSQL joins by hashing or merging, never by a nested loop. For
    statements over tables a build has just rewritten, which may have no statistics yet: estimating
    each side at a few rows, the planner would read one side again for every row of the other
    (minutes on a large site); hashing reads each side once. Does nothing on SQLite."""
    _set_local(session, "enable_nestloop", "off")
    yield
    _set_local(session, "enable_nestloop", "DEFAULT")


@contextmanager
def driver_cursor(connection: Connection, statement: str) -> Iterator:
    """The driver's own cursor on `connection`, for what SQLAlchemy does not offer (a COPY, a read
    streamed in chunks), whose errors are raised as driver_errors says."""
    with driver_errors(connection, statement):
        yield connection.connection.driver_connection.cursor()


@contextmanager
def driver_errors(bind: Connection | Engine, statement: str) -> Iterator[None]:
    """Errors of the driver's own cursor raised as SQLAlchemy raises those of the statements it
    runs, so that the commands, their retries and tracker.waits.unanswered know them (a connection
    lost in the middle of a COPY is a database that did not answer)."""
    dialect = bind.dialect
    try:
        yield
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            statement, None, error, dialect.loaded_dbapi.Error, dialect=dialect,
            connection_invalidated=dialect.is_disconnect(error, None, None),
        ) from error


def in_own_thread(work: Callable[..., None], *args) -> Future:
    """`work(*args)` started in a thread of its own, which ends with it: for a statement on a
    connection of its own while the caller goes on (the caller waits on the Future returned)."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(work, *args)
    pool.shutdown(wait=False)
    return future


def rebuildable(session: Session | Connection) -> None:
    """For the rest of the transaction, its commit does not wait for the disk on PostgreSQL: what
    it writes is derived and rewritten by the next run (the nightly build), so a crash may lose it
    but never leaves it half-written. Does nothing on SQLite."""
    _set_local(session, "synchronous_commit", "off")


def _set_local(session: Session | Connection, setting: str, value: str) -> None:
    """SET LOCAL on PostgreSQL, passed on to the workers on Citus (which keeps SET LOCAL to the
    coordinator unless asked)."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name != "postgresql":
        return
    connection = session.connection() if isinstance(session, Session) else session
    if citus.on(connection):
        connection.exec_driver_sql("SET LOCAL citus.propagate_set_commands = 'local'")
    connection.exec_driver_sql(f"SET LOCAL {setting} = {value}")


def make_engine(url: str, waits: Waits | None = None, **kwargs) -> Engine:
    """Create an engine tuned for the backend (WAL and foreign keys on SQLite, pooling on
    PostgreSQL) whose every wait is bounded as `waits` says (tracker.waits)."""
    waits = waits or Waits()
    memory = url in MEMORY_URLS
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        kwargs.setdefault("poolclass", BoundedPool)
        if kwargs["poolclass"] is BoundedPool:
            kwargs.setdefault("pool_size", 5)
            kwargs.setdefault("max_overflow", 10)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    bounded_waits.install(engine, waits.connect, waits.statement)
    return engine


def _sqlite_on_connect(dbapi_connection, _record):
    # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are unreliable).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(bounded_waits.SQLITE_BUSY_DEFAULT * 1000)}")
    cursor.close()


def _sqlite_on_begin(conn):
    # A writer asks for the lock up front (BEGIN IMMEDIATE) so that concurrent writers queue
    # on busy_timeout instead of failing when a read transaction tries to upgrade.
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def insert_for(session: Session):
    """The dialect's INSERT, whose ON CONFLICT clauses (upserts) SQLAlchemy spells per dialect."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer (BEGIN IMMEDIATE on SQLite, no-op elsewhere)."""
    session.connection(execution_options={"sqlite_immediate": True})


def init_app(app: Flask) -> None:
    """Attach an engine and a session factory to the app; close the request's session at teardown."""
    config = app.config["TRACKER"]
    engine = make_engine(config.database_url, config.waits)
    app.extensions["tracker.engine"] = engine
    app.extensions["tracker.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def get_engine(app: Flask | None = None) -> Engine:
    # Flask is imported where a request needs it: the command line starts 0.17 s sooner without it.
    from flask import current_app

    return (app or current_app).extensions["tracker.engine"]


def session_factory(app: Flask | None = None) -> sessionmaker[Session]:
    from flask import current_app  # as in get_engine

    return (app or current_app).extensions["tracker.sessionmaker"]


def get_session() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    from flask import g  # as in get_engine

    if "db_session" not in g:
        g.db_session = session_factory()()
    return g.db_session


def _close_session(_exc):
    from flask import g  # as in get_engine

    session = g.pop("db_session", None)
    if session is not None:
        session.close()
