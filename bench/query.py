"""Analysis queries on 10 and 100 million synthetic events: seconds per query and peak memory.

A synthetic education organization is written straight into an event store (SQL generation inside DuckDB,
so that 100 million events take about a minute, not the simulator's hours): learners arrive over 180 days,
browse, some leave a lead, book a trial, pay, attend lessons and answer quizzes, each learner's events
in time order. The data directory is kept under bench/out/ and reused by later runs.

Figures, each the median of --repeat runs after one warm-up (the result cache is off):
- baseline: a plain scan counting the events of the same 90 days (`count(*)`), in the same run;
- trends by day with unique persons (DAU), 90 days;
- trends by day broken down by a property (events by utm_source, top 10 + other), 90 days;
- a 4-step funnel (page_view -> lead_created -> trial_booked -> order_paid), 7-day window, 90 days;
- 12-week retention (lesson_attended to lesson_attended, weekly cohorts);
- ClickHouse's own windowFunnel through chDB on the same events (loaded into a MergeTree table), and our
  funnel's time as a ratio to it.
Each figure is printed with its ratio to the baseline scan; peak memory is the process's maximum RSS.

    .venv/bin/python bench/query.py [--events 10000000,100000000] [--repeat 3] [--no-clickhouse] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
START_US = 1_767_196_800_000_000  # 2026-01-01 00:00 UTC
DAYS = 180
TZ = "Asia/Shanghai"
NOW = dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC)
RANGE = {"date_from": "2026-04-01", "date_to": "2026-06-29"}
EVENTS_PER_PERSON = 100

QUERIES: dict[str, dict[str, Any]] = {
    "trends_dau": {"kind": "trends", "series": [{"event": "lesson_attended", "math": "unique_persons"}],
                   "date_range": RANGE, "granularity": "day"},
    "trends_breakdown": {"kind": "trends", "series": [{"event": "page_view"}], "date_range": RANGE,
                         "granularity": "day", "breakdown": {"properties": ["utm_source"], "limit": 10}},
    "funnel_4_steps_7d": {"kind": "funnel", "steps": [{"event": "page_view"}, {"event": "lead_created"},
                                                      {"event": "trial_booked"}, {"event": "order_paid"}],
                          "window": {"value": 7, "unit": "day"}, "date_range": RANGE},
    "retention_12_weeks": {"kind": "retention", "start_event": {"event": "lesson_attended"},
                           "return_event": {"event": "lesson_attended"}, "cohort": "recurring", "period": "week",
                           "periods": 12, "date_range": {"date_from": "2026-03-30", "date_to": "2026-06-28"}},
}

# One learner's k-th event (k = 0..99): what it is depends on k and a per-learner draw, so the funnel
# steps come in order with falling conversion, and lessons and quizzes follow the purchase.
GENERATE = f"""
INSERT INTO events (project_id, event, time, distinct_id, person_id, insert_id, received_at, properties,
                    prop_utm_source, prop_amount, prop_lesson_id, prop_course_id)
