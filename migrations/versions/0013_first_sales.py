"""report_first_sales and report_sales, for the cohorts report

report_first_sales: each new customer's first sale per day and credited touch key;
report_sales: each counted order with its customer and net revenue.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.db
from tracker import citus

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _primary_key(table: str) -> sa.PrimaryKeyConstraint:
    """(id, site_id) on PostgreSQL, as for every per-site table since 0012 (Citus asks it); id
    alone on SQLite, its row id."""
    columns = ["id", "site_id"] if op.get_bind().dialect.name == "postgresql" else ["id"]
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def upgrade() -> None:
    op.create_table(
        "report_first_sales",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("units_last_click", sa.BigInteger(), nullable=False),
        sa.Column("revenue_last_click", sa.BigInteger(), nullable=False),
        sa.Column("units_last_non_direct", sa.BigInteger(), nullable=False),
        sa.Column("revenue_last_non_direct", sa.BigInteger(), nullable=False),
        sa.Column("units_first_click", sa.BigInteger(), nullable=False),
        sa.Column("revenue_first_click", sa.BigInteger(), nullable=False),
        sa.Column("units_linear", sa.BigInteger(), nullable=False),
        sa.Column("revenue_linear", sa.BigInteger(), nullable=False),
        sa.Column("units_position_based", sa.BigInteger(), nullable=False),
        sa.Column("revenue_position_based", sa.BigInteger(), nullable=False),
        sa.Column("units_time_decay", sa.BigInteger(), nullable=False),
        sa.Column("revenue_time_decay", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("medium", sa.String(length=255), nullable=False),
        sa.Column("campaign", sa.String(length=255), nullable=False),
        sa.Column("content", sa.String(length=255), nullable=False),
        sa.Column("term", sa.String(length=255), nullable=False),
        _primary_key("report_first_sales"),
    )
    op.create_index(op.f("ix_report_first_sales_site_id_day"), "report_first_sales", ["site_id", "day"])

    op.create_table(
        "report_sales",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("customer", sa.BigInteger(), nullable=False),
        sa.Column("created_at", tracker.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        _primary_key("report_sales"),
    )
    op.create_index(op.f("ix_report_sales_site_id_day"), "report_sales", ["site_id", "day"])


def downgrade() -> None:
    citus.sequential(op.get_bind())  # the earlier revisions' downgrades change more tables after these
    op.drop_index(op.f("ix_report_sales_site_id_day"), table_name="report_sales")
    op.drop_table("report_sales")
    op.drop_index(op.f("ix_report_first_sales_site_id_day"), table_name="report_first_sales")
    op.drop_table("report_first_sales")
