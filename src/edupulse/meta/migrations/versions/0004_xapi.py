"""xAPI statements stored whole, with the keys of the statement filters.

Revision ID: 0004_xapi
Revises: 0002_governance
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_xapi"
down_revision = "0002_governance"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "xapi_statements",
        sa.Column("id", ID, primary_key=True),
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
        sa.UniqueConstraint("project_id", "statement_id", name="uq_xapi_statement_id"),
    )
    op.create_index("ix_xapi_statements_verb_id", "xapi_statements", ["verb_id"])
    op.create_index("ix_xapi_statements_registration", "xapi_statements", ["registration"])
    op.create_index("ix_xapi_statements_voids", "xapi_statements", ["voids"])
    op.create_index("ix_xapi_statements_ref_id", "xapi_statements", ["ref_id"])
    for table, column in (("xapi_statement_agents", "agent_key"), ("xapi_statement_activities", "activity_id")):
        op.create_table(
            table,
            sa.Column("id", ID, primary_key=True),
            sa.Column("statement_pk", ID, sa.ForeignKey("xapi_statements.id", ondelete="CASCADE"), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column(column, sa.String(2100 if column == "agent_key" else 2048), nullable=False),
            sa.Column("direct", sa.Boolean(), nullable=False),
        )
        op.create_index(f"ix_{table}_statement_pk", table, ["statement_pk"])
        op.create_index(f"ix_{table}_{column}", table, ["project_id", column])


def downgrade() -> None:
    for table in ("xapi_statement_activities", "xapi_statement_agents", "xapi_statements"):
        op.drop_table(table)
