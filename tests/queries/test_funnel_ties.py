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


# breakdowns: one event gives every value ---------------------------------------------------------------

NONE = "$none"
PROPERTIES = {"page": ["p1", "p2", "p3"], "lvl": ["L1", "L2"]}


def test_a_two_property_breakdown_takes_the_values_of_one_event(scratch: Scratch) -> None:
    # two b at one instant: {p2, L2} and {p3, unset}; the smallest tuple is (p2, L2), not (p2, unset)
    people = {"p0": [Happening("a", 0, {"page": "p1"}), Happening("b", 30, {"page": "p2", "lvl": "L2"}),
                     Happening("b", 30, {"page": "p3"})]}
    result = scratch.history(people).both({
        **query(["a", "b"], 60, "ordered"), "breakdown": {"properties": ["page", "lvl"]},
        "breakdown_attribution": "step", "attribution_step": 2})
    assert [(r["breakdown"], [s["count"] for s in r["steps"]]) for r in result["results"]] == [(["p2", "L2"], [1, 1])]


def oracle(happenings: list[Happening], steps: list[str], minutes: int, strict: bool,
           attribution_step: int) -> tuple[int, tuple[str, ...]]:
    """docs/queries.md on one person: events read as windowFunnel reads them (by time, then step number;
    other events first and only in strict order), each step-k event carrying the freshest attempt that
    reached step k-1 within the window; the deepest step, and the breakdown values of the freshest attempt
    reaching it: its earliest event of the attribution step, at equal times the one with the smallest values."""
    entries = sorted(((h.minute, k, h) for h in happenings
                      for k in ([k for k, s in enumerate(steps, 1) if s == h.event] or [0])),
                     key=lambda e: (e[0], e[1]))
    latest: dict[int, int] = {}  # step -> start of the freshest attempt that reached it
    carried: list[tuple[int, int, int, Happening]] = []  # (step, time, start, event)
    for t, k, h in entries:
        if strict and 1 in latest and (k == 0 or (k >= 2 and k - 1 not in latest)):
            break
        if k == 1:
            latest[1] = t
            carried.append((1, t, t, h))
        elif k >= 2 and k - 1 in latest and t <= latest[k - 1] + minutes:
            latest[k] = latest[k - 1]
            carried.append((k, t, latest[k - 1], h))
    level = max(latest, default=0)
    if not level:
        return 0, ()
    start = max(s for k, _, s, _ in carried if k == level)
    members = [(t, h) for k, t, s, h in carried if k == attribution_step and s == start]
    if not members:
        return level, (NONE,) * len(PROPERTIES)
    earliest = min(t for t, _ in members)
    return level, min(tuple(h.properties.get(p, NONE) for p in PROPERTIES) for t, h in members if t == earliest)


@requires_chdb
@TIES
@given(people=histories(["a", "b", "c", "z"], PROPERTIES), steps=STEPS, minutes=st.integers(1, 4),
       order=st.sampled_from(["strict", "ordered"]), attribution=st.integers(1, 4))
def test_breakdowns_follow_the_documented_tie_rule(scratch: Scratch, people: People, steps: list[str], minutes: int,
                                                   order: str, attribution: int) -> None:
    step = min(attribution, len(steps))
    expected: dict[tuple[str | None, ...], list[int]] = {}
    for happenings in people.values():
        level, values = oracle(happenings, steps, minutes, order == "strict", step)
        if level:
            counts = expected.setdefault(tuple(None if v == NONE else v for v in values), [0] * len(steps))
            for k in range(level):
                counts[k] += 1
    result = scratch.history(people).both({
        **query(steps, minutes, order), "breakdown": {"properties": list(PROPERTIES), "limit": 100},
        **({"breakdown_attribution": "step", "attribution_step": step} if step > 1 else {})})
    got = {tuple(r["breakdown"]): [s["count"] for s in r["steps"]] for r in result["results"]}
    assert got == expected


def any_order(happenings: list[Happening], steps: list[str], minutes: int) -> tuple[int, tuple[str, ...]]:
    """docs/queries.md, any order, on one person: the most steps (each counted once) within one window
    starting at a step event (`start <= time <= start + window`); the values of the latest such window's
    first events, at equal times the one with the smallest values."""
    moments = [h for h in happenings if h.event in steps]
    best, start = 0, -1
    for first in moments:
        reached = len({k for k, s in enumerate(steps) if any(h.event == s and first.minute <= h.minute
                                                             <= first.minute + minutes for h in moments)})
        best, start = max((best, start), (reached, first.minute))
    if not best:
        return 0, ()
    return best, min(tuple(h.properties.get(p, NONE) for p in PROPERTIES) for h in moments if h.minute == start)


@requires_chdb
@TIES
@given(people=histories(["a", "b", "c", "z"], PROPERTIES), steps=STEPS, minutes=st.integers(1, 4))
def test_any_order_follows_the_documented_tie_rules(scratch: Scratch, people: People, steps: list[str],
                                                    minutes: int) -> None:
    expected: dict[tuple[str | None, ...], list[int]] = {}
    for happenings in people.values():
        level, values = any_order(happenings, steps, minutes)
        if level:
            counts = expected.setdefault(tuple(None if v == NONE else v for v in values), [0] * len(steps))
            for k in range(level):
                counts[k] += 1
    result = scratch.history(people).both({**query(steps, minutes, "any"),
                                           "breakdown": {"properties": list(PROPERTIES), "limit": 100}})
    assert {tuple(r["breakdown"]): [s["count"] for s in r["steps"]] for r in result["results"]} == expected
