"""Experiment results from SQL against a direct computation on random histories (exposures to one or several
variants, events before, at and after exposure, at the conversion window's edge, equal timestamps, a pre-period
for CUPED), on DuckDB and ClickHouse."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from edupulse import stats
from edupulse.experiments.model import parse_spec
from edupulse.experiments.results import Engine, Options, analyze
from edupulse.meta.experiments import ExperimentStore
from engines import History, have_chdb

START = dt.datetime(2026, 9, 1, 2, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 9, 12, tzinfo=dt.UTC)
WINDOW_H = 48
VARIANTS = ["control", "b"]
SPEC = {"key": "exp", "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "metrics": [{"event": "buy"}, {"event": "buy", "math": "total", "window_hours": WINDOW_H},
                    {"event": "buy", "math": "sum", "property": "amount"},
                    {"event": "buy", "math": "avg", "property": "amount"},
                    {"event": "buy", "math": "unique", "denominator": {"event": "visit", "math": "total"}},
                    {"event": "buy", "math": "median", "property": "amount"}],
        "pre_period_days": 3}


def _history(rng: random.Random) -> list[dict]:
    records = [{"type": "track", "event": "visit", "distinct_id": "nobody", "time": START.isoformat()}]
    for i in range(60):
        who = f"u{i}"
        t0 = START + dt.timedelta(hours=rng.randrange(0, 200))
        shown = rng.sample(VARIANTS, 2) if i % 13 == 0 else [rng.choice(VARIANTS)]
        for k, v in enumerate(shown):
            records.append({"type": "track", "event": "$experiment_exposure", "distinct_id": who,
                            "time": (t0 + dt.timedelta(hours=k)).isoformat(),
                            "properties": {"experiment": "exp", "variant": v}})
        for _ in range(rng.randrange(0, 5)):
            offset = rng.choice([-100, -30, -1, 0, 0, 1, 5, WINDOW_H, WINDOW_H - 1, 60, 120])
            records.append({"type": "track", "event": rng.choice(["buy", "buy", "visit"]), "distinct_id": who,
                            "time": (t0 + dt.timedelta(hours=offset)).isoformat(),
                            "properties": {"amount": rng.randrange(1, 50)}})
    return records


def _expected(records: list[dict], end: dt.datetime) -> dict[str, dict[str, list]]:
    """Per metric and variant, the per-unit values computed directly."""
    exposures: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    events: dict[str, list[tuple[dt.datetime, str, float]]] = defaultdict(list)
    for r in records:
        t = dt.datetime.fromisoformat(r["time"])
        if r["event"] == "$experiment_exposure":
            if START <= t < end:
                exposures[r["distinct_id"]].append((t, r["properties"]["variant"]))
        else:
            events[r["distinct_id"]].append((t, r["event"], r.get("properties", {}).get("amount", 0)))
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for who, seen in exposures.items():
        if len({v for _, v in seen}) != 1:
            continue
        t0, variant = min(seen)[0], seen[0][1]
        after = [(t, e, a) for t, e, a in events[who] if t0 <= t < end]
        windowed = [x for x in after if x[0] < t0 + dt.timedelta(hours=WINDOW_H)]
        buys = [a for _, e, a in after if e == "buy"]
        visits = [1 for _, e, _ in after if e == "visit"]
        pre = [1 for t, e, _ in events[who] if e == "buy" and t0 - dt.timedelta(days=3) <= t < t0]
        out["conversion"][variant].append((min(len(buys), 1), min(len(pre), 1)))
        out["total"][variant].append(len([1 for _, e, _ in windowed if e == "buy"]))
        out["sum"][variant].append(sum(buys))
        out["avg"][variant].append((sum(buys), len(buys)))
        out["ratio"][variant].append((min(len(buys), 1), len(visits)))
    return out


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[History, list[dict]]]:
    records = _history(random.Random(5))
    history = History(tmp_path_factory.mktemp("exp"), records[:1])
    store = ExperimentStore(history.platform.meta)
    store.create(history.project.id, parse_spec(SPEC), "test", START - dt.timedelta(days=1))
    store.start(history.project.id, "exp", "test", START)
    history.platform.catalog.forget_experiments(history.project.id)
    history.add(records[1:])
    yield history, records
    history.close()


ENGINES = ["duckdb", *(["clickhouse"] if have_chdb() else [])]


@pytest.mark.parametrize("engine", ENGINES)
def test_sufficient_statistics_equal_a_direct_computation(case: tuple[History, list[dict]], engine: str) -> None:
    history, records = case
    experiment = ExperimentStore(history.platform.meta).get(history.project.id, "exp")
    assert experiment is not None
    result = analyze(history.service(engine), history.project, experiment, Options(), now=NOW)
    expected = _expected(records, NOW)
    conversion, total, amount, average, ratio, median = result.metrics
    for i, variant in enumerate(VARIANTS):
        conv = [c for c, _ in expected["conversion"][variant]]
        assert result.units[variant] == len(conv)
        assert conversion.variants[i].mean == pytest.approx(sum(conv) / len(conv))
        assert total.variants[i].mean == pytest.approx(sum(expected["total"][variant]) / len(conv))
        assert amount.variants[i].mean == pytest.approx(sum(expected["sum"][variant]) / len(conv))
        num = sum(s for s, _ in expected["avg"][variant])
        den = sum(n for _, n in expected["avg"][variant])
        assert average.variants[i].mean == pytest.approx(num / den)
        r_num = sum(c for c, _ in expected["ratio"][variant])
        r_den = sum(v for _, v in expected["ratio"][variant])
        assert ratio.variants[i].mean == pytest.approx(r_num / r_den)
        # the median of the amount per buyer: the order statistic at rank ⌈n/2⌉, bounded by those at
        # ⌈n(1/2 ∓ 1.96·√(1/4n))⌉
        buyers = sorted(s for s, n in expected["avg"][variant] if n)
        n = len(buyers)
        assert median.variants[i].units == len(conv)
        assert median.variants[i].mean == buyers[math.ceil(n * 0.5) - 1]
    assert result.mixed_units == len([i for i in range(60) if i % 13 == 0])
    # the effect and its interval are those of the statistics computed directly
    def sample(values: list[float]) -> stats.SampleMean:
        return stats.SampleMean(len(values), sum(values), sum(v * v for v in values))
    direct = stats.welch(sample(expected["sum"]["control"]), sample(expected["sum"]["b"]))
    assert amount.variants[1].ci == pytest.approx(direct.ci)
    assert amount.variants[1].p_value == pytest.approx(direct.p_value)


def test_cuped_and_the_daily_series(case: tuple[History, list[dict]]) -> None:
    history, records = case
    experiment = ExperimentStore(history.platform.meta).get(history.project.id, "exp")
    assert experiment is not None
    result = analyze(history.service(), history.project, experiment, Options(cuped=True), now=NOW)
    expected = _expected(records, NOW)["conversion"]
    arms = [stats.Adjusted(stats.Proportion(len(expected[v]), sum(c for c, _ in expected[v])),
                           stats.Proportion(len(expected[v]), sum(p for _, p in expected[v])),
                           sum(c * p for c, p in expected[v])) for v in VARIANTS]
    direct = stats.welch(*stats.cuped(arms))
    assert result.metrics[0].cuped
    assert result.metrics[0].variants[1].ci == pytest.approx(direct.ci)
    daily = [p for p in result.metrics[0].daily if p.variant == "b"]
    assert daily, "a daily series"
    # the last day's cumulative effect is the total's
    assert daily[-1].effect == pytest.approx(result.metrics[0].variants[1].effect_absolute)
    assert [p.day for p in daily] == sorted(p.day for p in daily)


@pytest.mark.parametrize("engine", list(Engine))
def test_every_engine_answers(case: tuple[History, list[dict]], engine: Engine) -> None:
    history, _ = case
    experiment = ExperimentStore(history.platform.meta).get(history.project.id, "exp")
    assert experiment is not None
    result = analyze(history.service(), history.project, experiment, Options(engine=engine, relative=True), now=NOW)
    arm = result.metrics[2].variants[1]
    assert arm.ci is not None
    assert (arm.p_value is not None) == (engine is not Engine.bayesian)
    assert (arm.chance_to_win is not None) == (engine is Engine.bayesian)


def test_class_experiments_use_cluster_robust_errors(tmp_path: Path) -> None:
    """Classes are assigned; each person's conversion counts, and the error is over classes (CR1)."""
    rng = random.Random(11)
    records = [{"type": "track", "event": "visit", "distinct_id": "nobody", "time": START.isoformat()}]
    classes = {f"c{k}": VARIANTS[k % 2] for k in range(24)}
    for k, (klass, variant) in enumerate(classes.items()):
        rate = 0.2 + 0.5 * (k % 3 == 0)  # classes differ a lot: the persons of a class are not independent
        for i in range(rng.randrange(3, 12)):
            who = f"{klass}-s{i}"
            t0 = START + dt.timedelta(hours=rng.randrange(0, 100))
            records.append({"type": "track", "event": "$experiment_exposure", "distinct_id": who,
                            "time": t0.isoformat(), "groups": {"class": klass},
                            "properties": {"experiment": "cls", "variant": variant}})
            if rng.random() < rate:
                records.append({"type": "track", "event": "buy", "distinct_id": who,
                                "time": (t0 + dt.timedelta(hours=2)).isoformat(), "properties": {"amount": 5}})
    history = History(tmp_path, records[:1])
    try:
        store = ExperimentStore(history.platform.meta)
        spec = {**SPEC, "key": "cls", "unit": "class", "metrics": [{"event": "buy"}]}
        store.create(history.project.id, parse_spec(spec), "test", START - dt.timedelta(days=1))
        experiment = store.start(history.project.id, "cls", "test", START)
        history.platform.catalog.forget_experiments(history.project.id)
        history.add(records[1:])
        result = analyze(history.service(), history.project, experiment, Options(), now=NOW)
    finally:
        history.close()
    per_class: dict[str, list[int]] = defaultdict(list)
    bought = {r["distinct_id"] for r in records if r["event"] == "buy"}
    for r in records:
        if r["event"] == "$experiment_exposure":
            per_class[r["groups"]["class"]].append(int(r["distinct_id"] in bought))
    arms = []
    for variant in VARIANTS:
        ys = [sum(v) for c, v in per_class.items() if classes[c] == variant]
        ns = [len(v) for c, v in per_class.items() if classes[c] == variant]
        arms.append(stats.cluster_mean(len(ys), sum(ys), sum(y * y for y in ys), sum(ns), sum(n * n for n in ns),
                                       sum(y * n for y, n in zip(ys, ns, strict=True))))
    metric = result.metrics[0]
    assert [a.clusters for a in metric.variants] == [12, 12]
    assert [a.units for a in metric.variants] == [sum(len(v) for c, v in per_class.items() if classes[c] == x)
                                                  for x in VARIANTS]
    direct = stats.welch(*arms)
    assert metric.variants[1].ci == pytest.approx(direct.ci)
    naive = stats.welch(*[stats.Proportion(int(a.d_sum), a.m_sum) for a in arms])
    assert direct.ci[1] - direct.ci[0] > naive.ci[1] - naive.ci[0]  # wider than if persons were independent
