"""An experiment's results over 10 million synthetic events: seconds, and the ratio to one plain scan of the
same events measured in the same run (the machine is shared, so the ratio is the figure to compare).

The events are bench/query.py's synthetic organization (100 events per learner over 180 days), written into
their own data directory (bench/out/experiments-N) with one `$experiment_exposure` per learner at the
learner's first event, half in each variant. The baseline is one scan of the columns the analysis reads
(event, time, person) over the exposures and the metrics' events, counting distinct persons. The experiment
has five metrics: conversion to order_paid, amount per learner (mean), amount per order (ratio), lessons
attended within 30 days of exposure, and the 90th percentile of amount (quantile); results are asked for with
each engine, and with CUPED.

    .venv/bin/python bench/experiments.py [--events 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import EVENTS_PER_PERSON, GENERATE, NOW, ROOT, START_US, TZ, peak_mb, timed

EXPOSURES = """
INSERT INTO events (project_id, event, time, distinct_id, person_id, insert_id, received_at, properties)
SELECT 1, '$experiment_exposure', min(time), min(distinct_id), person_id, NULL, min(time),
       '{"experiment": "bench-exp", "variant": "' || CASE WHEN hash(person_id, 9) % 2 = 0 THEN 'control'
       ELSE 'treatment' END || '"}'
FROM events WHERE project_id = 1 GROUP BY person_id
"""
SPEC = {"key": "bench-exp", "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": [{"event": "order_paid", "math": "unique"},
                    {"event": "order_paid", "math": "sum", "property": "amount"},
                    {"event": "order_paid", "math": "avg", "property": "amount"},
                    {"event": "lesson_attended", "math": "total", "window_hours": 720},
                    {"event": "order_paid", "math": "p90", "property": "amount"}]}


def prepare(events: int) -> tuple[Any, Any]:
    from edupulse.conf import Settings
    from edupulse.runtime import Platform

    directory = ROOT / "out" / f"experiments-{events}"
    platform = Platform(Settings(data_dir=directory)).open(background_loader=False)
    project = platform.meta.project_by_name("Bench School") or platform.meta.create_project("Bench School", TZ).project
    learners = events // EVENTS_PER_PERSON
    if platform.store.query("SELECT count(*) FROM events").rows[0][0] != events + learners:
        con = platform.store.con
        con.execute("DELETE FROM events")
        started = time.perf_counter()
        for low in range(0, events, 10_000_000):
            con.execute(GENERATE, [low, min(events, low + 10_000_000)])
        con.execute(EXPOSURES)
        con.execute("CHECKPOINT")
        print(f"  generated {events:,} events and {learners:,} exposures ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr)
    return platform, project


def run(events: int, repeat: int) -> dict[str, Any]:
    from edupulse.experiments.model import parse_spec
    from edupulse.experiments.results import Engine, Options, analyze
    from edupulse.meta.experiments import ExperimentStore
    from edupulse.queries.service import QueryService

    platform, project = prepare(events)
    figures: dict[str, Any] = {"events": events + events // EVENTS_PER_PERSON}
    try:
        store = ExperimentStore(platform.meta)
        experiment = store.get(project.id, "bench-exp")
        if experiment is None:
            start = dt.datetime.fromtimestamp(START_US / 1e6, dt.UTC)
            store.create(project.id, parse_spec(SPEC), "bench", start)
            experiment = store.start(project.id, "bench-exp", "bench", start)
        env = QueryService(platform.store)
        # one plain scan of the columns the experiment reads (a bare count(*) is answered from metadata)
        scan, _ = timed(lambda: platform.store.query(
            "SELECT count(*), max(time), count(DISTINCT person_id) FROM events WHERE project_id = 1 AND event IN "
            "('$experiment_exposure', 'order_paid', 'lesson_attended')"), repeat)
        figures["baseline_scan_seconds"] = round(scan, 3)
        runs = {"frequentist": Options(), "bayesian": Options(engine=Engine.bayesian),
                "sequential": Options(engine=Engine.sequential), "frequentist_cuped": Options(cuped=True)}
        for name, options in runs.items():
            seconds, result = timed(lambda o=options: analyze(env, project, experiment, o, now=NOW), repeat)
            figures[name] = {"seconds": round(seconds, 3), "x_baseline_scan": round(seconds / scan, 1),
                             "units": result.units, "statements": len(result.sql)}
        figures["peak_rss_mb"] = round(peak_mb())
    finally:
        platform.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.repeat), indent=2))


if __name__ == "__main__":
    main()
