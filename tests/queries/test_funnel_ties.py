"""Funnels when events share their instant: every unit's deepest step equals ClickHouse's own
`windowFunnel(window)` / `windowFunnel(window, 'strict_order')` run on the same rows, on both engines, for
the cases found by hand and on tie-heavy random histories (windows of whole minutes over events at whole
minutes, so steps exactly one window after the start are common)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_funnel import our_levels, window_funnel
from ties import RANGE, TIES, Happening, People, Scratch, histories, scratch_platform

from engines import requires_chdb


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def query(steps: list[str], minutes: int, order: str) -> dict[str, Any]:
    return {"kind": "funnel", "steps": [{"event": e} for e in steps], "order": order,
            "window": {"value": minutes, "unit": "minute"}, "date_range": RANGE}


def levels_agree(scratch: Scratch, people: People, steps: list[str], minutes: int, order: str) -> dict[int, int]:
    """Each unit's level on both engines equals windowFunnel's; returns it."""
    history = scratch.history(people)
    q = query(steps, minutes, order)
    expected = window_funnel(history, steps, minutes * 60_000_000, "strict_order" if order == "strict" else None)
    body = {k: v for k, v in q.items() if k != "kind"}
    assert our_levels(history, body, "duckdb") == expected
    assert our_levels(history, body, "clickhouse") == expected
    counts = [s["count"] for s in history.both(q)["results"][0]["steps"]]
    assert counts == [sum(1 for v in expected.values() if v >= k) for k in range(1, len(steps) + 1)]
    return expected


def one(*happenings: tuple[str, int]) -> People:
    return {"p0": [Happening(e, m) for e, m in happenings]}


@requires_chdb
@pytest.mark.parametrize(("happenings", "steps", "level"), [
    # the cases: two steps at one instant after the first (ClickHouse reads them in step order)
    ([("a", 0), ("b", 30), ("c", 30)], "abc", 3),
    ([("a", 0), ("c", 30), ("b", 30)], "abc", 3),
    # another event at the instant of steps: ClickHouse puts it first, before the first step it breaks nothing
    ([("a", 0), ("b", 0), ("d", 0), ("c", 1)], "abc", 3),
    # ... after the first step it ends the funnel before the steps of its instant
    ([("a", 0), ("b", 1), ("d", 1), ("c", 1)], "abc", 1),
    # a step whose previous step is not reached ends the funnel, unless the previous step is at its instant
    ([("a", 0), ("c", 1), ("b", 1)], "abc", 3),
    ([("a", 0), ("c", 1), ("b", 2)], "abc", 1),
    # one event matching two steps is an entry for each, in step order: the second breaks without step 2
    ([("a", 0), ("b", 30), ("a", 40), ("c", 40)], "abac", 1),
    ([("a", 0), ("b", 0), ("a", 0), ("c", 0)], "abac", 4),
    # the window's edge: exactly one window after the start counts
    ([("a", 0), ("b", 60), ("c", 60)], "abc", 3),
    ([("a", 0), ("b", 60), ("c", 61)], "abc", 2),
])
def test_strict_ties_found_by_hand(scratch: Scratch, happenings: list[tuple[str, int]], steps: str,
                                   level: int) -> None:
    assert list(levels_agree(scratch, one(*happenings), list(steps), 60, "strict").values()) == [level]


STEPS = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4)


@requires_chdb
@TIES
@given(people=histories(["a", "b", "c", "z"]), steps=STEPS, minutes=st.integers(1, 4),
       order=st.sampled_from(["strict", "ordered"]))
def test_levels_equal_window_funnel_on_tie_heavy_histories(scratch: Scratch, people: People, steps: list[str],
                                                           minutes: int, order: str) -> None:
    levels_agree(scratch, people, steps, minutes, order)
