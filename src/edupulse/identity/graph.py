"""The identity graph: which person each typed identity belongs to, and the merge rules.

Pure in-memory logic; the loader persists its changes (new identities and merges) in the same
transaction as the events that caused them, and rebuilds the graph from the store on start.

Rules (docs/identity.md):
- every identity (type, value) belongs to exactly one person;
- a record's identities are linked into one person; if two of them already belong to different
  persons, the persons merge, unless both have a login_id and the login_ids differ: then the link is
  refused and a warning is recorded;
- the surviving person of a merge is the one with a login_id, else the older (lower id) one; the
  other person's events and profile operations count as the survivor's from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edupulse.ingest.records import UNIQUE_ID_TYPES

IdKey = tuple[str, str]


@dataclass
class LinkWarning:
    kind: str
    message: str
    detail: dict[str, Any]


class Resolution:
    __slots__ = ("person_id", "warnings")

    def __init__(self, person_id: int) -> None:
        self.person_id = person_id
        self.warnings: list[LinkWarning] = []


@dataclass
class GraphChanges:
    """What changed since the last `take_changes()`: for the store to persist."""

    new_identities: list[tuple[int, str, str, int]] = field(default_factory=list)  # project, type, value, person
    merges: list[tuple[int, int, int]] = field(default_factory=list)  # project, loser, survivor
    new_persons: list[tuple[int, int]] = field(default_factory=list)  # project, person

    def __bool__(self) -> bool:
        return bool(self.new_identities or self.merges or self.new_persons)


class ProjectGraph:
    """The identities of one project."""

    def __init__(self, project_id: int, allocate: Any) -> None:
        self.project_id = project_id
        self._allocate = allocate
        self.person_of: dict[IdKey, int] = {}
        self.members: dict[int, list[IdKey]] = {}
        self.unique: dict[int, dict[str, str]] = {}  # person -> {unique id type: value}

    # loading ----------------------------------------------------------------------------------

    def add_existing(self, id_type: str, value: str, person_id: int) -> None:
        key = (id_type, value)
        self.person_of[key] = person_id
        self.members.setdefault(person_id, []).append(key)
        if id_type in UNIQUE_ID_TYPES:
            self.unique.setdefault(person_id, {})[id_type] = value

    # resolving --------------------------------------------------------------------------------

    def resolve(self, ids: Sequence[Sequence[str]], changes: GraphChanges) -> Resolution:
        """Link a record's identities; return the person the record belongs to."""
        if len(ids) == 1:  # the common case: one identity, already known
            owner = self.person_of.get((ids[0][0], ids[0][1]))
            if owner is not None:
                return Resolution(owner)
        keys = [(t, v) for t, v in ids]
        target = self._target(keys, changes)
        result = Resolution(person_id=target)
        for key in keys:
            owner = self.person_of.get(key)
            if owner == result.person_id:
                continue
            if owner is None:
                conflict = self._unique_conflict(
                    result.person_id, {key[0]: key[1]} if key[0] in UNIQUE_ID_TYPES else {}
                )
                if conflict:
                    result.warnings.append(self._warning("unique_conflict", key, result.person_id, None, conflict))
                    self._new_person(key, changes)  # known from now on, as a person of its own
                    continue
                self._attach(key, result.person_id, changes)
                continue
            conflict = self._unique_conflict(result.person_id, self.unique.get(owner, {}))
            if conflict:
                result.warnings.append(self._warning("login_conflict", key, result.person_id, owner, conflict))
                continue
            result.person_id = self._merge(result.person_id, owner, changes)
        return result

    def _target(self, keys: list[IdKey], changes: GraphChanges) -> int:
        for key in keys:
            if key[0] in UNIQUE_ID_TYPES:
                owner = self.person_of.get(key)
                if owner is not None:
                    return owner
                # A new login_id starts from the person of the record's other identities only if
                # that person has no login_id of its own; otherwise it is a different person.
                for other in keys:
                    other_owner = self.person_of.get(other)
                    if other_owner is not None and key[0] not in self.unique.get(other_owner, {}):
                        return other_owner
                return self._new_person(key, changes)
        for key in keys:
            owner = self.person_of.get(key)
            if owner is not None:
                return owner
        return self._new_person(keys[0], changes)

    def _new_person(self, key: IdKey, changes: GraphChanges) -> int:
        person_id: int = self._allocate()
        self.members[person_id] = []
        changes.new_persons.append((self.project_id, person_id))
        self._attach(key, person_id, changes)
        return person_id

    def _attach(self, key: IdKey, person_id: int, changes: GraphChanges) -> None:
        self.person_of[key] = person_id
        self.members.setdefault(person_id, []).append(key)
        if key[0] in UNIQUE_ID_TYPES:
            self.unique.setdefault(person_id, {})[key[0]] = key[1]
        changes.new_identities.append((self.project_id, key[0], key[1], person_id))

    def _unique_conflict(self, person_id: int, incoming: dict[str, str]) -> dict[str, list[str]]:
        have = self.unique.get(person_id, {})
        return {t: [have[t], v] for t, v in incoming.items() if t in have and have[t] != v}

    def _merge(self, a: int, b: int, changes: GraphChanges) -> int:
        a_login, b_login = bool(self.unique.get(a)), bool(self.unique.get(b))
        if a_login != b_login:
            survivor, loser = (a, b) if a_login else (b, a)
        else:
            survivor, loser = min(a, b), max(a, b)
        self.apply_merge(loser, survivor)
        changes.merges.append((self.project_id, loser, survivor))
        return survivor

    def apply_merge(self, loser: int, survivor: int) -> None:
        """Move the loser's identities to the survivor (a merge decided here or by another process)."""
        moved = self.members.pop(loser, [])
        for key in moved:
            self.person_of[key] = survivor
        self.members.setdefault(survivor, []).extend(moved)
        if loser in self.unique:
            self.unique.setdefault(survivor, {}).update(self.unique.pop(loser))

    def _warning(
        self, kind: str, key: IdKey, person: int, other: int | None, conflict: dict[str, list[str]]
    ) -> LinkWarning:
        what = "; ".join(f"{t} {a!r} vs {b!r}" for t, (a, b) in conflict.items())
        message = (
            f"refused to link {key[0]} {key[1]!r} to person {person}: it would join two persons with "
            f"different login ids ({what})"
        )
        return LinkWarning(
            kind, message, {"identity": list(key), "person_id": person, "other_person_id": other, "conflict": conflict}
        )


