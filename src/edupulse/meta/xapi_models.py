"""Models of the xAPI document resources, the canonical Activities and the attachment contents (migration
0007_xapi_documents). The statements' own tables are in models.py.

Long identifiers (activity IRIs, agent identifiers, document ids) are looked up through a SHA-256 `*_key` of
their text: unique indexes over several 2,000-character columns exceed what PostgreSQL's b-tree accepts.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.models import Base, StatementColumns

ID = BigInteger().with_variant(Integer, "sqlite")


class XapiDocument(Base):
    """A document of the State, Agent Profile or Activity Profile resource (`resource`), in the scope of an
    Activity and/or an Agent (and a registration for State), with the content exactly as sent."""

    __tablename__ = "xapi_documents"
    __table_args__ = (UniqueConstraint("project_id", "document_key", name="uq_xapi_document_key"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(String(16))  # state, agent_profile, activity_profile
    scope_key: Mapped[str] = mapped_column(String(64), index=True)  # resource + activity + agent
    document_key: Mapped[str] = mapped_column(String(64))  # scope + registration + document id
    activity_id: Mapped[str] = mapped_column(Text, default="")
    agent_key: Mapped[str] = mapped_column(Text, default="")
    registration: Mapped[str] = mapped_column(String(36), default="")
    document_id: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(40))  # SHA-1 of the content, as Communication 3.1 requires
    updated_us: Mapped[int] = mapped_column(BigInteger)


class XapiActivity(Base):
    """The canonical definition of an Activity: what the project's statements said of it, merged (language maps
    gain languages, other properties take the latest value)."""

    __tablename__ = "xapi_activities"
    __table_args__ = (UniqueConstraint("project_id", "activity_key", name="uq_xapi_activity_key"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    activity_key: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[str] = mapped_column(Text)
    definition: Mapped[str] = mapped_column(Text)  # JSON
    updated_us: Mapped[int] = mapped_column(BigInteger)


class XapiAttachment(Base):
    """The content of an attachment sent in a multipart/mixed request, found by its SHA-2 digest (several
    statements may share one)."""

    __tablename__ = "xapi_attachments"
    __table_args__ = (UniqueConstraint("project_id", "sha2", name="uq_xapi_attachment_sha2"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sha2: Mapped[str] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class XapiPendingStatement(StatementColumns, Base):
    """A statement the server accepted (durably) and has not yet moved into xapi_statements with its filter keys:
    on SQLite the server indexes accepted statements in large batches, where one transaction per request would
    write most index pages again for each (xapi_pending.py). The columns are those of xapi_statements; `id` is
    the row id the statement gets there."""

    __tablename__ = "xapi_pending_statements"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)
