"""sessions: each visit's link to the visitor's previous one (any, same channel, same campaign)

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


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        for name in LINKS:
            batch.add_column(sa.Column(name, tracker.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("visits_linked", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_sessions_unlinked", "sessions", ["site_id"], unique=False,
        postgresql_where=sa.text("NOT visits_linked"), sqlite_where=sa.text("NOT visits_linked"),
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_unlinked", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("visits_linked")
        for name in reversed(LINKS):
            batch.drop_column(name)
