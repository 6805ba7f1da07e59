"""Catalogue rates over a cohort judge experiments as per-unit ratios: each unit's entries after its exposure
(lessons scheduled for it) and those that met the outcome (attended), compared with the delta method; equal to
a direct computation on a random history, on DuckDB and ClickHouse. Metrics divided by ad spend are refused."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from edupulse import stats
from edupulse.experiments.model import parse_spec
from edupulse.experiments.results import Options, analyze
from edupulse.meta.experiments import ExperimentStore
from engines import History, have_chdb

START = dt.datetime(2026, 9, 1, 2, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 9, 12, tzinfo=dt.UTC)
VARIANTS = ["control", "b"]
SPEC = {"key": "rates", "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "metrics": [{"metric": "attendance_rate"}, {"event": "visit"}]}


def _history(rng: random.Random) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [{"type": "track", "event": "visit", "distinct_id": "nobody",
                                      "time": START.isoformat()}]
    for i in range(50):
        who, variant = f"s{i}", VARIANTS[i % 2]
        t0 = START + dt.timedelta(hours=rng.randrange(0, 150))
        records.append({"type": "track", "event": "$experiment_exposure", "distinct_id": who, "time": t0.isoformat(),
                        "properties": {"experiment": "rates", "variant": variant}})
        chance = 0.8 if variant == "b" else 0.5
        for k in range(rng.randrange(0, 6)):  # lessons before and after exposure, some past the end
            at = t0 + dt.timedelta(hours=rng.choice([-50, -1, 0, 3, 30, 90, 400]))
            lesson = f"L{i}-{k}"
            records.append({"type": "track", "event": "lesson_scheduled", "distinct_id": who, "time": at.isoformat(),
                            "properties": {"lesson_id": lesson}})
            if rng.random() < chance:
                records.append({"type": "track", "event": "lesson_attended", "distinct_id": who,
                                "time": (at + dt.timedelta(hours=20)).isoformat(), "properties": {"lesson_id": lesson}})
        if rng.random() < 0.5:
            records.append({"type": "track", "event": "visit", "distinct_id": who,
                            "time": (t0 + dt.timedelta(hours=1)).isoformat()})
    return records


def _expected(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, int]]]:
    """Per variant, each exposed unit's (lessons attended, lessons scheduled) after its exposure."""
    exposed: dict[str, tuple[dt.datetime, str]] = {}
    scheduled: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    attended: set[tuple[str, str]] = set()
    for r in records:
        t, who = dt.datetime.fromisoformat(r["time"]), r["distinct_id"]
        if r["event"] == "$experiment_exposure":
            exposed[who] = (t, r["properties"]["variant"])
        elif r["event"] == "lesson_scheduled":
            scheduled[who].append((t, r["properties"]["lesson_id"]))
        elif r["event"] == "lesson_attended":  # the outcome of a lesson in the window, whenever it came
            attended.add((who, r["properties"]["lesson_id"]))
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for who, (t0, variant) in exposed.items():
        mine = [lesson for t, lesson in scheduled[who] if t0 <= t < NOW]
        out[variant].append((sum(1 for lesson in mine if (who, lesson) in attended), len(mine)))
    return out


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[History, list[dict[str, Any]]]]:
    records = _history(random.Random(7))
    history = History(tmp_path_factory.mktemp("exp_rates"), records[:1])
    store = ExperimentStore(history.platform.meta)
    store.create(history.project.id, parse_spec(SPEC), "test", START - dt.timedelta(days=1))
    store.start(history.project.id, "rates", "test", START)
    history.platform.catalog.forget_experiments(history.project.id)
    history.add(records[1:])
    yield history, records
    history.close()


def lookup(history: History) -> Any:
    return lambda name: history.platform.meta.metrics.ref(history.project.id, name)


@pytest.mark.parametrize("engine", ["duckdb", *(["clickhouse"] if have_chdb() else [])])
def test_a_cohort_rate_is_a_per_unit_ratio(case: tuple[History, list[dict[str, Any]]], engine: str) -> None:
    history, records = case
    experiment = ExperimentStore(history.platform.meta).get(history.project.id, "rates")
    assert experiment is not None
    result = analyze(history.service(engine), history.project, experiment, Options(), lookup(history), now=NOW)
    rate, visits = result.metrics
    assert rate.kind == "ratio"
    assert (rate.source or "").startswith("attendance_rate v")
    expected = _expected(records)
    arms = []
    for i, variant in enumerate(VARIANTS):
        pairs = expected[variant]
        assert result.units[variant] == len(pairs)
        assert rate.variants[i].mean == pytest.approx(sum(m for m, _ in pairs) / sum(d for _, d in pairs))
        arms.append(stats.Ratio(len(pairs), sum(m for m, _ in pairs), sum(m * m for m, _ in pairs),
                                sum(d for _, d in pairs), sum(d * d for _, d in pairs),
                                sum(m * d for m, d in pairs)))
    direct = stats.welch(*arms)
    assert rate.variants[1].ci == pytest.approx(direct.ci)
    assert rate.variants[1].p_value == pytest.approx(direct.p_value)
    assert visits.kind == "conversion"  # plain metrics beside it keep their statistics
    assert visits.variants[0].mean is not None
    # the daily series ends at the total
    daily = [p for p in rate.daily if p.variant == "b"]
    assert daily[-1].effect == pytest.approx(rate.variants[1].effect_absolute)


def test_metrics_divided_by_spend_are_refused_with_a_reason(case: tuple[History, list[dict[str, Any]]]) -> None:
    from edupulse.experiments.metrics import plan
    from edupulse.experiments.model import Metric, SpecError

    history, _ = case
    for name in ("cac", "roi"):
        with pytest.raises(SpecError, match=r"ad spend .* not measured per unit"):
            plan(Metric(metric=name), lookup(history))
    renewal = plan(Metric(metric="renewal_rate"), lookup(history))
    assert renewal.kind == "ratio"
    assert renewal.cohort is not None
