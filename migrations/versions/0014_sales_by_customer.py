"""report_sales: an index by customer and time, for the cohorts report's later orders

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

from tracker import citus

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_report_sales_site_id_customer_created_at"), "report_sales",
                    ["site_id", "customer", "created_at"])


def downgrade() -> None:
    citus.sequential(op.get_bind())  # the earlier revisions' downgrades change more tables after this
    op.drop_index(op.f("ix_report_sales_site_id_customer_created_at"), table_name="report_sales")
