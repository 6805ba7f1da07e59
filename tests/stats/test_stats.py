"""The pure statistics against gbstats' numbers, GrowthBook's published examples and scipy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from edupulse.stats import (
    Adjusted,
    Correction,
    GaussianPrior,
    Problem,
    Proportion,
    Quantile,
    Ratio,
    SampleMean,
    adjust,
    bayesian,
    benjamini_hochberg,
    cluster_mean,
    conversion_sample_size,
    cuped,
    holm,
    sample_size,
    sequential,
    srm_p_value,
    two_proportions,
    welch,
)

# Computed by gbstats 0.8.0 (GrowthBook's statistics engine on PyPI; it pins numpy<2 and pandas<2, so it
# cannot be installed beside this project's lock and its numbers are kept here).
REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "gbstats_reference.json").read_text())


def _stat(d: dict) -> SampleMean | Proportion | Ratio | Adjusted:
    if d["kind"] == "mean":
        return SampleMean(d["n"], d["sum"], d["sum_squares"])
    if d["kind"] == "proportion":
        return Proportion(d["n"], d["sum"])
    if d["kind"] == "ratio":
        return Ratio(d["n"], d["m_sum"], d["m_sum_squares"], d["d_sum"], d["d_sum_squares"],
                     d["m_d_sum_of_products"])
    return Adjusted(SampleMean(d["n"], d["post_sum"], d["post_ss"]), SampleMean(d["n"], d["pre_sum"], d["pre_ss"]),
                    d["pp"])


def _pair(name: str) -> tuple:
    a, b = _stat(REFERENCE[name]["a"]), _stat(REFERENCE[name]["b"])
    if isinstance(a, Adjusted):
        a, b = cuped([a, b])
    return a, b


CASES = [(name, kind) for name in REFERENCE for kind in ("absolute", "relative")]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_welch_equals_gbstats(name: str, kind: str) -> None:
    a, b = _pair(name)
    expected = REFERENCE[name][kind]["welch"]
    got = welch(a, b, relative=kind == "relative")
    assert got.estimate == pytest.approx(expected["estimate"], rel=1e-9)
    assert got.ci == pytest.approx(expected["ci"], rel=1e-9)
    assert got.p_value == pytest.approx(expected["p_value"], rel=1e-7)
    assert got.stddev == pytest.approx(expected["stddev"], rel=1e-9)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_sequential_equals_gbstats(name: str, kind: str) -> None:
    a, b = _pair(name)
    expected = REFERENCE[name][kind]["sequential"]
    got = sequential(a, b, relative=kind == "relative")
    assert got.ci == pytest.approx(expected["ci"], rel=1e-9)
    assert got.p_value == pytest.approx(expected["p_value"], rel=1e-7)


@pytest.mark.parametrize(("name", "kind"), CASES)
@pytest.mark.parametrize("with_prior", [False, True])
def test_bayesian_equals_gbstats(name: str, kind: str, with_prior: bool) -> None:
    a, b = _pair(name)
    expected = REFERENCE[name][kind]["bayesian_prior" if with_prior else "bayesian"]
    prior = None
    if with_prior:  # gbstats' prior was 0 ± √0.3 in the relative scale; absolute tests rescale it by the control mean
        scale = a.unadjusted_mean**2 if kind == "absolute" else 1.0
        prior = GaussianPrior(0.0, 0.3 * scale)
    got = bayesian(a, b, relative=kind == "relative", prior=prior)
    assert got.ci == pytest.approx(expected["ci"], rel=1e-7)
    assert got.chance_to_win == pytest.approx(expected["chance_to_win"], rel=1e-7)
    assert got.risk == pytest.approx(expected["risk"], rel=1e-6, abs=1e-12)


def _from_summary(mean: float, sd: float, n: int) -> SampleMean:
    total = mean * n
    return SampleMean(n, total, sd**2 * (n - 1) + total**2 / n)


def test_published_gbstats_example() -> None:
    # GrowthBook's own frequentist test (packages/stats/tests/frequentist/test_tests.py): control 0.41 ± 3.9
    # over 3407 units, treatment 0.70 ± 6.2 over 3461; relative uplift 0.70732, CI [-0.03526, 1.44989],
    # stddev 0.37879, p 0.06191.
    a, b = _from_summary(0.41, 3.9, 3407), _from_summary(0.7, 6.2, 3461)
    got = welch(a, b, relative=True)
    assert round(got.relative, 5) == 0.70732
    assert [round(x, 5) for x in got.ci] == [-0.03526, 1.44989]
    assert round(got.stddev, 5) == 0.37879
    assert round(got.p_value, 5) == 0.06191


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=2, max_size=40), st.lists(st.floats(-50, 50), min_size=2, max_size=40))
def test_welch_equals_scipy(xs: list[float], ys: list[float]) -> None:
    a = SampleMean(len(xs), sum(xs), sum(x * x for x in xs))
    b = SampleMean(len(ys), sum(ys), sum(y * y for y in ys))
    got = welch(a, b)
    if np.var(xs) < 1e-9 or np.var(ys) < 1e-9:
        assert got.p_value is None or got.error is Problem.zero_variance or got.p_value >= 0
        return
    expected = sp.ttest_ind(ys, xs, equal_var=False)
    assert got.p_value == pytest.approx(float(expected.pvalue), rel=1e-6, abs=1e-9)
    interval = expected.confidence_interval(0.95)
    assert got.ci == pytest.approx((float(interval.low), float(interval.high)), rel=1e-6, abs=1e-9)


def test_variances_whose_squares_underflow_are_zero_variance() -> None:
    # [0, 1e-160]: a positive variance (about 5e-321) whose square is 0 in Welch's degrees of freedom
    a = SampleMean(2, 1e-160, 1e-320)
    assert a.variance > 0
    got = welch(a, SampleMean(2, 1e-160, 1e-320))
    assert got.error is Problem.zero_variance


@pytest.mark.parametrize(("a", "b", "problem"), [
    (SampleMean(0, 0, 0), SampleMean(10, 5, 5), Problem.no_units),
    (SampleMean(1, 3, 9), SampleMean(10, 5, 5), Problem.one_unit),
    (SampleMean(5, 10, 20), SampleMean(5, 7, 20), Problem.zero_variance),
    (Proportion(100, 0), Proportion(100, 5), Problem.baseline_zero),
    (Quantile(3, 0.9, 1.0, 0.5, 2.0), Quantile(3, 0.9, 1.0, 0.5, 2.0), Problem.too_few_for_quantile),
])
@pytest.mark.parametrize("engine", ["welch", "sequential", "bayesian"])
def test_degenerate_input_is_a_result(a, b, problem: Problem, engine: str) -> None:
    test = {"welch": welch, "sequential": sequential, "bayesian": bayesian}[engine]
    got = test(a, b, relative=True)
    assert got.error is problem
    assert got.message
    assert got.ci is None
    assert got.p_value is None
    assert got.chance_to_win is None


def test_absolute_effect_survives_a_zero_control() -> None:
    got = welch(Proportion(1000, 1), Proportion(1000, 30))  # absolute: defined although a relative one is not
    assert got.error is None
    assert got.relative == pytest.approx(29.0)
    assert got.ci[0] < 0.029 < got.ci[1]


def test_ratio_delta_method_against_simulation() -> None:
    rng = np.random.default_rng(3)
    m = rng.poisson(3, 4000).astype(float)
    d = m + rng.poisson(2, 4000)
    ratio = Ratio(len(m), m.sum(), (m**2).sum(), d.sum(), (d**2).sum(), (m * d).sum())
    # bootstrap variance of Σm/Σd
    draws = [rng.integers(0, len(m), len(m)) for _ in range(600)]
    boot = [m[i].sum() / d[i].sum() for i in draws]
    assert ratio.variance / ratio.n == pytest.approx(np.var(boot), rel=0.15)


def test_cluster_mean_is_the_cluster_robust_variance() -> None:
    rng = np.random.default_rng(5)
    sizes = rng.integers(5, 40, 60)
    effects = rng.normal(0, 1, 60)
    y = [effects[c] + rng.normal(0, 1, size) for c, size in enumerate(sizes)]
    totals = np.array([v.sum() for v in y])
    stat = cluster_mean(len(sizes), totals.sum(), (totals**2).sum(), sizes.sum(), (sizes**2).sum(),
                        (totals * sizes).sum())
    everyone = np.concatenate(y)
    mean = everyone.mean()
    # CR1 sandwich of an intercept-only regression, clusters G: G/(G-1) · Σ_c (Σ_i∈c (y_i − ȳ))² / N²
    scores = np.array([(v - mean).sum() for v in y])
    g, n = len(sizes), len(everyone)
    cr1 = g / (g - 1) * (scores**2).sum() / n**2
    assert stat.mean == pytest.approx(mean)
    assert stat.variance / stat.n == pytest.approx(cr1, rel=1e-9)
    naive = everyone.var(ddof=1) / n
    assert cr1 > 2 * naive  # the clusters matter: the naive error is far too small


def test_cuped_theta_is_the_regression_slope() -> None:
    rng = np.random.default_rng(11)
    pre = rng.normal(10, 3, (2, 3000))
    post = 0.8 * pre + rng.normal(0, 1, (2, 3000))
    post[1] += 0.1
    arms = [Adjusted(SampleMean(3000, post[i].sum(), (post[i] ** 2).sum()),
                     SampleMean(3000, pre[i].sum(), (pre[i] ** 2).sum()), (post[i] * pre[i]).sum())
            for i in range(2)]
    a, b = cuped(arms)
    slope = np.cov(post.ravel(), pre.ravel())[0, 1] / np.var(pre.ravel(), ddof=1)
    assert a.theta == pytest.approx(slope, rel=1e-9)
    plain = welch(a.post, b.post)
    adjusted = welch(a, b)
    assert adjusted.stddev < plain.stddev / 2  # the pre-period explains most of the variance


def test_srm_equals_scipy_chisquare() -> None:
    counts, weights = [5120, 4880], [0.5, 0.5]
    expected = sp.chisquare(counts, [sum(counts) / 2] * 2).pvalue
    assert srm_p_value(counts, weights) == pytest.approx(float(expected))
    assert srm_p_value([0, 0], weights) == 1.0
    assert srm_p_value([6000, 4000], weights) < 1e-6


def test_benjamini_hochberg_equals_scipy() -> None:
    rng = np.random.default_rng(2)
    ps = list(rng.uniform(0, 0.2, 15))
    assert benjamini_hochberg(ps) == pytest.approx(list(sp.false_discovery_control(ps)))


def test_holm_by_definition() -> None:
    ps = [0.01, 0.04, 0.03, None, 0.005]
    got = holm(ps)
    # m = 4 present: sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, 0.06
    assert [got[i] for i in (0, 1, 2, 4)] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert got[3] is None
    assert adjust(ps, Correction.none) == ps


def test_sample_size_round_trip() -> None:
    size = conversion_sample_size(0.1, 0.1, units_per_day=1000)
    # 10% -> 11% at α=0.05, power 0.8: about 14,750 per arm (textbook normal approximation)
    assert 14000 < size.per_arm < 15500
    assert size.days == math.ceil(size.total / 1000)
    assert sample_size(1.0, 0.0, 0.1).error


def test_two_proportions_against_scipy() -> None:
    got = two_proportions(130, 1000, 100, 1000)
    pooled = 230 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert got.p_value == pytest.approx(2 * sp.norm.sf(z))
    assert got.ci[0] < 0.03 < got.ci[1]
    assert two_proportions(0, 0, 1, 10).error
