"""The ClickHouse schema as numbered versions, and where each table lives.

`versions(layout)` lists (version, statements); a store applies the versions above the highest one recorded
in its `schema_versions` table, in order, and records each. Every statement can run twice (IF NOT EXISTS,
MODIFY SETTING), so two API nodes starting at once both end at the same schema.

Two layouts:
- a single server (no cluster name): plain MergeTree tables. Append-only tables keep the hashes of their
  last inserted blocks (`non_replicated_deduplication_window`) so an insert retried with the same
  deduplication token is stored once;
- a cluster (a cluster name configured): every table is ReplicatedMergeTree, created ON CLUSTER; events are
  sharded: each shard holds `events_local`, and `events` is a Distributed table over them (sharded by
  person). The other tables are small next to events and are whole on every node (one replica path for
  all), so the joins of the analysis SQL read them locally on each shard.
"""

from __future__ import annotations

from dataclasses import dataclass

from edupulse.store.schema import GROUP_SLOTS

TS = "DateTime64(6, 'UTC')"
DEDUP_WINDOW = 10_000  # inserted blocks whose hashes (deduplication tokens) a table remembers

# tables the loader only appends to: their inserts carry deduplication tokens
APPEND_TABLES = ("events", "identities", "person_overrides", "profile_ops", "entity_ops")

_COLUMNS = {
    "events": f"""project_id Int32, event String, time {TS}, distinct_id Nullable(String), person_id Int64,
        insert_id Nullable(String), received_at Nullable({TS}),
        {", ".join(f"group_{i} Nullable(String)" for i in range(GROUP_SLOTS))}, properties Nullable(String)""",
    "identities": "project_id Int32, id_type String, id_value String, person_id Int64",
    "person_overrides": "project_id Int32, old_person_id Int64, person_id Int64",
    "persons": "project_id Int32, person_id Int64, properties Nullable(String)",
    "profile_ops": f"""project_id Int32, person_id Int64, time {TS}, seq Int64, op String,
        properties Nullable(String), insert_id Nullable(String)""",
    "entity_ops": f"""project_id Int32, kind String, entity_type String, entity_key String, time {TS}, seq Int64,
        properties Nullable(String), insert_id Nullable(String)""",
    "entities": "project_id Int32, kind String, entity_type String, entity_key String, properties Nullable(String)",
    "spend": """project_id Int32, date Date, channel String, campaign String, cost Float64,
        impressions Nullable(Int64), clicks Nullable(Int64)""",
    "checkpoints": "source String, position String",
    "property_columns": "name String, kind String",
    # tag values by change (edupulse.tags): person_id 0 for group tags, group_key '' for person tags
    "tag_values": f"""project_id Int32, tag_id Int32, run_id Int64, day Date, computed_at {TS}, person_id Int64,
        group_key String, present Bool, value Nullable(String), number Nullable(Float64), detail Nullable(String)""",
}
_ORDER = {
    "events": "project_id, event, time",
    "identities": "project_id, id_type, id_value",
    "person_overrides": "project_id, old_person_id",
    "persons": "project_id, person_id",
    "profile_ops": "project_id, person_id, time",
    "entity_ops": "project_id, kind, entity_type, entity_key",
    "entities": "project_id, kind, entity_type, entity_key",
    "spend": "project_id, date, channel, campaign",
    "checkpoints": "source",
    "property_columns": "name",
    "tag_values": "project_id, tag_id, person_id, group_key, run_id",
}
TABLES = tuple(name for name in _COLUMNS if name != "tag_values")  # the tables of version 1


@dataclass(frozen=True)
class Layout:
    """Where the tables are: a database, and a cluster name when the server is one of a cluster."""

    database: str = "edupulse"
    cluster: str | None = None

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    def table(self, name: str) -> str:
        """The table to read from and insert into."""
        return f"`{self.database}`.`{name}`"

    def mutable(self, name: str) -> str:
        """The table (and cluster clause) an ALTER ... UPDATE or DELETE names."""
        if self.cluster and name == "events":
            return f"`{self.database}`.`events_local`{self.on_cluster}"
        return self.table(name)

    def altered(self, name: str) -> list[str]:
        """The tables (with cluster clause) an ALTER ... ADD/DROP COLUMN names."""
        if self.cluster and name == "events":
            return [f"`{self.database}`.`events_local`{self.on_cluster}", f"{self.table('events')}{self.on_cluster}"]
        return [f"{self.table(name)}{self.on_cluster}"]

    def _engine(self, name: str) -> str:
        window = f" SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}" if name in APPEND_TABLES else ""
        if not self.cluster:
            return f"MergeTree ORDER BY ({_ORDER[name]}){window}"
        path = ("'/clickhouse/tables/{shard}/{database}/{table}'" if name == "events"
                else "'/clickhouse/tables/all/{database}/{table}'")
        return (f"ReplicatedMergeTree({path}, '{{replica}}') ORDER BY ({_ORDER[name]})"
                f" SETTINGS replicated_deduplication_window = {DEDUP_WINDOW}")

    def create(self, name: str) -> list[str]:
        columns = _COLUMNS[name]
        if self.cluster and name == "events":
            local = f"`{self.database}`.`events_local`"
            return [
                f"CREATE TABLE IF NOT EXISTS {local}{self.on_cluster} ({columns}) ENGINE = {self._engine(name)}",
                f"CREATE TABLE IF NOT EXISTS {self.table(name)}{self.on_cluster} AS {local} ENGINE = "
                f"Distributed(`{self.cluster}`, `{self.database}`, `events_local`, cityHash64(person_id))",
            ]
        return [f"CREATE TABLE IF NOT EXISTS {self.table(name)}{self.on_cluster} ({columns}) "
                f"ENGINE = {self._engine(name)}"]

    def resolved_view(self) -> str:
        # Person ids start at 1, so 0 (the default of a LEFT JOIN without a match) means "not merged".
        return (f"CREATE OR REPLACE VIEW {self.table('events_resolved')}{self.on_cluster} AS "
                f"SELECT e.*, if(o.person_id = 0, e.person_id, o.person_id) AS resolved_person_id "
                f"FROM {self.table('events')} AS e LEFT JOIN {self.table('person_overrides')} AS o "
                f"ON o.project_id = e.project_id AND o.old_person_id = e.person_id")

    def versions_table(self) -> str:
        engine = ("ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}') ORDER BY version"
                  if self.cluster else "MergeTree ORDER BY version")
        return (f"CREATE TABLE IF NOT EXISTS {self.table('schema_versions')}{self.on_cluster} "
                f"(version UInt32, applied_at DateTime DEFAULT now()) ENGINE = {engine}")

    def versions(self) -> list[tuple[int, list[str]]]:
        """Every schema version, in order. Add a version to change the schema; never edit an applied one."""
        first = [stmt for name in TABLES for stmt in self.create(name)]
        # v2: stores created before version 1 existed lacked the deduplication windows
        second = [f"ALTER TABLE {target} MODIFY SETTING "
                  f"{'replicated' if self.cluster else 'non_replicated'}_deduplication_window = {DEDUP_WINDOW}"
                  for name in APPEND_TABLES for target in (self.altered(name)[:1])]
        # v3: tag values (stores created before version 3 lack the table)
        return [(1, first), (2, second), (3, self.create("tag_values"))]
