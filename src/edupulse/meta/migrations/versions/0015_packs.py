"""Scenario packs: what each pack installed in a project (pack_installs).

Revision ID: 0015_packs
Revises: 0010_ui_catalogue
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_packs"
down_revision = "0010_ui_catalogue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pack_installs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("pack", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("installed_by", sa.String(254), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "pack", name="uq_pack_install"),
    )
    op.create_index("ix_pack_installs_project_id", "pack_installs", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_pack_installs_project_id", table_name="pack_installs")
    op.drop_table("pack_installs")
