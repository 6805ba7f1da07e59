"""Tables through which several API processes share their work (docs/scale-out.md): the identity log (every
identity link and person merge, in the order they were decided), counters handed out in blocks (person ids,
operation sequence numbers) or bumped on every write (the data version), and leases (who runs the scheduler)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.models import Base, utcnow


class IdentityLogEntry(Base):
    __tablename__ = "identity_log"
    __table_args__ = (Index("ix_identity_log_project", "project_id", "id"), Index("ix_identity_log_node", "node"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    project_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # link: (id_type, id_value) -> person_id; merge: loser -> person_id
    id_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    id_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    person_id: Mapped[int] = mapped_column(BigInteger)
    loser_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    node: Mapped[str] = mapped_column(String(160))  # the log source of the process that decided it
    position: Mapped[str] = mapped_column(String(64))  # its batch's log position there
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SharedCounter(Base):
    __tablename__ = "shared_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(160))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
