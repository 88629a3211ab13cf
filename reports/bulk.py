"""Appending many rows at once: COPY on PostgreSQL, one executemany elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy.orm import Session


def bulk_insert(session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Append rows to `table` inside the session's transaction."""
    rows = list(rows)
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    fixed = [tuple(v.isoformat() if isinstance(v, date) else v for v in row) for row in rows]
    connection.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", fixed)
