"""Local days across a daylight-saving change (New York, 1 November 2026: 02:00 EDT becomes 01:00 EST)
for the models that count days: active days in distribution, day N in LTV; and intervals, which are
plain durations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from engines import History

LATER = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def event(name: str, who: str, time: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "distinct_id": who, "distinct_id_type": "login_id", "time": time,
            "properties": properties}


HISTORY = [
    # pat: a lead late on 31 October (EDT), an order at 00:30 on 1 November (EDT, an hour later: local
    # day 1), another at 23:30 on 1 November (EST: still day 1, 25 hours after the lead)
    event("lead_created", "pat", "2026-10-31T23:30:00-04:00"),
    event("order_paid", "pat", "2026-11-01T00:30:00-04:00", amount=10),
    event("order_paid", "pat", "2026-11-01T23:30:00-05:00", amount=5),
    # sam: two lessons 24 hours apart on the same local day (the day has 25 hours)
    event("lesson_attended", "sam", "2026-11-01T00:30:00-04:00"),
    event("lesson_attended", "sam", "2026-11-01T23:30:00-05:00"),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("dst"), HISTORY, timezone="America/New_York", name="DST School")
    yield history
    history.close()


def test_active_days_are_local_days_across_the_change(loaded: History) -> None:
    result = loaded.both({"kind": "distribution", "event": "lesson_attended", "measure": "days",
                          "date_range": {"date_from": "2026-10-30", "date_to": "2026-11-03"}}, now=LATER)
    assert result["series"][0]["max"] == 1  # one local day; two in UTC or at a fixed offset of -4 h


def test_ltv_day_n_is_a_local_day_across_the_change(loaded: History) -> None:
    result = loaded.both({"kind": "ltv", "cohort": "day", "days": [0, 1, 2],
                          "date_range": {"date_from": "2026-10-31", "date_to": "2026-10-31"}}, now=LATER)
    (cohort,) = result["series"][0]["cohorts"]
    assert cohort["cohort"] == "2026-10-31"
    assert cohort["revenue"] == [0, 15, 15]  # both orders on 1 November, local day 1


def test_intervals_are_durations(loaded: History) -> None:
    result = loaded.both({"kind": "interval", "start": {"event": "lead_created"}, "end": {"event": "order_paid"},
                          "date_range": {"date_from": "2026-10-31", "date_to": "2026-10-31"}}, now=LATER)
    assert result["series"][0]["min"] == 3600
    every = loaded.both({"kind": "interval", "start": {"event": "lesson_attended"},
                         "end": {"event": "lesson_attended"},
                         "date_range": {"date_from": "2026-11-01", "date_to": "2026-11-01"}}, now=LATER)
    assert every["series"][0]["min"] == 24 * 3600
