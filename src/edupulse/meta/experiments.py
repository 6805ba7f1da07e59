"""Experiments in the metadata database: the current definition and status of each, every version it ever
had, and the runs (start and stop). Changes are recorded in the audit log by the caller.

A running experiment's assignment (variants, weights, seed, coverage, unit, targeting, namespace) cannot
change: stop it, change it (a new version) and start it again; its results then cover the new run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.experiments.model import ExperimentSpec, SpecError, Status
from edupulse.meta.db import MetadataStore
from edupulse.meta.models import Base, utcnow


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("project_id", "key", name="uq_experiment_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=Status.draft.value)
    version: Mapped[int] = mapped_column(Integer, default=1)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class ExperimentVersion(Base):
    """Every version of an experiment: the definition, what happened (created, changed, started, stopped)."""

    __tablename__ = "experiment_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(300), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Experiment:
    """An experiment as stored: its definition (spec), status, version and current run."""

    id: int
    project_id: int
    key: str
    status: Status
    version: int
    spec: ExperimentSpec
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        return {**self.spec.model_dump(mode="json"), "status": self.status.value, "version": self.version,
                "created_by": self.created_by, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None}


def _experiment(row: ExperimentRow) -> Experiment:
    return Experiment(row.id, row.project_id, row.key, Status(row.status), row.version,
                      ExperimentSpec.model_validate(row.spec), row.created_by, _aware(row.created_at) or utcnow(),
                      _aware(row.updated_at) or utcnow(), _aware(row.started_at), _aware(row.stopped_at))


class ExperimentStore:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def all(self, project_id: int) -> list[Experiment]:
        with self.meta.session() as s:
            rows = s.scalars(select(ExperimentRow).where(ExperimentRow.project_id == project_id)
                             .order_by(ExperimentRow.id.desc()))
            return [_experiment(r) for r in rows]

    def get(self, project_id: int, key: str) -> Experiment | None:
        with self.meta.session() as s:
            row = s.scalar(select(ExperimentRow).where(ExperimentRow.project_id == project_id,
                                                       ExperimentRow.key == key))
            return _experiment(row) if row else None

    def versions(self, experiment_id: int) -> list[dict[str, Any]]:
        with self.meta.session() as s:
            rows = s.scalars(select(ExperimentVersion).where(ExperimentVersion.experiment_id == experiment_id)
                             .order_by(ExperimentVersion.id))
            return [{"version": v.version, "change": v.change, "status": v.status, "author": v.author,
                     "note": v.note, "at": (_aware(v.at) or utcnow()).isoformat(), "definition": v.spec}
                    for v in rows]

    def known_variants(self, project_id: int) -> dict[str, frozenset[str]]:
        """Every experiment key of the project and the variant keys any of its versions had (exposures that
        arrive late from an earlier version are still known)."""
        out: dict[str, set[str]] = {}
        with self.meta.session() as s:
            rows = s.execute(select(ExperimentRow.key, ExperimentVersion.spec)
                             .join(ExperimentVersion, ExperimentVersion.experiment_id == ExperimentRow.id)
                             .where(ExperimentRow.project_id == project_id))
            for key, spec in rows:
                out.setdefault(key, set()).update(v.get("key") for v in spec.get("variants", []))
        return {key: frozenset(v for v in variants if isinstance(v, str)) for key, variants in out.items()}

    def create(self, project_id: int, spec: ExperimentSpec, author: str, now: dt.datetime) -> Experiment:
        with self.meta.session() as s, s.begin():
            if s.scalar(select(ExperimentRow.id).where(ExperimentRow.project_id == project_id,
                                                       ExperimentRow.key == spec.key)) is not None:
                raise SpecError("key", f"an experiment with key {spec.key!r} exists already; change it with PUT "
                                       "or choose another key", 409)
            data = spec.model_dump(mode="json")
            row = ExperimentRow(project_id=project_id, key=spec.key, status=Status.draft.value, version=1, spec=data,
                                created_by=author, created_at=now, updated_at=now)
            s.add(row)
            s.flush()
            s.add(ExperimentVersion(experiment_id=row.id, version=1, change="created", spec=data,
                                    status=row.status, author=author, at=now))
            return _experiment(row)

    def update(self, project_id: int, key: str, spec: ExperimentSpec, author: str, now: dt.datetime) -> Experiment:
        with self.meta.session() as s, s.begin():
            row = self._row(s, project_id, key)
            if spec.key != key:
                raise SpecError("key", f"the key cannot change (it is {key!r}); create a new experiment instead")
            current = ExperimentSpec.model_validate(row.spec)
            if row.status == Status.running.value and spec.assignment() != current.assignment():
                changed = sorted(k for k, v in spec.assignment().items() if current.assignment().get(k) != v)
                raise SpecError(changed[0] if changed else "variants",
                                f"a running experiment's {', '.join(changed)} cannot change: stop it, change it "
                                "(a new version) and start it again", 409)
            data = spec.model_dump(mode="json")
            if data == row.spec:
                return _experiment(row)
            row.version += 1
            row.spec, row.updated_at = data, now
            s.add(ExperimentVersion(experiment_id=row.id, version=row.version, change="changed", spec=data,
                                    status=row.status, author=author, at=now))
            return _experiment(row)

    def start(self, project_id: int, key: str, author: str, now: dt.datetime) -> Experiment:
        with self.meta.session() as s, s.begin():
            row = self._row(s, project_id, key)
            if row.status == Status.running.value:
                raise SpecError("status", f"experiment {key!r} is running already", 409)
            if row.status == Status.stopped.value:
                row.version += 1  # a new run is a new version; its results start afresh
            row.status, row.started_at, row.stopped_at, row.updated_at = Status.running.value, now, None, now
            s.add(ExperimentVersion(experiment_id=row.id, version=row.version, change="started", spec=row.spec,
                                    status=row.status, author=author, at=now))
            return _experiment(row)

    def stop(self, project_id: int, key: str, author: str, now: dt.datetime, note: str = "") -> Experiment:
        with self.meta.session() as s, s.begin():
            row = self._row(s, project_id, key)
            if row.status != Status.running.value:
                raise SpecError("status", f"experiment {key!r} is not running ({row.status})", 409)
            row.status, row.stopped_at, row.updated_at = Status.stopped.value, now, now
            s.add(ExperimentVersion(experiment_id=row.id, version=row.version, change="stopped", spec=row.spec,
                                    status=row.status, author=author, note=note[:2000], at=now))
            return _experiment(row)

    @staticmethod
    def _row(s: Any, project_id: int, key: str) -> ExperimentRow:
        row = s.scalar(select(ExperimentRow).where(ExperimentRow.project_id == project_id, ExperimentRow.key == key))
        if row is None:
            raise SpecError("key", f"no experiment with key {key!r} in this project", 404)
        return row
