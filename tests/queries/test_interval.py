"""Interval on a tiny hand-built history, on DuckDB and ClickHouse: A to the next B per person across
merged identities, the range cut in the project's time zone, every A or the first, B at the same instant,
the window, breakdowns by a property of A, A and B the same event, hostile input and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.queries.errors import QueryError
from edupulse.queries.interval import human
from engines import History, csv_of


def event(name: str, who: str, time: str, login: bool = True, school: str | None = None,
          **properties: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": name, "distinct_id": who, "time": f"2026-{time}+08:00",
                              "properties": properties}
    if school is not None:
        record["groups"] = {"school": school}
    if login:
        record["distinct_id_type"] = "login_id"
    return record


HISTORY: list[dict[str, Any]] = [
    # amy: a lead while anonymous, paid 30 minutes later after signing in (past midnight)
    event("lead_created", "dev-2", "09-01T23:50:00", login=False, channel="douyin"),
    {"type": "identify", "distinct_id": "amy", "anonymous_id": "dev-2", "time": "2026-09-02T00:00:00+08:00"},
    event("order_paid", "amy", "09-02T00:20:00"),
    # bob: two leads, then two orders
    event("lead_created", "bob", "09-02T10:00:00", channel="baidu"),
    event("lead_created", "bob", "09-02T11:00:00", channel="baidu"),
    event("order_paid", "bob", "09-02T12:00:00"),
    event("order_paid", "bob", "09-03T12:00:00"),
    # cat: a lead on the last evening, paid two days later (after the range, within the window)
    event("lead_created", "cat", "09-03T23:00:00", channel="douyin"),
    event("order_paid", "cat", "09-05T23:00:00"),
    # dan: paid at the same instant as his lead, and again 5 minutes later
    event("lead_created", "dan", "09-03T10:00:00"),
    event("order_paid", "dan", "09-03T10:00:00"),
    event("order_paid", "dan", "09-03T10:05:00"),
    # eve's lead is on the 4th in Shanghai (still the 3rd in UTC), fay's on 31 August: outside the range
    event("lead_created", "eve", "09-04T00:30:00"),
    event("order_paid", "eve", "09-04T01:00:00"),
    event("lead_created", "fay", "08-31T23:00:00"),
    event("order_paid", "fay", "09-01T01:00:00"),
    # gus never pays; hal pays after 44 days
    event("lead_created", "gus", "09-01T08:00:00", school="S-3"),
    event("lead_created", "hal", "09-01T09:00:00"),
    event("order_paid", "hal", "10-15T09:00:00"),
    # ivy, of gus's school, pays an hour after his lead
    event("order_paid", "ivy", "09-01T09:00:00", school="S-3"),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("interval"), HISTORY, name="Interval School")
    yield history
    history.close()


def interval(loaded: History, **query: Any) -> dict[str, Any]:
    query.setdefault("date_range", {"date_from": "2026-09-01", "date_to": "2026-09-03"})
    query.setdefault("start", {"event": "lead_created"})
    query.setdefault("end", {"event": "order_paid"})
    return loaded.both({"kind": "interval", **query})


def test_every_start_to_its_next_end(loaded: History) -> None:
    result = interval(loaded)
    (series,) = result["series"]
    # amy 30m (across her merge), bob 2h and 1h, cat 2d, dan 5m; eve, fay out of range; gus, hal none in 30 days
    assert series["count"] == 5
    assert (series["min"], series["max"], series["mean"]) == (300, 172800, 37140)
    assert (series["p25"], series["median"], series["p75"]) == (1800, 3600, 7200)
    assert series["p90"] == pytest.approx(7200 + 0.6 * (172800 - 7200))
    assert series["display"]["median"] == "1h"
    assert series["display"]["max"] == "2d"
    labels = [b["label"] for b in result["buckets"]]
    assert labels[0] == "5m-10m"
    assert labels[-1] == "2d-3d"
    assert dict(zip(labels, series["histogram"], strict=True)) == {
        "5m-10m": 1, "10m-30m": 0, "30m-1h": 1, "1h-2h": 1, "2h-6h": 1, "6h-12h": 0, "12h-1d": 0, "1d-2d": 0,
        "2d-3d": 1}
    assert result["buckets"][0] == {"label": "5m-10m", "low": 300, "high": 600}
    assert "count,min" in csv_of(result)


def test_same_time_and_window(loaded: History) -> None:
    same = interval(loaded, same_time=True)["series"][0]
    assert (same["count"], same["min"]) == (5, 0)  # dan's order at the instant of his lead
    longer = interval(loaded, window_days=60)["series"][0]
    assert (longer["count"], longer["max"]) == (6, 44 * 86400)  # hal
    short = interval(loaded, window_days=1)["series"][0]
    assert short["count"] == 4  # cat's two days are too long


def test_first_mode_counts_one_start_per_person(loaded: History) -> None:
    result = interval(loaded, mode="first")["series"][0]
    assert result["count"] == 4  # bob's second lead is not a start
    assert result["mean"] == (1800 + 7200 + 172800 + 300) / 4


def test_same_event_as_start_and_end_never_pairs_with_itself(loaded: History) -> None:
    for same_time in (False, True):
        result = interval(loaded, start={"event": "order_paid"}, same_time=same_time)["series"][0]
        assert (result["count"], result["min"], result["max"]) == (2, 300, 86400)  # dan 5m, bob 1d


def test_breakdown_by_a_property_of_the_start(loaded: History) -> None:
    result = interval(loaded, breakdown={"properties": ["channel"]})
    rows = {tuple(s["breakdown"]): (s["count"], s["median"]) for s in result["series"]}
    assert rows == {("baidu",): (2, 5400), ("douyin",): (2, (1800 + 172800) / 2), (None,): (1, 300)}
    top = interval(loaded, breakdown={"properties": ["channel"], "limit": 1})
    assert {tuple(s["breakdown"]): s["count"] for s in top["series"]} == {("baidu",): 2, ("$other",): 3}
    filtered = interval(loaded, start={"event": "lead_created",
                                       "filters": [{"property": "channel", "value": "douyin"}]})
    assert filtered["series"][0]["count"] == 2


def test_groups_as_the_unit(loaded: History) -> None:
    result = interval(loaded, unit="school")["series"]
    assert [(s["count"], s["min"]) for s in result] == [(1, 3600)]  # gus's lead to ivy's order, one school


def test_hostile_text_is_harmless(loaded: History) -> None:
    result = interval(loaded, start={"event": "lead'); DROP TABLE events; --"},
                      breakdown={"properties": ["ch'an\"nel 名"]})
    assert result["series"] == []
    assert interval(loaded)["series"][0]["count"] == 5


def test_human_durations() -> None:
    assert [human(v) for v in (0, 45, 330, 7500, 273600, None)] == ["0s", "45s", "5m 30s", "2h 5m", "3d 4h", None]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"end": {"event": "b"}}, "start: Field required"),
        ({"start": {"event": "a"}, "end": {"event": "b"}, "window_days": 0}, "window_days"),
        ({"start": {"event": "a"}, "end": {"event": "b"}, "mode": "last"}, "mode: Input should be"),
        ({"start": {"event": "a", "filter": []}, "end": {"event": "b"}}, "start.filter: Extra inputs"),
        ({"start": {"event": "a"}, "end": {"event": "b"}, "unit": "planet"}, "unit 'planet' is not a group type"),
    ],
)
def test_errors_say_what_and_where(loaded: History, query: dict[str, Any], words: str) -> None:
    with pytest.raises(QueryError, match=words):
        loaded.run({"kind": "interval", **query})