SELECT 1, ev, t, 'learner-' || p, p + 1, NULL, t, props, utm, amount, lesson, course FROM (
  SELECT p, k, t,
    CASE
      WHEN k = 5 AND u1 < 0.6 THEN 'lead_created'
      WHEN k = 12 AND u1 < 0.3 THEN 'trial_booked'
      WHEN k = 20 AND u1 < 0.12 THEN 'order_paid'
      WHEN k > 20 AND u1 < 0.12 AND u2 < 0.4 THEN 'lesson_attended'
      WHEN k > 20 AND u1 < 0.12 AND u2 < 0.7 THEN 'quiz_answered'
      WHEN u2 < 0.15 THEN 'lesson_attended'
      WHEN u2 < 0.25 THEN 'quiz_answered'
      ELSE 'page_view' END AS ev,
    CASE WHEN k < 12 THEN ['baidu', 'douyin', 'wechat', 'xiaohongshu', 'zhihu', 'bilibili', 'kuaishou',
                           'weibo', 'google', 'bing', 'sogou', 'toutiao'][1 + (p % 12)] END AS utm,
    CASE WHEN k = 20 AND u1 < 0.12 THEN 999 + (p % 5) * 500 END AS amount,
    CASE WHEN u2 < 0.4 THEN 'L-' || (k % 40) END AS lesson,
    'C-' || (p % 30) AS course,
    '{{"page": "/course/' || (p % 30) || '", "grade": "G' || (p % 9 + 1) || '"}}' AS props
  FROM (
    SELECT p, k,
      make_timestamptz(({START_US} + (hash(p, 1) % {DAYS * 86_400_000_000})
                        + k * (600000000 + (hash(p, 2) % 3600000000)) + (hash(p, k) % 600000000))::BIGINT) AS t,
      (hash(p, 3) % 1000000) / 1000000.0 AS u1,
      (hash(p, k, 4) % 1000000) / 1000000.0 AS u2
    FROM (SELECT i // {EVENTS_PER_PERSON} AS p, i % {EVENTS_PER_PERSON} AS k FROM range(?, ?) r(i))))
"""


def data_dir(events: int) -> Path:
    return ROOT / "out" / f"query-{events}"


def prepare(events: int) -> tuple[Any, Any]:
    """An open platform with `events` synthetic events in project 1 (made once, then reused)."""
    from edupulse.conf import Settings
    from edupulse.runtime import Platform

    directory = data_dir(events)
    fresh = not (directory / "events.duckdb").exists()
    platform = Platform(Settings(data_dir=directory)).open(background_loader=False)
    project = platform.meta.project_by_name("Bench School") or platform.meta.create_project("Bench School", TZ).project
    if fresh or platform.store.query("SELECT count(*) FROM events").rows[0][0] != events:
        con = platform.store.con
        con.execute("DELETE FROM events")
        started = time.perf_counter()
        step = 10_000_000
        for low in range(0, events, step):
            con.execute(GENERATE, [low, min(events, low + step)])
            print(f"  generated {min(events, low + step):,} / {events:,} events "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        con.execute("CHECKPOINT")
    return platform, project


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def scan_seconds(platform: Any, repeat: int) -> float:
    """The baseline: a plain scan counting the project's events of the queried 90 days."""
    seconds, _ = timed(lambda: platform.store.query(
        "SELECT count(*) FROM events WHERE project_id = 1 AND time >= TIMESTAMPTZ '2026-03-31 16:00:00+00' "
        "AND time < TIMESTAMPTZ '2026-06-29 16:00:00+00'"), repeat)
    return float(seconds)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clickhouse_funnel(platform: Any, repeat: int) -> dict[str, Any]:
    """ClickHouse's windowFunnel over the same events, loaded into a MergeTree table through chDB."""
    from chdb import session

    con = platform.store.con
    low = "2026-03-31 16:00:00"  # 2026-04-01 00:00 in Asia/Shanghai
    high = "2026-06-29 16:00:00"
    path = data_dir(0).parent / "funnel-events.parquet"
    if not path.exists():
        con.execute(f"COPY (SELECT person_id, time, event FROM events WHERE event IN ('page_view', 'lead_created', "
                    f"'trial_booked', 'order_paid')) TO '{path}' (FORMAT parquet)")
    ch = session.Session()
    ch.query("CREATE DATABASE IF NOT EXISTS bench")
    ch.query("DROP TABLE IF EXISTS bench.funnel_events")
    ch.query("CREATE TABLE bench.funnel_events (person_id Int64, time DateTime64(6, 'UTC'), "
             "event LowCardinality(String)) ENGINE = MergeTree ORDER BY (event, time)")
    started = time.perf_counter()
    ch.query(f"INSERT INTO bench.funnel_events SELECT person_id, time, event FROM file('{path}', Parquet)")
    loaded = time.perf_counter() - started
    sql = (f"SELECT level, count() FROM (SELECT person_id, windowFunnel(604800)(toDateTime(time), "
           f"event = 'page_view', event = 'lead_created', event = 'trial_booked', event = 'order_paid') AS level "
           f"FROM bench.funnel_events WHERE time >= toDateTime64('{low}', 6, 'UTC') AND "
           f"time < toDateTime64('{high}', 6, 'UTC') GROUP BY person_id) GROUP BY level ORDER BY level")
    seconds, result = timed(lambda: ch.query(sql, "CSV").bytes(), repeat)
    path.unlink()
    ch.query("DROP TABLE IF EXISTS bench.funnel_events")
    return {"seconds": round(seconds, 3), "load_seconds": round(loaded, 1), "levels": result.decode().split()}


def run_size(events: int, repeat: int, with_clickhouse: bool) -> dict[str, Any]:
    from edupulse.meta.analysis import AnalysisMetadata
    from edupulse.queries.service import QueryService

    platform, project = prepare(events)
    figures: dict[str, Any] = {"events": events, "persons": events // EVENTS_PER_PERSON}
    try:
        service = QueryService(platform.store, AnalysisMetadata(platform.meta))
        baseline = scan_seconds(platform, repeat)
        figures["baseline_scan_seconds"] = round(baseline, 3)
        for name, query in QUERIES.items():
            if query["kind"] not in service.kinds:
                figures[name] = "model not available"
                continue
            seconds, result = timed(lambda q=query: service.run(project, q, now=NOW).to_wire(), repeat)
            figures[name] = {"seconds": round(seconds, 3), "x_baseline_scan": round(seconds / baseline, 1),
                             "peak_rss_mb": round(peak_mb())}
            if query["kind"] == "funnel":
                figures[name]["steps"] = [s.get("count") for s in result["results"][0]["steps"]]
        if with_clickhouse:
            house = clickhouse_funnel(platform, repeat)
            figures["clickhouse_windowFunnel"] = house
            ours = figures.get("funnel_4_steps_7d")
            if isinstance(ours, dict):
                ours["x_clickhouse_windowFunnel"] = round(ours["seconds"] / house["seconds"], 2)
        figures["peak_rss_mb"] = round(peak_mb())
    finally:
        platform.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", default="10000000,100000000", help="comma-separated sizes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-clickhouse", action="store_true", help="skip ClickHouse's windowFunnel")
    parser.add_argument("--json", action="store_true", help="print only JSON")
    parser.add_argument("--prepare-only", action="store_true", help="only make the data directories")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.events.split(",")]
    if args.prepare_only:
        for size in sizes:
            prepare(size)[0].close()
        return
    if len(sizes) > 1:  # one process per size, so that each peak memory figure is its own
        out = []
        for size in sizes:
            command = [sys.executable, __file__, "--events", str(size), "--repeat", str(args.repeat), "--json"]
            if args.no_clickhouse:
                command.append("--no-clickhouse")
            out += json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    else:
        out = [run_size(sizes[0], args.repeat, not args.no_clickhouse)]
    print(json.dumps(out) if args.json else json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
