"""Several API processes: the identity log, shared counters and leases (edupulse.meta.cluster).

Revision ID: 0013_scale
Revises: 0015_packs
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_scale"
down_revision = "0011_tags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("id_type", sa.String(64), nullable=True),
        sa.Column("id_value", sa.Text(), nullable=True),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("loser_id", sa.BigInteger(), nullable=True),
        sa.Column("node", sa.String(160), nullable=False),
        sa.Column("position", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_identity_log_project", "identity_log", ["project_id", "id"])
    op.create_index("ix_identity_log_node", "identity_log", ["node"])
    op.create_table(
        "shared_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(160), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("shared_counters")
    op.drop_index("ix_identity_log_node", "identity_log")
    op.drop_index("ix_identity_log_project", "identity_log")
    op.drop_table("identity_log")
