"""Frequentist comparisons: Welch's t-test (fixed horizon) and an always-valid confidence sequence
(sequential testing, safe under peeking).

Difference and its variance, with ȳ the arm means, s² the unit variances, n the units (control a, treatment b):
    absolute:  Δ = ȳb − ȳa,            Var(Δ) = s²b/nb + s²a/na
    relative:  Δ = (ȳb − ȳa) / ȳa,     Var(Δ) = s²b/(ȳa²·nb) + s²a·ȳb²/(ȳa⁴·na)      (delta method)
(ȳa in the relative denominators is the unadjusted control mean when CUPED adjusts the means.)

Welch: t = Δ/√Var with the Welch–Satterthwaite degrees of freedom
    ν = (s²a/na + s²b/nb)² / ((s²a/na)²/(na − 1) + (s²b/nb)²/(nb − 1));
    CI = Δ ± t(1 − α/2, ν)·√Var, p = 2·(1 − T_ν(|t|)).

Sequential (Waudby-Smith et al. 2023, asymptotic confidence sequences, eq. 9; the tuning N* is the sample
size at which the sequence is tightest, ρ from eq. 161), with N = na + nb and σ̂² = N·Var:
    ρ = √((−2 ln α + ln(−2 ln α + 1)) / N*)
    CI = Δ ± σ̂·√(2(Nρ² + 1)/(N²ρ²) · ln(√(Nρ² + 1)/α))
    p = min(1, 1/E), E = exp(ρ²·N·Δ²/σ̂² / (2(Nρ² + 1))) / √(Nρ² + 1)   (an e-value, eq. 155)
The interval holds at every look at once, so it may be read every day.
"""

from __future__ import annotations

import math
from dataclasses import replace

from scipy import stats as sp

from edupulse.stats.result import Effect, point_estimates, problem
from edupulse.stats.statistics import Statistic

DEFAULT_TUNING = 5000.0


def difference(a: Statistic, b: Statistic, relative: bool) -> tuple[float, float]:
    """The effect (absolute or relative) and the variance of its estimate."""
    base = a.unadjusted_mean
    if relative:
        estimate = (b.mean - a.mean) / base
        variance = b.variance / (base**2 * b.n) + a.variance * b.unadjusted_mean**2 / (base**4 * a.n)
    else:
        estimate = b.mean - a.mean
        variance = b.variance / b.n + a.variance / a.n
    return estimate, variance


def welch_dof(a: Statistic, b: Statistic) -> float:
    va, vb = a.variance / a.n, b.variance / b.n
    return (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))


def welch(a: Statistic, b: Statistic, *, relative: bool = False, alpha: float = 0.05) -> Effect:
    """Welch's two-sided t-test of treatment `b` against control `a`."""
    effect = replace(point_estimates(a, b), relative_ci=relative)
    failure = problem(a, b, relative)
    if failure is not None:
        return effect.failed(failure)
    estimate, variance = difference(a, b, relative)
    dof = welch_dof(a, b)
    stddev = math.sqrt(variance)
    width = float(sp.t.ppf(1 - alpha / 2, dof)) * stddev
    t = estimate / stddev
    p_value = float(2 * sp.t.sf(abs(t), dof))
    return replace(effect, ci=(estimate - width, estimate + width), stddev=stddev, p_value=p_value)


def sequential(a: Statistic, b: Statistic, *, relative: bool = False, alpha: float = 0.05,
               tuning: float = DEFAULT_TUNING) -> Effect:
    """The always-valid confidence sequence and p-value of treatment `b` against control `a`."""
    effect = replace(point_estimates(a, b), relative_ci=relative)
    failure = problem(a, b, relative)
    if failure is not None:
        return effect.failed(failure)
    estimate, variance = difference(a, b, relative)
    total = a.n + b.n
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    spread = total * rho**2 + 1
    s2 = variance * total
    width = math.sqrt(s2) * math.sqrt(2 * spread * math.log(math.sqrt(spread) / alpha) / (total * rho) ** 2)
    evidence = math.exp(min(rho**2 * estimate**2 * total / variance / (2 * spread), 700.0)) / math.sqrt(spread)
    return replace(effect, ci=(estimate - width, estimate + width), stddev=math.sqrt(variance),
                   p_value=min(1.0, 1 / evidence))
