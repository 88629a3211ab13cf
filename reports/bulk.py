"""Appending many rows at once: COPY on PostgreSQL, one executemany on SQLite (the nightly
build's rollups and `tracker demo`'s synthetic history)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from typing import Protocol

from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, Engine, Table, delete, text
from sqlalchemy.orm import Session

from tracker.db import driver_cursor, driver_errors, in_own_thread, rebuildable, sqlite_time


def bulk_insert(
    connection: Connection | Session, table: str, columns: Sequence[str], rows: Iterable[Sequence]
) -> None:
    """Append rows to `table` inside the caller's transaction (the caller commits)."""
    rows = list(rows)
    if not rows:
        return
    if isinstance(connection, Session):
        connection = connection.connection()
    if connection.dialect.name == "postgresql":
        with driver_cursor(connection, f"COPY {table}") as cursor, _copy(cursor, table, columns) as copy:
            for row in rows:
                copy.write_row(row)
        return
    # SQLite: dates as ISO text and timestamps as tracker.db.UTCDateTime stores them, looking only
    # at the columns that hold them (a column holds one type).
    kinds = {}
    for i in range(len(columns)):
        sample = next((row[i] for row in rows if row[i] is not None), None)
        if isinstance(sample, datetime):
            kinds[i] = sqlite_time
        elif isinstance(sample, date):
            kinds[i] = date.isoformat
    if kinds:
        rows = [tuple(kinds[i](v) if i in kinds and v is not None else v for i, v in enumerate(row))
                for row in rows]
    marks = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


@contextmanager
def replacing(session: Session, table: Table, columns: Sequence[str], *where) -> Iterator[Rows]:
    """Replace the rows of `table` matching `where` with those the caller appends meanwhile to the
    Rows yielded.

    On PostgreSQL this runs on a connection of its own, committed on leaving (its writes are
    `rebuildable`): it is opened, the old rows deleted and a COPY started in a thread while the
    caller starts its own work, and each row is sent as it comes, so the server takes them in on
    its other core while the caller goes on making them. On SQLite (one writer) they are collected
    and written in the caller's transaction on leaving."""
    if session.get_bind().dialect.name != "postgresql":
        rows = _Collected()
        yield rows
        session.execute(delete(table).where(*where))
        bulk_insert(session, table.name, columns, rows.collected)
        return
    engine = session.get_bind()
    side = _SideCopy(engine, table, columns, where)
    with driver_errors(engine, f"COPY {table.name}"):  # a lost COPY surfaces at the caller's write_row
        try:
            yield side
        except BaseException as error:
            side.close(error)
            raise
        side.close(None)


class Rows(Protocol):
    """Where rows are appended one by one."""

    def write_row(self, row: Sequence) -> None: ...


class _Collected:
    """replacing() on SQLite: the rows kept in a list."""

    def __init__(self) -> None:
        self.collected: list[Sequence] = []
        self.write_row = self.collected.append


class _SideCopy:
    """replacing() on PostgreSQL: a COPY on a connection of its own, opened in a thread; the first
    row waits for it to be ready, the later ones go straight to it."""

    def __init__(self, engine: Engine, table: Table, columns: Sequence[str], where) -> None:
        self._stack = ExitStack()  # the connection and its cursor
        # the thread ends once the COPY is under way
        self._ready = in_own_thread(self._open, engine, table, columns, where)
        self.write_row = self._first_row

    def _open(self, engine: Engine, table: Table, columns: Sequence[str], where) -> None:
        self._connection = connection = self._stack.enter_context(engine.connect())
        rebuildable(connection)
        connection.execute(delete(table).where(*where))
        cursor = self._stack.enter_context(driver_cursor(connection, f"COPY {table.name}"))
        copying = _copy(cursor, table.name, columns, queued=True)
        self._copy = copying.__enter__()
        self._copying = copying

    def _first_row(self, row: Sequence) -> None:
        self._ready.result()
        self.write_row = self._copy.write_row
        self.write_row(row)

    def close(self, error: BaseException | None) -> None:
        """End the COPY and commit, or (after `error`) abandon both; raises what opening raised."""
        with self._stack:
            self._ready.result()
            if error is None:
                self._copying.__exit__(None, None, None)
                self._connection.commit()
            else:
                self._copying.__exit__(type(error), error, error.__traceback__)


@contextmanager
def _copy(cursor, table: str, columns: Sequence[str], queued: bool = False):
    """PostgreSQL: a COPY into `table` in the binary format, each value sent as its column's type
    (read from the catalog), so that neither side spells values out as text and parses them back.
    `queued`: sent to the server by a thread of psycopg's, so that the caller never waits on it."""
    cursor.execute(
        "SELECT a.attname, a.atttypid FROM pg_attribute a WHERE a.attrelid = %s::regclass "
        "AND a.attnum > 0 AND NOT a.attisdropped", (table,))
    oids = dict(cursor.fetchall())
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor) if queued else None) as copy:
        copy.set_types([oids[column] for column in columns])
        yield copy


def follow_ids(connection: Connection, tables: Sequence[str]) -> None:
    """After rows were appended with explicit ids, move PostgreSQL's id sequences past them (SQLite
    continues after the largest id by itself)."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
