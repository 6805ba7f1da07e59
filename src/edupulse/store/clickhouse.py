"""The scale-out event store: the same tables and views in ClickHouse.

This implementation runs ClickHouse's engine in-process through chDB (the `clickhouse` extra), in a data
directory or in memory; the analysis SQL it runs is the ClickHouse dialect of the same query trees the
DuckDB store runs (queries/dialect.py). A ClickHouse server (store/clickhouse_http.py) differs only in how
statements travel; the schema is versioned (store/clickhouse_schema.py).

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
    stale_tag_values_sql,
)
from edupulse.store.clickhouse_schema import Layout
from edupulse.store.schema import STANDARD_PROPERTIES, PropertyType, property_column

DB = "edupulse"
CH_TYPES = {
    PropertyType.STRING: "Nullable(String)",
    PropertyType.NUMBER: "Nullable(Float64)",
    PropertyType.BOOLEAN: "Nullable(Bool)",
    PropertyType.TIME: "Nullable(DateTime64(6, 'UTC'))",
}
RESOLVED_VIEW = Layout(DB).resolved_view()

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
    """Events, identities and properties in ClickHouse (in-process through chDB).

    The SQL is the same for a ClickHouse server (store/clickhouse_http.py): a subclass changes only how
    statements travel (`_execute`, `_arrow`, `_insert`, `_probe`)."""

    dialect = "clickhouse"

    def __init__(self, data_dir: Path | str | None = None, layout: Layout | None = None) -> None:
        self.path = None if data_dir is None else Path(data_dir) / "clickhouse"
        self.layout = layout or Layout(DB)
        self._session: Any = None
        self._lock = threading.Lock()
        self._typed: dict[str, PropertyType] = {}
        self._version = 0

    def _t(self, name: str) -> str:
        return self.layout.table(name)

    def _m(self, name: str) -> str:
        return self.layout.mutable(name)

    # lifecycle ------------------------------------------------------------------------------------

    def open(self) -> None:
        session = _chdb()
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._session = session.Session(str(self.path))
        else:
            self._session = session.Session()
        self._migrate()
        self._execute(f"USE `{self.layout.database}`")  # compiled queries name tables without their database

    def _migrate(self) -> None:
        """Apply the schema versions not applied yet (store/clickhouse_schema.py), then the typed columns."""
        self._execute(f"CREATE DATABASE IF NOT EXISTS `{self.layout.database}`{self.layout.on_cluster}")
        self._execute(self.layout.versions_table())
        (applied,), = self._rows(f"SELECT max(version) FROM {self._t('schema_versions')}")
        for version, statements in self.layout.versions():
            if version <= (applied or 0):
                continue
            for statement in statements:
                self._execute(statement)
            self._execute(f"INSERT INTO {self._t('schema_versions')} (version) VALUES ({version})")
        self.refresh_typed()
        for name, kind in STANDARD_PROPERTIES.items():
            if name not in self._typed:
                self._add_column(name, kind)
        self._execute(self.layout.resolved_view())

    def schema_version(self) -> int:
        (applied,), = self._rows(f"SELECT max(version) FROM {self._t('schema_versions')}")
        return int(applied or 0)

    def refresh_typed(self) -> bool:
        """Read the typed property columns again (another process may have declared one); True if changed."""
        typed = {name: PropertyType(kind) for name, kind in
                 self._rows(f"SELECT name, kind FROM {self._t('property_columns')} ORDER BY name")}
        changed = typed != self._typed
        self._typed = typed
        return changed

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _execute(self, sql: str, fmt: str = "CSV", settings: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            raise RuntimeError("the event store is not open")
        with self._lock:
            if not settings:
                return self._session.query(sql, fmt)
            for key, value in settings.items():
                self._session.query(f"SET {key} = {_literal(value)}")
            try:
                return self._session.query(sql, fmt)
            finally:
                for key in settings:
                    self._session.query(f"SET {key} = DEFAULT")

    def _arrow(self, sql: str) -> pa.Table:
        return self._execute(sql, "ArrowTable")

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        table = self._arrow(sql)
        columns = [column.to_pylist() for column in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def _insert(self, table: str, data: pa.Table, columns: Sequence[str] | None = None,
                token: str | None = None) -> None:
        """Insert an Arrow table (columns by name) through chDB's Python table function; with a token, an
        insert that repeats one already stored (a retried batch) is dropped by ClickHouse."""
        if data.num_rows == 0:
            return
        names = ", ".join(f"`{c}`" for c in (columns or data.column_names))
        rows = data  # referenced by name from the SQL below
        self._execute(f"INSERT INTO {self._t(table)} ({names}) SELECT {names} FROM Python(rows)",
                      settings={"insert_deduplication_token": token} if token else None)
        del rows

    def _probe(self, probe: pa.Table) -> str:
        """The right side of `(columns) IN ...` for these rows: chDB reads the caller's `probe` by name."""
        return f"(SELECT {', '.join(probe.column_names)} FROM Python(probe))"

    # schema ---------------------------------------------------------------------------------------

    def _add_column(self, name: str, kind: PropertyType) -> None:
        column = property_column(name)
        for target in self.layout.altered("events"):
            self._execute(f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS `{column}` {CH_TYPES[kind]}")
        self._execute(f"DELETE FROM {self._m('property_columns')} WHERE name = '{_escape(name)}'")
        self._execute(f"INSERT INTO {self._t('property_columns')} VALUES ('{_escape(name)}', '{kind.value}')")
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
            f"ALTER TABLE {self._m('events')} UPDATE `{property_column(name)}` = "
            f"JSONExtract(ifNull(properties, '{{}}'), '{_escape(name)}', '{extract}') "
            f"WHERE JSONHas(ifNull(properties, '{{}}'), '{_escape(name)}') SETTINGS mutations_sync = 2")
        self._execute(self.layout.resolved_view())
        self._version += 1

    # reads for the loader -------------------------------------------------------------------------

    def identity_rows(self) -> Iterator[tuple[int, str, str, int]]:
        yield from self._rows(f"SELECT project_id, id_type, id_value, person_id FROM {self._t('identities')}")

    def max_ids(self) -> tuple[int, int]:
        (person, seq), = self._rows(
            f"SELECT greatest((SELECT max(person_id) FROM {self._t('identities')}), "
            f"(SELECT max(person_id) FROM {self._t('persons')})), greatest((SELECT max(seq) FROM "
            f"{self._t('profile_ops')}), (SELECT max(seq) FROM {self._t('entity_ops')}))")
        return int(person or 0), int(seq or 0)

    def checkpoint(self, source: str) -> str | None:
        rows = self._rows(f"SELECT position FROM {self._t('checkpoints')} WHERE source = '{_escape(source)}'")
        return rows[0][0] if rows else None

    def existing_insert_ids(
        self, table: str, project_id: int, insert_ids: Sequence[str], min_time_us: int, max_time_us: int
    ) -> set[str]:
        if table not in ("events", "profile_ops", "entity_ops"):
            raise ValueError(f"no insert ids in {table}")
        if not insert_ids:
            return set()
        probe = pa.table({"insert_id": pa.array(list(insert_ids), pa.string())})
        rows = self._rows(
            f"SELECT DISTINCT insert_id FROM {self._t(table)} WHERE project_id = {int(project_id)} AND time BETWEEN "
            f"fromUnixTimestamp64Micro({int(min_time_us)}, 'UTC') AND fromUnixTimestamp64Micro({int(max_time_us)}, "
            f"'UTC') AND insert_id IN {self._probe(probe)}")
        return {r[0] for r in rows}

    def recent_insert_ids(self, since_us: int) -> Iterator[tuple[str, int, str]]:
        since = f"fromUnixTimestamp64Micro({int(since_us)}, 'UTC')"
        yield from self._rows(" UNION ALL ".join(
            f"SELECT '{table}', project_id, insert_id FROM {self._t(table)} WHERE insert_id IS NOT NULL AND "
            f"{column} >= {since}"
            for table, column in (("events", "received_at"), ("profile_ops", "time"), ("entity_ops", "time"))))

    def person_ops(self, project_id: int, person_ids: Sequence[int]) -> list[tuple[int, int, int, str, str]]:
        if not person_ids:
            return []
        probe = pa.table({"person_id": pa.array(list(person_ids), pa.int64())})
        return [(int(a), int(b), int(c), d, e) for a, b, c, d, e in self._rows(
            f"""SELECT pid, toUnixTimestamp64Micro(time), seq, op, properties FROM (
                  SELECT if(o.person_id = 0, p.person_id, o.person_id) AS pid, p.time, p.seq, p.op, p.properties
                  FROM {self._t('profile_ops')} AS p LEFT JOIN {self._t('person_overrides')} AS o
                    ON o.project_id = p.project_id AND o.old_person_id = p.person_id
                  WHERE p.project_id = {int(project_id)})
                WHERE pid IN {self._probe(probe)}""")]

    def entity_ops(
        self, project_id: int, keys: Sequence[tuple[str, str, str]]
    ) -> list[tuple[str, str, str, int, int, str]]:
        if not keys:
            return []
        kinds, types, names = zip(*keys, strict=True)
        probe = pa.table({"kind": list(kinds), "entity_type": list(types),
                          "entity_key": list(names)})
        return self._rows(
            f"""SELECT kind, entity_type, entity_key, toUnixTimestamp64Micro(time), seq, properties
                FROM {self._t('entity_ops')} WHERE project_id = {int(project_id)} AND (kind, entity_type, entity_key) IN
                {self._probe(probe)}""")

    # writes ---------------------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        b = batch
        # Inserts into append-only tables carry a token naming the batch (its log position): when a batch
        # is applied again after a crash in the middle, ClickHouse drops the inserts it already holds.
        # Tables written by delete-then-insert (_replace) carry none: their rewrite is idempotent by itself.
        base = f"{b.checkpoint[0]}@{b.checkpoint[1]}" if b.checkpoint is not None else b.token_base

        def token(name: str) -> str | None:
            return None if base is None else f"{base}:{name}"

        if b.events is not None:
            self._insert("events", b.events, token=token("events"))
        if b.raw_events is not None and b.raw_events.num_rows:
            self._insert("events", split_properties(b.raw_events, self._typed), token=token("raw_events"))
        if b.identities:
            p, t, v, person = zip(*b.identities, strict=True)
            self._insert("identities", token=token("identities"), data=pa.table({
                "project_id": pa.array(p, pa.int32()), "id_type": list(t), "id_value": list(v),
                "person_id": pa.array(person, pa.int64())}))
        if b.merges:
            self._apply_merges(b.merges, token("person_overrides"))
        if b.profile_ops:
            p, person, t, seq, op, props, iid = zip(*b.profile_ops, strict=True)
            self._insert("profile_ops", token=token("profile_ops"), data=pa.table({
                "project_id": pa.array(p, pa.int32()), "person_id": pa.array(person, pa.int64()),
                "time": pa.array(t, pa.timestamp("us", tz="UTC")), "seq": pa.array(seq, pa.int64()), "op": list(op),
                "properties": list(props), "insert_id": list(iid)}))
        if b.entity_ops:
            p, kind, etype, key, t, seq, props, iid = zip(*b.entity_ops, strict=True)
            self._insert("entity_ops", token=token("entity_ops"), data=pa.table({
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
        probe = rows.select(list(key))
        self._execute(f"DELETE FROM {self._m(table)} WHERE ({', '.join(key)}) IN {self._probe(probe)}")
        self._insert(table, rows)

    def _apply_merges(self, merges: list[tuple[int, int, int]], token: str | None = None) -> None:
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
                self._execute(f"ALTER TABLE {self._m(table)} UPDATE person_id = {mapping} WHERE project_id = {project} "
                              f"AND person_id IN ({', '.join(map(str, losers))}) SETTINGS mutations_sync = 2")
            self._execute(f"DELETE FROM {self._m('persons')} WHERE project_id = {project} AND person_id IN "
                          f"({', '.join(map(str, losers))})")
            self._insert("person_overrides", token=None if token is None else f"{token}:{project}", data=pa.table({
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
        settings: dict[str, Any] = {}
        if control is not None:
            left = control.remaining()
            if left is not None:
                settings["max_execution_time"] = max(1, int(left + 0.999))
        if max_rows is not None:
            settings |= {"max_result_rows": max_rows + 1, "result_overflow_mode": "break"}
        table = self._select(sql.rstrip().rstrip(";"), settings, control)
        rows = list(zip(*[column.to_pylist() for column in table.columns], strict=True)) if table.num_columns else []
        if max_rows is not None:
            rows = rows[: max_rows + 1]
        return QueryResult(columns=list(table.column_names), rows=rows)

    def write_tag_values(self, w: TagWrite) -> int:
        """As DuckDB's, with ClickHouse's spelling: NULLs from the outer join (join_use_nulls), no transaction
        (a run that fails half-way is run again; its rows carry its run id). The staged rows and the new
        values go through tables of the run's own (any node may run a tag)."""
        select = w.select
        staging = f"tag_upload_{int(w.run_id)}"
        new = self._t(f"tag_new_{int(w.run_id)}")
        if w.staged is not None:
            columns = ", ".join(f"`{f.name}` {_ch_type(f.type)}" for f in w.staged.schema)
            self._execute(f"CREATE TABLE IF NOT EXISTS {self._t(staging)} ({columns}) ENGINE = Memory")
            self._insert(staging, w.staged)
            select = select.replace("tag_upload", staging)
        try:
            # a column that is NULL in every row (no number, no detail) has no type a table can hold: cast it
            self._execute(f"CREATE TABLE {new} ENGINE = Memory AS SELECT s.unit AS unit, "
                          f"CAST(s.value AS Nullable(String)) AS value, CAST(s.number AS Nullable(Float64)) AS number, "
                          f"CAST(s.detail AS Nullable(String)) AS detail FROM ({select}) AS s")
            person = "toInt64(n.unit)" if w.person else "toInt64(0)"
            group = "''" if w.person else "toString(n.unit)"
            gone = "" if w.overwrite else " AND n.k_person IS NOT NULL"
            moment = w.computed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            differs = " OR ".join(f"ifNull(toString(n.{c}), '\\0') != ifNull(toString(c.{c}), '\\0')"
                                  for c in ("value", "number", "detail"))
            self._execute(f"""INSERT INTO {self._t("tag_values")} ({TAG_VALUES_COLUMNS})
                SELECT {int(w.project_id)}, {int(w.tag_id)}, {int(w.run_id)}, toDate('{w.day.isoformat()}'),
                       toDateTime64('{moment}', 6, 'UTC'), coalesce(n.k_person, c.person_id),
                       coalesce(n.k_group, c.group_key), n.k_person IS NOT NULL, n.value, n.number, n.detail
                FROM (SELECT {person} AS k_person, {group} AS k_group, toNullable(toString(value)) AS value,
                             toNullable(toFloat64(number)) AS number, toNullable(toString(detail)) AS detail
                      FROM {new} AS n WHERE n.unit IS NOT NULL) AS n
                FULL OUTER JOIN ({latest_tag_values_sql(w.project_id, w.tag_id)}) AS c
                  ON c.person_id = n.k_person AND c.group_key = n.k_group
                WHERE (c.person_id IS NULL OR n.k_person IS NULL OR {differs}){gone}""",
                          settings={"join_use_nulls": 1})
        finally:
            self._execute(f"DROP TABLE IF EXISTS {new}")
            self._execute(f"DROP TABLE IF EXISTS {self._t(staging)}")
        self._version += 1
        rows = self._rows(f"SELECT count() FROM {self._t('tag_values')} WHERE project_id = {int(w.project_id)} AND "
                          f"tag_id = {int(w.tag_id)} AND run_id = {int(w.run_id)}")
        return int(rows[0][0])

    def compact_tag_values(self, project_id: int, before: dt.date) -> int:
        """As DuckDB's: the rows to remove are read first (a mutation's subquery may not read the table it
        changes), then deleted by their keys."""
        stale = stale_tag_values_sql(project_id, before).replace("FROM tag_values", f"FROM {self._t('tag_values')}")
        found = self._rows(f"SELECT count() FROM ({stale}) AS s")
        removed = int(found[0][0]) if found else 0
        if removed:
            self._execute(f"DELETE FROM {self._m('tag_values')} WHERE project_id = {int(project_id)} AND "
                          f"(tag_id, person_id, group_key, run_id) IN ({stale})")
            self._version += 1
        return removed

    def _select(self, sql: str, settings: dict[str, Any], control: QueryControl | None) -> pa.Table:
        """Run an analysis statement with these settings; a time limit reached raises QueryInterrupted."""
        clause = ", ".join(f"{k} = {_literal(v)}" for k, v in settings.items())
        try:
            return self._arrow(sql + (f" SETTINGS {clause}" if clause else ""))
        except Exception as exc:
            if "TIMEOUT_EXCEEDED" in str(exc) or "Timeout exceeded" in str(exc):
                raise QueryInterrupted("timeout") from None
            raise

    def data_version(self) -> int:
        return self._version

    def sync(self) -> bool:
        return True

    def storage_bytes(self) -> int:
        if self.path is None:
            rows = self._rows("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = "
                              f"'{_escape(self.layout.database)}'")
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


def _ch_type(kind: pa.DataType) -> str:
    """The ClickHouse column of an Arrow type of staged tag rows."""
    if pa.types.is_integer(kind):
        return "Nullable(Int64)"
    if pa.types.is_floating(kind):
        return "Nullable(Float64)"
    return "Nullable(String)"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _literal(value: Any) -> str:
    """A SQL literal of a Python value (strings quoted, None as NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return f"'{_escape(str(value))}'"
