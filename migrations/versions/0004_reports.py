"""attribution rollups and report builds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.db  # noqa: F401

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_rollups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("lookback", sa.SmallInteger(), nullable=False),
        sa.Column("model", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("medium", sa.String(length=255), nullable=False),
        sa.Column("campaign", sa.String(length=255), nullable=False),
        sa.Column("content", sa.String(length=255), nullable=False),
        sa.Column("term", sa.String(length=255), nullable=False),
        sa.Column("order_units", sa.BigInteger(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.Column("new_customer_units", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_report_rollups_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rollups")),
    )
    op.create_index(
        op.f("ix_report_rollups_site_id_lookback_model_day"),
        "report_rollups",
        ["site_id", "lookback", "model", "day"],
    )
    op.create_table(
        "report_sessions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("medium", sa.String(length=255), nullable=False),
        sa.Column("campaign", sa.String(length=255), nullable=False),
        sa.Column("content", sa.String(length=255), nullable=False),
        sa.Column("term", sa.String(length=255), nullable=False),
        sa.Column("sessions", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_report_sessions_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_sessions")),
    )
    op.create_index(op.f("ix_report_sessions_site_id_day"), "report_sessions", ["site_id", "day"])
    op.create_table(
        "report_visitors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("prev_day", sa.Date(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("medium", sa.String(length=255), nullable=False),
        sa.Column("campaign", sa.String(length=255), nullable=False),
        sa.Column("content", sa.String(length=255), nullable=False),
        sa.Column("term", sa.String(length=255), nullable=False),
        sa.Column("visitors", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_report_visitors_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_visitors")),
    )
    op.create_index(
        op.f("ix_report_visitors_site_id_level_day"), "report_visitors", ["site_id", "level", "day"]
    )
    op.create_index(op.f("ix_orders_site_id_updated_at"), "orders", ["site_id", "updated_at"])
    op.create_table(
        "report_builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("lookback", sa.SmallInteger(), nullable=False),
        sa.Column("built_at", tracker.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sessions_mark", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_report_builds_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_builds")),
        sa.UniqueConstraint("site_id", "lookback", "day", name=op.f("uq_report_builds_site_id_lookback_day")),
    )


def downgrade() -> None:
    op.drop_table("report_builds")
    op.drop_index(op.f("ix_orders_site_id_updated_at"), table_name="orders")
    op.drop_index(op.f("ix_report_visitors_site_id_level_day"), table_name="report_visitors")
    op.drop_table("report_visitors")
    op.drop_index(op.f("ix_report_sessions_site_id_day"), table_name="report_sessions")
    op.drop_table("report_sessions")
    op.drop_index(op.f("ix_report_rollups_site_id_lookback_model_day"), table_name="report_rollups")
    op.drop_table("report_rollups")
