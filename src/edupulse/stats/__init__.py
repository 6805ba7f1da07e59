"""Pure statistics for experiments: no database, no web. Sufficient statistics in (statistics.py), results
out (result.py). Formulas are in each module's docstring and in docs/experiments.md."""

from edupulse.stats.bayesian import GaussianPrior, bayesian
from edupulse.stats.corrections import Correction, adjust, benjamini_hochberg, holm
from edupulse.stats.cuped import cuped, theta
from edupulse.stats.frequentist import difference, sequential, welch
from edupulse.stats.power import SampleSize, conversion_sample_size, sample_size
from edupulse.stats.proportions import ProportionDifference, two_proportions
from edupulse.stats.result import Effect, Problem
from edupulse.stats.srm import SRM_THRESHOLD, srm_p_value
from edupulse.stats.statistics import (
    Adjusted,
    Proportion,
    Quantile,
    Ratio,
    SampleMean,
    Statistic,
    cluster_mean,
)

__all__ = [
    "SRM_THRESHOLD", "Adjusted", "Correction", "Effect", "GaussianPrior", "Problem", "Proportion",
    "ProportionDifference", "Quantile", "Ratio", "SampleMean", "SampleSize", "Statistic", "adjust", "bayesian",
    "benjamini_hochberg", "cluster_mean", "conversion_sample_size", "cuped", "difference", "holm",
    "sample_size", "sequential", "srm_p_value", "theta", "two_proportions", "welch",
]
