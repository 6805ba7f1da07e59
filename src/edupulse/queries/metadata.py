"""What analyses need to know about a project besides its events, as one narrow interface: the query service
asks a `QueryMetadata` (implemented over the metadata database in edupulse.meta.analysis) and nothing in
this package imports the metadata layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edupulse.queries.metrics import MetricRef
from edupulse.queries.tagvalues import TagRef

__all__ = ["ProjectRef", "QueryMetadata", "SavedSegment", "TagRef"]


class ProjectRef(Protocol):
    """The project a query runs in (edupulse.meta.db.ProjectInfo is one)."""

    @property
    def id(self) -> int: ...

    @property
    def timezone(self) -> str: ...


@dataclass(frozen=True)
class SavedSegment:
    """A saved segment as stored: its definition is checked again when a query uses it."""

    id: int
    name: str
    definition: Mapping[str, Any]


class QueryMetadata(Protocol):
    """The metadata a query of a project may read."""

    def group_types(self, project_id: int) -> Mapping[str, int]:
        """Group type -> the events' group slot it is kept in."""
        ...

    def segment(self, project_id: int, name_or_id: str | int) -> SavedSegment | None:
        """A saved segment by name, or by id (an int, or digits when no segment has that name)."""
        ...

    def metric(self, project_id: int, name: str) -> MetricRef | None:
        """The current version of a catalogue metric."""
        ...

    def tags(self, project_id: int) -> Mapping[str, TagRef]:
        """The project's tags by name."""
        ...

    def cache_stamp(self, project_id: int) -> Any:
        """A JSON value that changes whenever metadata a result depends on changes (saved segments, tags), so
        that a cached result is never older than it."""
        ...
