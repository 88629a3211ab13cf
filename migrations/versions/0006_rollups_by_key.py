"""attribution rollups: one row per day and touch key, a column triple per model

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODELS = ("last_click", "last_non_direct", "first_click", "linear", "position_based", "time_decay")
KINDS = (("units", "order_units"), ("revenue", "revenue_minor"), ("new", "new_customer_units"))
KEY = "site_id, day, lookback, channel, source, medium, campaign, content, term"
# Rows carried across the change are marked with this model while both layouts coexist.
CARRIED = "(by key)"


def upgrade() -> None:
    new_columns = [f"{kind}_{model}" for model in MODELS for kind, _ in KINDS]
    with op.batch_alter_table("report_rollups") as batch:
        for name in new_columns:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
    sums = ", ".join(
        f"SUM(CASE WHEN model = '{model}' THEN {old} ELSE 0 END)" for model in MODELS for _, old in KINDS
    )
    op.execute(
        f"INSERT INTO report_rollups ({KEY}, model, order_units, revenue_minor, new_customer_units, "
        f"{', '.join(new_columns)}) SELECT {KEY}, '{CARRIED}', 0, 0, 0, {sums} FROM report_rollups "
        f"GROUP BY {KEY}"
    )
    op.execute(f"DELETE FROM report_rollups WHERE model <> '{CARRIED}'")
    op.drop_index(op.f("ix_report_rollups_site_id_lookback_model_day"), table_name="report_rollups")
    with op.batch_alter_table("report_rollups") as batch:
        for name in ("model", "order_units", "revenue_minor", "new_customer_units"):
            batch.drop_column(name)
        for name in new_columns:
            batch.alter_column(name, existing_type=sa.BigInteger(), nullable=False)
    op.create_index(
        op.f("ix_report_rollups_site_id_lookback_day"), "report_rollups", ["site_id", "lookback", "day"]
    )


def downgrade() -> None:
    with op.batch_alter_table("report_rollups") as batch:
        batch.add_column(sa.Column("model", sa.String(length=20), nullable=True))
        for _, old in KINDS:
            batch.add_column(sa.Column(old, sa.BigInteger(), nullable=True))
    for model in MODELS:
        units, revenue, new = (f"{kind}_{model}" for kind, _ in KINDS)
        zeros = ", ".join("0" for _ in MODELS for _ in KINDS)
        op.execute(
            f"INSERT INTO report_rollups ({KEY}, model, order_units, revenue_minor, new_customer_units, "
            f"{', '.join(f'{kind}_{m}' for m in MODELS for kind, _ in KINDS)}) "
            f"SELECT {KEY}, '{model}', {units}, {revenue}, {new}, {zeros} FROM report_rollups "
            f"WHERE model IS NULL AND ({units} <> 0 OR {revenue} <> 0)"
        )
    op.execute("DELETE FROM report_rollups WHERE model IS NULL")
    op.drop_index(op.f("ix_report_rollups_site_id_lookback_day"), table_name="report_rollups")
    with op.batch_alter_table("report_rollups") as batch:
        for model in MODELS:
            for kind, _ in KINDS:
                batch.drop_column(f"{kind}_{model}")
        batch.alter_column("model", existing_type=sa.String(length=20), nullable=False)
        for _, old in KINDS:
            batch.alter_column(old, existing_type=sa.BigInteger(), nullable=False)
    op.create_index(
        op.f("ix_report_rollups_site_id_lookback_model_day"),
        "report_rollups",
        ["site_id", "lookback", "model", "day"],
    )
