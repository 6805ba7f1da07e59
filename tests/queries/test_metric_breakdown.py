"""A catalogue metric broken down by a property in one statement: on a small simulated school, on DuckDB and on
ClickHouse, each breakdown value's number equals the metric asked for that value alone (a channel's CAC and ROI
with `channel`, a course's attendance with a filter), and a rate's counts per value add up to the whole; ad
spend is broken down by the spend table's channel and campaign, and by nothing else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.meta.catalogue import MetricCatalogue
from edupulse.packs import channel_quality
from edupulse.queries.errors import QueryError
from edupulse.sim import SimulationConfig
from engines import normalized, simulated_school

END = dt.date(2025, 6, 1)
DAYS = 120
NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)
WHOLE = {"date_from": (END - dt.timedelta(days=DAYS)).isoformat(), "date_to": (END - dt.timedelta(days=1)).isoformat()}
ENGINES = ["duckdb", "clickhouse"]


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    world = simulated_school(tmp_path_factory.mktemp("breakdown"), "Breakdown School",
                             SimulationConfig(seed=7, learners=300, days=DAYS, end=END))
    spend = next(m for m in channel_quality.METRICS if m.name == "ad_spend")
    MetricCatalogue(world.platform.meta).ensure_defaults(world.project.id)
    MetricCatalogue(world.platform.meta).create(world.project.id, spend.name, spend.definition, None, "test")
    yield world
    world.close()


def run(school: Any, engine: str, series: list[dict[str, Any]], breakdown: list[str] | None = None,
        granularity: str = "month", limit: int = 100) -> dict[str, Any]:
    service = school.service(engine)
    query: dict[str, Any] = {"kind": "trends", "series": series, "date_range": WHOLE, "granularity": granularity}
    if breakdown:
        query["breakdown"] = {"properties": breakdown, "limit": limit}
    return service.run(school.project, query, now=NOW).to_wire()


def both(school: Any, series: list[dict[str, Any]], breakdown: list[str] | None = None, **more: Any) -> Any:
    duck = run(school, "duckdb", series, breakdown, **more)
    house = run(school, "clickhouse", series, breakdown, **more)
    assert normalized(house["series"]) == normalized(duck["series"])
    return duck


def values(answer: dict[str, Any], index: int = 0) -> dict[tuple[Any, ...], Any]:
    return {tuple(s["breakdown"]): s for s in answer["series"] if s["index"] == index}


def test_channel_metrics_by_channel_equal_each_channel_alone(school: Any) -> None:
    names = ["first_order_conversion", "cac", "roi", "ad_spend"]
    by_channel = both(school, [{"metric": n} for n in names], ["channel"])
    # one statement per cohort metric and per read of the spend table, however many channels (and the buckets)
    assert len(by_channel["sql"]) == 1 + 3 + 3
    channels = [c["channel"] for c in school.truth["channels"]]
    for index, name in enumerate(names):
        found = values(by_channel, index)
        assert {k[0] for k in found} <= set(channels)
        alone = run(school, "duckdb", [{"metric": name, "channel": c, "name": c} for c in channels])
        for series in alone["series"]:
            if (series["label"],) not in found:  # ad spend of a channel without spend (organic)
                assert name == "ad_spend"
                assert series["aggregated_value"] == 0
                continue
            mine = found[(series["label"],)]
            assert normalized(mine["aggregated_value"]) == normalized(series["aggregated_value"]), name
            assert normalized(mine["data"]) == normalized(series["data"]), (name, series["label"])


def test_channel_metrics_equal_the_truth_per_channel(school: Any) -> None:
    found = run(school, "duckdb", [{"metric": "first_order_conversion"}, {"metric": "cac"}, {"metric": "roi"}],
                ["channel"])
    for channel in school.truth["channels"]:
        key = (channel["channel"],)
        rate, cac, roi = (values(found, i)[key]["aggregated_value"] for i in range(3))
        assert rate / 100 == pytest.approx(channel["first_order_rate"], abs=5e-4)
        assert cac == (None if channel["cac"] is None else pytest.approx(channel["cac"], abs=5e-3))
        assert roi == (None if channel["roi"] is None else pytest.approx(channel["roi"], abs=5e-4))


def test_per_campaign_adds_up_to_the_channel(school: Any) -> None:
    spend = both(school, [{"metric": "roi"}, {"metric": "cac"}], ["channel", "campaign"])
    ad = both(school, [{"metric": "ad_spend"}], ["channel", "campaign"])
    by_channel = values(run(school, "duckdb", [{"metric": "ad_spend"}], ["channel"]))
    totals: dict[str, float] = {}
    for (channel, _), series in values(ad).items():
        totals[channel] = totals.get(channel, 0) + series["aggregated_value"]
    assert totals == pytest.approx({k[0]: v["aggregated_value"] for k, v in by_channel.items()})
    truth = {c["channel"]: c for c in school.truth["channels"]}
    assert {k: v for k, v in totals.items() if v} == pytest.approx(
        {k: v["spend"] for k, v in truth.items() if v["spend"]}, abs=0.05)
    campaigns = set(values(spend))
    assert all(channel in truth for channel, _ in campaigns)


def test_attendance_by_course_and_class_add_up_to_the_whole(school: Any) -> None:
    whole = run(school, "duckdb", [{"metric": "attendance_rate"}])["series"][0]["aggregated_value"]
    for prop in ("course_id", "group.class", "group.class.teacher_id"):
        found = both(school, [{"metric": "attendance_rate"}, {"event": "lesson_scheduled"}], [prop])
        rates, scheduled = values(found, 0), values(found, 1)
        assert len(found["sql"]) == 2
        assert set(rates) == set(scheduled)
        weighted = sum((rates[k]["aggregated_value"] or 0) * scheduled[k]["aggregated_value"] for k in rates)
        assert weighted / sum(s["aggregated_value"] for s in scheduled.values()) == pytest.approx(whole, abs=1e-6)
    courses = values(run(school, "duckdb", [{"metric": "attendance_rate"}], ["course_id"]))
    for (course,), series in list(courses.items())[:4]:
        alone = run(school, "duckdb", [{"metric": "attendance_rate",
                                        "filters": [{"property": "course_id", "value": course}]}])
        assert series["aggregated_value"] == alone["series"][0]["aggregated_value"], course


def test_renewal_by_course_equals_each_course_alone(school: Any) -> None:
    found = values(both(school, [{"metric": "renewal_rate"}], ["course_id"]))
    assert found
    for (course,), series in found.items():
        alone = run(school, "duckdb", [{"metric": "renewal_rate",
                                        "filters": [{"property": "course_id", "value": course}]}])
        assert series["aggregated_value"] == alone["series"][0]["aggregated_value"], course


def test_the_rest_beyond_the_limit_is_other(school: Any) -> None:
    full = values(run(school, "duckdb", [{"metric": "attendance_rate"}, {"event": "lesson_scheduled"}],
                      ["course_id"]), 0)
    cut = values(both(school, [{"metric": "attendance_rate"}], ["course_id"], limit=2))
    assert len(cut) == 3
    assert ("$other",) in cut
    assert set(cut) - {("$other",)} <= set(full)


def test_ad_spend_breaks_down_by_channel_and_campaign_only(school: Any) -> None:
    with pytest.raises(QueryError, match="uses ad spend, which is kept by channel and campaign only"):
        run(school, "duckdb", [{"metric": "cac"}], ["utm_source"])
    with pytest.raises(QueryError, match="uses ad spend"):
        run(school, "duckdb", [{"metric": "ad_spend"}], ["course_id"])
