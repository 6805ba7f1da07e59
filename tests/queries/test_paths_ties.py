"""Paths when events share their instant, on both engines: a person's events are ordered by time, then
event name, then node (docs/queries.md), checked on the case found by hand and on tie-heavy random histories
against the documented definition written out in Python."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ties import RANGE, TIES, Happening, People, Scratch, histories, scratch_platform

NONE = "$none"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def test_ties_go_by_event_name_before_node(scratch: Scratch) -> None:
    # "a2" sorts after "a" but before "a:p1": the event name decides, not the node
    people = {"p0": [Happening("a", 0, {"page": "p1"}), Happening("a2", 0), Happening("b", 5)]}
    query = {"kind": "paths", "start_event": "a", "steps": 3, "node_properties": {"a": "page"}, "date_range": RANGE}
    assert [p["path"] for p in scratch.history(people).both(query)["paths"]] == [["a:p1", "a2", "b"]]


def oracle(people: People, query: dict[str, Any]) -> Counter[tuple[str, ...]]:
    """The complete paths of docs/queries.md, counted."""
    qualified = query.get("node_properties", {})
    paths: Counter[tuple[str, ...]] = Counter()
    for happenings in people.values():
        events = sorted((h.minute, h.event, f"{h.event}:{h.properties.get(qualified[h.event], NONE)}"
                         if h.event in qualified else h.event) for h in happenings)
        sessions: list[list[tuple[int, str, str]]] = []
        previous: tuple[int, str, str] | None = None
        for event in events:
            if previous is None or event[0] - previous[0] > query["session_minutes"]:
                sessions.append([])
            # a repeat: the node of the event just before it in the session
            if not (query["collapse_repeats"] and sessions[-1] and previous and previous[2] == event[2]):
                sessions[-1].append(event)
            previous = event
        for session in sessions:
            names = [e[1] for e in session]
            nodes = [e[2] for e in session]
            steps = query["steps"]
            if "start_event" in query:
                if query["start_event"] in names:
                    at = names.index(query["start_event"])
                    paths[tuple(nodes[at:at + steps])] += 1
            elif "end_event" in query:
                if query["end_event"] in names:
                    at = names.index(query["end_event"])
                    paths[tuple(nodes[max(0, at - steps + 1):at + 1])] += 1
            else:
                paths[tuple(nodes[:steps])] += 1
    return paths


@TIES
@given(people=histories(["a", "a2", "b", "z"], {"page": ["p1", "p2"]}),
       anchor=st.sampled_from([{}, {"start_event": "a"}, {"start_event": "b"}, {"end_event": "b"},
                               {"end_event": "a2"}]),
       steps=st.integers(2, 4), session=st.sampled_from([1, 2, 30]), collapse=st.booleans(),
       qualified=st.sampled_from([{}, {"a": "page"}, {"a": "page", "a2": "page"}]))
def test_paths_follow_the_documented_order_on_tie_heavy_histories(
        scratch: Scratch, people: People, anchor: dict[str, str], steps: int, session: int, collapse: bool,
        qualified: dict[str, str]) -> None:
    query = {"kind": "paths", **anchor, "steps": steps, "session_minutes": session, "collapse_repeats": collapse,
             "node_properties": qualified, "date_range": RANGE, "paths_limit": 200}
    result = scratch.history(people).both(query)
    expected = oracle(people, query)
    assert Counter({tuple(p["path"]): p["count"] for p in result["paths"]}) == expected
    assert result["paths_total"] == sum(expected.values())
