"""Sample-ratio mismatch: a χ² goodness-of-fit test of the units counted in each arm against the weights
they were assigned with. A small p-value (below 0.001 by default) means the split is broken (a bug in
assignment or in exposure logging) and the results should not be trusted.

    χ² = Σ (observedᵢ − expectedᵢ)² / expectedᵢ,  expectedᵢ = wᵢ/Σw · Σ observed,  k − 1 degrees of freedom
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy import stats as sp

SRM_THRESHOLD = 0.001


def srm_p_value(counts: Sequence[float], weights: Sequence[float]) -> float:
    """The p-value of the observed split; 1.0 when nothing was observed."""
    if len(counts) != len(weights):
        raise ValueError("one weight per arm is needed")
    total = sum(counts)
    total_weight = sum(weights)
    if not total or total_weight <= 0 or len(counts) < 2:
        return 1.0
    statistic = 0.0
    for observed, weight in zip(counts, weights, strict=True):
        if weight <= 0:
            continue
        expected = weight / total_weight * total
        statistic += (observed - expected) ** 2 / expected
    return float(sp.chi2.sf(statistic, len(counts) - 1))
