"""Importing profiles and identities: small files, row by row, through the API rules and the batch builder
that the ingestion loader uses, so properties fold and identities link exactly as for API records."""

from __future__ import annotations

from typing import Any

from edupulse.importer import ids, rules
from edupulse.importer.job import ChunkResult, ImportProblem, Job
from edupulse.importer.mapping import Layout, MappingError
from edupulse.importer.sources import Chunk, Reject
from edupulse.importer.values import RowReader
from edupulse.ingest.batch import BuiltBatch
from edupulse.ingest.records import RecordError

# existing_insert_ids looks in a time window; profile rows without a time get the import's time, so look
# everywhere (year 1 to 9999) for ids of rows imported before
_ALL_TIME = (-62_135_596_800_000_000, 253_402_300_799_999_999)


class _RowImporter:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.project_id = job.project.id
        self.typed = job.platform.store.typed_properties()

    def layout_for(self, rows: list[dict[str, Any]]) -> Layout:
        layout = self.job.layout.with_columns({key for row in rows for key in row})
        if layout is not self.job.layout:
            self.setup(layout)
        return layout

    def setup(self, layout: Layout | None = None) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Nothing is written in the background."""

    def _build(self, records: list[dict[str, Any]], result: ChunkResult) -> None:
        if not records:
            return
        builder = self.job.platform.builder
        if builder is None:
            raise ImportProblem("the platform is not open")
        built: BuiltBatch = builder.build([(self.project_id, self.job.received_us, r) for r in records])
        self.job.write_built(built)
        result.imported += built.records
        result.duplicates += built.duplicates
        result.warnings += self.job.save_warnings(built)

    def _stop_at_cut(self, chunk: Chunk, result: ChunkResult, items: list[tuple[int, Any]]) -> list[Any]:
        cut = self.job.cut(result.rejects, chunk.start)
        if cut is None:
            return [item for _, item in items]
        result.stopped = True
        return [item for i, item in items if i < cut]


class ProfilesImporter(_RowImporter):
    """One profile operation per row: set (default), set_once, increment, append or unset."""

    def setup(self, layout: Layout | None = None) -> None:
        layout = layout or self.job.layout
        ctx = self.job.ctx
        if "distinct_id_type" in layout.constants:
            error = rules.id_type_error(layout.constants["distinct_id_type"], ctx)
            if error is not None:
                raise MappingError(f"--value distinct_id_type: {error.reason}")
        op = layout.constants.get("op")
        if op is not None and op not in rules.PROFILE_OPS:
            raise MappingError(f"--value op={op}: use one of {', '.join(rules.PROFILE_OPS)}")
        for name, column in layout.properties.items():
            error = rules.property_name_error(name, ctx)
            if error is not None:
                raise MappingError(f"column {column!r} cannot be a property: {error.reason}")

    def process(self, chunk: Chunk) -> ChunkResult:
        rows = chunk.pylist()
        layout = self.layout_for(rows)
        reader = RowReader(layout, self.job.source.text_only, self.typed)
        given = layout.fields.get("insert_id")
        derived = ids.assign_rows(rows, layout, self.job.occurrences)
        result = ChunkResult()
        items: list[tuple[int, dict[str, Any]]] = []
        for i, row in enumerate(rows):
            insert_id = row.get(given) if given else None
            try:
                record = reader.profile(row, derived[i] if insert_id is None else insert_id)
                items.append((i, rules.check(record, self.job.ctx)))
            except RecordError as exc:
                result.rejects.append(self.job.reject(chunk.start + i, exc, row, layout))
        records = self._new_only(self._stop_at_cut(chunk, result, items), result)
        self._build(records, result)
        return result

    def _new_only(self, records: list[dict[str, Any]], result: ChunkResult) -> list[dict[str, Any]]:
        keys = [r["insert_id"] for r in records]
        stored = self.job.platform.store.existing_insert_ids("profile_ops", self.project_id, keys, *_ALL_TIME)
        fresh = [r for r in records if r["insert_id"] not in stored]
        result.duplicates += len(records) - len(fresh)
        return fresh


class IdentitiesImporter(_RowImporter):
    """Each row links its non-empty identities into one person (the rules of `identify` records)."""

    def setup(self, layout: Layout | None = None) -> None:
        layout = layout or self.job.layout
        for id_type, column in layout.identities.items():
            error = rules.id_type_error(id_type, self.job.ctx)
            if error is not None:
                raise MappingError(
                    f"column {column!r} is not an identity type ({error.reason}); map it to one, e.g. "
                    f"--map mobile={column}, or leave it out with --skip {column}"
                )

    def process(self, chunk: Chunk) -> ChunkResult:
        rows = chunk.pylist()
        layout = self.layout_for(rows)
        reader = RowReader(layout, self.job.source.text_only, self.typed)
        graph = self.job.platform.graph.project(self.project_id)
        result = ChunkResult()
        items: list[tuple[int, dict[str, Any]]] = []
        for i, row in enumerate(rows):
            try:
                pairs = reader.identities(row)
                if not pairs:
                    raise RecordError("record", "has no identity: give at least one non-empty identity column")
                normalized = rules.check(rules.identities_record(pairs, None), self.job.ctx)
            except RecordError as exc:
                result.rejects.append(self._reject(chunk.start + i, exc, row, layout))
                continue
            owners = {graph.person_of.get((t, v)) for t, v in normalized["ids"]}
            if len(owners) == 1 and None not in owners:
                result.duplicates += 1  # linked already
                continue
            items.append((i, {"type": "identify", "time": normalized["time"], "ids": normalized["ids"]}))
        self._build(self._stop_at_cut(chunk, result, items), result)
        return result

    def _reject(self, index: int, error: RecordError, row: dict[str, Any], layout: Layout) -> Reject:
        first = next((c for c in layout.identities.values() if row.get(c) not in (None, "")), None)
        head, _, name = error.field.partition(".")
        column = layout.identities.get(name) if head == "identities" else (
            first if head in ("distinct_id", "distinct_id_type") else None)
        return self.job.reject(index, error, row, layout, column)
