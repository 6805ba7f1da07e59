"""Distributions when events share their instant, on both engines, against docs/queries.md written out in
Python on tie-heavy random histories: every event of an instant counts for its person; a person who did
the event with two values is in both series; the `limit` values with most persons are kept, equal counts
in value order with no value first, and the rest is `$other`."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ties import RANGE, TIES, People, Scratch, histories, scratch_platform

NONE, OTHER = "$none", "$other"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def oracle(people: People, limit: int) -> dict[tuple[Any, ...], tuple[int, float, float, float]]:
    """Breakdown value -> (persons, min, max, mean) of the events per person."""
    per_value: dict[str, Counter[str]] = defaultdict(Counter)  # value -> person -> events
    for who, happenings in people.items():
        for h in happenings:
            if h.event == "a":
                per_value[h.properties.get("page", NONE)][who] += 1
    ranked = sorted(per_value, key=lambda v: (-len(per_value[v]), v))
    series: dict[str, Counter[str]] = defaultdict(Counter)
    for position, value in enumerate(ranked):
        series[value if position < limit else OTHER].update(per_value[value])
    return {(None if v == NONE else v,): (len(c), min(c.values()), max(c.values()), statistics.mean(c.values()))
            for v, c in series.items()}


@TIES
@given(people=histories(["a", "b"], {"page": ["p1", "p2", "p3"]}), limit=st.integers(1, 3))
def test_distributions_follow_the_documented_tie_rules(scratch: Scratch, people: People, limit: int) -> None:
    query = {"kind": "distribution", "event": "a", "measure": "count", "buckets": [1, 2, 3, 5], "date_range": RANGE,
             "breakdown": {"properties": ["page"], "limit": limit}}
    result = scratch.history(people).both(query)
    got = {tuple(s["breakdown"]): (s["persons"], s["min"], s["max"], s["mean"]) for s in result["series"]}
    expected = oracle(people, limit)
    assert got.keys() == expected.keys()
    for key, (persons, low, high, mean) in expected.items():
        assert got[key] == (persons, low, high, pytest.approx(mean, abs=1e-3)), key
