"""Intervals when events share their instant, on both engines, against docs/queries.md written out in
Python on tie-heavy random histories: B strictly after A, or at A's instant with `same_time` unless A is
itself a B; with `mode: "first"`, of several A at the first instant, one that is not itself a B (with
`same_time`), then the one with the smallest breakdown values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ties import RANGE, TIES, Happening, People, Scratch, histories, scratch_platform

NONE = "$none"
PROPERTIES = {"page": ["p1", "p2"], "lvl": ["L1", "L2"]}
P1 = [{"property": "page", "value": "p1"}]
STEPS = [({"event": "a"}, {"event": "b"}), ({"event": "a"}, {"event": "a"}),
         ({"event": "a"}, {"event": "a", "filters": P1}), ({"event": None}, {"event": "b"}),
         ({"event": "b", "filters": P1}, {"event": "b"})]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def matches(h: Happening, step: dict[str, Any]) -> bool:
    return ((step["event"] is None or h.event == step["event"])
            and all(h.properties.get(f["property"]) == f["value"] for f in step.get("filters", [])))


def values(h: Happening) -> tuple[str, ...]:
    return tuple(h.properties.get(p, NONE) for p in PROPERTIES)


def oracle(people: People, start: dict[str, Any], end: dict[str, Any], first: bool,
           same_time: bool) -> dict[tuple[Any, ...], list[int]]:
    """Breakdown values -> the intervals' seconds."""
    out: dict[tuple[Any, ...], list[int]] = {}
    for happenings in people.values():
        starts = [h for h in happenings if matches(h, start)]
        if first and starts:
            starts = [min(starts, key=lambda h: (h.minute, same_time and matches(h, end), values(h)))]
        for a in starts:
            strict = not same_time or matches(a, end)
            later = [b.minute for b in happenings if matches(b, end)
                     and (b.minute > a.minute if strict else b.minute >= a.minute)]
            if later:
                key = tuple(None if v == NONE else v for v in values(a))
                out.setdefault(key, []).append((min(later) - a.minute) * 60)
    return out


@TIES
@given(people=histories(["a", "b", "z"], PROPERTIES), steps=st.sampled_from(STEPS), first=st.booleans(),
       same_time=st.booleans())
def test_intervals_follow_the_documented_tie_rules(scratch: Scratch, people: People,
                                                   steps: tuple[dict[str, Any], dict[str, Any]], first: bool,
                                                   same_time: bool) -> None:
    start, end = steps
    query = {"kind": "interval", "start": start, "end": end, "mode": "first" if first else "every",
             "same_time": same_time, "date_range": RANGE, "breakdown": {"properties": list(PROPERTIES), "limit": 100}}
    result = scratch.history(people).both(query)
    got = {tuple(s["breakdown"]): (s["count"], s["min"], s["max"], s["mean"]) for s in result["series"] if s["count"]}
    expected = {k: (len(v), min(v), max(v), pytest.approx(sum(v) / len(v), abs=1e-3))
                for k, v in oracle(people, start, end, first, same_time).items()}
    assert got == expected
