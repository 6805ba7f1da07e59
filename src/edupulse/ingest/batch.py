"""Turn normalized records into one WriteBatch: dedupe, resolve identities, fold properties, columnize."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from edupulse.identity.graph import IdentityGraph, LinkWarning
from edupulse.identity.profile import OP_NAMES, fold
from edupulse.ingest.recent_ids import ALL_TIME_US, Key, RecentIds
from edupulse.ingest.records import PROFILE_OPS, TRACK, from_micros
from edupulse.ingest.track_columns import TrackColumns, column_table
from edupulse.store.base import EventStore, WriteBatch, raw_event_schema
from edupulse.store.schema import GROUP_SLOTS

# (project_id, received_at_us, normalized record)
Item = tuple[int, int, dict[str, Any]]
_TABLE_OF = {TRACK: "events", "group_set": "entity_ops", "item_set": "entity_ops"}


@dataclass
class BuiltBatch:
    batch: WriteBatch
    warnings: list[tuple[int, int, LinkWarning]] = field(default_factory=list)  # project, time_us, warning
    duplicates: int = 0
    records: int = 0
    insert_ids: list[Key] = field(default_factory=list)  # of the records stored, for the recent index


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class BatchBuilder:
    """Stateful across batches only through the identity graph and the sequence counter."""

    def __init__(
        self, store: EventStore, graph: IdentityGraph, group_slots: Callable[[int], dict[str, int]], next_seq: int = 1,
        recent: RecentIds | None = None,
    ) -> None:
        self.store = store
        self.graph = graph
        self.group_slots = group_slots
        self.seq = next_seq
        self.recent = recent if recent is not None else RecentIds(0)
        self.allocate_seq: Callable[[], int] | None = None  # set when several processes share the store

    def stored(self, built: BuiltBatch, now_us: int) -> None:
        """The batch is in the store: its insert IDs join the recent index."""
        self.recent.add(built.insert_ids, now_us)

    def stored_at_other_times(self, table: str, project_id: int, insert_ids: list[str]) -> set[str]:
        """Which of these IDs, not found at the times their records carry, the store holds at another time:
        looked up in the store only when the recent index has them (a retry with a new time)."""
        maybe = self.recent.maybe_stored(table, project_id, insert_ids)
        return self.store.existing_insert_ids(table, project_id, maybe, *ALL_TIME_US) if maybe else set()

    def build(
        self, items: Sequence[Item], checkpoint: tuple[str, str] | None = None, columns: Sequence[TrackColumns] = ()
    ) -> BuiltBatch:
        """One WriteBatch of whole records (`items`) and of track records that came as columns."""
        items, duplicates = self._dedupe(items)
        out = BuiltBatch(batch=WriteBatch(checkpoint=checkpoint), duplicates=duplicates, records=len(items))
        if self.recent.window_us:
            out.insert_ids = [(_TABLE_OF.get(rec["type"], "profile_ops"), p, rec["insert_id"]) for p, _, rec in items
                              if rec.get("insert_id") is not None]
        tracks: list[tuple[int, int, dict[str, Any], int]] = []
        dirty_persons: dict[int, set[int]] = defaultdict(set)
        batch_person_ops: dict[int, list[tuple[int, int, int, str, dict[str, Any]]]] = defaultdict(list)
        dirty_entities: dict[int, dict[tuple[str, str, str], list[tuple[int, int, str, dict[str, Any]]]]] = defaultdict(
            dict
        )
        b = out.batch
        for project_id, received_us, rec in items:
            kind = rec["type"]
            person = None
            if "ids" in rec:
                resolution = self.graph.resolve(project_id, rec["ids"])
                person = resolution.person_id
                for warning in resolution.warnings:
                    out.warnings.append((project_id, rec["time"], warning))
            if kind == TRACK:
                tracks.append((project_id, received_us, rec, person))  # type: ignore[arg-type]
            elif kind in PROFILE_OPS:
                assert person is not None
                seq = self._next_seq()
                op = OP_NAMES[kind]
                b.profile_ops.append(
                    (project_id, person, rec["time"], seq, op, _dumps(rec["properties"]), rec.get("insert_id"))
                )
                batch_person_ops[project_id].append((person, rec["time"], seq, op, rec["properties"]))
                dirty_persons[project_id].add(person)
            elif kind in ("group_set", "item_set"):
                seq = self._next_seq()
                entity_kind = "group" if kind == "group_set" else "item"
                b.entity_ops.append(
                    (
                        project_id,
                        entity_kind,
                        rec["entity_type"],
                        rec["entity_key"],
                        rec["time"],
                        seq,
                        _dumps(rec["properties"]),
                        rec.get("insert_id"),
                    )
                )
                key = (entity_kind, rec["entity_type"], rec["entity_key"])
                dirty_entities[project_id].setdefault(key, []).append((rec["time"], seq, "set", rec["properties"]))
        column_events = None
        if columns:
            seen = {(p, r["insert_id"]) for p, _, r, _ in tracks if r.get("insert_id") is not None}
            column_events, kept, dropped = column_table(list(columns), self.graph, self.store, self.group_slots, seen,
                                                        self.stored_at_other_times)
            out.records += kept
            out.duplicates += dropped
            if column_events is not None and self.recent.window_us:
                out.insert_ids += [("events", p, i) for p, i in zip(
                    column_events.column("project_id").to_pylist(), column_events.column("insert_id").to_pylist(),
                    strict=True) if i is not None]
        changes = self.graph.take_changes()
        b.identities = changes.new_identities
        b.merges = changes.merges
        self._fold_persons(b, changes.new_persons, dirty_persons, batch_person_ops)
        self._fold_entities(b, dirty_entities)
        tables = ([self._event_table(tracks)] if tracks else []) + ([column_events] if column_events else [])
        if tables:
            b.raw_events = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        return out

    def _next_seq(self) -> int:
        if self.allocate_seq is not None:
            self.seq = self.allocate_seq()
            return self.seq
        self.seq += 1
        return self.seq

    # dedupe -------------------------------------------------------------------------------------

    def _dedupe(self, items: Sequence[Item]) -> tuple[list[Item], int]:
        groups: dict[tuple[int, str], list[int]] = defaultdict(list)
        stamped: set[tuple[int, str]] = set()
        for index, (project_id, received_us, rec) in enumerate(items):
            if rec.get("insert_id") is not None:
                key = (project_id, _TABLE_OF.get(rec["type"], "profile_ops"))
                groups[key].append(index)
                if rec["time"] == received_us:
                    stamped.add(key)
        if not groups:
            return list(items), 0
        drop: set[int] = set()
        for (project_id, table), indexes in groups.items():
            seen: set[str] = set()
            times = [items[i][2]["time"] for i in indexes]
            # A record sent without a time got the time it arrived, so an earlier attempt of it was stored
            # with an earlier time: look for its ID at any time before.
            earliest = 0 if (project_id, table) in stamped else min(times)
            ids = [items[i][2]["insert_id"] for i in indexes]
            stored = self.store.existing_insert_ids(table, project_id, ids, earliest, max(times))
            stored |= self.stored_at_other_times(table, project_id, [i for i in ids if i not in stored])
            for i in indexes:
                key = items[i][2]["insert_id"]
                if key in stored or key in seen:
                    drop.add(i)
                seen.add(key)
        return [item for i, item in enumerate(items) if i not in drop], len(drop)

    # properties ---------------------------------------------------------------------------------

    def _fold_persons(
        self,
        b: WriteBatch,
        new_persons: list[tuple[int, int]],
        dirty: dict[int, set[int]],
        batch_ops: dict[int, list[tuple[int, int, int, str, Any]]],
    ) -> None:
        merge_map: dict[tuple[int, int], int] = {}
        for project_id, loser, survivor in b.merges:
            for key, target in list(merge_map.items()):
                if key[0] == project_id and target == loser:
                    merge_map[key] = survivor
            merge_map[(project_id, loser)] = survivor
            dirty[project_id].add(survivor)
            dirty[project_id].add(loser)
        done: set[tuple[int, int]] = set()
        for project_id, persons in dirty.items():
            ops_by_person: dict[int, list[tuple[int, int, str, dict[str, Any]]]] = defaultdict(list)
            for pid, t, seq, op, props in self.store.person_ops(project_id, sorted(persons)):
                ops_by_person[merge_map.get((project_id, pid), pid)].append((t, seq, op, orjson.loads(props)))
            for pid, t, seq, op, props in batch_ops.get(project_id, []):
                ops_by_person[merge_map.get((project_id, pid), pid)].append((t, seq, op, props))
            finals = {merge_map.get((project_id, p), p) for p in persons}
            for pid in sorted(finals):
                b.persons.append((project_id, pid, _dumps(fold(ops_by_person.get(pid, [])))))
                done.add((project_id, pid))
        for project_id, pid in new_persons:
            final = merge_map.get((project_id, pid), pid)
            if (project_id, final) not in done:
                b.persons.append((project_id, final, "{}"))
                done.add((project_id, final))

    def _fold_entities(
        self, b: WriteBatch, dirty: dict[int, dict[tuple[str, str, str], list[tuple[int, int, str, dict[str, Any]]]]]
    ) -> None:
        for project_id, entities in dirty.items():
            ops: dict[tuple[str, str, str], list[tuple[int, int, str, dict[str, Any]]]] = defaultdict(list)
            for kind, etype, key, t, seq, props in self.store.entity_ops(project_id, list(entities)):
                ops[(kind, etype, key)].append((t, seq, "set", orjson.loads(props)))
            for entity, new_ops in entities.items():
                b.entities.append((project_id, *entity, _dumps(fold(ops[entity] + new_ops))))

    # events -------------------------------------------------------------------------------------

    def _event_table(self, tracks: list[tuple[int, int, dict[str, Any], int]]) -> pa.Table:
        """Base columns plus all properties as JSON; the store splits typed ones into columns."""
        n = len(tracks)
        group_values: list[list[str | None]] = [[None] * n for _ in range(GROUP_SLOTS)]
        project_ids, events, times, distinct, persons, insert_ids, received, props_json = (
            [], [], [], [], [], [], [], [])
        slots_cache: dict[int, dict[str, int]] = {}
        dumps = orjson.dumps
        for i, (project_id, received_us, rec, person) in enumerate(tracks):
            project_ids.append(project_id)
            events.append(rec["event"])
            times.append(rec["time"])
            distinct.append(rec["ids"][0][1])
            persons.append(person)
            insert_ids.append(rec.get("insert_id"))
            received.append(received_us)
            props = rec["properties"]
            props_json.append(dumps(props) if props else None)
            groups = rec.get("groups")
            if groups:
                slots = slots_cache.get(project_id)
                if slots is None:
                    slots = slots_cache[project_id] = self.group_slots(project_id)
                for group_type, key in groups.items():
                    group_values[slots[group_type]][i] = key
        schema = raw_event_schema()
        arrays: list[Any] = [project_ids, events, times, distinct, persons, insert_ids, received, *group_values,
                             props_json]
        return pa.Table.from_arrays([pa.array(a, f.type) for a, f in zip(arrays, schema, strict=True)],
                                    schema=schema)


def warning_time(time_us: int) -> dt.datetime:
    return from_micros(time_us)


__all__ = ["BatchBuilder", "BuiltBatch", "Item"]
