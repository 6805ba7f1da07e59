"""The comparison of one arm with the control, and the reasons a comparison cannot be made.

Degenerate input (no units, one unit, no variance, a control mean of zero for a relative effect) is not an
exception: the result carries `error` (a code) and `message` (for a person), with the numbers that are still
defined (the means, the point estimates) and None for those that are not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from edupulse.stats.statistics import Quantile, Statistic


class Problem(StrEnum):
    no_units = "no_units"
    one_unit = "one_unit"
    zero_variance = "zero_variance"
    baseline_zero = "baseline_zero"
    too_few_for_quantile = "too_few_for_quantile"


MESSAGES: dict[Problem, str] = {
    Problem.no_units: "an arm has no units yet",
    Problem.one_unit: "an arm has a single unit: a variance needs at least two",
    Problem.zero_variance: "every unit of an arm has the same value, so there is no variance to test against",
    Problem.baseline_zero: "the control's mean is 0, so a relative effect is not defined",
    Problem.too_few_for_quantile: "too few units to bound this quantile",
}


@dataclass(frozen=True)
class Effect:
    """Treatment against control. `ci` is the interval of the absolute effect, or of the relative one when
    `relative`; `p_value` (frequentist and sequential engines) and `chance_to_win`, `risk` (Bayesian: the
    expected loss of choosing the control, then of choosing the treatment, in the effect's scale) are None
    where the engine does not give them or the input is degenerate."""

    absolute: float | None
    relative: float | None
    relative_ci: bool = False
    ci: tuple[float, float] | None = None
    stddev: float | None = None
    p_value: float | None = None
    chance_to_win: float | None = None
    risk: tuple[float, float] | None = None
    error: Problem | None = None

    @property
    def message(self) -> str | None:
        return MESSAGES[self.error] if self.error else None

    @property
    def estimate(self) -> float | None:
        """The effect the interval is about."""
        return self.relative if self.relative_ci else self.absolute

    def failed(self, problem: Problem) -> Effect:
        return replace(self, ci=None, stddev=None, p_value=None, chance_to_win=None, risk=None, error=problem)


def point_estimates(a: Statistic, b: Statistic) -> Effect:
    """The absolute and relative effects (None where undefined); no interval yet."""
    if a.n == 0 or b.n == 0:
        return Effect(None, None)
    absolute = b.mean - a.mean
    base = a.unadjusted_mean
    return Effect(absolute, absolute / base if base else None)


def problem(a: Statistic, b: Statistic, relative: bool) -> Problem | None:
    """Why the two arms cannot be compared, if they cannot."""
    if a.n == 0 or b.n == 0:
        return Problem.no_units
    if a.n < 2 or b.n < 2:
        return Problem.one_unit
    if isinstance(a, Quantile) and isinstance(b, Quantile) and (a.too_few or b.too_few):
        return Problem.too_few_for_quantile
    if relative and (a.unadjusted_mean == 0 or a.mean == 0):
        return Problem.baseline_zero
    if a.variance <= 0 or b.variance <= 0 or (a.variance / a.n) ** 2 + (b.variance / b.n) ** 2 == 0:
        return Problem.zero_variance  # (the last: variances so small that their squares underflow to 0)
    return None
