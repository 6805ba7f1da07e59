"""The metadata analyses read (edupulse.queries.metadata.QueryMetadata), over the metadata database: group
types, saved segments, catalogue metrics, tags and the stamp that keeps cached results current."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select

from edupulse.meta.catalogue import MetricCatalogue
from edupulse.meta.db import MetadataStore
from edupulse.meta.models import Segment
from edupulse.meta.tags import TagCatalog
from edupulse.queries.metadata import SavedSegment, TagRef
from edupulse.queries.metrics import MetricRef


class AnalysisMetadata:
    """QueryMetadata of every project in one metadata store."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def group_types(self, project_id: int) -> Mapping[str, int]:
        return self.meta.group_types(project_id)

    def segment(self, project_id: int, name_or_id: str | int) -> SavedSegment | None:
        with self.meta.session() as s:
            found = None
            if isinstance(name_or_id, str):
                found = s.scalar(select(Segment).where(Segment.project_id == project_id, Segment.name == name_or_id))
            if found is None and (isinstance(name_or_id, int) or name_or_id.isdigit()):
                found = s.scalar(select(Segment).where(Segment.project_id == project_id,
                                                       Segment.id == int(name_or_id)))
            if found is None:
                return None
            return SavedSegment(id=found.id, name=found.name, definition=dict(found.definition or {}))

    def metric(self, project_id: int, name: str) -> MetricRef | None:
        return MetricCatalogue(self.meta).ref(project_id, name)

    def tags(self, project_id: int) -> Mapping[str, TagRef]:
        return {t.name: TagRef(id=t.id, name=t.name, unit=t.spec.unit, value_type=t.spec.value_type.value)
                for t in TagCatalog(self.meta).all(project_id)}

    def cache_stamp(self, project_id: int) -> Any:
        """Changes whenever a segment or a tag of the project is created, changed or deleted, or a tag runs."""
        with self.meta.session() as s:
            row = s.execute(select(func.count(), func.max(Segment.id), func.max(Segment.updated_at))
                            .where(Segment.project_id == project_id)).one()
        return [int(row[0]), row[1], str(row[2]) if row[2] is not None else None,
                *TagCatalog(self.meta).stamp(project_id)]
