"""Deterministic assignment as GrowthBook documents it, so that EduPulse, the official GrowthBook SDKs and
our own SDKs put a unit in the same variant for the same seed and weights.

- FNV-1a 32-bit over the UTF-16 code units of the text (as JavaScript's charCodeAt sees it).
- hash version 2: n = fnv(str(fnv(seed + value))) mod 10000 / 10000; version 1: fnv(value + seed) mod 1000
  / 1000 (kept for namespaces, which GrowthBook hashes with version 1 and seed "__" + name).
- bucket ranges: weights laid end to end from 0 to 1, each range covering `coverage` of its weight
  ([start, start + coverage·w)); invalid weights (wrong count, sum outside 0.99–1.01) fall back to equal.
- a unit is in variant i when n falls in range i; in none when it falls in a gap (coverage < 1).
- namespace (name, start, end): the unit takes part only when hash₁("__" + name, value) ∈ [start, end), so
  experiments that share a namespace with disjoint ranges never share a unit.
"""

from __future__ import annotations

from collections.abc import Sequence

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
MASK = 0xFFFFFFFF

Range = tuple[float, float]


def fnv1a32(text: str) -> int:
    """FNV-1a, 32 bits, over the text's UTF-16 code units."""
    value = FNV_OFFSET
    data = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        value = ((value ^ (data[i] | data[i + 1] << 8)) * FNV_PRIME) & MASK
    return value


def gb_hash(seed: str, value: str, version: int = 2) -> float | None:
    """A number in [0, 1) for the unit `value` under `seed`; None for an unknown hash version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(count: int) -> list[float]:
    return [1 / count] * count if count > 0 else []


def bucket_ranges(count: int, coverage: float = 1.0, weights: Sequence[float] | None = None) -> list[Range]:
    """The [start, end) of each variant in [0, 1)."""
    coverage = min(max(coverage, 0.0), 1.0)
    chosen = list(weights) if weights is not None else equal_weights(count)
    if len(chosen) != count or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal_weights(count)
    ranges: list[Range] = []
    start = 0.0
    for weight in chosen:
        ranges.append((start, start + coverage * weight))
        start += weight
    return ranges


def choose_variant(n: float, ranges: Sequence[Range]) -> int:
    """The index of the range holding n, or -1."""
    for index, (low, high) in enumerate(ranges):
        if low <= n < high:
            return index
    return -1


def in_namespace(value: str, namespace: tuple[str, float, float]) -> bool:
    n = gb_hash("__" + namespace[0], value, 1)
    return n is not None and namespace[1] <= n < namespace[2]


def assign(value: str, seed: str, weights: Sequence[float], coverage: float = 1.0,
           namespace: tuple[str, float, float] | None = None, version: int = 2) -> int:
    """The variant index of a unit (its id as text), or -1 when it is not in the experiment."""
    if not value or len(weights) < 2:
        return -1
    if namespace is not None and not in_namespace(value, namespace):
        return -1
    n = gb_hash(seed, value, version)
    if n is None:
        return -1
    return choose_variant(n, bucket_ranges(len(weights), coverage, weights))
