"""Appending many rows at once: COPY on PostgreSQL, one executemany on SQLite (the nightly
build's rollups and `tracker demo`'s synthetic history)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from tracker.db import sqlite_time


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
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
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


def follow_ids(connection: Connection, tables: Sequence[str]) -> None:
    """After rows were appended with explicit ids, move PostgreSQL's id sequences past them (SQLite
    continues after the largest id by itself)."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
