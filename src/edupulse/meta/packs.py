"""What a scenario pack installed in a project: one row per pack and project with the pack's version and, per
part of the pack, the object it made (a report, dashboard, metric or segment) and a fingerprint of that object
as installed, so that an upgrade or an uninstall can tell the objects a user changed (which stay theirs)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.db import MetadataStore
from edupulse.meta.models import Base, utcnow


class PackInstall(Base):
    __tablename__ = "pack_installs"
    __table_args__ = (UniqueConstraint("project_id", "pack", name="uq_pack_install"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    pack: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    # part key -> {"kind": report | dashboard | metric | segment, "id": ..., "fingerprint": ...}
    parts: Mapped[dict[str, Any]] = mapped_column(JSON)
    installed_by: Mapped[str] = mapped_column(String(254), default="")
    installed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class PackInstalls:
    """The install records of one metadata database."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def of_project(self, project_id: int) -> dict[str, dict[str, Any]]:
        """pack name -> {"version", "parts", "installed_by", "installed_at", "updated_at"}."""
        with self.meta.session() as s:
            rows = s.scalars(select(PackInstall).where(PackInstall.project_id == project_id))
            return {r.pack: {"version": r.version, "parts": dict(r.parts or {}), "installed_by": r.installed_by,
                             "installed_at": _aware(r.installed_at).isoformat(),
                             "updated_at": _aware(r.updated_at).isoformat()} for r in rows}

    def get(self, project_id: int, pack: str) -> dict[str, Any] | None:
        return self.of_project(project_id).get(pack)

    def save(self, project_id: int, pack: str, version: int, parts: dict[str, Any], user: str) -> None:
        with self.meta.session() as s, s.begin():
            row = s.scalar(select(PackInstall).where(PackInstall.project_id == project_id, PackInstall.pack == pack))
            if row is None:
                s.add(PackInstall(project_id=project_id, pack=pack, version=version, parts=parts, installed_by=user))
                return
            row.version, row.parts, row.updated_at = version, dict(parts), utcnow()

    def remove(self, project_id: int, pack: str) -> None:
        with self.meta.session() as s, s.begin():
            s.execute(delete(PackInstall).where(PackInstall.project_id == project_id, PackInstall.pack == pack))
