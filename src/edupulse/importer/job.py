"""What every kind of import shares: the job (platform, project, file, layout, rules) and a chunk's outcome."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from edupulse.importer.ids import Occurrences
from edupulse.importer.mapping import Layout
from edupulse.importer.sources import Reject, Source
from edupulse.ingest.batch import BuiltBatch
from edupulse.ingest.records import RecordError, ValidationContext, from_micros
from edupulse.meta.db import ProjectInfo, WarningEntry

if TYPE_CHECKING:
    from edupulse.runtime import Platform


class ImportProblem(ValueError):
    """The import cannot go on; the message says what to change."""


@dataclass
class ChunkResult:
    imported: int = 0
    duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)
    warnings: int = 0
    stopped: bool = False  # --strict: the chunk was imported only up to its first bad row


@dataclass
class Job:
    platform: Platform
    project: ProjectInfo
    source: Source
    layout: Layout
    ctx: ValidationContext
    received_us: int
    strict: bool = False
    con: duckdb.DuckDBPyConnection = field(default_factory=duckdb.connect)
    occurrences: Occurrences = field(default_factory=Occurrences)

    def reject(
        self, index: int, error: RecordError, row: dict[str, Any], layout: Layout | None = None,
        column: str | None = None,
    ) -> Reject:
        from edupulse.importer.values import record_text

        column = column or (layout or self.layout).column_of(error.field)
        reason = error.reason if column is not None or error.field == "record" else f"{error.field} {error.reason}"
        return Reject(index, column, reason, record_text(row))

    def cut(self, rejects: list[Reject], start: int) -> int | None:
        """With --strict, the chunk-local index of the first bad row: nothing from it on is imported."""
        if not self.strict or not rejects:
            return None
        return min(r.index for r in rejects if r.index is not None) - start

    def save_warnings(self, built: BuiltBatch) -> int:
        """Identity warnings of a batch, kept once however often the same file is imported."""
        if not built.warnings:
            return 0
        entries = []
        for project_id, time_us, warning in built.warnings:
            key = hashlib.sha1(f"{project_id}\x1f{warning.kind}\x1f{warning.message}".encode()).hexdigest()
            entries.append(WarningEntry(project_id=project_id, kind=warning.kind, message=warning.message,
                                        detail=warning.detail, dedupe_key=f"import:{key}",
                                        event_time=from_micros(time_us)))
        self.platform.meta.add_warnings(entries)
        return len(entries)

    def write_built(self, built: BuiltBatch) -> None:
        self.platform.store.write(built.batch)