class IdentityGraph:
    """All projects' graphs and the person id sequence."""

    def __init__(self, next_person_id: int = 1, allocate: Callable[[], int] | None = None) -> None:
        self.next_person_id = next_person_id
        self.projects: dict[int, ProjectGraph] = {}
        self.changes = GraphChanges()
        self.allocate = allocate  # where new person ids come from when several processes share the persons

    def _allocate(self) -> int:
        if self.allocate is not None:
            return self.allocate()
        pid = self.next_person_id
        self.next_person_id += 1
        return pid

    def project(self, project_id: int) -> ProjectGraph:
        graph = self.projects.get(project_id)
        if graph is None:
            graph = self.projects[project_id] = ProjectGraph(project_id, self._allocate)
        return graph

    def load(self, rows: Iterable[tuple[int, str, str, int]]) -> None:
        for project_id, id_type, value, person_id in rows:
            self.project(project_id).add_existing(id_type, value, person_id)
            if person_id >= self.next_person_id:
                self.next_person_id = person_id + 1

    def resolve(self, project_id: int, ids: Sequence[Sequence[str]]) -> Resolution:
        return self.project(project_id).resolve(ids, self.changes)

    def take_changes(self) -> GraphChanges:
        changes, self.changes = self.changes, GraphChanges()
        return changes

    def person_of(self, project_id: int, id_type: str, value: str) -> int | None:
        return self.project(project_id).person_of.get((id_type, value))
