"""Attribution when events share their instant, on both engines, against docs/queries.md written out in
Python on tie-heavy random histories: a touch at the very instant of a conversion counts, and a conversion's
touches are ordered by time, then channel, then the order of `touches` in the query."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from ties import RANGE, TIES, People, Scratch, histories, scratch_platform

NOT_SET, NO_TOUCH = "(not set)", "(none)"
# an `ad` event is two touches: its page's channel and the fixed channel "ad"
TOUCHES = [{"event": "ad", "channel": "page"}, {"event": "visit"}, {"event": "ad", "name": "ad"}]
MODELS = ["first_touch", "last_touch", "linear", "position_based"]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield from scratch_platform(tmp_path_factory)


def shares(n: int) -> dict[str, list[float]]:
    """Each model's shares of n ordered touches (position based: 0.4 first, 0.4 last)."""
    if n == 1:
        middle: list[float] = [1.0]
    elif n == 2:
        middle = [0.5, 0.5]
    else:
        middle = [0.4, *[0.2 / (n - 2)] * (n - 2), 0.4]
    return {"first_touch": [1.0] + [0.0] * (n - 1), "last_touch": [0.0] * (n - 1) + [1.0], "linear": [1 / n] * n,
            "position_based": middle}


def oracle(people: People) -> dict[str, dict[str, float]]:
    """Channel -> model -> credited conversions."""
    credit: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(MODELS, 0.0))
    for happenings in people.values():
        touches = sorted((h.minute, (h.properties.get(t["channel"], NOT_SET) if "channel" in t
                                     else t.get("name", t["event"])), i)
                         for h in happenings for i, t in enumerate(TOUCHES) if h.event == t["event"])
        for conversion in (h for h in happenings if h.event == "pay"):
            before = [channel for minute, channel, _ in touches if minute <= conversion.minute]
            if not before:
                for model in MODELS:
                    credit[NO_TOUCH][model] += 1
                continue
            for model, parts in shares(len(before)).items():
                for channel, part in zip(before, parts, strict=True):
                    credit[channel][model] += part
    return {channel: {m: round(v, 6) for m, v in models.items()} for channel, models in credit.items()
            if any(models.values())}


@TIES
@given(people=histories(["ad", "visit", "pay", "z"], {"page": ["p1", "p2"]}))
def test_touches_follow_the_documented_order_on_tie_heavy_histories(scratch: Scratch, people: People) -> None:
    query: dict[str, Any] = {"kind": "attribution", "conversion": {"event": "pay"}, "touches": TOUCHES,
                             "models": MODELS, "date_range": RANGE, "limit": 500}
    result = scratch.history(people).both(query)
    got = {c["channel"]: {m: c["models"][m]["conversions"] for m in MODELS} for c in result["channels"]
           if any(c["models"][m]["conversions"] for m in MODELS)}
    expected = oracle(people)
    assert got.keys() == expected.keys()
    for channel, models in expected.items():
        assert got[channel] == pytest.approx(models, abs=2e-6), channel
