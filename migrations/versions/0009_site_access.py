"""Per-site access: users are admins or viewers of named sites, tokens see every site or named ones;
deliveries found by their order (erasing a person's orders' bodies)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

Users and tokens made before keep what they had: every site (users become admins).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        # Existing users saw every site: they are admins. New users are given a role explicitly.
        batch.add_column(sa.Column("role", sa.String(length=16), nullable=False, server_default="admin"))
        batch.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("role", server_default=None, existing_type=sa.String(length=16),
                           existing_nullable=False)
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("all_sites", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "user_sites",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_user_sites_site_id_sites"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_sites_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "site_id", name=op.f("pk_user_sites")),
    )
    op.create_table(
        "api_token_sites",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_api_token_sites_site_id_sites"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"],
                                name=op.f("fk_api_token_sites_token_id_api_tokens"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_id", "site_id", name=op.f("pk_api_token_sites")),
    )
    op.create_index("ix_webhook_deliveries_site_id_order_external_id", "webhook_deliveries",
                    ["site_id", "order_external_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_site_id_order_external_id", table_name="webhook_deliveries")
    op.drop_table("api_token_sites")
    op.drop_table("user_sites")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("all_sites")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_epoch")
        batch.drop_column("role")
