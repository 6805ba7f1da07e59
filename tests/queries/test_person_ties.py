"""A person's timeline when events share their instant, on both engines, on tie-heavy random histories:
newest first, events at one instant by event name (docs/queries.md), and pages by cursor or by offset, of
any size, that neither repeat nor skip an event inside a run of equal times."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ties import TIES, People, Scratch, histories, scratch_platform


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def instant(time: str) -> float:
    return dt.datetime.fromisoformat(time).timestamp()


def seen(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["time"], e["event"], str(sorted(e["properties"].items()))) for e in events]


@settings(TIES, max_examples=15)  # each example reads many pages on two engines
@given(people=histories(["b", "a", "c", "a2"], {"page": ["p1", "p2", "p3"]}, persons=2, per_person=12, minutes=3),
       limit=st.integers(2, 4))
def test_timeline_order_and_pages_follow_the_documented_tie_rule(scratch: Scratch, people: People,
                                                                 limit: int) -> None:
    history = scratch.history(people)
    base = {"kind": "person", "identity": {"type": "login_id", "value": "p0"}}
    whole = history.both({**base, "limit": 1000})
    events = whole["events"]
    # newest first; at one instant by event name
    assert [(e["time"], e["event"]) for e in events] == sorted(((e["time"], e["event"]) for e in events),
                                                              key=lambda k: (-instant(k[0]), k[1]))
    assert Counter((h.event, str(sorted(h.properties.items()))) for h in people["p0"]) == Counter(
        (e["event"], str(sorted(e["properties"].items()))) for e in events)
    by_cursor: list[dict[str, Any]] = []
    page = history.both({**base, "limit": limit})
    while True:
        by_cursor += page["events"]
        if page["next_cursor"] is None:
            break
        page = history.both({**base, "limit": limit, "cursor": page["next_cursor"]})
    assert seen(by_cursor) == seen(events)
    by_offset: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = history.both({**base, "limit": limit, "offset": offset})
        by_offset += page["events"]
        offset = page["next_offset"]
    assert seen(by_offset) == seen(events)
