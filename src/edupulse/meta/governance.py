"""SQLAlchemy models of governance: memberships (user × project × role), sign-in sessions, personal API keys,
the append-only audit log, user activity, organization settings, notifications, advisor assignments and the
metric catalogue. The `users` table itself is in models.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.models import Base, utcnow

ID = BigInteger().with_variant(Integer, "sqlite")


class Membership(Base):
    """A user's role in one project."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "project_id", name="uq_membership"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuthSession(Base):
    """A signed-in browser: the cookie carries a random token, the table only its SHA-256."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    client: Mapped[str] = mapped_column(String(200), default="")


class PersonalKey(Base):
    """A user's API key with scopes; the key is shown once and stored as its SHA-256."""

    __tablename__ = "personal_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(100))  # space separated
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class AuditEntry(Base):
    """One thing that happened. Append-only: no code path updates or deletes a row, and database triggers
    refuse it (see the 0002 migration)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(300))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    client: Mapped[str] = mapped_column(String(200), default="")


class UserActivity(Base):
    """What a user did on a day, by kind (view: dashboards and reports; analyze: ad-hoc analysis; admin)."""

    __tablename__ = "user_activity"
    __table_args__ = (UniqueConstraint("user_id", "day", "kind", name="uq_user_activity"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    day: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=0)


class OrgSetting(Base):
    """Organization-wide settings as JSON documents by key (e.g. `lifecycle`)."""

    __tablename__ = "org_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """A message to a user (e.g. an admin told about lifecycle changes); emailed when SMTP is configured."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    emailed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    email_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    read_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class AdvisorAssignment(Base):
    """A person (named by one of their identities) assigned to an advisor, who sees only assigned persons."""

    __tablename__ = "advisor_assignments"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "id_type", "id_value", name="uq_advisor_assignment"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    id_type: Mapped[str] = mapped_column(String(32))
    id_value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Metric(Base):
    """A named metric of a project (统计口径); `definition` is the current version's, kept whole in
    MetricVersion too."""

    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_metric_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    owner_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class MetricVersion(Base):
    """Every version a metric ever had."""

    __tablename__ = "metric_versions"
    __table_args__ = (UniqueConstraint("metric_id", "version", name="uq_metric_version"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(300), default="")
