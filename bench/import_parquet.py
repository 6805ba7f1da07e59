"""Bulk import from Parquet: events per second of `edupulse import events FILE.parquet`.

Generates a Parquet file of education events (event, distinct_id, time, a unique event_id, a school group
and a handful of properties, some typed and some not), then times, each in a fresh process and a fresh data
directory:

- our import (validation, identity resolution of every distinct person, duplicate check, typed columns,
  the rest of the properties as JSON), first with the file's event_id column and then without it (ids
  derived from each row's content);
- re-importing the same file (every row found stored already: the idempotence cost);
- the baseline: DuckDB reading the same file into a table (`CREATE TABLE AS SELECT * FROM read_parquet`),
  which does no validation, no identity and no duplicate check.

    .venv/bin/python bench/import_parquet.py [--events 5000000] [--persons 200000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 500_000
EVENTS = ["page_view", "lesson_attended", "quiz_answered", "video_progress", "homework_submitted",
          "lesson_booked", "order_paid", "course_viewed"]


def make_file(path: Path, events: int, persons: int, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer: pq.ParquetWriter | None = None
    start = 1_767_196_800_000_000  # 2026-01-01 UTC, in microseconds
    span = 300 * 86_400_000_000
    step = 1_000_000
    for offset in range(0, events, step):
        n = min(step, events - offset)
        names = np.array(EVENTS)[rng.integers(0, len(EVENTS), n)]
        table = pa.table({
            "event": pa.array(names).dictionary_encode(),
            "distinct_id": pa.array([f"learner-{i}" for i in rng.integers(0, persons, n)]),
            "time": pa.array(np.sort(start + rng.integers(0, span, n)), pa.timestamp("us", tz="UTC")),
            "event_id": pa.array([f"ev-{offset + i}" for i in range(n)]),
            "school": pa.array([f"school-{i}" for i in rng.integers(0, 300, n)]),
            "course_id": pa.array([f"course-{i}" for i in rng.integers(0, 80, n)]),
            "lesson_id": pa.array([f"lesson-{i}" for i in rng.integers(0, 4000, n)]),
            "duration_s": pa.array(rng.integers(0, 3600, n)),
            "score": pa.array(np.round(rng.random(n) * 100, 1)),
            "platform": pa.array(np.array(["app", "web", "mini_program"])[rng.integers(0, 3, n)]),
            "is_trial": pa.array(rng.random(n) < 0.1),
        })
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
    assert writer is not None
    writer.close()


def child(mode: str, file: Path, data_dir: Path) -> None:
    """One measured run, in its own process so peak memory is its own."""
    started = time.perf_counter()
    if mode == "duckdb":
        import duckdb

        con = duckdb.connect(str(data_dir / "baseline.duckdb"))
        con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{file}')")
        rows = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
        con.close()
        imported, duplicates = rows, 0
    else:
        from edupulse.conf import Settings
        from edupulse.importer import ColumnMapping, ImportOptions, run_import
        from edupulse.runtime import Platform

        platform = Platform(Settings(data_dir=data_dir)).open(background_loader=False)
        if platform.meta.project_by_name("Bench") is None:
            platform.meta.create_project("Bench")
        mapping = ColumnMapping(columns={"groups.school": "school"})
        if mode == "derived":
            mapping.skip.add("event_id")
        summary = run_import(platform, ImportOptions(kind="events", path=file, project="Bench", mapping=mapping))
        platform.close()
        rows, imported, duplicates = summary.rows_read, summary.imported, summary.duplicates
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps({"rows": rows, "imported": imported, "duplicates": duplicates, "seconds": seconds,
                      "peak_rss_mib": peak}))


def run_child(mode: str, file: Path, data_dir: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(file), str(data_dir)],
                         check=True, capture_output=True, text=True, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return

    with tempfile.TemporaryDirectory(prefix="edupulse-import-") as tmp:
        root = Path(tmp)
        file = root / "events.parquet"
        print(f"writing {args.events:,} events of {args.persons:,} persons to Parquet ...", file=sys.stderr)
        make_file(file, args.events, args.persons, args.seed)
        runs: dict[str, dict[str, float]] = {}
        for name, mode, data in [("baseline_duckdb_ctas", "duckdb", "baseline"),
                                 ("import_with_event_id", "given", "given"),
                                 ("reimport_same_file", "given", "given"),
                                 ("import_derived_ids", "derived", "derived")]:
            (root / data).mkdir(exist_ok=True)
            print(f"running {name} ...", file=sys.stderr)
            runs[name] = run_child(mode, file, root / data)
        file_mib = file.stat().st_size / 2**20

    base = runs["baseline_duckdb_ctas"]
    figures: dict[str, object] = {"events": args.events, "persons": args.persons,
                                  "parquet_file_mib": round(file_mib, 1), "target_events_per_second": TARGET}
    for name, run in runs.items():
        rate = run["rows"] / run["seconds"]
        figures[name] = {
            "seconds": round(run["seconds"], 2), "events_per_second": round(rate),
            "imported": run["imported"], "duplicates_skipped": run["duplicates"],
            "peak_rss_mib": run["peak_rss_mib"],
            "time_ratio_to_baseline": round(run["seconds"] / base["seconds"], 2),
        }
    figures["target_met"] = runs["import_with_event_id"]["rows"] / runs["import_with_event_id"]["seconds"] >= TARGET
    if args.json:
        print(json.dumps(figures))
    else:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
