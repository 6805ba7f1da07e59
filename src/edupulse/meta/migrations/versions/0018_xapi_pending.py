"""Statements accepted but not yet indexed (xapi_pending_statements): on SQLite the server moves them into
xapi_statements and its key tables in large batches.

Revision ID: 0018_xapi_pending
Revises: 0017_packsviews
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_xapi_pending"
down_revision = "0017_packsviews"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "xapi_pending_statements",
        sa.Column("id", ID, primary_key=True, autoincrement=False),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("statement_id", sa.String(36), nullable=False),
        sa.Column("stored_us", sa.BigInteger(), nullable=False),
        sa.Column("verb_id", sa.String(2048), nullable=False),
        sa.Column("registration", sa.String(36), nullable=True),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("voids", sa.String(36), nullable=True),
        sa.Column("ref_id", sa.String(36), nullable=True),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("xapi_pending_statements")
