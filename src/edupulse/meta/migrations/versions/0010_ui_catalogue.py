"""Data catalogue: display names and descriptions per language (catalog_descriptions.texts); reports keep
their display choices (reports.view: order of breakdown values, hiding "other values", chart type).

Revision ID: 0010_ui_catalogue
Revises: 0008_experiments
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_ui_catalogue"
down_revision = "0008_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_descriptions") as batch:
        batch.add_column(sa.Column("texts", sa.JSON(), nullable=True))
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("view", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("view")
    with op.batch_alter_table("catalog_descriptions") as batch:
        batch.drop_column("texts")
