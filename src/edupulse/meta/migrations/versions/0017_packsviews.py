"""The owner, backup and targets of each school of a project (the school accounts pack: school_accounts).

Revision ID: 0017_packsviews
Revises: 0013_scale
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_packsviews"
down_revision = "0013_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "school_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("school_id", sa.String(200), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("backup_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("parent_target", sa.Float(), nullable=True),
        sa.Column("teacher_target", sa.Float(), nullable=True),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("updated_by", sa.String(254), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "school_id", name="uq_school_account"),
    )
    op.create_index("ix_school_accounts_project_id", "school_accounts", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_school_accounts_project_id", table_name="school_accounts")
    op.drop_table("school_accounts")
