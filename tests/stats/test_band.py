"""The expected band of an hour of the week: mean ± k sd, the sd never below the Poisson √mean, no band with
too little history."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edupulse.stats.band import expected_band


def test_a_band_around_the_history() -> None:
    band = expected_band([10, 12, 8, 10], k=2)
    assert band.mean == 10
    assert band.sd == pytest.approx(math.sqrt(10))  # the sample sd (1.63) is below √mean
    assert band.low == pytest.approx(10 - 2 * math.sqrt(10))
    assert band.outside(30)
    assert not band.outside(12)


def test_a_spread_history_widens_the_band() -> None:
    band = expected_band([0, 40, 5, 35], k=3)
    assert band.sd == pytest.approx(statistics.stdev([0, 40, 5, 35]))
    assert band.low == 0


def test_too_little_history_has_no_band() -> None:
    band = expected_band([3, 4])
    assert band.error == "too_little_history"
    assert not band.outside(1000)


@given(st.lists(st.integers(0, 10_000), min_size=3, max_size=52), st.floats(0.5, 10))
def test_the_history_mean_is_always_inside(history: list[int], k: float) -> None:
    band = expected_band(history, k)
    assert band.low <= band.mean <= band.high
    assert band.low >= 0
