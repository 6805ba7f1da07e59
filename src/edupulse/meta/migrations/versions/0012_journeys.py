"""Journeys (automated operations): definitions and versions, per-person entries, deliveries claimed once per
entry and step, advisor tasks, channels with encrypted secrets, trigger cursors.

Revision ID: 0012_journeys
Revises: 0015_packs
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_journeys"
down_revision = "0015_packs"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _project() -> sa.Column:
    return sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


def _journey() -> sa.Column:
    return sa.Column("journey_id", sa.Integer(), sa.ForeignKey("journeys.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "journeys", _id(), _project(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("paused_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.UniqueConstraint("project_id", "name", name="uq_journey_name"),
    )
    op.create_index("ix_journeys_project_id", "journeys", ["project_id"])
    op.create_table(
        "journey_versions", _id(), _journey(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("author", sa.String(300), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_journey_versions_journey_id", "journey_versions", ["journey_id"])
    op.create_table(
        "journey_entries", _id(), _journey(),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("person_key", sa.String(300), nullable=False),
        sa.Column("entry_key", sa.String(200), nullable=False),
        sa.Column("arm", sa.String(16), nullable=False),
        sa.Column("person", sa.JSON(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.String(200), nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("wait_event", sa.String(100), nullable=True),
        sa.Column("received", sa.JSON(), nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("converted_at", TS, nullable=True),
        sa.Column("exit_reason", sa.String(200), nullable=False),
        sa.UniqueConstraint("journey_id", "person_key", "entry_key", name="uq_journey_entry"),
    )
    op.create_index("ix_journey_entries_journey_id", "journey_entries", ["journey_id"])
    op.create_index("ix_journey_entries_due", "journey_entries", ["state", "due_at"])
    op.create_index("ix_journey_entries_person", "journey_entries", ["project_id", "person_key"])
    op.create_table(
        "journey_deliveries", _id(), _journey(),
        sa.Column("entry_id", sa.Integer(), sa.ForeignKey("journey_entries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("person_key", sa.String(300), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.UniqueConstraint("entry_id", "step", name="uq_journey_delivery_step"),
        sa.UniqueConstraint("idempotency_key", name="uq_journey_delivery_key"),
    )
    op.create_index("ix_journey_deliveries_journey_id", "journey_deliveries", ["journey_id"])
    op.create_index("ix_journey_deliveries_due", "journey_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_journey_deliveries_person", "journey_deliveries", ["project_id", "person_key", "sent_at"])
    op.create_table(
        "journey_channels", _id(), _project(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_journey_channel_name"),
    )
    op.create_index("ix_journey_channels_project_id", "journey_channels", ["project_id"])
    op.create_table(
        "journey_tasks", _id(), _project(), _journey(),
        sa.Column("delivery_id", sa.Integer(), sa.ForeignKey("journey_deliveries.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("person_key", sa.String(300), nullable=False),
        sa.Column("person", sa.JSON(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("assignee_user_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
    )
    op.create_index("ix_journey_tasks_journey_id", "journey_tasks", ["journey_id"])
    op.create_index("ix_journey_tasks_assignee", "journey_tasks", ["project_id", "assignee_user_id", "status"])
    op.create_table(
        "journey_settings",
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "journey_members",
        sa.Column("journey_id", sa.Integer(), sa.ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("person_key", sa.String(300), primary_key=True),
        sa.Column("person", sa.JSON(), nullable=False),
        sa.Column("since", TS, nullable=False),
    )
    op.create_table(
        "journey_cursors",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("position", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("journey_cursors", "journey_members", "journey_settings", "journey_tasks", "journey_channels",
                  "journey_deliveries", "journey_entries", "journey_versions", "journeys"):
        op.drop_table(table)
