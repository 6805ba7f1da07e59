"""Experiment definitions, metric plans (from events and from the catalogue) and targeting conditions, the
last against the official GrowthBook SDK's condition evaluator."""

from __future__ import annotations

import random

import pytest

from edupulse.experiments.conditions import matches
from edupulse.experiments.metrics import plan
from edupulse.experiments.model import Metric, SpecError, Targeting, parse_spec
from edupulse.experiments.targeting import eligible, gb_condition
from edupulse.meta.catalogue import DEFAULT_METRICS
from edupulse.queries.metrics import MetricDefinition, MetricRef

TWO = [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}]


def test_weights_keys_and_metrics_are_checked() -> None:
    ok = parse_spec({"key": "x", "variants": [{"key": "a", "weight": 1 / 3}, {"key": "b", "weight": 1 / 3},
                                              {"key": "c", "weight": 1 / 3}], "metrics": [{"event": "e"}]})
    assert ok.hash_seed == "x"
    with pytest.raises(SpecError, match=r"sum to 0\.9"):
        parse_spec({"key": "x", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.4}],
                    "metrics": [{"event": "e"}]})
    with pytest.raises(SpecError, match="repeat"):
        parse_spec({"key": "x", "variants": [{"key": "a", "weight": 0.5}, {"key": "a", "weight": 0.5}],
                    "metrics": [{"event": "e"}]})
    with pytest.raises(SpecError) as error:
        parse_spec({"key": "x", "variants": TWO, "metrics": [{"event": "e", "math": "sum"}]})
    assert error.value.field == "metrics.0"


def _lookup(name: str) -> MetricRef | None:
    data = DEFAULT_METRICS.get(name)
    return MetricRef(name, 3, MetricDefinition.model_validate(data)) if data else None


def test_catalogue_metrics_become_plans() -> None:
    revenue = plan(Metric(metric="revenue"), _lookup)
    assert (revenue.kind, revenue.numerator.property) == ("mean", "amount")
    assert revenue.source == "revenue v3"
    # a rate over a cohort (lessons scheduled, course ends) is a per-unit ratio of entries met / entries
    attendance = plan(Metric(metric="attendance_rate"), _lookup)
    assert (attendance.kind, attendance.source) == ("ratio", "attendance_rate v3")
    assert attendance.cohort is not None
    # spend is not per unit: said, not guessed
    with pytest.raises(SpecError, match="ad spend"):
        plan(Metric(metric="cac"), _lookup)
    with pytest.raises(SpecError, match="no metric named"):
        plan(Metric(metric="nope"), _lookup)


@pytest.mark.parametrize(("metric", "kind"), [
    ({"event": "e"}, "conversion"), ({"event": "e", "math": "total"}, "mean"),
    ({"event": "e", "math": "sum", "property": "amount"}, "mean"),
    ({"event": "e", "math": "avg", "property": "amount"}, "ratio"), ({"event": "e", "math": "avg_per_person"}, "ratio"),
    ({"event": "e", "math": "p90", "property": "amount"}, "quantile"),
    ({"event": "e", "math": "median_per_person"}, "quantile"),
    ({"event": "e", "math": "total", "denominator": {"event": "f", "math": "unique"}}, "ratio"),
])
def test_event_metrics_become_plans(metric: dict, kind: str) -> None:
    assert plan(Metric.model_validate(metric)).kind == kind


TARGETS = [
    {"properties": [{"property": "grade", "op": "in", "value": ["G3", "G4"]}]},
    {"properties": [{"property": "person.score", "op": "gte", "value": 60},
                    {"property": "city", "op": "neq", "value": "北京"}]},
    {"properties": [{"property": "city", "op": "is_set"}, {"property": "score", "op": "lt", "value": 90}]},
    {"properties": [{"property": "grade", "op": "not_in", "value": ["G1"]}, {"property": "vip", "op": "eq",
                                                                              "value": True}]},
    {"properties": [{"property": "city", "op": "is_not_set"}]},
]


@pytest.mark.parametrize("target", TARGETS)
def test_conditions_agree_with_the_official_sdk_and_the_server(target: dict) -> None:
    core = pytest.importorskip("growthbook.core")
    targeting = Targeting.model_validate(target)
    condition = gb_condition(targeting, "id")
    rng = random.Random(3)
    for _ in range(200):
        attributes = {k: v for k, v in {
            "grade": rng.choice(["G1", "G3", "G4", None]), "score": rng.choice([10, 59.5, 60, 89, 95, "70", None]),
            "city": rng.choice(["北京", "上海", None]), "vip": rng.choice([True, False, None])}.items()
            if v is not None or rng.random() < 0.5}
        official = core.evalCondition(attributes, condition)
        assert matches(attributes, condition) == official, (condition, attributes)
        assert eligible(targeting, attributes, frozenset(), False) == official, (condition, attributes)
