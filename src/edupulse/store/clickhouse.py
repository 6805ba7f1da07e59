"""The scale-out event store: the same tables and views in ClickHouse.

This implementation runs ClickHouse's engine in-process through chDB (the `clickhouse` extra), in a data
directory or in memory; the analysis SQL it runs is the ClickHouse dialect of the same query trees the
DuckDB store runs (queries/dialect.py). A remote ClickHouse server would differ only in the `_execute`
transport.

ClickHouse has no transactions across tables: `write` applies a batch table by table, checkpoint last, so a
crash in the middle leaves a batch that the loader applies again from the log; events are then found by
their insert ids as with any retried record.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from edupulse.store.base import (
    BASE_EVENT_COLUMNS,
    TAG_VALUES_COLUMNS,
    EventStore,
    QueryControl,
    QueryInterrupted,
    QueryResult,
    TagWrite,
    WriteBatch,
    event_schema,
    latest_tag_values_sql,
)
from edupulse.store.schema import GROUP_SLOTS, STANDARD_PROPERTIES, PropertyType, property_column

DB = "edupulse"
CH_TYPES = {
    PropertyType.STRING: "Nullable(String)",
    PropertyType.NUMBER: "Nullable(Float64)",
    PropertyType.BOOLEAN: "Nullable(Bool)",
    PropertyType.TIME: "Nullable(DateTime64(6, 'UTC'))",
}
TS = "DateTime64(6, 'UTC')"

SCHEMA = [
    f"CREATE DATABASE IF NOT EXISTS {DB}",
    f"""CREATE TABLE IF NOT EXISTS {DB}.events (
        project_id Int32, event String, time {TS}, distinct_id Nullable(String), person_id Int64,
        insert_id Nullable(String), received_at Nullable({TS}),
        {", ".join(f"group_{i} Nullable(String)" for i in range(GROUP_SLOTS))}, properties Nullable(String))
        ENGINE = MergeTree ORDER BY (project_id, event, time)""",
    f"""CREATE TABLE IF NOT EXISTS {DB}.identities (
        project_id Int32, id_type String, id_value String, person_id Int64)
        ENGINE = MergeTree ORDER BY (project_id, id_type, id_value)""",
    f"""CREATE TABLE IF NOT EXISTS {DB}.person_overrides (project_id Int32, old_person_id Int64, person_id Int64)
        ENGINE = MergeTree ORDER BY (project_id, old_person_id)""",
    f"""CREATE TABLE IF NOT EXISTS {DB}.persons (project_id Int32, person_id Int64, properties Nullable(String))
        ENGINE = MergeTree ORDER BY (project_id, person_id)""",
    f"""CREATE TABLE IF NOT EXISTS {DB}.profile_ops (
        project_id Int32, person_id Int64, time {TS}, seq Int64, op String, properties Nullable(String),
        insert_id Nullable(String)) ENGINE = MergeTree ORDER BY (project_id, person_id, time)""",
    f"""CREATE TABLE IF NOT EXISTS {DB}.entity_ops (
        project_id Int32, kind String, entity_type String, entity_key String, time {TS}, seq Int64,
        properties Nullable(String), insert_id Nullable(String))
        ENGINE = MergeTree ORDER BY (project_id, kind, entity_type, entity_key)""",
    f"""CREATE TABLE IF NOT EXISTS {DB}.entities (
        project_id Int32, kind String, entity_type String, entity_key String, properties Nullable(String))
        ENGINE = MergeTree ORDER BY (project_id, kind, entity_type, entity_key)""",
    f"""CREATE TABLE IF NOT EXISTS {DB}.spend (
        project_id Int32, date Date, channel String, campaign String, cost Float64, impressions Nullable(Int64),
        clicks Nullable(Int64)) ENGINE = MergeTree ORDER BY (project_id, date, channel, campaign)""",
    f"CREATE TABLE IF NOT EXISTS {DB}.checkpoints (source String, position String) ENGINE = MergeTree ORDER BY source",
    f"""CREATE TABLE IF NOT EXISTS {DB}.tag_values (
        project_id Int32, tag_id Int32, run_id Int64, day Date, computed_at {TS}, person_id Int64, group_key String,
        present Bool, value Nullable(String), number Nullable(Float64), detail Nullable(String))
        ENGINE = MergeTree ORDER BY (project_id, tag_id, person_id, group_key, run_id)""",
    f"CREATE TABLE IF NOT EXISTS {DB}.property_columns (name String, kind String) ENGINE = MergeTree ORDER BY name",
]

# Person ids start at 1, so 0 (the default of a LEFT JOIN without a match) means "not merged".
RESOLVED_VIEW = f"""CREATE OR REPLACE VIEW {DB}.events_resolved AS
    SELECT e.*, if(o.person_id = 0, e.person_id, o.person_id) AS resolved_person_id
    FROM {DB}.events AS e LEFT JOIN {DB}.person_overrides AS o
      ON o.project_id = e.project_id AND o.old_person_id = e.person_id"""

# tables whose rows `copy_from` takes over from another store, in order
COPIED_TABLES = ("identities", "person_overrides", "persons", "profile_ops", "entity_ops", "entities", "spend",
                 "checkpoints", "tag_values")


def _chdb() -> Any:
    try:
        from chdb import session
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("the ClickHouse store needs chDB: pip install 'edupulse[clickhouse]'") from exc
    return session


class ClickHouseStore(EventStore):
    """Events, identities and properties in ClickHouse (in-process through chDB)."""

    dialect = "clickhouse"

    def __init__(self, data_dir: Path | str | None = None) -> None:
        self.path = None if data_dir is None else Path(data_dir) / "clickhouse"
        self._session: Any = None
        self._lock = threading.Lock()
        self._typed: dict[str, PropertyType] = {}
        self._version = 0

    # lifecycle ------------------------------------------------------------------------------------

    def open(self) -> None:
        session = _chdb()
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._session = session.Session(str(self.path))
        else:
            self._session = session.Session()
        for statement in SCHEMA:
            self._execute(statement)
        self._typed = {name: PropertyType(kind) for name, kind in
                       self._rows(f"SELECT name, kind FROM {DB}.property_columns ORDER BY name")}
        for name, kind in STANDARD_PROPERTIES.items():
            if name not in self._typed:
                self._add_column(name, kind)
        self._execute(RESOLVED_VIEW)
        self._execute(f"USE {DB}")  # compiled queries name tables without their database

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _execute(self, sql: str, fmt: str = "CSV") -> Any:
        if self._session is None:
            raise RuntimeError("the event store is not open")
        with self._lock:
            return self._session.query(sql, fmt)

    def _arrow(self, sql: str) -> pa.Table:
        return self._execute(sql, "ArrowTable")

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        table = self._arrow(sql)
        columns = [column.to_pylist() for column in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def _insert(self, table: str, data: pa.Table, columns: Sequence[str] | None = None) -> None:
        """Insert an Arrow table (columns by name) through chDB's Python table function."""
        if data.num_rows == 0:
            return
        names = ", ".join(f"`{c}`" for c in (columns or data.column_names))
        rows = data  # referenced by name from the SQL below
        self._execute(f"INSERT INTO {DB}.{table} ({names}) SELECT {names} FROM Python(rows)")
        del rows

    # schema ---------------------------------------------------------------------------------------

    def _add_column(self, name: str, kind: PropertyType) -> None:
        column = property_column(name)
        self._execute(f"ALTER TABLE {DB}.events ADD COLUMN IF NOT EXISTS `{column}` {CH_TYPES[kind]}")
        self._execute(f"DELETE FROM {DB}.property_columns WHERE name = '{_escape(name)}'")
        self._execute(f"INSERT INTO {DB}.property_columns VALUES ('{_escape(name)}', '{kind.value}')")
        self._typed[name] = kind

    def typed_properties(self) -> dict[str, PropertyType]:
        return dict(self._typed)

    def declare_property(self, name: str, kind: PropertyType) -> None:
        current = self._typed.get(name)
        if current is not None:
            if current != kind:
                raise ValueError(f"property {name!r} is already typed as {current.value}")
            return
        self._add_column(name, kind)
        extract = CH_TYPES[kind]  # the column's own type
        self._execute(
            f"ALTER TABLE {DB}.events UPDATE `{property_column(name)}` = "
            f"JSONExtract(ifNull(properties, '{{}}'), '{_escape(name)}', '{extract}') "
            f"WHERE JSONHas(ifNull(properties, '{{}}'), '{_escape(name)}') SETTINGS mutations_sync = 2")
        self._execute(RESOLVED_VIEW)
        self._version += 1

    # reads for the loader -------------------------------------------------------------------------

    def identity_rows(self) -> Iterator[tuple[int, str, str, int]]:
        yield from self._rows(f"SELECT project_id, id_type, id_value, person_id FROM {DB}.identities")

    def max_ids(self) -> tuple[int, int]:
        (person, seq), = self._rows(
            f"SELECT greatest((SELECT max(person_id) FROM {DB}.identities), (SELECT max(person_id) FROM {DB}.persons)),"
            f" greatest((SELECT max(seq) FROM {DB}.profile_ops), (SELECT max(seq) FROM {DB}.entity_ops))")
        return int(person or 0), int(seq or 0)

    def checkpoint(self, source: str) -> str | None:
        rows = self._rows(f"SELECT position FROM {DB}.checkpoints WHERE source = '{_escape(source)}'")
        return rows[0][0] if rows else None

    def existing_insert_ids(
        self, table: str, project_id: int, insert_ids: Sequence[str], min_time_us: int, max_time_us: int
    ) -> set[str]:
        if table not in ("events", "profile_ops", "entity_ops"):
            raise ValueError(f"no insert ids in {table}")
        if not insert_ids:
            return set()
        probe = pa.table({"insert_id": pa.array(list(insert_ids), pa.string())})  # noqa: F841 (used by name)
        rows = self._rows(
            f"SELECT DISTINCT insert_id FROM {DB}.{table} WHERE project_id = {int(project_id)} AND time BETWEEN "
            f"fromUnixTimestamp64Micro({int(min_time_us)}, 'UTC') AND fromUnixTimestamp64Micro({int(max_time_us)}, "
            f"'UTC') AND insert_id IN (SELECT insert_id FROM Python(probe))")
        return {r[0] for r in rows}

    def recent_insert_ids(self, since_us: int) -> Iterator[tuple[str, int, str]]:
        since = f"fromUnixTimestamp64Micro({int(since_us)}, 'UTC')"
        yield from self._rows(" UNION ALL ".join(
            f"SELECT '{table}', project_id, insert_id FROM {DB}.{table} WHERE insert_id IS NOT NULL AND "
            f"{column} >= {since}"
            for table, column in (("events", "received_at"), ("profile_ops", "time"), ("entity_ops", "time"))))

    def person_ops(self, project_id: int, person_ids: Sequence[int]) -> list[tuple[int, int, int, str, str]]:
        if not person_ids:
            return []
        probe = pa.table({"person_id": pa.array(list(person_ids), pa.int64())})  # noqa: F841 (used by name)
        return [(int(a), int(b), int(c), d, e) for a, b, c, d, e in self._rows(
            f"""SELECT pid, toUnixTimestamp64Micro(time), seq, op, properties FROM (
                  SELECT if(o.person_id = 0, p.person_id, o.person_id) AS pid, p.time, p.seq, p.op, p.properties
                  FROM {DB}.profile_ops AS p LEFT JOIN {DB}.person_overrides AS o
                    ON o.project_id = p.project_id AND o.old_person_id = p.person_id
                  WHERE p.project_id = {int(project_id)})
                WHERE pid IN (SELECT person_id FROM Python(probe))""")]

    def entity_ops(
        self, project_id: int, keys: Sequence[tuple[str, str, str]]
    ) -> list[tuple[str, str, str, int, int, str]]:
        if not keys:
            return []
        kinds, types, names = zip(*keys, strict=True)
        probe = pa.table({"kind": list(kinds), "entity_type": list(types),  # noqa: F841 (used by name)
                          "entity_key": list(names)})
        return self._rows(
            f"""SELECT kind, entity_type, entity_key, toUnixTimestamp64Micro(time), seq, properties
                FROM {DB}.entity_ops WHERE project_id = {int(project_id)} AND (kind, entity_type, entity_key) IN
                (SELECT kind, entity_type, entity_key FROM Python(probe))""")

    # writes ---------------------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        b = batch
        if b.events is not None:
            self._insert("events", b.events)
        if b.raw_events is not None and b.raw_events.num_rows:
            self._insert("events", split_properties(b.raw_events, self._typed))
        if b.identities:
            p, t, v, person = zip(*b.identities, strict=True)
            self._insert("identities", pa.table({"project_id": pa.array(p, pa.int32()), "id_type": list(t),
                                                 "id_value": list(v), "person_id": pa.array(person, pa.int64())}))
        if b.merges:
            self._apply_merges(b.merges)
        if b.profile_ops:
            p, person, t, seq, op, props, iid = zip(*b.profile_ops, strict=True)
            self._insert("profile_ops", pa.table({
                "project_id": pa.array(p, pa.int32()), "person_id": pa.array(person, pa.int64()),
                "time": pa.array(t, pa.timestamp("us", tz="UTC")), "seq": pa.array(seq, pa.int64()), "op": list(op),
                "properties": list(props), "insert_id": list(iid)}))
        if b.entity_ops:
            p, kind, etype, key, t, seq, props, iid = zip(*b.entity_ops, strict=True)
            self._insert("entity_ops", pa.table({
                "project_id": pa.array(p, pa.int32()), "kind": list(kind), "entity_type": list(etype),
                "entity_key": list(key), "time": pa.array(t, pa.timestamp("us", tz="UTC")),
                "seq": pa.array(seq, pa.int64()), "properties": list(props), "insert_id": list(iid)}))
        if b.persons:
            p, person, props = zip(*b.persons, strict=True)
            rows = pa.table({"project_id": pa.array(p, pa.int32()), "person_id": pa.array(person, pa.int64()),
                             "properties": list(props)})
            self._replace("persons", rows, ("project_id", "person_id"))
        if b.entities:
            p, kind, etype, key, props = zip(*b.entities, strict=True)
            rows = pa.table({"project_id": pa.array(p, pa.int32()), "kind": list(kind), "entity_type": list(etype),
                             "entity_key": list(key), "properties": list(props)})
            self._replace("entities", rows, ("project_id", "kind", "entity_type", "entity_key"))
        if b.spend is not None and b.spend.num_rows:
            self._replace("spend", b.spend.select(["project_id", "date", "channel", "campaign", "cost", "impressions",
                                                   "clicks"]), ("project_id", "date", "channel", "campaign"))
        if b.checkpoint is not None:
            self._replace("checkpoints", pa.table({"source": [b.checkpoint[0]], "position": [b.checkpoint[1]]}),
                          ("source",))
        self._version += 1

    def _replace(self, table: str, rows: pa.Table, key: tuple[str, ...]) -> None:
        """Delete the rows with these keys, then insert the new ones."""
        keys = rows.select(list(key))  # noqa: F841 (used by name)
        names = ", ".join(key)
        self._execute(f"DELETE FROM {DB}.{table} WHERE ({names}) IN (SELECT {names} FROM Python(keys))")
        self._insert(table, rows)

    def _apply_merges(self, merges: list[tuple[int, int, int]]) -> None:
        final: dict[tuple[int, int], int] = {}
        for project, loser, survivor in merges:
            for k, target in list(final.items()):
                if k[0] == project and target == loser:
                    final[k] = survivor
            final[(project, loser)] = survivor
        for project in {k[0] for k in final}:
            losers = [k[1] for k in final if k[0] == project]
            survivors = [final[(project, loser)] for loser in losers]
            mapping = f"transform(person_id, [{', '.join(map(str, losers))}], [{', '.join(map(str, survivors))}], " \
                      "person_id)"
            for table in ("identities", "person_overrides"):
                self._execute(f"ALTER TABLE {DB}.{table} UPDATE person_id = {mapping} WHERE project_id = {project} "
                              f"AND person_id IN ({', '.join(map(str, losers))}) SETTINGS mutations_sync = 2")
            self._execute(f"DELETE FROM {DB}.persons WHERE project_id = {project} AND person_id IN "
                          f"({', '.join(map(str, losers))})")
            self._insert("person_overrides", pa.table({
                "project_id": pa.array([project] * len(losers), pa.int32()),
                "old_person_id": pa.array(losers, pa.int64()), "person_id": pa.array(survivors, pa.int64())}))

    def copy_from(self, other: EventStore, tables: Sequence[str] = COPIED_TABLES) -> int:
        """Take over every row of another store (events included); returns the events copied."""
        for name, kind in other.typed_properties().items():
            self.declare_property(name, kind)
        copied = 0
        source = getattr(other, "con", None)
        if source is None:
            raise TypeError("copy_from reads a DuckDB store")
        columns = [name for name, _ in BASE_EVENT_COLUMNS] + [property_column(n) for n in other.typed_properties()]
        cursor = source.cursor()
        try:
            reader = cursor.sql(f"SELECT {', '.join(columns)} FROM events").to_arrow_reader(1_000_000)
            for chunk in reader:
                self._insert("events", pa.Table.from_batches([chunk]))
                copied += chunk.num_rows
            for table in tables:
                data = cursor.sql(f"SELECT * FROM {table}").to_arrow_table()
                keep = [c for c in data.column_names if c not in ("first_seen", "updated_at")]
                self._insert(table, data.select(keep))
        finally:
            cursor.close()
        self._version += 1
        return copied

    # queries --------------------------------------------------------------------------------------

    def query(
        self, sql: str, params: Sequence[Any] | None = None, control: QueryControl | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        if params:
            raise ValueError("the ClickHouse store takes compiled queries without parameters")
        settings = []
        if control is not None:
            left = control.remaining()
            if left is not None:
                settings.append(f"max_execution_time = {max(1, int(left + 0.999))}")
        if max_rows is not None:
            settings += [f"max_result_rows = {max_rows + 1}", "result_overflow_mode = 'break'"]
        text = sql.rstrip().rstrip(";") + (f" SETTINGS {', '.join(settings)}" if settings else "")
        try:
            table = self._arrow(text)
        except Exception as exc:
            if "TIMEOUT_EXCEEDED" in str(exc) or "Timeout exceeded" in str(exc):
                raise QueryInterrupted("timeout") from None
            raise
        rows = list(zip(*[column.to_pylist() for column in table.columns], strict=True)) if table.num_columns else []
        if max_rows is not None:
            rows = rows[: max_rows + 1]
        return QueryResult(columns=list(table.column_names), rows=rows)

    def write_tag_values(self, w: TagWrite) -> int:
        """As DuckDB's, with ClickHouse's spelling: NULLs from the outer join (join_use_nulls), no transaction
        (a run that fails half-way is run again; its rows carry its run id)."""
        if w.staged is not None:
            staged = w.staged  # noqa: F841 (read by name below)
            self._execute(f"DROP TABLE IF EXISTS {DB}.tag_upload")
            self._execute(f"CREATE TABLE {DB}.tag_upload ENGINE = Memory AS SELECT * FROM Python(staged)")
        self._execute(f"DROP TABLE IF EXISTS {DB}.tag_new")
        self._execute(f"CREATE TABLE {DB}.tag_new ENGINE = Memory AS {w.select}")
        person = "toInt64(n.unit)" if w.person else "toInt64(0)"
        group = "''" if w.person else "toString(n.unit)"
        gone = "" if w.overwrite else " AND n.k_person IS NOT NULL"
        moment = w.computed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        differs = " OR ".join(f"ifNull(toString(n.{c}), '\\0') != ifNull(toString(c.{c}), '\\0')"
                              for c in ("value", "number", "detail"))
        self._execute(f"""INSERT INTO {DB}.tag_values ({TAG_VALUES_COLUMNS})
            SELECT {int(w.project_id)}, {int(w.tag_id)}, {int(w.run_id)}, toDate('{w.day.isoformat()}'),
                   toDateTime64('{moment}', 6, 'UTC'), coalesce(n.k_person, c.person_id),
                   coalesce(n.k_group, c.group_key), n.k_person IS NOT NULL, n.value, n.number, n.detail
            FROM (SELECT {person} AS k_person, {group} AS k_group, toNullable(toString(value)) AS value,
                         toNullable(toFloat64(number)) AS number, toNullable(toString(detail)) AS detail
                  FROM {DB}.tag_new AS n WHERE n.unit IS NOT NULL) AS n
            FULL OUTER JOIN ({latest_tag_values_sql(w.project_id, w.tag_id)}) AS c
              ON c.person_id = n.k_person AND c.group_key = n.k_group
            WHERE (c.person_id IS NULL OR n.k_person IS NULL OR {differs}){gone}
            SETTINGS join_use_nulls = 1""")
        self._execute(f"DROP TABLE IF EXISTS {DB}.tag_new")
        self._version += 1
        rows = self._rows(f"SELECT count() FROM {DB}.tag_values WHERE project_id = {int(w.project_id)} AND "
                          f"tag_id = {int(w.tag_id)} AND run_id = {int(w.run_id)}")
        return int(rows[0][0])

    def data_version(self) -> int:
        return self._version

    def sync(self) -> bool:
        return True

    def storage_bytes(self) -> int:
        if self.path is None:
            rows = self._rows("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = 'edupulse'")
            return int(rows[0][0] or 0)
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())


def split_properties(raw: pa.Table, typed: dict[str, PropertyType]) -> pa.Table:
    """Split typed properties out of a raw events batch's JSON, as the DuckDB store does in its engine;
    DuckDB (in memory) does the work here too, so both stores split alike."""
    import duckdb

    from edupulse.store.duckdb import shred_select

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("raw_events", raw)
        out: pa.Table = con.sql(shred_select(typed)).to_arrow_table()
    finally:
        con.close()
    return out.cast(event_schema(typed)) if out.schema != event_schema(typed) else out


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
