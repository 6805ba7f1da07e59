"""SQLAlchemy models of the metadata database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, dt.datetime: DateTime(timezone=True)}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    write_key: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # governance (0002): lifecycle, lockout and activity
    name: Mapped[str] = mapped_column(String(100), default="")
    disabled_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_active_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class QuarantinedRecord(Base):
    """A record that was refused, kept whole with the reason so nothing is dropped silently."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_quarantine_dedupe"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    record: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(120))


class IdentityWarning(Base):
    """A link between identities that was refused (e.g. two different login_ids)."""

    __tablename__ = "identity_warnings"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_identity_warning_dedupe"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    event_time: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(120))


class GroupType(Base):
    """Maps a project's group type (school, institution, class...) to one of the store's group slots."""

    __tablename__ = "group_types"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_group_type_name"),
        UniqueConstraint("project_id", "slot", name="uq_group_type_slot"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    slot: Mapped[int] = mapped_column(Integer)


class StatementColumns:
    """The columns of a stored xAPI statement: those of xapi_statements and of xapi_pending_statements (accepted,
    not yet indexed; xapi_models.py), which are written from one tuple of values (meta/xapi_writes.py)."""

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    statement_id: Mapped[str] = mapped_column(String(36))
    stored_us: Mapped[int] = mapped_column(BigInteger)
    verb_id: Mapped[str] = mapped_column(String(2048))
    registration: Mapped[str | None] = mapped_column(String(36), nullable=True)
    voided: Mapped[bool] = mapped_column(default=False)
    voids: Mapped[str | None] = mapped_column(String(36), nullable=True)
    ref_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    signature: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)


class XapiStatement(StatementColumns, Base):
    """An xAPI statement stored whole (`document`, the exact JSON returned on GET), with the keys its filters
    use. `id` orders statements by arrival, which is the order of `stored`."""

    __tablename__ = "xapi_statements"
    __table_args__ = (
        UniqueConstraint("project_id", "statement_id", name="uq_xapi_statement_id"),
        *(Index(f"ix_xapi_statements_{c}", c, sqlite_where=text(f"{c} IS NOT NULL"),
                postgresql_where=text(f"{c} IS NOT NULL")) for c in ("voids", "ref_id", "registration")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    verb_id: Mapped[str] = mapped_column(String(2048), index=True)  # the verb filter


class XapiStatementAgent(Base):
    """An Agent or identified Group a statement concerns: `direct` for its actor and object (the `agent` filter),
    else one of the others `related_agents` looks at (authority, instructor, team, sub-statement). The primary key
    is the filter's lookup (a table without rowid on SQLite: one B-tree per row, not a table and two indexes)."""

    __tablename__ = "xapi_statement_agents"
    __table_args__ = {"sqlite_with_rowid": False}

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    agent_key: Mapped[str] = mapped_column(String(2100), primary_key=True)
    statement_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    direct: Mapped[bool] = mapped_column(default=True)


class XapiStatementActivity(Base):
    """An Activity a statement concerns: `direct` for its object, else a context or sub-statement activity."""

    __tablename__ = "xapi_statement_activities"
    __table_args__ = {"sqlite_with_rowid": False}

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(2048), primary_key=True)
    statement_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    direct: Mapped[bool] = mapped_column(default=True)


class Segment(Base):
    """A saved person definition (see queries/segments.py), usable as a filter in every analysis."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_segment_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
