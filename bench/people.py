"""Persons, segments and SQL on synthetic events: seconds per query, and each as a ratio to a baseline
measured in the same run on the same data (trends: events per day over the whole range, one scan).

Events are written straight into a DuckDB store (no identity work): persons with a login and an anonymous
identity each, one in ten persons merged into another, five event names over 90 days.

    .venv/bin/python bench/people.py [--events 10000000] [--clickhouse]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from edupulse.meta.analysis import AnalysisMetadata
from edupulse.meta.db import MetadataStore
from edupulse.ops.segments import SegmentCatalog
from edupulse.queries.service import QueryService
from edupulse.store.base import WriteBatch, event_schema
from edupulse.store.duckdb import DuckDBStore

EVENTS = ["page_view", "lesson_attended", "homework_submitted", "quiz_answered", "order_paid"]
END = dt.datetime(2026, 9, 10, 4, tzinfo=dt.UTC)
DAYS = 90


def fill(store: DuckDBStore, events: int, persons: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    typed = store.typed_properties()
    schema = event_schema(typed)
    chunk = 2_000_000
    start_us = int((END - dt.timedelta(days=DAYS)).timestamp() * 1_000_000)
    for offset in range(0, events, chunk):
        n = min(chunk, events - offset)
        person = rng.integers(1, persons + 1, n)
        columns: dict[str, Any] = {
            "project_id": pa.array(np.ones(n, np.int32)),
            "event": pa.array(np.array(EVENTS)[rng.choice(5, n, p=[0.4, 0.25, 0.15, 0.15, 0.05])]),
            "time": pa.array(start_us + rng.integers(0, DAYS * 86_400_000_000, n), pa.timestamp("us", tz="UTC")),
            "distinct_id": pa.array([f"u-{p}" for p in person]),
            "person_id": pa.array(person.astype(np.int64)),
            "prop_amount": pa.array(rng.integers(1, 3000, n).astype(np.float64)),
        }
        table = pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in schema}, schema=schema)
        store.write(WriteBatch(events=table))
    ids = np.arange(1, persons + 1)
    identities = [(1, "login_id", f"u-{p}", int(p)) for p in ids] + [(1, "anonymous_id", f"dev-{p}", int(p))
                                                                    for p in ids]
    merged = [(1, int(p), int(p) - 1) for p in ids if p % 10 == 0]  # every tenth merged into the one before
    grades = np.array(["G3", "G4", "G5", "G6"])[rng.integers(0, 4, persons)]
    keep = [(1, int(p), json.dumps({"grade": str(g)})) for p, g in zip(ids, grades, strict=True) if p % 10]
    batch = WriteBatch(identities=identities, persons=keep)
    store.write(batch)
    store.write(WriteBatch(merges=merged))


def timed(service: QueryService, project: Any, query: dict[str, Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        service.run(project, query, now=END).to_wire()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--clickhouse", action="store_true", help="also run on ClickHouse (chDB), copied over")
    args = parser.parse_args()
    persons = max(10, args.events // 20)
    with tempfile.TemporaryDirectory(prefix="edupulse-people-") as tmp:
        meta = MetadataStore(f"sqlite:///{Path(tmp) / 'metadata.sqlite'}")
        meta.migrate()
        project = meta.create_project("People bench").project
        store = DuckDBStore(Path(tmp))
        store.open()
        started = time.perf_counter()
        fill(store, args.events, persons)
        load_seconds = time.perf_counter() - started
        SegmentCatalog(meta).create(project.id, "engaged", {"condition": {"and": [
            {"event": "lesson_attended", "at_least": 3, "window": {"last_days": 30}},
            {"not": {"event": "order_paid"}}]}})
        day_range = {"date_from": (END - dt.timedelta(days=DAYS)).date().isoformat(), "date_to": "2026-09-10"}
        queries = {
            "person_timeline": {"kind": "person", "identity": {"value": "dev-1234"}, "limit": 50},
            "person_timeline_page_2": {"kind": "person", "identity": {"value": "u-1234"}, "limit": 50, "offset": 50},
            "persons_search": {"kind": "persons", "search": "u-123",
                               "filters": [{"property": "person.grade", "value": "G5"}]},
            "segment_count": {"kind": "segments", "segment": "engaged", "limit": 0},
            "segment_members_page": {"kind": "segments", "segment": "engaged", "limit": 50},
            "trends_by_segment": {"kind": "trends", "series": [{"event": "page_view", "math": "unique_persons"}],
                                  "date_range": day_range, "filters": [{"segment": "engaged"}]},
            "sql_group_by": {"kind": "sql", "sql": "SELECT event, count(*) AS n, count(DISTINCT person_id) AS p "
                                                   "FROM events GROUP BY event ORDER BY event"},
        }
        baseline = {"kind": "trends", "series": [{"event": None}], "date_range": day_range}
        engines: list[tuple[str, Any]] = [("duckdb", store)]
        if args.clickhouse:
            from edupulse.store.clickhouse import ClickHouseStore

            house = ClickHouseStore()
            house.open()
            house.copy_from(store)
            engines.append(("clickhouse", house))
        figures: dict[str, Any] = {"events": args.events, "persons": persons, "load_seconds": round(load_seconds, 1)}
        for name, engine in engines:
            service = QueryService(engine, AnalysisMetadata(meta))
            base = timed(service, project, baseline)
            figures[f"{name}_baseline_trends_seconds"] = round(base, 3)
            for label, query in queries.items():
                seconds = timed(service, project, query)
                figures[f"{name}_{label}"] = {"seconds": round(seconds, 3), "ratio": round(seconds / base, 2)}
        figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        store.close()
        meta.close()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
