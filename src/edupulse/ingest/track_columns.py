"""Track records of one identity travel through the log as columns.

Most records are `track` records of a single identity (a page view, an attended lesson). The validator
writes them into the log frame column by column, with their properties already serialized, so the loader
(which shares the server process and its interpreter lock with the HTTP handling) only resolves each
identity and hands whole columns to Arrow; records that link identities, profile and entity operations
stay whole records in the frame's `recs`.

Frame columns (`"tc"`): `e` event, `t` time (µs), `it`/`iv` identity type and value, `iid` insert id or
null, `pj` properties as JSON text or null, `g` {group type: [key or null, ...]}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from edupulse.identity.graph import IdentityGraph
from edupulse.store.base import EventStore, raw_event_schema
from edupulse.store.schema import GROUP_SLOTS

# (project_id, received_at_us, columns)
TrackColumns = tuple[int, int, dict[str, Any]]
OtherTimes = Callable[[str, int, list[str]], set[str]]


def column_table(
    columns: list[TrackColumns], graph: IdentityGraph, store: EventStore, group_slots: Callable[[int], dict[str, int]],
    seen: Iterable[tuple[int, str]] = (), other_times: OtherTimes | None = None,
) -> tuple[pa.Table | None, int, int]:
    """The raw events of the frames' columns: (table or None, rows kept, duplicates dropped). `seen` holds
    (project, insert id) of events taken in the same load from whole records; `other_times(table, project,
    ids)` finds IDs stored with other times than their records carry now."""
    total = sum(len(c["e"]) for _, _, c in columns)
    if not total:
        return None, 0, 0
    project_ids = np.empty(total, dtype=np.int32)
    received = np.empty(total, dtype=np.int64)
    events: list[str] = []
    times: list[int] = []
    distinct: list[str] = []
    insert_ids: list[str | None] = []
    props: list[str | None] = []
    persons: list[int] = []
    group_values: list[list[str | None] | None] = [None] * GROUP_SLOTS
    start = 0
    for project_id, received_us, c in columns:
        n = len(c["e"])
        project_ids[start:start + n] = project_id
        received[start:start + n] = received_us
        events += c["e"]
        times += c["t"]
        distinct += c["iv"]
        insert_ids += c["iid"]
        props += c["pj"]
        persons += _resolve(graph, project_id, c["it"], c["iv"])
        if c["g"]:
            slots = group_slots(project_id)
            for group_type, keys in c["g"].items():
                slot = slots[group_type]
                values = group_values[slot]
                if values is None:
                    values = group_values[slot] = [None] * start
                values += keys
        for padded in group_values:
            if padded is not None and len(padded) < start + n:
                padded.extend([None] * (start + n - len(padded)))
        start += n
    keep = _not_stored(columns, insert_ids, store, set(seen), other_times)
    arrays: list[Any] = [project_ids, events, times, distinct, persons, insert_ids, received,
                         *(v if v is not None else pa.nulls(total, pa.string()) for v in group_values), props]
    schema = raw_event_schema()
    table = pa.Table.from_arrays([a if isinstance(a, pa.Array) else pa.array(a, f.type)
                                  for a, f in zip(arrays, schema, strict=True)], schema=schema)
    dropped = 0 if keep is None else total - int(np.count_nonzero(keep))
    if keep is not None:
        table = table.filter(pa.array(keep))
    return table, total - dropped, dropped


def _resolve(graph: IdentityGraph, project_id: int, types: list[str], values: list[str]) -> list[int]:
    project = graph.project(project_id)
    known = project.person_of.get
    out = []
    for key in zip(types, values, strict=True):
        person = known(key)
        if person is None:
            person = graph.resolve(project_id, [list(key)]).person_id
        out.append(person)
    return out


def _not_stored(
    columns: list[TrackColumns], insert_ids: list[str | None], store: EventStore, seen: set[tuple[int, str]],
    other_times: OtherTimes | None,
) -> np.ndarray | None:
    """Rows to keep: no insert id, or one stored neither before nor earlier in this load. None: keep all."""
    wanted: dict[int, tuple[list[str], int, int]] = {}
    for project_id, received_us, c in columns:
        ids = [i for i in c["iid"] if i is not None]
        if not ids:
            continue
        times = c["t"]
        # a record sent without a time got the time it arrived: an earlier attempt has an earlier time
        low = 0 if received_us in times else min(times)
        high = max(times)
        if project_id in wanted:
            have, was_low, was_high = wanted[project_id]
            have += ids
            low, high = min(low, was_low), max(high, was_high)
        wanted[project_id] = (wanted[project_id][0] if project_id in wanted else ids, low, high)
    if not wanted:
        return None
    stored = {p: store.existing_insert_ids("events", p, ids, low, high) for p, (ids, low, high) in wanted.items()}
    if other_times is not None:
        for p, (ids, _, _) in wanted.items():
            stored[p] |= other_times("events", p, [i for i in ids if i not in stored[p]])
    keep: np.ndarray | None = None
    start = 0
    for project_id, _, c in columns:
        n = len(c["e"])
        if project_id in stored:
            found = stored[project_id]
            for offset, insert_id in enumerate(insert_ids[start:start + n]):
                if insert_id is None:
                    continue
                key = (project_id, insert_id)
                if insert_id in found or key in seen:
                    if keep is None:
                        keep = np.ones(len(insert_ids), dtype=bool)
                    keep[start + offset] = False
                seen.add(key)
        start += n
    return keep
