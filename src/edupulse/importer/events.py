"""Importing events column-wise: convert and screen whole columns, resolve each distinct person once, write
large Arrow batches in the background. Rows the screens cannot vouch for go through the API rules one by
one and the ordinary batch builder, so every row obeys the same rules whichever way it took."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from edupulse.importer import columns as col
from edupulse.importer import ids, rules
from edupulse.importer.event_columns import DEFAULT_ID_TYPE, EventColumnReader, EventColumns, json_objects
from edupulse.importer.job import ChunkResult, ImportProblem, Job
from edupulse.importer.mapping import Layout, MappingError
from edupulse.importer.sources import Chunk
from edupulse.importer.values import RowReader
from edupulse.importer.writer import BackgroundWriter
from edupulse.ingest.exposure import EXPOSURE_EVENT, KnownExperiments, check_exposure
from edupulse.ingest.records import RecordError
from edupulse.meta.db import MetadataError
from edupulse.meta.experiments import ExperimentStore
from edupulse.store.base import WriteBatch, event_schema
from edupulse.store.schema import property_column

Rows = list[tuple[int, dict[str, Any]]]  # (chunk-local index, normalized record)


class EventsImporter:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.store = job.platform.store
        self.project_id = job.project.id
        self.typed = self.store.typed_properties()
        self.schema = event_schema(self.typed)
        self.slots: dict[str, int] = {}
        self._checked_names: set[str] = set()
        self.columns = EventColumnReader(
            job.ctx, self.typed, self.slots, col.TimeReader(job.ctx.timezone, job.source.text_only, job.con),
            lambda id_type: rules.id_type_error(id_type, job.ctx), self._check_property_name,
        )
        self.writer = BackgroundWriter(self.store)
        self._before = self._stored_range()
        self._given_hashes = np.empty(0, dtype=np.uint64)
        # several API processes share the store: each chunk's identities are decided under the project's lock
        # and logged (cluster/coordinator.py), and stored before the lock is released
        loader = job.platform.loader
        self.coordinator: Any = loader.coordinator if loader is not None else None
        self._batches = 0
        self._run = uuid.uuid4().hex[:12]
        self._experiments: KnownExperiments | None = None

    def _check(self, record: dict[str, Any]) -> dict[str, Any]:
        """A row as the API would take it: its rules, and an exposure must name an experiment and variant of
        the project (ingest/exposure.py)."""
        normalized = rules.check(record, self.job.ctx)
        if normalized.get("event") == EXPOSURE_EVENT:
            if self._experiments is None:
                self._experiments = ExperimentStore(self.job.platform.meta).known_variants(self.project_id)
            check_exposure(normalized, self._experiments)
        return normalized

    # setup --------------------------------------------------------------------------------------

    def setup(self, layout: Layout | None = None) -> None:
        """Check once what holds for the whole file: constants, property names, group and identity types."""
        layout = layout or self.job.layout
        ctx = self.job.ctx
        for target, value in layout.constants.items():
            error = None
            if target == "event":
                error = rules.event_name_error(value, ctx)
            elif target == "distinct_id_type":
                error = rules.id_type_error(value, ctx)
            elif target.startswith("groups."):
                error = rules.group_key_error(target[len("groups."):], value, ctx)
            elif target.startswith("properties."):
                self._check_property_name(target[len("properties."):])
            if error is not None:
                raise MappingError(f"--value {target}={value}: {error.reason}")
        for name, column in layout.properties.items():
            self._check_property_name(name, column)
        for id_type in layout.identities:
            error = rules.id_type_error(id_type, ctx)
            if error is not None:
                raise MappingError(f"identities.{id_type}: {error.reason}")
        group_types = {*layout.groups, *(t[len("groups."):] for t in layout.constants if t.startswith("groups."))}
        for group_type in sorted(group_types):
            try:
                self.slots[group_type] = self.job.platform.catalog.ensure_group_type(self.project_id, group_type)
            except MetadataError as exc:
                raise MappingError(str(exc)) from None

    def _check_property_name(self, name: str, column: str | None = None) -> None:
        if name in self._checked_names:
            return
        error = rules.property_name_error(name, self.job.ctx)
        if error is not None:
            where = f"column {column!r}" if column else f"property {name!r}"
            raise MappingError(f"{where} cannot be a property: {error.reason}; rename it with --map or --skip it")
        self._checked_names.add(name)

    def _stored_range(self) -> tuple[int, int] | None:
        """Time range of the project's events stored before this import (derived ids can only meet those)."""
        if self.store.dialect == "clickhouse":  # min() of no rows is the epoch there, not NULL
            low, high = self.store.query(
                "SELECT if(count() = 0, NULL, toUnixTimestamp64Micro(min(time))), if(count() = 0, NULL, "
                f"toUnixTimestamp64Micro(max(time))) FROM events WHERE project_id = {int(self.project_id)}").rows[0]
        else:
            low, high = self.store.query(
                "SELECT epoch_us(min(time)), epoch_us(max(time)) FROM events WHERE project_id = ?", [self.project_id]
            ).rows[0]
        return None if low is None else (int(low), int(high))

    def finish(self) -> None:
        self.writer.close()

    # chunks -------------------------------------------------------------------------------------

    def process(self, chunk: Chunk) -> ChunkResult:
        if self.coordinator is None:
            return self._process(chunk)
        with self.coordinator.hold([self.project_id]):
            result = self._process(chunk)
            self.writer.drain()
        return result

    def _submit(self, batch: WriteBatch) -> None:
        if self.coordinator is not None:
            self._batches += 1
            position = f"{self._run}:{self._batches}"
            batch.token_base = f"import:{position}"
            self.coordinator.record(batch, position, node="import")
        self.writer.submit(batch)

    def _process(self, chunk: Chunk) -> ChunkResult:
        if chunk.table is None:
            return self._rows_only(chunk)
        table = chunk.table
        layout = self._layout(table.column_names)
        insert_ids, given = self._insert_ids(table, layout)
        cols = self.columns.read(table, layout)
        cols.flag(given.suspect)
        # exposures are checked against the project's experiments, row by row like the API does
        cols.flag(pc.fill_null(pc.equal(cols.event, EXPOSURE_EVENT), False).to_numpy(zero_copy_only=False))
        result = ChunkResult()
        slow = self._decide(chunk.start, table, layout, cols.suspect, insert_ids, result)
        keep = ~cols.suspect
        cut = self.job.cut(result.rejects, chunk.start)
        if cut is not None:
            keep[cut:] = False
            slow = [item for item in slow if item[0] < cut]
            result.stopped = True
        self._write_columns(cols, insert_ids, given, keep, result)
        self._write_rows([record for _, record in slow], result)
        return result

    def _layout(self, names: Any) -> Layout:
        layout = self.job.layout.with_columns(names)
        if layout is not self.job.layout:
            self.setup(layout)
        return layout

    def _rows_only(self, chunk: Chunk) -> ChunkResult:
        """Rows pyarrow could not type (JSON Lines with mixed types): all by the row rules."""
        rows = chunk.rows or []
        layout = self._layout({key for row in rows for key in row})
        reader = RowReader(layout, self.job.source.text_only, self.typed)
        given = layout.fields.get("insert_id")
        derived = ids.assign_rows(rows, layout, self.job.occurrences)
        result = ChunkResult()
        good: Rows = []
        for i, row in enumerate(rows):
            insert_id = row.get(given) if given else None
            try:
                record = reader.event(row, derived[i] if insert_id is None else insert_id)
                good.append((i, self._check(record)))
            except RecordError as exc:
                result.rejects.append(self.job.reject(chunk.start + i, exc, row, layout))
        cut = self.job.cut(result.rejects, chunk.start)
        if cut is not None:
            good = [item for item in good if item[0] < cut]
            result.stopped = True
        self._write_rows([record for _, record in good], result)
        return result

    def _insert_ids(self, table: pa.Table, layout: Layout) -> tuple[pa.Array, col.Converted]:
        """Given ids where the file has them, ids derived from the row's content elsewhere."""
        n = table.num_rows
        source = layout.fields.get("insert_id")
        if source is not None and source in table.column_names:
            given = col.insert_ids(table.column(source))
            if given.values.null_count == 0:
                return given.values, given
        else:
            given = col.Converted(pa.nulls(n, pa.string()), np.zeros(n, dtype=bool))
        derived = ids.assign_table(self.job.con, table, layout, self.job.occurrences)
        return pc.coalesce(given.values, derived), given

    # rows left to the rules ---------------------------------------------------------------------

    def _decide(
        self, start: int, table: pa.Table, layout: Layout, suspect: np.ndarray, insert_ids: pa.Array,
        result: ChunkResult,
    ) -> Rows:
        indexes = np.flatnonzero(suspect)
        if not len(indexes):
            return []
        reader = RowReader(layout, self.job.source.text_only, self.typed)
        taken = pa.array(indexes, pa.int64())
        rows = table.take(taken).to_pylist()
        good: Rows = []
        for i, row, insert_id in zip(indexes.tolist(), rows, insert_ids.take(taken).to_pylist(), strict=True):
            try:
                good.append((i, self._check(reader.event(row, insert_id))))
            except RecordError as exc:
                result.rejects.append(self.job.reject(start + i, exc, row, layout))
        return good

    def _write_rows(self, records: list[dict[str, Any]], result: ChunkResult) -> None:
        if not records:
            return
        builder = self.job.platform.builder
        if builder is None:
            raise ImportProblem("the platform is not open")
        self.writer.drain()  # the builder reads the store
        built = builder.build([(self.project_id, self.job.received_us, r) for r in records])
        self._submit(built.batch)
        result.imported += built.records
        result.duplicates += built.duplicates
        result.warnings += self.job.save_warnings(built)

    # the column-wise write ----------------------------------------------------------------------

    def _write_columns(
        self, cols: EventColumns, insert_ids: pa.Array, given: col.Converted, keep: np.ndarray, result: ChunkResult
    ) -> None:
        if not keep.any():
            return
        duplicates = self._duplicates(cols, insert_ids, given, keep)
        result.duplicates += int(np.count_nonzero(duplicates))
        keep = keep & ~duplicates
        m = int(np.count_nonzero(keep))
        if not m:
            return
        chosen = pa.array(keep)
        persons = self._persons(cols, keep)
        changes = self.job.platform.graph.take_changes()
        arrays: dict[str, pa.Array] = {
            "project_id": pa.array(np.full(m, self.project_id, dtype=np.int32)),
            "event": cols.event.filter(chosen),
            "time": cols.time.filter(chosen),
            "distinct_id": cols.distinct_id.values.filter(chosen),
            "person_id": pa.array(persons, pa.int64()),
            "insert_id": insert_ids.filter(chosen),
            "received_at": pa.repeat(pa.scalar(self.job.received_us, pa.int64()), m).cast(col.TS),
        }
        for slot, keys in sorted(cols.groups.items()):
            arrays[f"group_{slot}"] = keys.filter(chosen)
        if cols.untyped:
            arrays["properties"] = json_objects({k: v.filter(chosen) for k, v in cols.untyped.items()}, self.job.con)
        for name, values in cols.typed.items():
            arrays[property_column(name)] = values.filter(chosen)
        schema = pa.schema([self.schema.field(name) for name in arrays])
        events = pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays.values(), schema, strict=True)],
                                      schema=schema)
        self._submit(WriteBatch(events=events, identities=changes.new_identities, merges=changes.merges,
                                      persons=[(p, person, "{}") for p, person in changes.new_persons]))
        result.imported += m

    def _duplicates(
        self, cols: EventColumns, insert_ids: pa.Array, given: col.Converted, keep: np.ndarray
    ) -> np.ndarray:
        """Rows whose event is stored already, or whose given id came earlier in the chunk."""
        duplicates = np.zeros(len(keep), dtype=bool)
        given_rows = keep & col.mask(pc.is_valid(given.values))
        earlier = np.zeros(len(keep), dtype=bool)  # given ids whose hash met one of an earlier chunk
        if given_rows.any():
            rows = np.flatnonzero(given_rows)
            values = insert_ids.take(pa.array(rows)) if len(rows) < len(keep) else insert_ids
            hashes = self._id_hashes(values)
            order = np.argsort(hashes, kind="stable")
            ordered = hashes[order]
            if np.any(ordered[1:] == ordered[:-1]):  # equal hashes are rare: then compare the ids themselves
                codes = pc.dictionary_encode(values).indices.to_numpy()
                repeated = np.ones(len(rows), dtype=bool)
                repeated[np.unique(codes, return_index=True)[1]] = False
                duplicates[rows[repeated]] = True
            earlier[rows[order]] = self._seen_given(ordered)
        check = np.flatnonzero(keep & ~duplicates)
        if not len(check):
            return duplicates
        micros = cols.time.take(pa.array(check)).cast(pa.int64())
        low, high = (v.as_py() for v in pc.min_max(micros).values())
        before = self._before
        if before is None or high < before[0] or low > before[1]:
            # Nothing stored before this import is in range: only ids given in earlier chunks can repeat
            # (derived ids are unique within an import), and only where their hashes met.
            check = check[earlier[check]]
            if not len(check):
                return duplicates
        candidates = insert_ids.take(pa.array(check))
        self.writer.drain()
        found = self.store.existing_insert_ids("events", self.project_id, candidates.to_pylist(), low, high)
        if found:
            duplicates[check[col.mask(pc.is_in(candidates, value_set=pa.array(list(found), pa.string())))]] = True
        return duplicates

    def _id_hashes(self, values: pa.Array) -> np.ndarray:
        """64-bit hashes of insert ids (DuckDB's hash, in the engine)."""
        cur = self.job.con.cursor()
        try:
            cur.register("given_ids", pa.table({"v": values}))
            hashes = cur.sql("SELECT hash(v) AS h FROM given_ids").to_arrow_table().column(0)
        finally:
            cur.close()
        return np.asarray(hashes.to_numpy(), dtype=np.uint64)

    def _seen_given(self, ordered: np.ndarray) -> np.ndarray:
        """Which of these sorted hashes met one of an earlier chunk of this import; remembers them (8 bytes
        an id)."""
        seen = self._given_hashes
        met = np.zeros(len(ordered), dtype=bool)
        if len(seen):
            at = np.minimum(np.searchsorted(seen, ordered), len(seen) - 1)
            met = seen[at] == ordered
        self._given_hashes = np.sort(np.concatenate([seen, ordered]), kind="stable")  # merges two sorted runs
        return met

    def _persons(self, cols: EventColumns, keep: np.ndarray) -> np.ndarray:
        """The person of every kept row, resolving each distinct identity once."""
        if cols.id_type is None and cols.distinct_id.encoded is not None:
            encoded = cols.distinct_id.encoded
            fixed = self.job.layout.constants.get("distinct_id_type", DEFAULT_ID_TYPE)
            codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)[keep]
            used = np.flatnonzero(np.bincount(codes, minlength=len(encoded.dictionary)))
            values = encoded.dictionary.take(pa.array(used)).to_pylist()
            people = np.zeros(len(encoded.dictionary), dtype=np.int64)
            people[used] = self._resolve([(fixed, v) for v in values])
            return people[codes]
        chosen = pa.array(keep)
        distinct = cols.distinct_id.values.filter(chosen)
        id_type = cols.id_type.filter(chosen) if cols.id_type is not None else pa.repeat(
            pa.scalar(self.job.layout.constants.get("distinct_id_type", DEFAULT_ID_TYPE)), len(distinct))
        encoded = pc.dictionary_encode(pc.binary_join_element_wise(id_type, distinct, "\x1f"))
        pairs = [tuple(key.split("\x1f", 1)) for key in encoded.dictionary.to_pylist()]  # types cannot hold \x1f
        return self._resolve(pairs)[encoded.indices.to_numpy(zero_copy_only=False)]

    def _resolve(self, pairs: list[Any]) -> np.ndarray:
        graph = self.job.platform.graph
        known = graph.project(self.project_id).person_of
        persons = np.fromiter((known.get(pair, 0) for pair in pairs), dtype=np.int64, count=len(pairs))
        for i in np.flatnonzero(persons == 0):
            persons[i] = graph.resolve(self.project_id, [list(pairs[i])]).person_id
        return persons
