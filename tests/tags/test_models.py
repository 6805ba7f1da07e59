"""The education models' learning: a model with signal is published with its evaluation and per-unit reasons;
one without signal is refused by the gate (mean AUC over 10 held-out splits), one without enough history
is refused saying so; the feature statements read the events once and render on both engines."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

from edupulse.queries.base import render
from edupulse.queries.compile import Context
from edupulse.queries.dialect import CLICKHOUSE, DUCKDB
from edupulse.store.schema import STANDARD_PROPERTIES
from edupulse.tags.learn.features import PLANS, Feature
from edupulse.tags.learn.train import ModelRefused, cross_validated, train
from edupulse.tags.run import reason_texts

FEATURES = (Feature("calls", "calls connected", "接通电话", count=True), Feature("noise", "noise", "噪声"))
CUTS = [("high", 0.7), ("medium", 0.4)]


def rows(n: int, signal: bool, seed: int = 1) -> list[tuple[object, ...]]:
    rng = random.Random(seed)
    out: list[tuple[object, ...]] = []
    for unit in range(1, n + 1):
        calls = rng.randint(0, 6)
        p = (0.05 + 0.15 * calls) if signal else 0.4
        outcome = int(rng.random() < p) if unit <= n * 0.8 else None
        out.append((unit, calls, rng.random(), outcome, 1))
    return out


def test_a_model_with_signal_is_published_with_its_evaluation_and_reasons() -> None:
    trained = train(rows(600, signal=True), FEATURES, CUTS)
    gate = trained.evaluation["gate"]
    assert gate["passed"]
    assert gate["score"] == "AUC"
    assert gate["mean"] >= 0.7
    assert gate["std"] <= 0.05
    held = trained.evaluation["held_out"]
    assert held["auc"] > 0.7
    assert [c["tier"] for c in held["at_cutoffs"]] == ["high", "medium"]
    assert held["calibration"]
    assert held["roc"][0] == [0.0, 0.0]
    assert trained.evaluation["importances"][0]["feature"] == "calls"
    assert len(trained.scores) == 600
    # a unit with many calls: its first reason is its calls, raising the score
    busy = next(i for i, r in enumerate(rows(600, True)) if r[1] == 6)
    name, value, effect = trained.reasons[busy][0]
    assert (name, value) == ("calls", 6.0)
    assert effect > 0
    assert len(cross_validated(rows(600, True), FEATURES)) == 480


def test_the_same_history_in_any_row_order_gives_the_same_model() -> None:
    """The engine returns a model's rows in no fixed order: the gate's splits, its evaluation and every unit's
    score must not depend on it (a model near the gate would otherwise pass on one run and fail the next)."""
    first = train(rows(600, signal=True), FEATURES, CUTS)
    shuffled = rows(600, signal=True)
    random.Random(5).shuffle(shuffled)
    again = train(shuffled, FEATURES, CUTS)
    assert again.evaluation == first.evaluation
    assert dict(zip(again.units, again.scores, strict=True)) == pytest.approx(
        dict(zip(first.units, first.scores, strict=True)), abs=1e-9)


def test_no_signal_fails_the_gate_and_little_history_is_refused() -> None:
    with pytest.raises(ModelRefused, match="failed the gate: mean AUC") as refused:
        train(rows(600, signal=False), FEATURES, CUTS)
    assert refused.value.evaluation is not None
    assert refused.value.evaluation["gate"]["passed"] is False
    with pytest.raises(ModelRefused, match="not enough history"):
        train(rows(20, signal=True), FEATURES, CUTS)


def test_reasons_read_in_both_languages() -> None:
    detail = '[["calls", 6.0, 1.2], ["idle", 1.0, -0.4]]'
    assert reason_texts(detail) == ["calls connected with an advisor: 6 (raises the score)",
                                    "had lessons in the last 14 days and attended none: 1 (lowers the score)"]
    assert reason_texts(detail, "zh")[0] == "与顾问接通电话次数:6(提高了分数)"


@pytest.mark.parametrize("dialect", [DUCKDB, CLICKHOUSE], ids=lambda d: d.name)
def test_each_model_reads_the_events_in_few_passes(dialect: object) -> None:
    ctx = Context(1, ZoneInfo("Asia/Shanghai"), dict(STANDARD_PROPERTIES), dialect,  # type: ignore[arg-type]
                  now=dt.datetime(2026, 9, 10, tzinfo=dt.UTC))
    passes = {name: render(plan(ctx).statement, ctx.dialect).count("FROM events") for name, plan in PLANS.items()}
    assert passes == {"lead_propensity": 1, "dropout_risk": 1, "renewal_propensity": 2}


def test_a_unit_that_met_the_outcome_already_scores_one() -> None:
    learned = rows(600, signal=True)
    scored = [(9001, 0, 0.5, None, 1), (9002, 6, 0.5, None, 1)]
    flagged = (Feature("calls", "calls connected", "接通电话", count=True), Feature("noise", "noise", "噪声"))
    trained = train(learned + scored, flagged, CUTS, observed="calls")
    by_unit = dict(zip(trained.units, trained.scores, strict=True))
    assert by_unit[9002] == 1.0
    assert by_unit[9001] < 1.0
    assert trained.reasons[trained.units.index(9002)] == [("calls", 6.0, 9.99)]


def test_beyond_max_learn_a_stratified_sample_is_learned_and_every_unit_scored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from edupulse.tags.learn import train as module

    monkeypatch.setattr(module, "MAX_LEARN", 200)
    every = rows(600, signal=True)
    known = [r for r in every if r[3] is not None]
    trained = train(every, FEATURES, CUTS)
    evaluation = trained.evaluation
    assert evaluation["units_with_outcome"] == len(known) == 480
    assert evaluation["units_learned"] == 200
    share = sum(int(r[3]) for r in known) / len(known)  # type: ignore[call-overload]
    assert evaluation["positives"] / 200 == pytest.approx(share, abs=0.01)  # stratified by outcome
    assert evaluation["gate"]["passed"]
    assert len(trained.scores) == 600  # every unit is scored, not only the sample
    assert train(every, FEATURES, CUTS).scores == trained.scores  # the same sample each time
