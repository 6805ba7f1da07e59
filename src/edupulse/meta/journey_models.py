"""The tables of journeys: definitions and their versions, the durable per-person state (entries), the
deliveries (one claimed row per entry and step: the unique key that makes a step act once), advisor tasks,
channels (with encrypted secrets) and the cursors of the trigger readers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.models import Base, utcnow


class JourneyRow(Base):
    __tablename__ = "journeys"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_journey_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    paused_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class JourneyVersion(Base):
    __tablename__ = "journey_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JourneyEntry(Base):
    """One person's pass through a journey: where they are (`step`), until when (`due_at`), what they wait for.
    States: pending (a "not followed by" trigger waits), cancelled (it was followed), active (due now),
    waiting (until `due_at` or `wait_event`), done, exited."""

    __tablename__ = "journey_entries"
    __table_args__ = (UniqueConstraint("journey_id", "person_key", "entry_key", name="uq_journey_entry"),
                      Index("ix_journey_entries_due", "state", "due_at"),
                      Index("ix_journey_entries_person", "project_id", "person_key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(Integer)
    person_key: Mapped[str] = mapped_column(String(300))
    entry_key: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(16))
    person: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    event: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(200), nullable=True)
    due_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    wait_event: Mapped[str | None] = mapped_column(String(100), nullable=True)
    received: Mapped[list[str]] = mapped_column(JSON, default=list)
    entered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    converted_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    exit_reason: Mapped[str] = mapped_column(String(200), default="")


class JourneyDelivery(Base):
    """One action of one entry: claimed once (unique entry and step), then sent by the outbox with the same
    idempotency key on every try. Status: pending, sending, sent, failed (retried), dead, skipped, held."""

    __tablename__ = "journey_deliveries"
    __table_args__ = (UniqueConstraint("entry_id", "step", name="uq_journey_delivery_step"),
                      UniqueConstraint("idempotency_key", name="uq_journey_delivery_key"),
                      Index("ix_journey_deliveries_due", "status", "next_attempt_at"),
                      Index("ix_journey_deliveries_person", "project_id", "person_key", "sent_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journey_entries.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(Integer)
    person_key: Mapped[str] = mapped_column(String(300))
    step: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    response: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class JourneyChannel(Base):
    """Where messages go: a webhook signing secret, an SMTP server, a DingTalk or WeCom robot. `config` holds
    what may be shown; `secret` is encrypted with the server's key (never returned by the API)."""

    __tablename__ = "journey_channels"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_journey_channel_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JourneyTask(Base):
    """A task for an advisor (call the lead, recall the student): open until done or no answer."""

    __tablename__ = "journey_tasks"
    __table_args__ = (Index("ix_journey_tasks_assignee", "project_id", "assignee_user_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("journey_deliveries.id", ondelete="CASCADE"), unique=True)
    person_key: Mapped[str] = mapped_column(String(300))
    person: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    title: Mapped[str] = mapped_column(String(300))
    note: Mapped[str] = mapped_column(Text, default="")
    assignee_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    due_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class JourneySettingsRow(Base):
    """A project's journey settings: hosts webhooks may reach, quiet hours, frequency caps, do-not-disturb tag."""

    __tablename__ = "journey_settings"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JourneyMember(Base):
    """Who was in a journey's segment or tag value at its last check (enter / leave triggers compare with it)."""

    __tablename__ = "journey_members"

    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True)
    person_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    person: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    since: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JourneyCursor(Base):
    """Where a trigger reader is: the ingestion log position read, the last run of each schedule."""

    __tablename__ = "journey_cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
