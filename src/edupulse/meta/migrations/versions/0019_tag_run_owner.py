"""The process computing a tag run (tag_runs.owner), so a run its process left behind when killed is known over.

Revision ID: 0019_tag_run_owner
Revises: 0018_xapi_pending
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_tag_run_owner"
down_revision = "0018_xapi_pending"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tag_runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(300), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("tag_runs") as batch:
        batch.drop_column("owner")
