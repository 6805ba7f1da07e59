"""The catalogue's default metrics mean one number each, the simulator's realized value: on a small simulated
school, every default metric over the whole period, computed from the standard events only, equals the ground
truth the simulation planted (truth JSON), on DuckDB and on ClickHouse; a metric that counts units of a cohort
is a share of that cohort, never above 100 % in any bucket."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.meta.analysis import AnalysisMetadata
from edupulse.meta.catalogue import DEFAULT_METRICS
from edupulse.queries.errors import QueryError
from edupulse.queries.metrics import validate_definition
from edupulse.queries.service import QueryService
from edupulse.sim import SimulationConfig
from engines import simulated_school

END = dt.date(2025, 6, 1)
DAYS = 120
NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)
WHOLE = {"date_from": (END - dt.timedelta(days=DAYS)).isoformat(), "date_to": (END - dt.timedelta(days=1)).isoformat()}
ENGINES = ["duckdb", "clickhouse"]


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    world = simulated_school(tmp_path_factory.mktemp("truth"), "Truth School",
                             SimulationConfig(seed=11, learners=400, days=DAYS, end=END))
    yield world
    world.close()


def metric(school: Any, engine: str, name: str, channel: str | None = None,
           granularity: str = "month") -> dict[str, Any]:
    service = school.service(engine)
    series = {"metric": name, **({"channel": channel} if channel else {})}
    query = {"kind": "trends", "series": [series], "date_range": WHOLE, "granularity": granularity}
    return dict(service.run(school.project, query, now=NOW).to_wire()["series"][0])


def share(value: float | None) -> float | None:
    return None if value is None else value / 100


@pytest.mark.parametrize("engine", ENGINES)
def test_rates_equal_the_truth(school: Any, engine: str) -> None:
    truth = school.truth
    assert share(metric(school, engine, "attendance_rate")["aggregated_value"]) == pytest.approx(
        truth["learning"]["attendance_rate"], abs=5e-4)
    assert share(metric(school, engine, "referral_rate")["aggregated_value"]) == pytest.approx(
        truth["referrals"]["referral_rate"], abs=5e-4)
    # a course ends at the last lesson scheduled for the student (lesson_scheduled starts_at), dropouts and
    # students of the last level included, as the simulator's plan knows it; the ends known (settled) on the
    # day after the period, when it is asked
    assert share(metric(school, engine, "renewal_rate")["aggregated_value"]) == pytest.approx(
        truth["renewal"]["renewal_rate"], abs=5e-4)
    assert truth["renewal"]["ended_courses"] > 10


@pytest.mark.parametrize("engine", ENGINES)
def test_channel_metrics_equal_the_truth(school: Any, engine: str) -> None:
    for channel in school.truth["channels"]:
        name = channel["channel"]
        first = metric(school, engine, "first_order_conversion", name)["aggregated_value"]
        assert share(first) == pytest.approx(channel["first_order_rate"], abs=5e-4), name
        cac = metric(school, engine, "cac", name)["aggregated_value"]
        assert cac == (None if channel["cac"] is None else pytest.approx(channel["cac"], abs=5e-3)), name
        roi = metric(school, engine, "roi", name)["aggregated_value"]
        assert roi == (None if channel["roi"] is None else pytest.approx(channel["roi"], abs=5e-4)), name


def test_a_share_of_a_cohort_is_never_above_the_whole(school: Any) -> None:
    for name in ("renewal_rate", "attendance_rate", "referral_rate", "first_order_conversion"):
        for granularity in ("week", "month"):
            data = metric(school, "duckdb", name, granularity=granularity)["data"]
            assert all(v is None or 0 <= v <= 100 for v in data), (name, granularity, data)


def test_roi_is_one_definition_in_trends_and_attribution(school: Any) -> None:
    """Attribution's ROI per channel is credited revenue / cost, the catalogue's roi the revenue of a
    channel's leads / its spend: the same ratio, so with one touch per lead they agree."""
    service = QueryService(school.platform.store, AnalysisMetadata(school.platform.meta))
    result = service.run(school.project, {
        "kind": "attribution", "conversion": {"event": "order_paid", "value": "amount"},
        "touches": [{"event": "lead_created", "channel": "channel"}], "models": ["first_touch"],
        "lookback_days": 365, "spend": True, "date_range": WHOLE}, now=NOW).to_wire()
    for entry in result["channels"]:
        credited = entry["models"]["first_touch"]
        if entry["cost"]:
            assert credited["roi"] == pytest.approx(credited["revenue"] / entry["cost"], rel=1e-6)


def test_the_defaults_are_valid_definitions() -> None:
    for name, definition in DEFAULT_METRICS.items():
        assert validate_definition(definition).title, name


@pytest.mark.parametrize(("definition", "words"), [
    ({"cohort": {"event": "a"}}, "needs a ratio"),
    ({"cohort": {"event": "a"}, "ratio": "rate"}, "ratio rate needs an outcome"),
    ({"cohort": {"event": "a"}, "ratio": "value_per_spend", "outcome": {"event": "b"}}, "outcome with a value"),
    ({"cohort": {"event": "a"}, "ratio": "rate", "outcome": {"event": "b", "same": True}}, "needs cohort.per"),
    ({"cohort": {"event": "a"}, "ratio": "rate", "outcome": {"event": "b", "from_days": 3, "to_days": 1}},
     "from_days 3 is after to_days 1"),
    ({"numerator": {"event": "a"}, "cohort": {"event": "a"}, "ratio": "rate"}, "not both"),
    ({}, "a numerator"),
])
def test_definitions_say_what_is_wrong(definition: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        validate_definition({"title": "t", "unit": "%", **definition})


def test_channels_only_for_metrics_that_know_them(school: Any) -> None:
    with pytest.raises(QueryError, match=r"series\.0\.channel: metric .revenue. does not know"):
        metric(school, "duckdb", "revenue", "douyin")
