"""Rows and bytes per table of a tracker database, for the capacity model in docs/citus.md.

    .venv/bin/python bench/sizes.py URL

For each table with rows: the row count, the average row as stored (`pg_column_size` of the row),
and the table's total size (heap, TOAST and indexes; on Citus summed over its shards with
`citus_total_relation_size`) per row. Then page views per session and per visitor, and webhook
deliveries and refunds per order. PostgreSQL or Citus; figures only.
"""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, inspect, text


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: bench/sizes.py DATABASE_URL")
    engine = create_engine(sys.argv[1])
    with engine.connect() as conn:
        citus = bool(conn.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'citus'")))
        total = "citus_total_relation_size"  # summed over the shards
        counts = {}
        kind = "Citus" if citus else "PostgreSQL"
        print(f"{'table':22} {'rows':>10} {'bytes/row':>10} {'total/row':>10}  ({kind})")
        placed = set(conn.scalars(text("SELECT table_name::text FROM citus_tables"))) if citus else set()
        for table in sorted(inspect(conn).get_table_names()):
            rows = conn.scalar(text(f"SELECT count(*) FROM {table}"))
            counts[table] = rows
            if not rows:
                continue
            row = conn.scalar(text(f"SELECT avg(pg_column_size(t.*)) FROM {table} t"))
            function = total if table in placed else "pg_total_relation_size"
            size = conn.scalar(text(f"SELECT {function}('{table}')"))
            print(f"{table:22} {rows:10d} {float(row):10.0f} {size / rows:10.0f}")
    engine.dispose()

    def ratio(a: str, b: str) -> str:
        return f"{counts[a] / counts[b]:.2f}" if counts.get(b) else "-"

    print(f"\npage views per session {ratio('pageviews', 'sessions')}, per visitor "
          f"{ratio('pageviews', 'visitors')}; webhook deliveries per order "
          f"{ratio('webhook_deliveries', 'orders')}, refunds per order {ratio('refunds', 'orders')}")


if __name__ == "__main__":
    main()
