"""Corrections for testing several metrics and arms at once. Each takes the raw p-values and returns the
adjusted ones, in the same order (a hypothesis is rejected at level α when its adjusted p-value is ≤ α).

- Holm (family-wise error rate): sort ascending; p̃₍ᵢ₎ = max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎).
- Benjamini–Hochberg (false discovery rate): sort ascending; p̃₍ᵢ₎ = min over j ≥ i of min(1, m·p₍ⱼ₎/j).
None (a comparison that could not be made) stays None and does not count in m.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class Correction(StrEnum):
    none = "none"
    holm = "holm"
    benjamini_hochberg = "benjamini_hochberg"


def _present(p_values: Sequence[float | None]) -> list[tuple[int, float]]:
    return sorted(((i, p) for i, p in enumerate(p_values) if p is not None), key=lambda item: item[1])


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    ranked = _present(p_values)
    m = len(ranked)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (index, p) in enumerate(ranked):
        running = max(running, min(1.0, (m - rank) * p))
        out[index] = running
    return out


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    ranked = _present(p_values)
    m = len(ranked)
    out: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(m - 1, -1, -1):
        index, p = ranked[rank]
        running = min(running, 1.0, m * p / (rank + 1))
        out[index] = running
    return out


def adjust(p_values: Sequence[float | None], correction: Correction) -> list[float | None]:
    if correction is Correction.holm:
        return holm(p_values)
    if correction is Correction.benjamini_hochberg:
        return benjamini_hochberg(p_values)
    return list(p_values)
