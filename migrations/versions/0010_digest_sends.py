"""digest_sends: the morning emails sent, one per site, day and recipient; nightly_runs: the
nightly job's lock per site and day

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_sends",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("sent_at", tracker.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_digest_sends_site_id_sites"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "day", "recipient", name=op.f("pk_digest_sends")),
    )
    op.create_table(
        "nightly_runs",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("started_at", tracker.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", tracker.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_nightly_runs_site_id_sites"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "day", name=op.f("pk_nightly_runs")),
    )


def downgrade() -> None:
    op.drop_table("nightly_runs")
    op.drop_table("digest_sends")
