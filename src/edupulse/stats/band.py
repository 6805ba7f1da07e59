"""The expected band of a count for one hour of the week, from the same hour of the week in earlier weeks
(the anomaly alerts of the real-time board). Pure: numbers in, a band (or why there is none) out.

The band is mean ± k standard deviations of the history. Hourly counts of events are close to Poisson, so the
standard deviation is never taken below √mean (at least 1): a history that happens to be flat (5, 5, 5) would
otherwise make 6 an anomaly."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_HISTORY = 3


@dataclass(frozen=True)
class Band:
    mean: float
    sd: float
    low: float
    high: float
    points: int
    error: str | None = None  # "too_little_history": fewer than MIN_HISTORY points; low and high are then nan

    @property
    def defined(self) -> bool:
        return self.error is None

    def outside(self, value: float) -> bool:
        """Whether a value lies outside the band (never, without a band)."""
        return self.defined and not (self.low <= value <= self.high)


def expected_band(history: Sequence[float], k: float = 3.0) -> Band:
    """The band of `history` (counts of the same hour of the week in earlier weeks)."""
    points = [float(v) for v in history if v is not None and math.isfinite(v)]
    if len(points) < MIN_HISTORY:
        mean = sum(points) / len(points) if points else math.nan
        return Band(mean, math.nan, math.nan, math.nan, len(points), "too_little_history")
    mean = sum(points) / len(points)
    variance = sum((v - mean) ** 2 for v in points) / (len(points) - 1)
    sd = max(math.sqrt(variance), math.sqrt(max(mean, 1.0)))
    return Band(mean, sd, max(0.0, mean - k * sd), mean + k * sd, len(points))
