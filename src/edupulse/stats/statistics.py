"""Sufficient statistics of one arm of an experiment, as SQL returns them (counts, sums, sums of squares and
cross products), with the mean and the unit-level variance each implies.

    SampleMean   n, Σy, Σy²                        mean ȳ, variance s² = (Σy² − (Σy)²/n) / (n − 1)
    Proportion   n, Σy (y ∈ {0, 1})                mean p, variance p(1 − p)
    Ratio        n, Σm, Σm², Σd, Σd², Σmd          mean Σm/Σd, delta-method variance (below)
    Adjusted     a SampleMean or Proportion of the metric after exposure, one of the same metric before
                 (CUPED), Σ(post·pre) and θ        mean ȳ − θ·x̄, variance s²y + θ²s²x − 2θ·cov(y, x)
    Quantile     n, level ν, the sample quantile and the order statistics that bound its 95% interval

Ratio (delta method), with m̄ = Σm/n, d̄ = Σd/n, r = m̄/d̄:
    Var = s²m/d̄² − 2·r·cov(m, d)/d̄² + r²·s²d/d̄²
(per unit; the variance of the ratio of means is Var / n). With a class or school as the unit of assignment,
the sums are over clusters (m = the cluster's sum of the metric, d = its number of persons): this is the
cluster-robust (CR1) variance of the mean of persons, see `cluster_mean`.

The variance here is of one unit; a test divides it by n.
"""

from __future__ import annotations

from dataclasses import dataclass

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


def _variance(n: float, total: float, squares: float) -> float:
    if n <= 1:
        return 0.0
    return max((squares - total * total / n) / (n - 1), 0.0)


def _covariance(n: float, sum_x: float, sum_y: float, products: float) -> float:
    if n <= 1:
        return 0.0
    return (products - sum_x * sum_y / n) / (n - 1)


@dataclass(frozen=True)
class SampleMean:
    """A per-unit value (events, amounts): n units, Σy, Σy²."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def variance(self) -> float:
        return _variance(self.n, self.sum, self.sum_squares)


@dataclass(frozen=True)
class Proportion:
    """A conversion: n units, Σy of which converted (y is 0 or 1)."""

    n: int
    sum: float

    @property
    def sum_squares(self) -> float:
        return self.sum

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def variance(self) -> float:
        p = self.mean
        return p * (1 - p)


@dataclass(frozen=True)
class Ratio:
    """Σm / Σd over n units (e.g. revenue per order, attended per scheduled lesson), by the delta method."""

    n: int
    m_sum: float
    m_sum_squares: float
    d_sum: float
    d_sum_squares: float
    m_d_sum_of_products: float

    @property
    def mean(self) -> float:
        return self.m_sum / self.d_sum if self.d_sum else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def covariance(self) -> float:
        return _covariance(self.n, self.m_sum, self.d_sum, self.m_d_sum_of_products)

    @property
    def variance(self) -> float:
        if self.n <= 1 or self.d_sum == 0:
            return 0.0
        d_mean = self.d_sum / self.n
        m_mean = self.m_sum / self.n
        var_m = _variance(self.n, self.m_sum, self.m_sum_squares)
        var_d = _variance(self.n, self.d_sum, self.d_sum_squares)
        value = (var_m / d_mean**2 - 2 * self.covariance * m_mean / d_mean**3
                 + m_mean**2 * var_d / d_mean**4)
        return max(value, 0.0)


Plain = SampleMean | Proportion


@dataclass(frozen=True)
class Adjusted:
    """CUPED: the metric after exposure (`post`) adjusted by the same metric before it (`pre`):
    ȳ − θ·x̄. θ is shared by all arms (see `cuped`); θ = 0 is the unadjusted metric."""

    post: Plain
    pre: Plain
    post_pre_sum_of_products: float
    theta: float = 0.0

    @property
    def n(self) -> int:
        return self.post.n

    @property
    def mean(self) -> float:
        return self.post.mean - self.theta * self.pre.mean

    @property
    def unadjusted_mean(self) -> float:
        return self.post.mean

    @property
    def covariance(self) -> float:
        return _covariance(self.n, self.post.sum, self.pre.sum, self.post_pre_sum_of_products)

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        value = self.post.variance + self.theta**2 * self.pre.variance - 2 * self.theta * self.covariance
        return max(value, 0.0)


@dataclass(frozen=True)
class Quantile:
    """The ν-quantile of a per-unit value: n units, the sample quantile, and the order statistics at the ranks
    n·ν ∓ 1.96·√(n·ν(1 − ν)) (`lower`, `upper`), whose distance gives the variance (as gbstats does)."""

    n: int
    level: float
    quantile: float
    lower: float
    upper: float

    @property
    def mean(self) -> float:
        return self.quantile

    @property
    def unadjusted_mean(self) -> float:
        return self.quantile

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        spread = (self.upper - self.lower) / (2 * Z95)
        return (self.n - 1) * spread**2

    @property
    def too_few(self) -> bool:
        """Too few units for the order statistics to exist on both sides of the quantile."""
        nu = self.level
        return self.n <= Z95**2 * nu / (1 - nu) or self.n <= Z95**2 * (1 - nu) / nu


Statistic = SampleMean | Proportion | Ratio | Adjusted | Quantile


def cluster_mean(clusters: int, y_sum: float, y_sum_squares: float, size_sum: float, size_sum_squares: float,
                 y_size_sum_of_products: float) -> Ratio:
    """The mean of a person-level value when classes or schools were assigned: the ratio of the clusters' sums
    (y_c: the cluster's total, size_c: its persons), whose delta-method variance is the cluster-robust one,
    G/(G−1)·Σ_c (y_c − ȳ·size_c)² / N², per person N."""
    return Ratio(clusters, y_sum, y_sum_squares, size_sum, size_sum_squares, y_size_sum_of_products)
