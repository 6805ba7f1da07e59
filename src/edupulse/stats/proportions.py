"""The difference of two proportions with its confidence interval and p-value (Wald, unpooled standard
error for the interval; the two-sided z-test with the pooled proportion for the p-value). Used for holdout
uplift: the share converting with treatment against the share converting in the holdout.

    p₁ = x₁/n₁, p₀ = x₀/n₀, Δ = p₁ − p₀
    CI = Δ ± z(1 − α/2)·√(p₁(1 − p₁)/n₁ + p₀(1 − p₀)/n₀)
    p-value: z = Δ / √(p̄(1 − p̄)(1/n₁ + 1/n₀)), p̄ = (x₁ + x₀)/(n₁ + n₀)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sp


@dataclass(frozen=True)
class ProportionDifference:
    treated_rate: float | None
    control_rate: float | None
    difference: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    relative: float | None
    error: str | None = None


def two_proportions(treated: int, treated_n: int, control: int, control_n: int, *,
                    alpha: float = 0.05) -> ProportionDifference:
    """Uplift of the treated group's rate over the control (holdout) group's rate."""
    if treated_n <= 0 or control_n <= 0:
        return ProportionDifference(None, None, None, None, None, None, "a group has no units")
    if not (0 <= treated <= treated_n and 0 <= control <= control_n):
        return ProportionDifference(None, None, None, None, None, None,
                                    "successes must be between 0 and the group's units")
    p1, p0 = treated / treated_n, control / control_n
    diff = p1 - p0
    relative = diff / p0 if p0 else None
    se = math.sqrt(p1 * (1 - p1) / treated_n + p0 * (1 - p0) / control_n)
    pooled = (treated + control) / (treated_n + control_n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / treated_n + 1 / control_n))
    if se_pooled == 0:
        return ProportionDifference(p1, p0, diff, (diff, diff), None, relative,
                                    "both groups converted all or none: no variance to test against")
    z = float(sp.norm.ppf(1 - alpha / 2))
    p_value = float(2 * sp.norm.sf(abs(diff) / se_pooled))
    return ProportionDifference(p1, p0, diff, (diff - z * se, diff + z * se), p_value, relative)
