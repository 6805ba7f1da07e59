"""A/A simulations: with no effect, the fixed-horizon test rejects in 5% ± 1% of 2,000 experiments, and the
sequential test, looked at every day, in at most 5%; with a planted effect, both find it."""

from __future__ import annotations

import numpy as np
import pytest

from edupulse import stats

EXPERIMENTS = 2000
DAYS = 14
PER_DAY = 60  # units entering each arm per day


def _daily_arms(rng: np.random.Generator, lift: float = 0.0) -> list[tuple[stats.SampleMean, stats.SampleMean]]:
    """Cumulative statistics of both arms at the end of each day; a skewed per-unit value (revenue-like)."""
    out = []
    totals = np.zeros((2, 3))
    for _ in range(DAYS):
        for arm in range(2):
            values = rng.exponential(10.0, PER_DAY) * (rng.random(PER_DAY) < 0.3) * (1 + lift * arm)
            totals[arm] += (len(values), values.sum(), (values**2).sum())
        out.append(tuple(stats.SampleMean(int(t[0]), float(t[1]), float(t[2])) for t in totals))
    return out  # type: ignore[return-value]


@pytest.mark.slow
def test_false_positive_rates_of_aa_experiments() -> None:
    rng = np.random.default_rng(2026)
    fixed = peeking_sequential = peeking_fixed = 0
    for _ in range(EXPERIMENTS):
        days = _daily_arms(rng)
        a, b = days[-1]
        fixed += stats.welch(a, b).p_value < 0.05
        peeking_sequential += any(stats.sequential(x, y).p_value < 0.05 for x, y in days)
        peeking_fixed += any(stats.welch(x, y).p_value < 0.05 for x, y in days)
    assert 0.04 <= fixed / EXPERIMENTS <= 0.06, fixed / EXPERIMENTS
    assert peeking_sequential / EXPERIMENTS <= 0.05, peeking_sequential / EXPERIMENTS
    # why the sequential test exists: peeking at the fixed-horizon test every day inflates its error
    assert peeking_fixed / EXPERIMENTS > 0.1


def test_a_planted_effect_is_found() -> None:
    rng = np.random.default_rng(7)
    found = sum(stats.welch(*_daily_arms(rng, lift=0.5)[-1]).p_value < 0.05 for _ in range(200))
    found_sequential = sum(any(stats.sequential(x, y).p_value < 0.05 for x, y in _daily_arms(rng, lift=0.5))
                           for _ in range(200))
    assert found / 200 > 0.8
    assert found_sequential / 200 > 0.5
