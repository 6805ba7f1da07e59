"""Distribution, interval and LTV on 10 (and 100) million synthetic events: seconds per query and peak memory.

The events are bench/query.py's synthetic organization (made once under bench/out/ and reused). Figures,
each the median of --repeat runs after one warm-up (the result cache is off), with their ratio to two
baselines measured in the same run: a plain scan counting the events of the same 90 days, and trends by day
with unique persons (DAU) over them:
- distribution of lessons per person (automatic buckets), of active local days, and of lessons over the
  population of persons with a page view (zeros included), broken down by a person property;
- interval from lead_created to order_paid (every lead), and between lessons (the same event), 30 days;
- LTV of weekly cohorts by the first lead, days 0 to 90, refunds taken off, broken down by utm_source.

    .venv/bin/python bench/per_unit.py [--events 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import NOW, QUERIES, RANGE, peak_mb, prepare, scan_seconds, timed

MODELS: dict[str, dict[str, Any]] = {
    "distribution_lessons": {"kind": "distribution", "event": "lesson_attended", "date_range": RANGE},
    "distribution_active_days": {"kind": "distribution", "event": "lesson_attended", "measure": "days",
                                 "date_range": RANGE},
    "distribution_population_by_property": {
        "kind": "distribution", "event": "lesson_attended", "date_range": RANGE,
        "population": {"event": "page_view"}, "breakdown": {"properties": ["person.grade"]}},
    "interval_lead_to_order": {"kind": "interval", "start": {"event": "lead_created"},
                               "end": {"event": "order_paid"}, "date_range": RANGE, "window_days": 30},
    "interval_between_lessons_by_course": {
        "kind": "interval", "start": {"event": "lesson_attended"}, "end": {"event": "lesson_attended"},
        "date_range": RANGE, "breakdown": {"properties": ["course_id"]}},
    "ltv_weekly_by_source": {
        "kind": "ltv", "start": {"event": "lead_created"}, "cohort": "week", "date_range": RANGE,
        "revenue": {"event": "order_paid", "property": "amount", "refund_event": "order_refunded"},
        "days": [0, 1, 7, 14, 30, 60, 90], "breakdown": {"properties": ["utm_source"]}},
}


def run_size(events: int, repeat: int) -> dict[str, Any]:
    from edupulse.meta.analysis import AnalysisMetadata
    from edupulse.queries.service import QueryService

    platform, project = prepare(events)
    figures: dict[str, Any] = {"events": events}
    try:
        service = QueryService(platform.store, AnalysisMetadata(platform.meta))
        scan = scan_seconds(platform, repeat)
        dau, _ = timed(lambda: service.run(project, QUERIES["trends_dau"], now=NOW).to_wire(), repeat)
        figures["baseline_scan_seconds"] = round(scan, 3)
        figures["baseline_trends_dau_seconds"] = round(dau, 3)
        for name, query in MODELS.items():
            seconds, result = timed(lambda q=query: service.run(project, q, now=NOW).to_wire(), repeat)
            figure: dict[str, Any] = {"seconds": round(seconds, 3), "x_baseline_scan": round(seconds / scan, 1),
                                      "x_trends_dau": round(seconds / dau, 2), "peak_rss_mb": round(peak_mb())}
            if query["kind"] == "distribution":
                figure["persons"] = sum(s["persons"] for s in result["series"])
            elif query["kind"] == "interval":
                figure["intervals"] = sum(s["count"] for s in result["series"])
            else:
                figure["cohort_persons"] = sum(s["size"] for s in result["series"])
            figures[name] = figure
        figures["peak_rss_mb"] = round(peak_mb())
    finally:
        platform.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run_size(args.events, args.repeat), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
