"""Saved segments of a project in the metadata database: create, list, show, update, delete.

A definition is checked when it is saved: its JSON must be a valid definition (queries/segments.py), the
segments it refers to must exist, and it must not refer to itself through others. A segment that others
refer to cannot be deleted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.meta.models import Segment, utcnow
from edupulse.queries.segments import SegmentDefinition, references

NAME_LENGTH = 100


@dataclass(frozen=True)
class SegmentInfo:
    id: int
    project_id: int
    name: str
    description: str
    definition: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description, "definition": self.definition,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


def _info(s: Segment) -> SegmentInfo:
    def aware(moment: dt.datetime) -> dt.datetime:  # SQLite gives naive datetimes back
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)

    return SegmentInfo(id=s.id, project_id=s.project_id, name=s.name, description=s.description or "",
                       definition=dict(s.definition or {}), created_at=aware(s.created_at),
                       updated_at=aware(s.updated_at))


def check_definition(definition: Any) -> dict[str, Any]:
    """The definition as stored (validated, normalized JSON); MetadataError says what is wrong and where."""
    try:
        model = SegmentDefinition.model_validate(definition)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in ("definition", *error["loc"]))
            problems.append(f"{where}: {error['msg']}")
        raise MetadataError("; ".join(problems)) from None
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class SegmentCatalog:
    """The segments of every project, in one metadata store."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def all(self, project_id: int) -> list[SegmentInfo]:
        with self.meta.session() as s:
            rows = s.scalars(select(Segment).where(Segment.project_id == project_id).order_by(Segment.name))
            return [_info(r) for r in rows]

    def get(self, project_id: int, name_or_id: str | int) -> SegmentInfo | None:
        """By name; an int (or, when no segment has that name, a text of digits) is an id."""
        with self.meta.session() as s:
            found = None
            if isinstance(name_or_id, str):
                found = s.scalar(select(Segment).where(Segment.project_id == project_id, Segment.name == name_or_id))
            if found is None and (isinstance(name_or_id, int) or name_or_id.isdigit()):
                found = s.scalar(select(Segment).where(Segment.project_id == project_id,
                                                       Segment.id == int(name_or_id)))
            return _info(found) if found is not None else None

    def create(self, project_id: int, name: str, definition: Any, description: str = "") -> SegmentInfo:
        name = _name(name)
        stored = check_definition(definition)
        self._check_references(project_id, name, stored)
        with self.meta.session() as s, s.begin():
            if s.scalar(select(Segment).where(Segment.project_id == project_id, Segment.name == name)) is not None:
                raise MetadataError(f"name: a segment named {name!r} already exists in this project")
            now = utcnow()
            row = Segment(project_id=project_id, name=name, description=description, definition=stored,
                          created_at=now, updated_at=now)
            s.add(row)
            s.flush()
            return _info(row)

    def update(self, project_id: int, name_or_id: str | int, *, name: str | None = None,
               definition: Any = None, description: str | None = None) -> SegmentInfo:
        current = self._existing(project_id, name_or_id)
        new_name = _name(name) if name is not None else current.name
        stored = check_definition(definition) if definition is not None else current.definition
        if new_name != current.name:
            users = self._users(project_id, current)
            if users:
                raise MetadataError(f"name: segment {current.name!r} is used by {', '.join(map(repr, users))}; "
                                    "it keeps its name while they refer to it")
        self._check_references(project_id, new_name, stored, current.id)
        with self.meta.session() as s, s.begin():
            row = s.get(Segment, current.id)
            assert row is not None
            if new_name != current.name and s.scalar(select(Segment).where(
                    Segment.project_id == project_id, Segment.name == new_name)) is not None:
                raise MetadataError(f"name: a segment named {new_name!r} already exists in this project")
            row.name, row.definition, row.updated_at = new_name, stored, utcnow()
            if description is not None:
                row.description = description
            s.flush()
            return _info(row)

    def delete(self, project_id: int, name_or_id: str | int) -> SegmentInfo:
        current = self._existing(project_id, name_or_id)
        users = self._users(project_id, current)
        if users:
            raise MetadataError(f"segment {current.name!r} is used by {', '.join(map(repr, users))}: change or "
                                "delete those first")
        with self.meta.session() as s, s.begin():
            row = s.get(Segment, current.id)
            if row is not None:
                s.delete(row)
        return current

    # references -----------------------------------------------------------------------------------

    def _existing(self, project_id: int, name_or_id: str | int) -> SegmentInfo:
        found = self.get(project_id, name_or_id)
        if found is None:
            raise MetadataError(f"segment {name_or_id!r}: no such segment in this project")
        return found

    def _users(self, project_id: int, target: SegmentInfo) -> list[str]:
        return [s.name for s in self.all(project_id) if s.id != target.id
                and any(self._same(ref, target) for ref in _refs(s.definition))]

    @staticmethod
    def _same(ref: str | int, target: SegmentInfo) -> bool:
        return ref == target.name or (isinstance(ref, int) and ref == target.id)

    def _check_references(self, project_id: int, name: str, definition: dict[str, Any],
                          own_id: int | None = None) -> None:
        """Every segment referred to exists, and none leads back to this one."""
        saved = {s.id: s for s in self.all(project_id)}
        by_name = {s.name: s for s in saved.values()}

        def find(ref: str | int) -> SegmentInfo | None:
            if isinstance(ref, int):
                return saved.get(ref)
            return by_name.get(ref) or (saved.get(int(ref)) if ref.isdigit() else None)

        def visit(definition: dict[str, Any], path: list[str]) -> None:
            for ref in _refs(definition):
                if ref == name or (own_id is not None and ref == own_id):
                    raise MetadataError(f"definition: segment {name!r} would refer to itself: "
                                        f"{' → '.join([*path, name])}")
                target = find(ref)
                if target is None:
                    raise MetadataError(f"definition: segment {ref!r} (referred to by {path[-1]!r}) does not exist")
                if target.id == own_id:
                    raise MetadataError(f"definition: segment {name!r} would refer to itself: "
                                        f"{' → '.join([*path, name])}")
                visit(target.definition, [*path, target.name])

        visit(definition, [name])


def _refs(definition: dict[str, Any]) -> list[str | int]:
    try:
        return references(SegmentDefinition.model_validate(definition))
    except ValidationError:
        return []


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_LENGTH:
        raise MetadataError(f"name: a segment name has 1 to {NAME_LENGTH} characters")
    return name
