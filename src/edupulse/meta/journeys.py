"""Journeys in the metadata database: the current definition and status of each, every version it had.
Changes are recorded in the audit log by the caller (journeys/service.py).

Status moves draft → running ⇄ paused → finished. A running journey's trigger cannot change (pause it first);
its steps can, as a new version: persons already inside continue at the step path they are at."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edupulse.journeys.model import JourneySpec, SpecError, Status
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyRow, JourneyVersion
from edupulse.meta.models import utcnow

TRANSITIONS: dict[str, tuple[set[Status], Status]] = {
    "start": ({Status.draft, Status.paused}, Status.running),
    "pause": ({Status.running}, Status.paused),
    "finish": ({Status.draft, Status.running, Status.paused}, Status.finished),
}
DONE = {"start": "started", "pause": "paused", "finish": "finished"}


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; they are UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Journey:
    id: int
    project_id: int
    status: Status
    version: int
    spec: JourneySpec
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    paused_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def name(self) -> str:
        return self.spec.name

    def to_json(self) -> dict[str, Any]:
        def iso(moment: dt.datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {"id": self.id, **self.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
                "status": self.status.value, "version": self.version, "created_by": self.created_by,
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at),
                "started_at": iso(self.started_at), "paused_at": iso(self.paused_at),
                "finished_at": iso(self.finished_at)}


def journey_of(row: JourneyRow) -> Journey:
    return Journey(row.id, row.project_id, Status(row.status), row.version, JourneySpec.model_validate(row.spec),
                   row.created_by, aware(row.created_at) or utcnow(), aware(row.updated_at) or utcnow(),
                   aware(row.started_at), aware(row.paused_at), aware(row.finished_at))


def stored(spec: JourneySpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


class JourneyStore:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def all(self, project_id: int | None = None, status: Status | None = None) -> list[Journey]:
        """Newest first; every project's when `project_id` is None."""
        query = select(JourneyRow).order_by(JourneyRow.id.desc())
        if project_id is not None:
            query = query.where(JourneyRow.project_id == project_id)
        if status is not None:
            query = query.where(JourneyRow.status == status.value)
        with self.meta.session() as s:
            return [journey_of(r) for r in s.scalars(query)]

    def get(self, project_id: int, journey_id: int) -> Journey | None:
        with self.meta.session() as s:
            row = s.get(JourneyRow, journey_id)
            return journey_of(row) if row is not None and row.project_id == project_id else None

    def by_id(self, journey_id: int) -> Journey | None:
        with self.meta.session() as s:
            row = s.get(JourneyRow, journey_id)
            return journey_of(row) if row is not None else None

    def versions(self, journey_id: int) -> list[dict[str, Any]]:
        with self.meta.session() as s:
            rows = s.scalars(select(JourneyVersion).where(JourneyVersion.journey_id == journey_id)
                             .order_by(JourneyVersion.id))
            return [{"version": v.version, "change": v.change, "status": v.status, "author": v.author,
                     "at": (aware(v.at) or utcnow()).isoformat(), "definition": v.spec} for v in rows]

    def create(self, project_id: int, spec: JourneySpec, author: str, now: dt.datetime) -> Journey:
        with self.meta.session() as s, s.begin():
            self._name_free(s, project_id, spec.name)
            data = stored(spec)
            row = JourneyRow(project_id=project_id, name=spec.name, status=Status.draft.value, version=1, spec=data,
                             created_by=author, created_at=now, updated_at=now)
            s.add(row)
            s.flush()
            s.add(JourneyVersion(journey_id=row.id, version=1, change="created", spec=data, status=row.status,
                                 author=author, at=now))
            return journey_of(row)

    def update(self, project_id: int, journey_id: int, spec: JourneySpec, author: str, now: dt.datetime) -> Journey:
        with self.meta.session() as s, s.begin():
            row = self._row(s, project_id, journey_id)
            current = JourneySpec.model_validate(row.spec)
            if row.status == Status.finished.value:
                raise SpecError("status", "a finished journey cannot change; copy it into a new journey", 409)
            if row.status == Status.running.value and stored(current)["trigger"] != stored(spec)["trigger"]:
                raise SpecError("trigger", "a running journey's trigger cannot change: pause it first", 409)
            if spec.name != row.name:
                self._name_free(s, project_id, spec.name)
            data = stored(spec)
            if data == row.spec:
                return journey_of(row)
            row.version += 1
            row.name, row.spec, row.updated_at = spec.name, data, now
            s.add(JourneyVersion(journey_id=row.id, version=row.version, change="changed", spec=data,
                                 status=row.status, author=author, at=now))
            return journey_of(row)

    def transition(self, project_id: int, journey_id: int, change: str, author: str, now: dt.datetime) -> Journey:
        allowed, target = TRANSITIONS[change]
        with self.meta.session() as s, s.begin():
            row = self._row(s, project_id, journey_id)
            if Status(row.status) not in allowed:
                raise SpecError("status", f"journey {row.name!r} is {row.status}: it cannot {change}", 409)
            row.status, row.updated_at = target.value, now
            if change == "start":
                row.started_at, row.paused_at = row.started_at or now, None
            elif change == "pause":
                row.paused_at = now
            else:
                row.finished_at = now
            s.add(JourneyVersion(journey_id=row.id, version=row.version, change=DONE[change], spec=row.spec,
                                 status=row.status, author=author, at=now))
            return journey_of(row)

    def delete(self, project_id: int, journey_id: int) -> Journey:
        with self.meta.session() as s, s.begin():
            row = self._row(s, project_id, journey_id)
            if row.status == Status.running.value:
                raise SpecError("status", f"journey {row.name!r} is running: pause or finish it first", 409)
            gone = journey_of(row)
            s.delete(row)
            return gone

    @staticmethod
    def _name_free(s: Session, project_id: int, name: str) -> None:
        if s.scalar(select(JourneyRow.id).where(JourneyRow.project_id == project_id,
                                                JourneyRow.name == name)) is not None:
            raise SpecError("name", f"a journey named {name!r} exists already in this project", 409)

    @staticmethod
    def _row(s: Session, project_id: int, journey_id: int) -> JourneyRow:
        row = s.get(JourneyRow, journey_id)
        if row is None or row.project_id != project_id:
            raise SpecError("id", f"no journey with id {journey_id} in this project", 404)
        return row
