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
    # Dates as ISO text, looking only at the columns that hold them (a column holds one type).
    dated = [i for i in range(len(columns))
             if isinstance(next((row[i] for row in rows if row[i] is not None), None), date)]
    if dated:
        rows = [_iso_dates(row, dated) for row in rows]
    connection.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _iso_dates(row: Sequence, dated: list[int]) -> tuple:
    out = list(row)
    for i in dated:
        value = out[i]
        if isinstance(value, date):
            out[i] = value.isoformat()
    return tuple(out)
