"""Running an import: read the file chunk by chunk, import the good rows, quarantine the bad, count."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edupulse.importer.events import EventsImporter
from edupulse.importer.excel import open_workbook
from edupulse.importer.job import ChunkResult, ImportProblem, Job
from edupulse.importer.mapping import ColumnMapping, resolve
from edupulse.importer.people import IdentitiesImporter, ProfilesImporter
from edupulse.importer.rules import validation_context
from edupulse.importer.sources import Chunk, Reject, Source, detect_format, open_source
from edupulse.importer.spend import SpendImporter
from edupulse.importer.writer import prefetch
from edupulse.ingest.records import to_micros
from edupulse.meta.db import QuarantineEntry

if TYPE_CHECKING:
    from edupulse.runtime import Platform

# progress(rows read so far, rows in the file if known)
Progress = Callable[[int, int | None], None]
QUARANTINE_SOURCE = "import"


class KindImporter(Protocol):
    def setup(self) -> None: ...

    def process(self, chunk: Chunk) -> ChunkResult: ...

    def finish(self) -> None: ...


IMPORTERS: dict[str, Callable[[Job], KindImporter]] = {
    "events": EventsImporter,
    "profiles": ProfilesImporter,
    "identities": IdentitiesImporter,
    "spend": SpendImporter,
}


@dataclass
class ImportOptions:
    kind: str
    path: Path
    project: str
    format: str | None = None
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    strict: bool = False
    max_rejected: int | None = 10_000
    encoding: str = "utf-8"
    chunk_rows: int = 1_000_000


@dataclass
class ImportSummary:
    kind: str
    file: str
    format: str
    rows_read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    warnings: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the import stopped before the end of the file
    first_rejections: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.file, "format": self.format, "rows_read": self.rows_read,
                "imported": self.imported, "duplicates_skipped": self.duplicates, "rejected": self.rejected,
                "identity_warnings": self.warnings, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second), "stopped": self.stopped}


class ImportStopped(ImportProblem):
    """--strict met a bad row, or too many rows were rejected; what was imported before stays imported."""

    def __init__(self, message: str, summary: ImportSummary) -> None:
        super().__init__(message)
        self.summary = summary


def run_import(platform: Platform, options: ImportOptions, progress: Progress | None = None) -> ImportSummary:
    """Import one file into a project of an open platform. Raises ImportProblem (nothing or part imported)."""
    started = time.perf_counter()
    project = platform.meta.project_by_name(options.project)
    if project is None:
        names = ", ".join(p.name for p in platform.meta.projects()) or "none"
        raise ImportProblem(f"no project named {options.project!r} (projects: {names})")
    fmt = detect_format(options.path, options.format)
    source = open_workbook(options.path, options.chunk_rows) if fmt == "xlsx" else open_source(
        options.path, fmt, options.chunk_rows, options.encoding)
    try:
        now = dt.datetime.now(dt.UTC)
        job = Job(
            platform=platform, project=project, source=source,
            layout=resolve(options.kind, source.columns, options.mapping),
            ctx=validation_context(project.timezone, platform.store.typed_properties(), platform.settings.ingest,
                                   now),
            received_us=to_micros(now), strict=options.strict,
        )
        importer = IMPORTERS[options.kind](job)
        importer.setup()
        summary = ImportSummary(kind=options.kind, file=str(options.path), format=fmt)
        try:
            _import_chunks(job, importer, options, summary, progress)
        except BaseException:
            with suppress(Exception):  # the error in flight says more
                importer.finish()
            raise
        else:
            importer.finish()
        finally:
            summary.seconds = time.perf_counter() - started
            job.con.close()
        return summary
    finally:
        source.close()


def _import_chunks(
    job: Job, importer: KindImporter, options: ImportOptions, summary: ImportSummary, progress: Progress | None
) -> None:
    source = job.source
    for chunk in prefetch(source.chunks()):
        summary.rows_read += chunk.num_rows + len(chunk.rejects)
        if options.strict and chunk.rejects:
            _quarantine(job, chunk.rejects[:1], summary)
            raise ImportStopped(_stop_message(summary, "--strict"), summary)
        result = importer.process(chunk)
        summary.imported += result.imported
        summary.duplicates += result.duplicates
        summary.warnings += result.warnings
        first = [min(result.rejects, key=lambda r: r.index or 0)] if result.stopped else result.rejects
        rejects = chunk.rejects + first
        _quarantine(job, rejects, summary)
        if progress is not None:
            progress(summary.rows_read, source.total_rows)
        if result.stopped:
            raise ImportStopped(_stop_message(summary, "--strict"), summary)
        if options.max_rejected is not None and summary.rejected > options.max_rejected:
            raise ImportStopped(_stop_message(summary, f"more than {options.max_rejected:,} rejected rows"), summary)


def _stop_message(summary: ImportSummary, why: str) -> str:
    summary.stopped = why
    first = summary.first_rejections[0] if summary.first_rejections else "a bad row"
    return (f"stopped ({why}) at {first}. {summary.imported:,} rows were imported before it; fix the file and "
            "import it again (rows stored already are skipped)")


def _quarantine(job: Job, rejects: list[Reject], summary: ImportSummary) -> None:
    """Keep refused rows where an admin looks (`edupulse quarantine list`), each once however often the
    same file is imported."""
    if not rejects:
        return
    source: Source = job.source
    numbers = source.locate(sorted({r.index for r in rejects if r.index is not None and r.location is None}))
    now = dt.datetime.now(dt.UTC)
    entries = []
    for reject in rejects:
        location = reject.location or source.where(numbers.get(reject.index or 0), reject.column)
        key = hashlib.sha1(f"{location}\x1f{reject.reason}\x1f{reject.record}".encode()).hexdigest()
        entries.append(QuarantineEntry(
            project_id=job.project.id, received_at=now, source=QUARANTINE_SOURCE, location=location[:200],
            reason=reject.reason, record=reject.record, dedupe_key=f"import:{key}",
        ))
        if len(summary.first_rejections) < 5:
            summary.first_rejections.append(f"{location}: {reject.reason}")
    job.platform.meta.add_quarantine(entries)
    summary.rejected += len(entries)
