"""Tags: definitions (current and every version) and runs (status, progress, counts, evaluation).
The values themselves live in the event store (table tag_values).

Revision ID: 0011_tags
Revises: 0012_journeys
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_tags"
down_revision = "0016_pack_alerts"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("built_in", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_tag_name"),
    )
    op.create_index("ix_tags_project_id", "tags", ["project_id"])
    op.create_table(
        "tag_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(300), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_tag_versions_tag_id", "tag_versions", ["tag_id"])
    op.create_table(
        "tag_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("progress", sa.String(200), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("evaluation", sa.JSON(), nullable=True),
    )
    op.create_index("ix_tag_runs_tag_id", "tag_runs", ["tag_id"])


def downgrade() -> None:
    op.drop_index("ix_tag_runs_tag_id", "tag_runs")
    op.drop_table("tag_runs")
    op.drop_index("ix_tag_versions_tag_id", "tag_versions")
    op.drop_table("tag_versions")
    op.drop_index("ix_tags_project_id", "tags")
    op.drop_table("tags")
