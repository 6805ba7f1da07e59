"""Trends when events share their instant, on both engines, against docs/queries.md written out in Python
on tie-heavy random histories: every event of an instant counts, in the minute bucket that starts at it;
the `limit` breakdown values with most events are kept, equal counts in value order with no value first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ties import TIES, People, Scratch, histories, scratch_platform

NONE, OTHER = "$none", "$other"
DAY = {"date_from": "2026-09-02", "date_to": "2026-09-02"}
TEN = 600  # the bucket of 10:00, where the histories start


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def oracle(people: People, math: str, limit: int) -> dict[tuple[Any, ...], tuple[list[int], int]]:
    """Breakdown value -> (values of the minute buckets 10:00 to 10:05, the value over the range)."""
    events = [(who, h.minute, h.properties.get("page", NONE)) for who, hs in people.items() for h in hs
              if h.event == "a"]
    counts = Counter(page for _, _, page in events)
    top = {page for page, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]}
    out: dict[tuple[Any, ...], tuple[list[int], int]] = {}
    for label in {page if page in top else OTHER for _, _, page in events}:
        mine = [(who, minute) for who, minute, page in events if (page if page in top else OTHER) == label]
        if math == "total":
            data = [sum(1 for _, m in mine if m == minute) for minute in range(6)]
            overall = len(mine)
        else:
            data = [len({w for w, m in mine if m == minute}) for minute in range(6)]
            overall = len({w for w, _ in mine})
        out[(None if label == NONE else label,)] = (data, overall)
    return out


@TIES
@given(people=histories(["a", "b"], {"page": ["p1", "p2", "p3"]}), math=st.sampled_from(["total", "unique"]),
       limit=st.integers(1, 3))
def test_trends_follow_the_documented_tie_rules(scratch: Scratch, people: People, math: str, limit: int) -> None:
    query = {"kind": "trends", "series": [{"event": "a", "math": math}], "granularity": "minute", "date_range": DAY,
             "breakdown": {"properties": ["page"], "limit": limit}}
    result = scratch.history(people).both(query)
    got = {tuple(s["breakdown"]): (s["data"][TEN:TEN + 6], s["aggregated_value"]) for s in result["series"]}
    assert got == oracle(people, math, limit)
