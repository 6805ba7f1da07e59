"""Tags in the metadata database: the current definition of each, every version it had (created, changed,
deleted: who and when), and its runs (status, progress, how many values changed, the error of a failed run,
a model's evaluation). The values live in the event store (edupulse.tags.run).

A run's progress is its stage and, where the stage counts, the steps done of the run's total; the `progress`
column holds it as compact JSON (`{"stage": "gate", "done": 3, "total": 15}`), so a run polled from another
process sees it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.meta.models import Base, utcnow
from edupulse.meta.process_owner import gone, this_process
from edupulse.tags.model import TagSpec


class TagRow(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_tag_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    unit: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    built_in: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TagVersionRow(Base):
    __tablename__ = "tag_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_id: Mapped[int] = mapped_column(Integer, index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    author: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TagRunRow(Base):
    __tablename__ = "tag_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_id: Mapped[int] = mapped_column(Integer, index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    day: Mapped[dt.date] = mapped_column(Date)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    progress: Mapped[str] = mapped_column(String(200), default="")
    changed: Mapped[int] = mapped_column(Integer, default=0)
    units: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    owner: Mapped[str] = mapped_column(String(300), default="", server_default="")  # process_owner.this_process()


ABANDONED = "the process computing the run stopped before it finished (it was killed, or the machine restarted); " \
            "run the tag again"


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class TagInfo:
    id: int
    project_id: int
    version: int
    spec: TagSpec
    built_in: bool
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def name(self) -> str:
        return self.spec.name

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
                "version": self.version, "built_in": self.built_in, "created_by": self.created_by,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class RunInfo:
    id: int
    tag_id: int
    version: int
    status: str  # running, finished, failed
    trigger: str  # manual, schedule, upload
    day: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None
    progress: str
    changed: int
    units: int
    error: str
    evaluation: dict[str, Any] | None
    done: int | None = None  # steps of the run done, of `total` (None: the stage does not count)
    total: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "tag_id": self.tag_id, "version": self.version, "status": self.status,
                "trigger": self.trigger, "day": self.day.isoformat(), "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "progress": {"stage": self.progress, "done": self.done, "total": self.total},
                "changed": self.changed, "units": self.units, "error": self.error or None,
                "evaluation": self.evaluation}


def _progress_text(stage: str, done: int | None, total: int | None) -> str:
    return orjson.dumps({"stage": stage[:120], "done": done, "total": total}).decode()


def _progress_of(text: str) -> tuple[str, int | None, int | None]:
    """(stage, done, total) of the stored progress; a plain text (runs recorded before) is the stage."""
    if text.startswith("{"):
        try:
            found = orjson.loads(text)
            return str(found.get("stage", "")), found.get("done"), found.get("total")
        except orjson.JSONDecodeError:
            pass
    return text, None, None


def _tag(row: TagRow) -> TagInfo:
    created, updated = _aware(row.created_at), _aware(row.updated_at)
    assert created is not None
    assert updated is not None
    return TagInfo(id=row.id, project_id=row.project_id, version=row.version, spec=TagSpec.model_validate(row.spec),
                   built_in=row.built_in, created_by=row.created_by, created_at=created, updated_at=updated)


def _run(row: TagRunRow) -> RunInfo:
    started = _aware(row.started_at)
    assert started is not None
    stage, done, total = _progress_of(row.progress)
    return RunInfo(id=row.id, tag_id=row.tag_id, version=row.version, status=row.status, trigger=row.trigger,
                   day=row.day, started_at=started, finished_at=_aware(row.finished_at), progress=stage,
                   changed=row.changed, units=row.units, error=row.error, evaluation=row.evaluation, done=done,
                   total=total)


def check_spec(data: Any) -> TagSpec:
    """The definition as a TagSpec; MetadataError names every problem and where it is."""
    try:
        return TagSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "tag"
            problems.append(f"{where}: {error['msg']}")
        raise MetadataError("; ".join(problems)) from None


class TagCatalog:
    """The tags of every project, in one metadata store."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def all(self, project_id: int) -> list[TagInfo]:
        with self.meta.session() as s:
            rows = s.scalars(select(TagRow).where(TagRow.project_id == project_id).order_by(TagRow.name))
            return [_tag(r) for r in rows]

    def get(self, project_id: int, name: str) -> TagInfo | None:
        with self.meta.session() as s:
            row = s.scalar(select(TagRow).where(TagRow.project_id == project_id, TagRow.name == name))
            return _tag(row) if row is not None else None

    def create(self, project_id: int, spec: TagSpec, author: str, built_in: bool = False) -> TagInfo:
        """A new tag; MetadataError if the name is taken, also when another request took it meanwhile (two
        first requests of a project both creating the built-in tags)."""
        taken = MetadataError(f"name: a tag named {spec.name!r} already exists in this project")
        try:
            return self._create(project_id, spec, author, built_in, taken)
        except IntegrityError:  # inserted by another request between our look and our insert
            if self.get(project_id, spec.name) is None:
                raise
            raise taken from None

    def _create(self, project_id: int, spec: TagSpec, author: str, built_in: bool, taken: MetadataError) -> TagInfo:
        with self.meta.session() as s, s.begin():
            if s.scalar(select(TagRow).where(TagRow.project_id == project_id, TagRow.name == spec.name)) is not None:
                raise taken
            stored = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
            now = utcnow()
            row = TagRow(project_id=project_id, name=spec.name, unit=spec.unit, version=1, spec=stored,
                         built_in=built_in, created_by=author, created_at=now, updated_at=now)
            s.add(row)
            s.flush()
            s.add(TagVersionRow(tag_id=row.id, project_id=project_id, name=spec.name, version=1, change="created",
                                spec=stored, author=author, at=now))
            return _tag(row)

    def update(self, project_id: int, name: str, spec: TagSpec, author: str) -> TagInfo:
        """A new version of the definition. The name stays: values and filters refer to it."""
        if spec.name != name:
            raise MetadataError(f"name: a tag keeps its name ({name!r}); create a new tag for a new name")
        with self.meta.session() as s, s.begin():
            row = s.scalar(select(TagRow).where(TagRow.project_id == project_id, TagRow.name == name))
            if row is None:
                raise MetadataError(f"tag {name!r}: no such tag in this project")
            if spec.unit != row.unit:
                raise MetadataError(f"unit: tag {name!r} tags {row.unit}; create a new tag for another unit")
            stored = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
            now = utcnow()
            row.version, row.spec, row.updated_at = row.version + 1, stored, now
            s.add(TagVersionRow(tag_id=row.id, project_id=project_id, name=name, version=row.version,
                                change="changed", spec=stored, author=author, at=now))
            s.flush()
            return _tag(row)

    def delete(self, project_id: int, name: str, author: str) -> TagInfo:
        with self.meta.session() as s, s.begin():
            row = s.scalar(select(TagRow).where(TagRow.project_id == project_id, TagRow.name == name))
            if row is None:
                raise MetadataError(f"tag {name!r}: no such tag in this project")
            gone = _tag(row)
            s.add(TagVersionRow(tag_id=row.id, project_id=project_id, name=name, version=row.version + 1,
                                change="deleted", spec=row.spec, author=author, at=utcnow()))
            s.delete(row)
            return gone

    def versions(self, tag_id: int) -> list[dict[str, Any]]:
        with self.meta.session() as s:
            rows = s.scalars(select(TagVersionRow).where(TagVersionRow.tag_id == tag_id).order_by(TagVersionRow.id))
            return [{"version": r.version, "change": r.change, "author": r.author,
                     "at": (_aware(r.at) or r.at).isoformat(), "definition": r.spec.get("definition")} for r in rows]

    # runs -----------------------------------------------------------------------------------------

    def start_run(self, tag: TagInfo, day: dt.date, trigger: str) -> RunInfo:
        with self.meta.session() as s, s.begin():
            row = TagRunRow(tag_id=tag.id, project_id=tag.project_id, version=tag.version, status="running",
                            trigger=trigger, day=day, started_at=utcnow(), progress=_progress_text("queued", 0, None),
                            changed=0, units=0, error="", owner=this_process())
            s.add(row)
            s.flush()
            return _run(row)

    def progress(self, run_id: int, stage: str, done: int | None = None, total: int | None = None) -> None:
        """Record where a running run is: its stage and the steps done of its total."""
        with self.meta.session() as s, s.begin():
            row = s.get(TagRunRow, run_id)
            if row is not None and row.status == "running":
                row.progress = _progress_text(stage, done, total)

    def finish_run(self, run_id: int, *, changed: int = 0, units: int = 0, error: str = "",
                   evaluation: dict[str, Any] | None = None) -> RunInfo:
        with self.meta.session() as s, s.begin():
            row = s.get(TagRunRow, run_id)
            assert row is not None
            if error == ABANDONED and row.status != "running":  # it finished meanwhile after all
                return _run(row)
            row.status = "failed" if error else "finished"
            row.finished_at, row.changed, row.units, row.error = utcnow(), changed, units, error
            _, _, total = _progress_of(row.progress)
            row.progress = _progress_text("failed", None, total) if error else _progress_text("done", total, total)
            if evaluation is not None:
                row.evaluation = evaluation
            s.flush()
            return _run(row)

    def run(self, run_id: int) -> RunInfo | None:
        with self.meta.session() as s:
            row = s.get(TagRunRow, run_id)
            if row is None:
                return None
            return self._abandoned([row]).get(row.id) or _run(row)

    def runs(self, tag_id: int, limit: int = 20) -> list[RunInfo]:
        with self.meta.session() as s:
            rows = list(s.scalars(select(TagRunRow).where(TagRunRow.tag_id == tag_id)
                                  .order_by(TagRunRow.id.desc()).limit(limit)))
            failed = self._abandoned(rows)
            return [failed.get(r.id) or _run(r) for r in rows]

    def fail_abandoned_runs(self) -> int:
        """Record as failed the runs whose process ended before they finished (a server killed with SIGKILL
        while computing one); the number recorded. Runs are also checked each time they are read."""
        with self.meta.session() as s:
            return len(self._abandoned(list(s.scalars(select(TagRunRow).where(TagRunRow.status == "running")))))

    def _abandoned(self, rows: list[TagRunRow]) -> dict[int, RunInfo]:
        """The runs among `rows` whose process ended before they finished, recorded as failed now."""
        return {row.id: self.finish_run(row.id, error=ABANDONED)
                for row in rows if row.status == "running" and row.owner and gone(row.owner)}

    def last_good_run(self, tag_id: int) -> RunInfo | None:
        with self.meta.session() as s:
            row = s.scalar(select(TagRunRow).where(TagRunRow.tag_id == tag_id, TagRunRow.status == "finished")
                           .order_by(TagRunRow.id.desc()).limit(1))
            return _run(row) if row is not None else None

    def stamp(self, project_id: int) -> list[Any]:
        """Changes whenever a tag of the project is created, changed, deleted or run (for caches)."""
        with self.meta.session() as s:
            versions = s.scalar(select(TagVersionRow.id).where(TagVersionRow.project_id == project_id)
                                .order_by(TagVersionRow.id.desc()).limit(1))
            runs = s.scalar(select(TagRunRow.id).where(TagRunRow.project_id == project_id)
                            .order_by(TagRunRow.id.desc()).limit(1))
        return [versions, runs]
