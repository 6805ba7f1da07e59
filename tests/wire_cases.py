"""The queries whose wire JSON is pinned (tests/queries/test_wire.py): every JSON example of docs/queries.md,
and for each model a few more that reach the parts of the result the examples leave empty on the simulated
data (breakdowns, formulas, previous periods, time to convert, pages of persons, metrics by name).

Each case runs on one small simulation (seed 7, 300 learners, 60 days ending 2025-06-01, Asia/Shanghai) at
NOW (the `wire_school` fixture); `python tests/queries/wire_capture.py` writes the pinned files of
tests/queries/wire/ anew (only when a change of the wire is intended)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from conftest import documented_queries
from edupulse.conf import Settings
from edupulse.meta.analysis import AnalysisMetadata
from edupulse.meta.db import ProjectInfo
from edupulse.ops.segments import SegmentCatalog
from edupulse.queries.errors import QueryError
from edupulse.queries.metrics import MetricDefinition, MetricRef
from edupulse.queries.service import QueryResult, QueryService
from edupulse.runtime import Platform
from edupulse.sim import SimulationConfig, simulate

END = dt.date(2025, 6, 1)
NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)  # noon on 1 June in Asia/Shanghai, the day after the period
SEED, LEARNERS, DAYS = 7, 300, 60


def documented() -> dict[str, dict[str, Any]]:
    """Every query example of docs/queries.md, named by position and kind."""
    return {f"doc_{i:02d}_{query['kind']}": query for i, query in enumerate(documented_queries())}


RANGE = {"date_from": "2025-04-15", "date_to": "2025-05-31"}
PAID = {"event": "order_paid", "math": "sum", "property": "amount"}
FIRST = [{"property": "order_type", "value": "first"}]

EXTRA: dict[str, dict[str, Any]] = {
    "trends_breakdown_previous": {
        "kind": "trends", "series": [{"event": "lesson_attended"}, {"event": "lesson_attended", "math": "unique"},
                                     PAID, {"event": "lesson_attended", "math": "avg_per_person"},
                                     {"event": "lesson_attended", "math": "p90", "property": "duration_s"}],
        "date_range": {"date_from": "-21d"}, "granularity": "week",
        "breakdown": {"properties": ["person.grade"], "limit": 3}, "compare_previous": True},
    "trends_formula": {
        "kind": "trends", "series": [{"event": "lesson_attended"}, {"event": "lesson_scheduled"}],
        "formula": "A / B * 100", "formula_name": "attendance", "date_range": RANGE, "granularity": "month"},
    "trends_formula_breakdown": {
        "kind": "trends", "series": [{"event": "order_paid"}, {"event": "lead_created"}],
        "formula": "A / B", "date_range": RANGE, "granularity": "month",
        "breakdown": {"properties": ["person.city"], "limit": 2}},
    "trends_rolling_unit": {
        "kind": "trends", "series": [{"event": "lesson_attended", "math": "wau"}, {"event": None, "math": "dau"}],
        "date_range": {"date_from": "-10d"}, "unit": "class"},
    "trends_hour_name_breakdown": {
        "kind": "trends", "series": [{"event": "lead_created", "name": "leads"}], "granularity": "hour",
        "date_range": {"date_from": "-1d"}, "breakdown": {"properties": ["person.name"], "limit": 4}},
    "funnel_breakdown_trend": {
        "kind": "funnel", "steps": [{"event": "lead_created", "name": "Sign up"}, {"event": "trial_booked"},
                                    {"event": "order_paid", "filters": FIRST, "name": "paid"}],
        "window": {"value": 30, "unit": "day"}, "date_range": RANGE,
        "breakdown": {"properties": ["channel"], "limit": 3}, "trend": "week", "compare_previous": True},
    "funnel_strict": {
        "kind": "funnel", "steps": [{"event": "lesson_scheduled"}, {"event": "lesson_attended"}],
        "order": "strict", "window": {"value": 2, "unit": "day"}, "date_range": RANGE},
    "funnel_any_attribution": {
        "kind": "funnel", "steps": [{"event": "trial_booked"}, {"event": "trial_attended"}, {"event": "order_paid"}],
        "order": "any", "date_range": RANGE, "breakdown": {"properties": ["person.name"]},
        "breakdown_attribution": "step", "attribution_step": 2},
    "funnel_exclusion_unit": {
        "kind": "funnel", "steps": [{"event": "lead_created"}, {"event": "call_connected"}, {"event": "order_paid"}],
        "exclusions": [{"event": "wechat_added", "from_step": 1, "to_step": 2}], "date_range": RANGE},
    "retention_breakdown": {
        "kind": "retention", "start_event": {"event": "course_enrolled"}, "return_event": {"event": "lesson_attended"},
        "period": "week", "periods": 4, "date_range": {"date_from": "-6w"},
        "breakdown": {"properties": ["person.grade"], "limit": 2}},
    "retention_recurring_on_or_after": {
        "kind": "retention", "start_event": {"event": "lesson_attended"}, "return_event": {"event": "lesson_attended"},
        "cohort": "recurring", "mode": "on_or_after", "period": "day", "periods": 5,
        "date_range": {"date_from": "-8d"}},
    "distribution_equal_sum": {
        "kind": "distribution", "event": "order_paid", "measure": "sum", "property": "amount",
        "date_range": RANGE, "breakdown": {"properties": ["order_type"]}},
    "distribution_days_buckets": {
        "kind": "distribution", "event": "lesson_attended", "measure": "days", "buckets": [1, 3, 5, 10],
        "date_range": RANGE, "unit": "class"},
    "distribution_population": {
        "kind": "distribution", "event": "lesson_attended", "date_range": RANGE,
        "population": {"event": "course_enrolled"}, "breakdown": {"properties": ["person.name"], "limit": 3}},
    "paths_start_properties": {
        "kind": "paths", "start_event": "lead_created", "steps": 4, "date_range": RANGE,
        "node_properties": {"page_view": "platform"}, "nodes_per_step": 4, "paths_limit": 5},
    "paths_end_collapse": {
        "kind": "paths", "end_event": "order_paid", "steps": 3, "collapse_repeats": True, "date_range": RANGE,
        "exclude_events": ["lesson_scheduled"]},
    "paths_sessions": {"kind": "paths", "date_range": {"date_from": "-3d"}, "steps": 3},
    "attribution_spend": {
        "kind": "attribution", "conversion": {"event": "order_paid", "value": "amount", "filters": FIRST},
        "touches": [{"event": "lead_created", "channel": "channel"}, {"event": "page_view", "channel": "utm_source"}],
        "spend": True, "date_range": RANGE, "limit": 4},
    "attribution_named": {
        "kind": "attribution", "conversion": {"event": "trial_booked"},
        "touches": [{"event": "call_connected", "name": "call"}, {"event": "wechat_added"}],
        "models": ["linear", "time_decay"], "lookback_days": 7, "date_range": RANGE},
    "interval_breakdown": {
        "kind": "interval", "start": {"event": "lead_created"}, "end": {"event": "order_paid"},
        "date_range": RANGE, "breakdown": {"properties": ["channel"], "limit": 3}, "window_days": 60},
    "interval_first_same_time": {
        "kind": "interval", "start": {"event": "lesson_attended"}, "end": {"event": "lesson_attended"},
        "mode": "first", "same_time": True, "date_range": RANGE},
    "ltv_breakdown": {
        "kind": "ltv", "start": {"event": "lead_created"},
        "revenue": {"event": "order_paid", "property": "amount", "refund_event": "order_refunded"},
        "days": [0, 7, 30], "cohort": "month", "date_range": {"date_from": "2025-04-01", "date_to": "2025-05-31"},
        "breakdown": {"properties": ["channel"], "limit": 3}},
    "ltv_day_unit": {
        "kind": "ltv", "start": {"event": "course_enrolled"}, "days": [0, 3], "cohort": "day",
        "date_range": {"date_from": "-5d"}, "unit": "class"},
    "person_by_id": {"kind": "person", "person_id": 21, "limit": 5},
    "person_page_two": {"kind": "person", "person_id": 3, "limit": 5, "offset": 5,
                        "events": ["page_view", "lead_created", "lesson_attended", "order_paid"]},
    "persons_search": {"kind": "persons", "search": "1", "limit": 3,
                       "filters": [{"property": "person.grade", "op": "is_set"}]},
    "persons_page": {"kind": "persons", "limit": 4, "offset": 2},
    "segments_definition": {
        "kind": "segments", "limit": 3,
        "definition": {"condition": {"or": [{"event": "lesson_attended", "at_least": 5},
                                            {"not": {"property": "city", "op": "neq", "value": "杭州"}}]}}},
    "segments_count": {"kind": "segments", "limit": 0,
                       "definition": {"condition": {"property": "grade", "op": "is_set"}}},
    "sql_types": {"kind": "sql", "limit": 5,
                  "sql": "SELECT event, min(time) AS first, count(*) AS n, avg(prop_amount) AS mean "
                         "FROM events GROUP BY event ORDER BY event"},
    "metrics_by_name": {
        "kind": "trends", "series": [{"metric": "lesson_rate"}, {"metric": "spend_per_lead", "name": "CPL"},
                                     {"event": "lead_created"}],
        "date_range": RANGE, "granularity": "month"},
    "metrics_breakdown": {
        "kind": "trends", "series": [{"metric": "lesson_rate", "filters": [{"property": "mode", "value": "live"}]}],
        "date_range": RANGE, "granularity": "week", "breakdown": {"properties": ["person.grade"], "limit": 2},
        "compare_previous": True},
}

# Saved segments the documented examples name.
SEGMENTS: dict[str, dict[str, Any]] = {
    "trial no-shows": {"condition": {"and": [{"event": "trial_booked"}, {"not": {"event": "trial_attended"}}]}},
    "paying students": {"condition": {"event": "order_paid"}},
}

# Catalogue metrics the metric cases name (fixed here, so the pinned output does not follow the defaults).
METRICS: dict[str, dict[str, Any]] = {
    "lesson_rate": {"title": "lesson rate", "unit": "%", "scale": 100, "numerator": {"event": "lesson_attended"},
                    "denominator": {"event": "lesson_scheduled"}},
    "spend_per_lead": {"title": "spend per lead", "unit": "CNY", "numerator": {"spend": True},
                       "denominator": {"event": "lead_created", "math": "unique_persons"}},
}

ERRORS: dict[str, Any] = {
    "error_kind": {"kind": "nope"},
    "error_field": {"kind": "trends", "series": [{"event": "x", "math": "sum"}]},
    "error_not_object": [1, 2],
    "error_unit": {"kind": "funnel", "steps": [{"event": "a"}], "unit": "planet"},
    "error_metric": {"kind": "trends", "series": [{"metric": "missing"}]},
    "error_sql": {"kind": "sql", "sql": "DELETE FROM events"},
}


def metric(name: str) -> MetricRef | None:
    """The catalogue of the metric cases."""
    found = METRICS.get(name)
    return MetricRef(name, 1, MetricDefinition.model_validate(found)) if found is not None else None


def cases() -> dict[str, Any]:
    return {**documented(), **EXTRA}


class WireMetadata(AnalysisMetadata):
    """The project's metadata, with the metrics the cases name fixed (not the catalogue's defaults)."""

    def metric(self, project_id: int, name: str) -> MetricRef | None:
        return metric(name)


@dataclass
class WireSchool:
    platform: Platform
    project: ProjectInfo
    service: QueryService


def build_wire_school(root: Path) -> WireSchool:
    """The simulated school the cases run on (close its platform when done)."""
    platform = Platform(Settings(data_dir=root / "data")).open()
    project = platform.meta.create_project("Wire School").project
    simulate(platform, project, SimulationConfig(seed=SEED, learners=LEARNERS, days=DAYS, end=END))
    for name, definition in SEGMENTS.items():
        SegmentCatalog(platform.meta).create(project.id, name, definition)
    return WireSchool(platform, project, QueryService(platform.store, WireMetadata(platform.meta)))


def wire(answer: QueryResult[Any]) -> bytes:
    """The response as sent, with its timing zeroed and its SQL texts counted (the SQL is pinned per engine by
    test_sql_snapshots.py)."""
    pinned = answer.to_wire()
    pinned["timings"] = {"seconds": 0}
    pinned["sql"] = len(pinned["sql"])
    return orjson.dumps(pinned, option=orjson.OPT_NON_STR_KEYS)


def refusal(exc: QueryError) -> bytes:
    return orjson.dumps({"status": exc.status, "error": str(exc)})
