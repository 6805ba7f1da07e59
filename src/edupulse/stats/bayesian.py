"""Bayesian comparison of treatment with control on the effect itself (as gbstats' effect model): the data
give Δ ~ Normal(Δ̂, Var) (frequentist.difference); with a proper Gaussian prior N(μ₀, σ₀²) on the effect the
posterior is Normal with precision 1/Var + 1/σ₀² and mean (Δ̂/Var + μ₀/σ₀²)/precision; with no prior (the
default, improper flat prior) the posterior is N(Δ̂, Var).

    chance to win = P(Δ > 0)                                   (P(Δ < 0) for a metric where lower is better)
    credible interval = the α/2 and 1 − α/2 posterior quantiles
    risk = (expected loss of choosing the control, of choosing the treatment)
         = (P(Δ > 0)·E[Δ | Δ > 0], −P(Δ < 0)·E[Δ | Δ < 0])      (swapped where lower is better)
with E[Δ | Δ > 0] = μ + σ·φ(μ/σ)/Φ(μ/σ) and E[Δ | Δ < 0] = μ − σ·φ(μ/σ)/Φ(−μ/σ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scipy import stats as sp

from edupulse.stats.frequentist import difference
from edupulse.stats.result import Effect, point_estimates, problem
from edupulse.stats.statistics import Statistic


@dataclass(frozen=True)
class GaussianPrior:
    """A prior on the effect (in the scale of the test: absolute, or relative when relative)."""

    mean: float = 0.0
    variance: float = 1.0


def risks(mean: float, stddev: float) -> tuple[float, float]:
    """(expected loss of choosing the control, expected loss of choosing the treatment)."""
    z = mean / stddev
    up, down = float(sp.norm.cdf(z)), float(sp.norm.cdf(-z))
    density = float(sp.norm.pdf(z))
    gain = up * mean + stddev * density  # P(Δ>0)·E[Δ | Δ>0]
    loss = -(down * mean - stddev * density)  # −P(Δ<0)·E[Δ | Δ<0]
    return max(gain, 0.0), max(loss, 0.0)


def bayesian(a: Statistic, b: Statistic, *, relative: bool = False, alpha: float = 0.05,
             prior: GaussianPrior | None = None, lower_is_better: bool = False) -> Effect:
    """Chance to win, risk and credible interval of treatment `b` against control `a`."""
    effect = replace(point_estimates(a, b), relative_ci=relative)
    failure = problem(a, b, relative)
    if failure is not None:
        return effect.failed(failure)
    estimate, variance = difference(a, b, relative)
    precision = 1 / variance + (1 / prior.variance if prior else 0.0)
    mean = (estimate / variance + prior.mean / prior.variance) / precision if prior else estimate
    stddev = math.sqrt(1 / precision)
    win = float(sp.norm.sf(0, mean, stddev))
    low, high = (float(v) for v in sp.norm.ppf([alpha / 2, 1 - alpha / 2], mean, stddev))
    control_risk, treatment_risk = risks(mean, stddev)
    if lower_is_better:
        win, (control_risk, treatment_risk) = 1 - win, (treatment_risk, control_risk)
    return replace(effect, ci=(low, high), stddev=stddev, chance_to_win=win, risk=(control_risk, treatment_risk))
