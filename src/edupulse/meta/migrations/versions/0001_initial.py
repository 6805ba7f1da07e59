"""Initial metadata schema: projects, users, quarantine, identity warnings, group types.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("write_key", sa.String(64), nullable=False, unique=True),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("api_key_prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", ID, primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(120), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_quarantine_dedupe"),
    )
    op.create_index("ix_quarantine_project_id", "quarantine", ["project_id"])
    op.create_index("ix_quarantine_received_at", "quarantine", ["received_at"])
    op.create_table(
        "identity_warnings",
        sa.Column("id", ID, primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("event_time", TS, nullable=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(120), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_identity_warning_dedupe"),
    )
    op.create_index("ix_identity_warnings_project_id", "identity_warnings", ["project_id"])
    op.create_table(
        "group_types",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_group_type_name"),
        sa.UniqueConstraint("project_id", "slot", name="uq_group_type_slot"),
    )


def downgrade() -> None:
    for table in ("group_types", "identity_warnings", "quarantine", "users", "projects"):
        op.drop_table(table)
