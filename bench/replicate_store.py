"""Make a larger event store from an existing one by replicating it: N copies of every person with their events,
identities, profile and groups, disjoint from each other, in a new data directory with its own metadata.

    python bench/replicate_store.py --source bench/out/tags-360000 --target bench/out/tags-x10 --copies 10

SOURCE and TARGET are directories holding `data/` (the DuckDB store) and `meta.sqlite` (the metadata), as
bench/tags.py --keep makes them. Simulating 100 million events takes hours; ten copies of a 10 million event
simulation take minutes and keep its shape: per person, the same events at the same times.

Copy 0 is the source unchanged. Copy k (1..N-1) has:
- person ids offset by k times the largest person id of the source;
- every identity value, distinct id and insert id suffixed with `~k` (so `u300006` becomes `u300006~3`),
  and so the referrer ids of referral events, which name another person's login id;
- every group key (school, institution, class) and the class, school, institution, lesson and order ids
  suffixed the same way, so groups do not merge across copies; the group entities and the lesson items are
  copied with their keys (and a lesson's class) suffixed;
- times unchanged.
Courses, advisors, question ids and marketing spend are shared by all copies (they are the organisation's,
not a person's). Tag values start empty and the metadata's tag runs are removed: the tags are computed
afresh on the new store."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time
from pathlib import Path

import duckdb

from edupulse.store.duckdb import SCHEMA, SQL_TYPES
from edupulse.store.schema import GROUP_SLOTS, PropertyType

# typed property columns naming a person's identity, a group or a record of one person: suffixed per copy
SUFFIXED_PROPERTIES = ("order_id", "class_id", "lesson_id", "referrer_id", "institution_id", "school_id")
# item entities that belong to one copy's groups (a lesson is of one class); other items (courses) are shared
COPIED_ITEMS = ("lesson",)


def suffixed(column: str, suffix: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {column} || {suffix} END"


def replicate(source: Path, target: Path, copies: int, log: bool = True) -> dict[str, int]:
    if (target / "data").exists() or (target / "meta.sqlite").exists():
        raise SystemExit(f"{target} already holds a store: remove it first")
    (target / "data").mkdir(parents=True)
    if (source / "data" / "wal").exists():  # the ingestion log, fully loaded (the checkpoint is copied below)
        shutil.copytree(source / "data" / "wal", target / "data" / "wal")
    con = duckdb.connect(str(target / "data" / "events.duckdb"))
    con.execute(f"ATTACH '{source / 'data' / 'events.duckdb'}' AS src (READ_ONLY)")
    for statement in SCHEMA:
        con.execute(statement)
    for name, kind in con.execute("SELECT name, kind FROM src.property_columns").fetchall():
        con.execute(f'ALTER TABLE events ADD COLUMN IF NOT EXISTS "prop_{name}" {SQL_TYPES[PropertyType(kind)]}')
    con.execute("INSERT INTO property_columns SELECT * FROM src.property_columns")
    con.execute(SCHEMA[-1])  # the events_resolved view, with every column
    for table in ("checkpoints", "spend"):
        con.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    row = con.execute("SELECT greatest((SELECT max(person_id) FROM src.identities), "
                      "(SELECT max(person_id) FROM src.persons))").fetchone()
    offset = int(row[0] or 0) if row else 0
    seq_row = con.execute("SELECT greatest((SELECT max(seq) FROM src.profile_ops), "
                          "(SELECT max(seq) FROM src.entity_ops))").fetchone()
    seq_offset = int(seq_row[0] or 0) if seq_row else 0
    columns = [c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_name = 'events' ORDER BY ordinal_position").fetchall()]
    for k in range(copies):
        started = time.perf_counter()
        suffix = "''" if k == 0 else f"'~{k}'"
        exprs = {"person_id": f"person_id + {k * offset}", "distinct_id": suffixed("distinct_id", suffix),
                 "insert_id": suffixed("insert_id", suffix)}
        exprs.update({f"group_{i}": suffixed(f"group_{i}", suffix) for i in range(GROUP_SLOTS)})
        exprs.update({f"prop_{p}": suffixed(f"prop_{p}", suffix) for p in SUFFIXED_PROPERTIES
                      if f"prop_{p}" in columns})
        select = ", ".join(exprs.get(c, f'"{c}"') for c in columns)
        con.execute(f"INSERT INTO events ({', '.join(columns)}) SELECT {select} FROM src.events")
        con.execute(f"INSERT INTO identities SELECT project_id, id_type, id_value || {suffix}, "
                    f"person_id + {k * offset}, first_seen FROM src.identities")
        con.execute(f"INSERT INTO person_overrides SELECT project_id, old_person_id + {k * offset}, "
                    f"person_id + {k * offset} FROM src.person_overrides")
        con.execute(f"INSERT INTO persons SELECT project_id, person_id + {k * offset}, properties, updated_at "
                    f"FROM src.persons")
        con.execute(f"INSERT INTO profile_ops SELECT project_id, person_id + {k * offset}, time, "
                    f"seq + {k * seq_offset}, op, properties, {suffixed('insert_id', suffix)} FROM src.profile_ops")
        items = ", ".join(f"'{t}'" for t in COPIED_ITEMS)
        copied = "TRUE" if k == 0 else f"(kind = 'group' OR entity_type IN ({items}))"
        props = ("properties" if k == 0 else
                 f"CASE WHEN json_extract_string(properties, '$.class_id') IS NULL THEN properties ELSE "
                 f"json_merge_patch(properties, json_object('class_id', "
                 f"json_extract_string(properties, '$.class_id') || {suffix})) END")
        con.execute(f"INSERT INTO entities SELECT project_id, kind, entity_type, entity_key || {suffix}, "
                    f"{props}, updated_at FROM src.entities WHERE {copied}")
        con.execute(f"INSERT INTO entity_ops SELECT project_id, kind, entity_type, entity_key || {suffix}, time, "
                    f"seq + {k * seq_offset}, {props}, {suffixed('insert_id', suffix)} FROM src.entity_ops "
                    f"WHERE {copied}")
        if log:
            print(f"copy {k + 1}/{copies}: {time.perf_counter() - started:.1f} s", flush=True)
    con.execute("CHECKPOINT")
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
              for t in ("events", "identities", "persons", "entities", "tag_values")}
    con.close()
    shutil.copyfile(source / "meta.sqlite", target / "meta.sqlite")
    meta = sqlite3.connect(target / "meta.sqlite")
    with meta:
        meta.execute("DELETE FROM tag_runs")
    meta.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="directory with data/ and meta.sqlite")
    parser.add_argument("--target", required=True, help="new directory for the replicated store")
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    started = time.perf_counter()
    counts = replicate(Path(args.source), Path(args.target), args.copies)
    print({**counts, "seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
