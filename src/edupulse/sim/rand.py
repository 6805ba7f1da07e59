"""Deterministic randomness: one independent stream per part of the world, and the draws the world needs."""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")


def derive_seed(seed: int, name: str) -> int:
    """A stable seed per stream (never Python's per-process randomized str hash)."""
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Rng(random.Random):
    """Integer draws by random() arithmetic: several times faster than the exact stdlib methods, and
    the bias (below 1e-15) does not matter to a simulation. Deterministic like its base."""

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        if stop is None:
            return int(self.random() * start)
        if step != 1:
            return start + step * int(self.random() * ((stop - start + step - 1) // step))
        return start + int(self.random() * (stop - start))

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))


def stream(seed: int, name: str) -> Rng:
    """A generator of its own for one part of the world, so parts do not shift each other's draws."""
    return Rng(derive_seed(seed, name))


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Weighted(Generic[T]):
    """Repeated weighted choice among fixed options in O(log n) per draw."""

    def __init__(self, options: Sequence[T], weights: Sequence[float]) -> None:
        self.options = list(options)
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self.options[bisect(self.cum, rng.random() * self.total)]
