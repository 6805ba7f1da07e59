"""CUPED (Deng et al. 2013): the metric after exposure adjusted by the same metric before it,
ŷ = y − θ·x, with one θ for all arms estimated on the arms pooled:

    θ = cov(y, x) / var(x)      (pooled; θ = 0 when either has no variance, i.e. no adjustment)

The adjustment keeps the effect unbiased (x is measured before assignment) and removes the share of the
variance x explains, so the same experiment needs fewer units."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from edupulse.stats.statistics import Adjusted, Plain, Proportion, SampleMean


def _pooled(parts: Sequence[Plain]) -> Plain:
    n = sum(p.n for p in parts)
    if all(isinstance(p, Proportion) for p in parts):
        return Proportion(n, sum(p.sum for p in parts))
    return SampleMean(n, sum(p.sum for p in parts), sum(p.sum_squares for p in parts))


def theta(arms: Sequence[Adjusted]) -> float:
    """The shared θ of the arms (0 when the pre-period or the post-period has no variance)."""
    post = _pooled([a.post for a in arms])
    pre = _pooled([a.pre for a in arms])
    if post.variance <= 0 or pre.variance <= 0:
        return 0.0
    joint = Adjusted(post, pre, sum(a.post_pre_sum_of_products for a in arms))
    return joint.covariance / pre.variance


def cuped(arms: Sequence[Adjusted]) -> list[Adjusted]:
    """The arms with their shared θ set."""
    shared = theta(arms)
    return [replace(a, theta=shared) for a in arms]
