"""`edupulse migrate-store`: move an embedded installation (DuckDB events, SQLite metadata) to a ClickHouse
server and PostgreSQL.

- Events are copied one (project, UTC day) at a time, and each day done is recorded in the target
  (`checkpoints`, source `migrate:events:PROJECT/DAY`): a run that stops anywhere is started again and goes
  on where it stopped. A day not recorded is counted in the target first: all there (the run stopped before
  recording it) is recorded and skipped, part of it is deleted and copied again whole.
- The other event-store tables (identities, merges, persons, profile and group operations, groups, spend)
  follow, each as one recorded step.
- The metadata (projects, keys, users, reports, ... every table) is copied into the PostgreSQL database,
  migrated first; a table already holding the source's row count is skipped; sequences are set past the
  copied ids.
- Finally the counts are compared (events per project, every table); any difference fails the command.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from edupulse.meta.db import MetadataStore
from edupulse.meta.models import Base
from edupulse.meta.xapi import StatementStore
from edupulse.store.base import BASE_EVENT_COLUMNS
from edupulse.store.clickhouse import COPIED_TABLES
from edupulse.store.clickhouse_http import ClickHouseServerStore
from edupulse.store.duckdb import DuckDBStore
from edupulse.store.schema import property_column

EVENTS_SOURCE = "migrate:events"
Progress = Callable[[str], None]


@dataclass
class Check:
    what: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


@dataclass
class MigrationReport:
    events_copied: int = 0
    chunks_skipped: int = 0
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def migrate_events(source: DuckDBStore, target: ClickHouseServerStore, progress: Progress) -> MigrationReport:
    """Copy every event-store table; resumable; verified by counts."""
    report = MigrationReport()
    for name, kind in source.typed_properties().items():
        if name not in target.typed_properties():
            target.declare_property(name, kind)
    prefix = f"{EVENTS_SOURCE}:"
    run = uuid.uuid4().hex[:8]  # an insert sent twice in this run is stored once
    done = {row[0][len(prefix):] for row in target.query(
        f"SELECT source FROM checkpoints WHERE startsWith(source, '{prefix}')").rows}
    con = source.con.cursor()
    try:
        chunks = con.sql("SELECT project_id, CAST(date_trunc('day', time AT TIME ZONE 'UTC') AS DATE) AS day, "
                         "count(*) FROM events GROUP BY ALL ORDER BY 1, 2").fetchall()
        total = sum(n for _, _, n in chunks)
        columns = [name for name, _ in BASE_EVENT_COLUMNS] + [property_column(n) for n in source.typed_properties()]
        moved = 0
        for project, day, count in chunks:
            key = f"{project}/{day.isoformat()}"
            moved += count
            if key in done:
                report.chunks_skipped += 1
                continue
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            span = (f"project_id = {int(project)} AND time >= fromUnixTimestamp64Micro({_micros(start)}, 'UTC') "
                    f"AND time < fromUnixTimestamp64Micro({_micros(start + dt.timedelta(days=1))}, 'UTC')")
            there = int(target.query(f"SELECT count() FROM events WHERE {span}").rows[0][0])
            if there == count:  # copied by a run that stopped before it marked the day
                _mark(target, prefix + key)
                report.chunks_skipped += 1
                continue
            if there:  # cut short in the middle of the day: that day again, whole
                target._execute(f"DELETE FROM {target._m('events')} WHERE {span} SETTINGS mutations_sync = 2")
            data: pa.Table = con.sql(
                f"SELECT {', '.join(columns)} FROM events WHERE project_id = ? AND time >= ? AND time < ?",
                params=[project, start, start + dt.timedelta(days=1)]).to_arrow_table()
            target.copy_table("events", data, token=f"{EVENTS_SOURCE}:{run}:{key}")
            report.events_copied += data.num_rows
            _mark(target, prefix + key)
            progress(f"events {moved:,} / {total:,} ({100 * moved // max(total, 1)}%)  {key}")
        for table in COPIED_TABLES:
            if table == "checkpoints":
                continue  # the source's log positions mean nothing to the processes that will load here
            step = f"migrate:{table}"
            if target.checkpoint(step) == "done":
                continue
            data = con.sql(f"SELECT * FROM {table}").to_arrow_table()
            keep = [c for c in data.column_names if c not in ("first_seen", "updated_at")]
            target._execute(f"TRUNCATE TABLE {target._t(table)}")  # a step cut short starts over
            target.copy_table(table, data.select(keep))
            _remember(target, step, "done")
            progress(f"{table}: {data.num_rows:,} rows")
        for (project,) in con.sql("SELECT DISTINCT project_id FROM events ORDER BY 1").fetchall():
            report.checks.append(Check(
                f"events of project {project}",
                _count(con, "SELECT count(*) FROM events WHERE project_id = ?", [project]),
                int(target.query(f"SELECT count() FROM events WHERE project_id = {int(project)}").rows[0][0])))
        for table in COPIED_TABLES:
            if table != "checkpoints":
                report.checks.append(Check(f"{table} rows", _count(con, f"SELECT count(*) FROM {table}"),
                                           int(target.query(f"SELECT count() FROM {table}").rows[0][0])))
    finally:
        con.close()
    return report


def _mark(target: ClickHouseServerStore, source: str) -> None:
    target.copy_table("checkpoints", pa.table({"source": [source], "position": ["done"]}))


def _micros(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _count(con: Any, sql: str, params: list[Any] | None = None) -> int:
    return int(con.execute(sql, params or []).fetchall()[0][0])


def _remember(target: ClickHouseServerStore, source: str, position: str) -> None:
    target._replace("checkpoints", pa.table({"source": [source], "position": [position]}), ("source",))


def migrate_metadata(source: MetadataStore, target: MetadataStore, progress: Progress) -> list[Check]:
    """Copy every metadata table (in dependency order) into a migrated database; verified by counts. xAPI
    statements a SQLite server accepted and had not indexed yet are indexed first (PostgreSQL has none)."""
    target.migrate()
    StatementStore(source, deferred=True).flush()
    checks = []
    with source.engine.connect() as src, target.engine.begin() as dst:
        for table in Base.metadata.sorted_tables:
            have = int(src.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            there = int(dst.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            if there != have:
                if there:
                    dst.execute(table.delete())
                rows = [_aware(dict(r._mapping)) for r in src.execute(sa.select(table))]
                for start in range(0, len(rows), 5000):
                    dst.execute(table.insert(), rows[start:start + 5000])
                progress(f"metadata {table.name}: {len(rows):,} rows")
            checks.append(Check(f"metadata {table.name}", have, 0))
        if target.engine.dialect.name == "postgresql":
            for table in Base.metadata.sorted_tables:
                keys = list(table.primary_key.columns)
                if len(keys) != 1 or not isinstance(keys[0].type, sa.Integer):
                    continue
                name, column = table.name, keys[0].name
                dst.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'), "
                    f'coalesce((SELECT max("{column}") FROM "{name}"), 0) + 1, false) '
                    f"WHERE pg_get_serial_sequence('{name}', '{column}') IS NOT NULL"))
    with target.engine.connect() as dst:
        for check, table in zip(checks, Base.metadata.sorted_tables, strict=True):
            check.target = int(dst.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    return checks


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite hands back times without their zone; EduPulse stores UTC."""
    return {k: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v
            for k, v in row.items()}
