"""per-site tables ready for Citus: primary keys include site_id, foreign keys only to sites

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

Citus shards every per-site table by site_id (tracker/citus.py), and asks that primary keys and
foreign keys between such tables include it. On PostgreSQL the per-site tables' primary keys become
(id, site_id), id first so that lookups by id keep their index; SQLite keeps id alone
(its row id, which it only auto-increments as the sole key).
The foreign keys between per-site tables go on every database (their cascades are the code's own
deletes); each table keeps its key to sites. On Citus the tables are then distributed
(migrations/env.py, tracker/citus.py); the downgrade brings them back to the coordinator first.
"""

from collections.abc import Sequence

from alembic import op

from tracker import citus

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYED_BY_ID = (
    "webhook_secrets", "persons", "visitors", "identities", "sessions", "pageviews", "hits", "orders",
    "refunds", "costs", "webhook_deliveries", "report_rollups", "report_sessions", "report_visitors",
    "report_builds", "claims",
)  # fmt: skip
# (table, column, referred table, on delete) of the foreign keys between per-site tables, each
# table after those that refer to it: SQLite recreates a table to drop a key, and dropping the old
# one would run the cascades of keys still pointing at it.
LINKS = (
    ("refunds", "order_id", "orders", "CASCADE"),
    ("pageviews", "session_id", "sessions", "CASCADE"),
    ("pageviews", "visitor_id", "visitors", "CASCADE"),
    ("identities", "person_id", "persons", "CASCADE"),
    ("orders", "visitor_id", "visitors", "SET NULL"),
    ("orders", "person_id", "persons", "SET NULL"),
    ("sessions", "visitor_id", "visitors", "CASCADE"),
    ("visitors", "person_id", "persons", "SET NULL"),
)


def _fk(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_{referred}"


def upgrade() -> None:
    for table in dict.fromkeys(table for table, *_ in LINKS):
        with op.batch_alter_table(table) as batch:
            for column, referred in ((c, r) for t, c, r, _ in LINKS if t == table):
                batch.drop_constraint(_fk(table, column, referred), type_="foreignkey")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in KEYED_BY_ID:
            op.drop_constraint(f"pk_{table}", table, type_="primary")
            op.create_primary_key(f"pk_{table}", table, ["id", "site_id"])
    # On Citus the tables are distributed once this revision is in (migrations/env.py).


def downgrade() -> None:
    bind = op.get_bind()
    citus.undistribute(bind)
    if bind.dialect.name == "postgresql":
        for table in KEYED_BY_ID:
            op.drop_constraint(f"pk_{table}", table, type_="primary")
            op.create_primary_key(f"pk_{table}", table, ["id"])
    for table in reversed(dict.fromkeys(table for table, *_ in LINKS)):
        with op.batch_alter_table(table) as batch:
            for column, referred, ondelete in ((c, r, d) for t, c, r, d in LINKS if t == table):
                batch.create_foreign_key(_fk(table, column, referred), referred, [column], ["id"],
                                         ondelete=ondelete)
