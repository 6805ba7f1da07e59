"""LTV when events share their instant, on both engines, against docs/queries.md written out in Python on
tie-heavy random histories: revenue counts from the very instant of the first start event, and of several
start events at that instant the one with the smallest breakdown values gives every value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ties import RANGE, TIES, Happening, People, Scratch, histories, scratch_platform

NONE = "$none"
PROPERTIES = {"page": ["p1", "p2"], "lvl": ["L1", "L2"]}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def priced(people: People) -> People:
    """Every payment carries an amount (5 on page p1, else 7)."""
    return {who: [Happening(h.event, h.minute, {**h.properties, "amount": 5 if h.properties.get("page") == "p1"
                                                else 7} if h.event == "pay" else h.properties) for h in happenings]
            for who, happenings in people.items()}


def oracle(people: People, start: str) -> dict[tuple[Any, ...], tuple[int, float]]:
    """Breakdown values -> (persons, revenue by the end of day 0), one day's cohort (every event is on it)."""
    out: dict[tuple[Any, ...], tuple[int, float]] = {}
    for happenings in people.values():
        starts = [h for h in happenings if h.event == start]
        if not starts:
            continue
        t0 = min(h.minute for h in starts)
        values = min(tuple(h.properties.get(p, NONE) for p in PROPERTIES) for h in starts if h.minute == t0)
        key = tuple(None if v == NONE else v for v in values)
        revenue = sum(h.properties["amount"] for h in happenings if h.event == "pay" and h.minute >= t0)
        size, total = out.get(key, (0, 0.0))
        out[key] = (size + 1, total + revenue)
    return out


@TIES
@given(people=histories(["s", "pay", "z"], PROPERTIES).map(priced), start=st.sampled_from(["s", "pay"]))
def test_ltv_follows_the_documented_tie_rules(scratch: Scratch, people: People, start: str) -> None:
    query = {"kind": "ltv", "start": {"event": start}, "revenue": {"event": "pay"}, "days": [0], "cohort": "day",
             "date_range": RANGE,
             "breakdown": {"properties": list(PROPERTIES), "limit": 100}}
    result = scratch.history(people).both(query)
    got = {tuple(s["breakdown"]): (s["size"], s["revenue"][0]) for s in result["series"]}
    assert got == oracle(people, start)
