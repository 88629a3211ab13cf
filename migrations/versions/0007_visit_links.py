"""sessions: each visit's link to the visitor's previous one (any, same channel, same campaign);
rollup tables without a foreign key to sites (report_builds keeps it)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Existing sessions start unlinked; the next `tracker reports build` links them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINKS = ("prev_visit_at", "prev_channel_visit_at", "prev_campaign_visit_at")
ROLLUPS = ("report_rollups", "report_sessions", "report_visitors")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        for name in LINKS:
            batch.add_column(sa.Column(name, tracker.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("visits_linked", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_sessions_unlinked", "sessions", ["site_id"], unique=False,
        postgresql_where=sa.text("NOT visits_linked"), sqlite_where=sa.text("visits_linked = 0"),
    )
    for table in ROLLUPS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_site_id_sites", type_="foreignkey")


def downgrade() -> None:
    for table in ROLLUPS:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                f"fk_{table}_site_id_sites", "sites", ["site_id"], ["id"], ondelete="CASCADE")
    op.drop_index("ix_sessions_unlinked", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("visits_linked")
        for name in reversed(LINKS):
            batch.drop_column(name)
