"""Retention when events share their instant, on both engines: a cohort member's breakdown values come from
one start event, the earliest in the cohort period and, at equal times, the one whose values are smallest
(docs/queries.md); checked on the case found by hand and on tie-heavy random histories (moments a day
apart, so equal instants fall in one period) against the documented definition written out in Python."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ties import START, TIES, Happening, People, Scratch, histories, scratch_platform

NONE = "$none"
DAY = dt.timedelta(days=1)
PROPERTIES = {"page": ["p1", "p2", "p3"], "lvl": ["L1", "L2"]}
RANGE = {"date_from": "2026-09-01", "date_to": "2026-09-07"}  # moments 0 to 5: 2 to 7 September
PERIODS = 2  # every period c + k has begun by the tests' now (10 September)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def test_a_two_property_breakdown_takes_the_values_of_one_event(scratch: Scratch) -> None:
    people = {"p0": [Happening("s", 0, {"page": "p3"}), Happening("s", 0, {"page": "p2", "lvl": "L2"}),
                     Happening("r", 1)]}
    query = {"kind": "retention", "start_event": {"event": "s"}, "return_event": {"event": "r"}, "periods": PERIODS,
             "period": "day", "date_range": RANGE, "breakdown": {"properties": ["page", "lvl"]}}
    result = scratch.history(people, DAY).both(query)
    # (p2, L2) < (p3, unset): one event's values, not the smallest page and the smallest level (p2, unset)
    assert [r["breakdown"] for r in result["results"]] == [["p2", "L2"]]


def oracle(people: People, start: str, back: str, recurring: bool, on: bool) -> dict[tuple[object, ...], list[int]]:
    """(breakdown values, cohort day) -> [size, returned at 1, ..., returned at PERIODS]."""
    out: dict[tuple[object, ...], list[int]] = {}
    for happenings in people.values():
        starts = [h for h in happenings if h.event == start and h.minute <= 5]
        returns = {h.minute for h in happenings if h.event == back}
        days = sorted({h.minute for h in starts}) if recurring else sorted({h.minute for h in starts})[:1]
        for day in days:
            # every start event of the day is at one instant (moments are a day apart)
            values = min(tuple(h.properties.get(p, NONE) for p in PROPERTIES) for h in starts if h.minute == day)
            key = (*[None if v == NONE else v for v in values], (START + day * DAY).date().isoformat())
            row = out.setdefault(key, [0] * (PERIODS + 1))
            row[0] += 1
            for k in range(1, PERIODS + 1):
                if (day + k in returns) if on else any(day + k <= r <= day + PERIODS for r in returns):
                    row[k] += 1
    return out


@TIES
@given(people=histories(["s", "r", "z"], PROPERTIES), back=st.sampled_from(["r", "s"]), recurring=st.booleans(),
       on=st.booleans())
def test_cohorts_follow_the_documented_tie_rule(scratch: Scratch, people: People, back: str, recurring: bool,
                                                on: bool) -> None:
    query = {"kind": "retention", "start_event": {"event": "s"}, "return_event": {"event": back},
             "periods": PERIODS, "period": "day", "cohort": "recurring" if recurring else "first_time",
             "mode": "on" if on else "on_or_after", "date_range": RANGE,
             "breakdown": {"properties": list(PROPERTIES), "limit": 100}}
    result = scratch.history(people, DAY).both(query)
    got = {(*r["breakdown"], c["cohort"]): c["values"] for r in result["results"] for c in r["cohorts"]}
    assert got == oracle(people, "s", back, recurring, on)
