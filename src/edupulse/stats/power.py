"""Sample size and duration before starting: how many units each arm needs to detect a relative effect
(the minimum detectable effect, MDE) with a two-sided test at level α and the given power.

For a metric with control mean μ and unit variance σ² (a conversion rate p: σ² = p(1 − p)), comparing one
treatment with the control, equal arms, effect δ = MDE·μ:
    n per arm = (z(1 − α/2) + z(power))² · 2σ² / δ²
(with several treatments, α is divided among them, Bonferroni). Duration = total units / units per day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sp


@dataclass(frozen=True)
class SampleSize:
    per_arm: int | None
    total: int | None
    days: int | None
    error: str | None = None


def sample_size(mean: float, variance: float, mde: float, *, arms: int = 2, alpha: float = 0.05,
                power: float = 0.8, units_per_day: float | None = None) -> SampleSize:
    """Units per arm (and days, given the units entering the experiment per day) to detect a relative
    effect `mde` (0.05 = 5%)."""
    if arms < 2:
        return SampleSize(None, None, None, "an experiment needs at least two arms")
    if mean == 0 or mde == 0:
        return SampleSize(None, None, None, "the control mean and the effect to detect must not be 0")
    if variance <= 0:
        return SampleSize(None, None, None, "the metric's variance must be above 0")
    if not (0 < alpha < 1 and 0 < power < 1):
        return SampleSize(None, None, None, "alpha and power are between 0 and 1")
    level = alpha / (arms - 1)
    z = float(sp.norm.ppf(1 - level / 2) + sp.norm.ppf(power))
    delta = mde * mean
    per_arm = math.ceil(z**2 * 2 * variance / delta**2)
    total = per_arm * arms
    days = math.ceil(total / units_per_day) if units_per_day else None
    return SampleSize(per_arm, total, days)


def conversion_sample_size(rate: float, mde: float, *, arms: int = 2, alpha: float = 0.05, power: float = 0.8,
                           units_per_day: float | None = None) -> SampleSize:
    """The same for a conversion rate (variance p(1 − p))."""
    if not 0 < rate < 1:
        return SampleSize(None, None, None, "a conversion rate is between 0 and 1 (exclusive)")
    return sample_size(rate, rate * (1 - rate), mde, arms=arms, alpha=alpha, power=power, units_per_day=units_per_day)
