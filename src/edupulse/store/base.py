"""The event-store interface. DuckDB (embedded) and ClickHouse (scale-out) implement it.

The surface is small on purpose: append a batch atomically, read back what the loader needs to
keep identities and properties right, run a compiled query, and manage typed property columns.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from edupulse.store.schema import GROUP_SLOTS, PropertyType, property_column

BASE_EVENT_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("project_id", pa.int32()),
    ("event", pa.string()),
    ("time", pa.timestamp("us", tz="UTC")),
    ("distinct_id", pa.string()),
    ("person_id", pa.int64()),
    ("insert_id", pa.string()),
    ("received_at", pa.timestamp("us", tz="UTC")),
    *[(f"group_{i}", pa.string()) for i in range(GROUP_SLOTS)],
    ("properties", pa.string()),
]

ARROW_TYPES: dict[PropertyType, pa.DataType] = {
    PropertyType.STRING: pa.string(),
    PropertyType.NUMBER: pa.float64(),
    PropertyType.BOOLEAN: pa.bool_(),
    PropertyType.TIME: pa.timestamp("us", tz="UTC"),
}


def event_schema(typed: dict[str, PropertyType]) -> pa.Schema:
    """Arrow schema of an events batch: base columns then one column per typed property."""
    fields = [pa.field(name, kind) for name, kind in BASE_EVENT_COLUMNS]
    fields += [pa.field(property_column(name), ARROW_TYPES[kind]) for name, kind in typed.items()]
    return pa.schema(fields)


def raw_event_schema() -> pa.Schema:
    """Arrow schema of a raw events batch: base columns, `properties` holding every property as JSON.

    The store splits typed properties into their columns itself (in the engine, not in Python).
    """
    return pa.schema([pa.field(name, kind) for name, kind in BASE_EVENT_COLUMNS])


@dataclass
class WriteBatch:
    """Everything one loader step writes, applied in one transaction."""

    events: pa.Table | None = None  # already split: event_schema()
    raw_events: pa.Table | None = None  # to be split by the store: raw_event_schema()
    # (project_id, person_id, time_us, seq, op, properties_json, insert_id)
    profile_ops: list[tuple[int, int, int, int, str, str, str | None]] = field(default_factory=list)
    # (project_id, kind, entity_type, entity_key, time_us, seq, properties_json, insert_id)
    entity_ops: list[tuple[int, str, str, str, int, int, str, str | None]] = field(default_factory=list)
    identities: list[tuple[int, str, str, int]] = field(default_factory=list)
    merges: list[tuple[int, int, int]] = field(default_factory=list)  # project, loser, survivor
    persons: list[tuple[int, int, str]] = field(default_factory=list)  # project, person, properties json
    entities: list[tuple[int, str, str, str, str]] = field(default_factory=list)  # project, kind, type, key, json
    spend: pa.Table | None = None
    checkpoint: tuple[str, str] | None = None  # (source, position) stored with the data
    token_base: str | None = None  # names the batch for idempotent inserts when it carries no checkpoint


@dataclass(frozen=True)
class TagWrite:
    """The values of one run of a tag: `select` (SQL of the store's dialect) gives columns `unit` (a person id
    for person tags, else a group key), `value`, `number` and `detail`. Only what changed is stored (a row per
    new or changed value, and an absent row per unit that lost its value), so every earlier day stays
    answerable. With `staged`, the rows are readable as table `tag_upload` while `select` runs; `overwrite`
    False keeps the values of units that `select` does not give."""

    project_id: int
    tag_id: int
    run_id: int
    day: dt.date
    computed_at: dt.datetime
    person: bool
    select: str
    overwrite: bool = True
    staged: pa.Table | None = None


TAG_VALUES_COLUMNS = ("project_id, tag_id, run_id, day, computed_at, person_id, group_key, present, value, number, "
                      "detail")


def latest_tag_values_sql(project_id: int, tag_id: int, as_of: dt.date | None = None) -> str:
    """The values of a tag in force (on `as_of`, or now): per unit, its row of the latest run that changed it,
    if present. Both engines read it alike."""
    day = f" AND day <= CAST('{as_of.isoformat()}' AS DATE)" if as_of is not None else ""
    where = f"project_id = {int(project_id)} AND tag_id = {int(tag_id)}{day}"
    return (f"SELECT t.person_id AS person_id, t.group_key AS group_key, t.value AS value, t.number AS number, "
            f"t.detail AS detail, t.day AS day FROM tag_values AS t JOIN (SELECT person_id, group_key, "
            f"max(run_id) AS run_id FROM tag_values WHERE {where} GROUP BY person_id, group_key) AS l "
            f"ON t.person_id = l.person_id AND t.group_key = l.group_key AND t.run_id = l.run_id "
            f"WHERE t.{where.replace(' AND ', ' AND t.')} AND t.present")


def stale_tag_values_sql(project_id: int, before: dt.date) -> str:
    """The (tag_id, person_id, group_key, run_id) of the tag values that compacting history before `before`
    removes: every row before that day except each unit's last one, and that one too if it is a loss."""
    where = f"project_id = {int(project_id)} AND day < CAST('{before.isoformat()}' AS DATE)"
    return (f"SELECT tag_id, person_id, group_key, run_id FROM (SELECT tag_id, person_id, group_key, run_id, present, "
            f"max(run_id) OVER (PARTITION BY tag_id, person_id, group_key) AS last_run FROM tag_values WHERE {where}) "
            f"AS h WHERE run_id < last_run OR NOT present")


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class QueryInterrupted(RuntimeError):
    """A query was stopped: it ran past its time limit or was cancelled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "timeout" or "cancelled"


class QueryControl:
    """Time limit and cancellation of one analysis, which may run several statements. A store registers
    how to interrupt the statement it is running; `cancel()` from another thread interrupts it."""

    def __init__(self, timeout: float | None = None) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.cancelled = False
        self._interrupt: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def remaining(self) -> float | None:
        """Seconds left; raises QueryInterrupted when none are."""
        if self.cancelled:
            raise QueryInterrupted("cancelled")
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise QueryInterrupted("timeout")
        return left

    def attach(self, interrupt: Callable[[], None] | None) -> None:
        with self._lock:
            self._interrupt = interrupt

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._interrupt is not None:
                self._interrupt()

    def reason(self) -> str:
        return "cancelled" if self.cancelled else "timeout"


class EventStore(ABC):
    """Where events, identities and properties live."""

    dialect: str  # the SQL dialect its queries are compiled for (queries/dialect.py)

    @abstractmethod
    def open(self) -> None:
        """Connect and create or upgrade the schema."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def typed_properties(self) -> dict[str, PropertyType]:
        """Properties that have typed columns (standard plus declared)."""

    @abstractmethod
    def declare_property(self, name: str, kind: PropertyType) -> None:
        """Give a property a typed column, filled from the JSON of rows already stored."""

    @abstractmethod
    def identity_rows(self) -> Iterator[tuple[int, str, str, int]]:
        """(project_id, id_type, value, person_id) of every identity, for rebuilding the graph."""

    @abstractmethod
    def max_ids(self) -> tuple[int, int]:
        """The highest person id and operation sequence number stored."""

    @abstractmethod
    def checkpoint(self, source: str) -> str | None:
        """The position stored with the last batch written from `source`."""

    @abstractmethod
    def existing_insert_ids(
        self, table: str, project_id: int, insert_ids: Sequence[str], min_time_us: int, max_time_us: int
    ) -> set[str]:
        """Which of these insert ids are stored already (`table` is events, profile_ops or entity_ops)."""

    @abstractmethod
    def recent_insert_ids(self, since_us: int) -> Iterator[tuple[str, int, str]]:
        """(table, project_id, insert_id) of the events that arrived since `since_us` and of the profile and
        entity operations whose time is since then (they keep no arrival time)."""

    @abstractmethod
    def person_ops(self, project_id: int, person_ids: Sequence[int]) -> list[tuple[int, int, int, str, str]]:
        """(resolved person, time_us, seq, op, properties_json) of every operation on these persons."""

    @abstractmethod
    def entity_ops(
        self, project_id: int, keys: Sequence[tuple[str, str, str]]
    ) -> list[tuple[str, str, str, int, int, str]]:
        """(kind, type, key, time_us, seq, properties_json) of every operation on these groups / items."""

    @abstractmethod
    def write(self, batch: WriteBatch) -> None:
        """Apply a batch atomically: all of it, with its checkpoint, or none of it."""

    @abstractmethod
    def query(
        self, sql: str, params: Sequence[Any] | None = None, control: QueryControl | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        """Run a compiled, read-only query, interruptible through `control`; at most `max_rows` + 1 rows
        are fetched (so a caller can tell that there were more)."""

    @abstractmethod
    def write_tag_values(self, w: TagWrite) -> int:
        """Store a run's values of a tag (what changed only); returns how many rows that took."""

    @abstractmethod
    def compact_tag_values(self, project_id: int, before: dt.date) -> int:
        """Forget a project's tag history before `before`: of each unit's changes before that day only the one in
        force on it stays (none if the unit had lost its value), so every day from `before` on answers as it did.
        Returns how many rows were removed."""

    @abstractmethod
    def data_version(self) -> int:
        """A number that changes whenever stored data changes (for caching query results)."""

    @abstractmethod
    def sync(self) -> bool:
        """Make everything committed so far durable in the store's own files; False if it could not now."""

    @abstractmethod
    def storage_bytes(self) -> int:
        """Bytes the store occupies on disk."""


