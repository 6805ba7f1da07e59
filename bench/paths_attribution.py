"""Paths and attribution on 10 (and 100) million synthetic events: seconds per query and peak memory.

The events are bench/query.py's synthetic organization (made once under bench/out/ and reused). Figures,
each the median of --repeat runs after one warm-up (the result cache is off), with their ratio to two
baselines measured in the same run: a plain scan counting the events of the same 90 days, and trends by day
with unique persons (DAU) over them:
- paths after lead_created, 5 steps; paths before order_paid, 5 steps;
- paths from session start, 4 steps, repeats collapsed, quizzes left out, page views qualified by page;
- attribution of order_paid revenue to utm_source page views and leads, all five models, 30-day lookback.

    .venv/bin/python bench/paths_attribution.py [--events 10000000] [--repeat 3]
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
    "paths_after_lead_5_steps": {"kind": "paths", "start_event": "lead_created", "steps": 5, "date_range": RANGE},
    "paths_before_order_5_steps": {"kind": "paths", "end_event": "order_paid", "steps": 5, "date_range": RANGE},
    "paths_session_start_collapsed": {"kind": "paths", "steps": 4, "collapse_repeats": True,
                                      "exclude_events": ["quiz_answered"], "date_range": RANGE,
                                      "node_properties": {"page_view": "page"}},
    "attribution_5_models_30d": {
        "kind": "attribution", "date_range": RANGE, "lookback_days": 30,
        "conversion": {"event": "order_paid", "value": "amount"},
        "touches": [{"event": "page_view", "channel": "utm_source",
                     "filters": [{"property": "utm_source", "op": "is_set"}]},
                    {"event": "lead_created", "name": "lead"}]},
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
            if query["kind"] == "paths":
                figure["paths"] = result["paths_total"]
                figure["transitions"] = len(result["transitions"])
            else:
                figure["conversions"] = result["totals"]["conversions"]
                figure["channels"] = len(result["channels"])
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
