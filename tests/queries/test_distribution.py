"""Distribution on a tiny hand-built history, on DuckDB and ClickHouse: counts, sums and active days per
person (days cut in the project's time zone, identities merged), automatic, equal-width and explicit
buckets, a base population with zeros, breakdowns, groups, hostile input and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.ops.segments import SegmentCatalog
from edupulse.queries.distribution import equal_edges
from edupulse.queries.errors import QueryError
from engines import History, csv_of


def sh(text: str) -> str:
    return f"2026-09-{text}+08:00"


def lesson(who: str, time: str, course: str, login: bool = True, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": "lesson_attended", "distinct_id": who, "time": sh(time),
                              "properties": {"course": course}, **extra}
    if login:
        record["distinct_id_type"] = "login_id"
    return record


HISTORY: list[dict[str, Any]] = [
    # alice: anonymous on the evening of the 1st, signed in after midnight; 3 lessons on 2 local days
    # (all three on 1 September in UTC)
    lesson("dev-1", "01T23:30:00", "math", login=False),
    {"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-1", "time": sh("01T23:40:00")},
    lesson("alice", "02T00:30:00", "math", groups={"school": "S-1"}),
    lesson("alice", "02T07:00:00", "english", groups={"school": "S-1"}),
    lesson("bob", "02T10:00:00", "math", groups={"school": "S-1"}),
    *[lesson("carol", f"0{day}T1{hour}:00:00", "english", groups={"school": "S-2"})
      for day, hour in [(1, 0), (1, 1), (2, 0), (3, 0), (3, 1)]],
    # erin's lesson is on the 4th in Shanghai (still the 3rd in UTC): outside the range
    lesson("erin", "04T00:10:00", "math"),
    {"type": "track", "event": "order_paid", "distinct_id": "alice", "distinct_id_type": "login_id",
     "time": sh("02T20:00:00"), "properties": {"amount": 1999}},
    {"type": "track", "event": "order_paid", "distinct_id": "alice", "distinct_id_type": "login_id",
     "time": sh("03T20:00:00"), "properties": {"amount": 2999}},
    {"type": "track", "event": "order_paid", "distinct_id": "bob", "distinct_id_type": "login_id",
     "time": sh("03T21:00:00"), "properties": {"amount": 999}},
    *[{"type": "track", "event": "page_view", "distinct_id": who, "distinct_id_type": "login_id",
       "time": sh("02T12:00:00")} for who in ("alice", "bob", "dan")],
    {"type": "profile_set", "distinct_id": "alice", "distinct_id_type": "login_id", "time": sh("01T00:00:00"),
     "properties": {"grade": "G5"}},
    {"type": "profile_set", "distinct_id": "dan", "distinct_id_type": "login_id", "time": sh("01T00:00:00"),
     "properties": {"grade": "G5"}},
    {"type": "profile_set", "distinct_id": "bob", "distinct_id_type": "login_id", "time": sh("01T00:00:00"),
     "properties": {"grade": "G3"}},
]

RANGE = {"date_from": "2026-09-01", "date_to": "2026-09-03"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("distribution"), HISTORY, name="Distribution School")
    catalog = SegmentCatalog(history.platform.meta)
    catalog.create(history.project.id, "G5 learners", {"condition": {"property": "grade", "value": "G5"}})
    catalog.create(history.project.id, "payers", {"condition": {"event": "order_paid"}})
    yield history
    history.close()


def dist(loaded: History, **query: Any) -> dict[str, Any]:
    query.setdefault("date_range", RANGE)
    query.setdefault("event", "lesson_attended")
    return loaded.both({"kind": "distribution", **query})


def table(result: dict[str, Any], index: int = 0) -> dict[str, int]:
    return dict(zip([b["label"] for b in result["buckets"]], result["series"][index]["counts"], strict=True))


def test_how_often_with_automatic_buckets(loaded: History) -> None:
    result = dist(loaded)
    # alice 3 (her anonymous lesson included), bob 1, carol 5; erin's lesson is on the 4th locally
    assert table(result) == {"1": 1, "2": 0, "3-4": 1, "5-9": 1}
    series = result["series"][0]
    assert series["shares"] == [pytest.approx(1 / 3, abs=1e-6), 0, pytest.approx(1 / 3, abs=1e-6),
                                pytest.approx(1 / 3, abs=1e-6)]
    assert (series["persons"], series["mean"], series["median"], series["min"], series["max"]) == (3, 3, 3, 1, 5)
    assert series["p90"] == pytest.approx(4.6)  # interpolated between 3 and 5
    assert result["buckets"][-1] == {"label": "5-9", "low": 5, "high": 10}
    assert "5-9,1" in csv_of(result)


def test_active_days_are_local_days(loaded: History) -> None:
    result = dist(loaded, measure="days")
    # alice: the 1st and the 2nd in Shanghai (one UTC day); bob 1; carol 3
    assert table(result) == {"1": 1, "2": 1, "3-4": 1}


def test_explicit_buckets(loaded: History) -> None:
    result = dist(loaded, buckets=[2, 4])
    assert table(result) == {"< 2": 1, "2-3": 1, "4+": 1}
    wide = dist(loaded, buckets=[1, 10, 100])
    assert table(wide) == {"1-9": 3, "10-99": 0, "100+": 0}


def test_sum_of_a_property_in_equal_width_buckets(loaded: History) -> None:
    result = dist(loaded, event="order_paid", measure="sum", property="amount")
    labels = table(result)
    assert labels["500 to < 1000"] == 1  # bob 999
    assert labels["4500 to < 5000"] == 1  # alice 1999 + 2999
    assert sum(labels.values()) == 2
    assert result["series"][0]["mean"] == pytest.approx((4998 + 999) / 2)
    counts = dist(loaded, bucket_mode="equal", bucket_count=2)
    assert table(counts) == {"1-3": 2, "4-6": 1}


def test_population_adds_zeros(loaded: History) -> None:
    result = dist(loaded, population={"event": "page_view"})
    # alice 3, bob 1, dan 0; carol did no page_view and is not in the population
    assert table(result) == {"0": 1, "1": 1, "2": 0, "3-4": 1}
    assert result["series"][0]["persons"] == 3
    assert result["series"][0]["median"] == 1
    by_grade = dist(loaded, population={"event": "page_view"}, breakdown={"properties": ["person.grade"]})
    grades = {tuple(s["breakdown"]): (s["persons"], s["counts"]) for s in by_grade["series"]}
    assert grades == {("G5",): (2, [1, 0, 0, 1]), ("G3",): (1, [0, 1, 0, 0])}
    filtered = dist(loaded, population={"event": "page_view", "filters": [{"property": "person.grade",
                                                                           "value": "G5"}]})
    assert table(filtered) == {"0": 1, "1": 0, "2": 0, "3-4": 1}


def test_population_of_a_segment(loaded: History) -> None:
    # alice (3 lessons) and dan (none, and no event in the range would be needed either)
    result = dist(loaded, population={"segment": "G5 learners"})
    assert table(result) == {"0": 1, "1": 0, "2": 0, "3-4": 1}
    by_grade = dist(loaded, population={"segment": "payers"}, breakdown={"properties": ["person.grade"]})
    grades = {tuple(s["breakdown"]): (s["persons"], s["mean"]) for s in by_grade["series"]}
    assert grades == {("G5",): (1, 3), ("G3",): (1, 1)}  # alice, bob
    filtered = dist(loaded, filters=[{"segment": "payers"}])
    assert table(filtered) == {"1": 1, "2": 0, "3-4": 1}
    with pytest.raises(QueryError, match="segment 'nobody'"):
        loaded.run({"kind": "distribution", "event": "lesson_attended", "population": {"segment": "nobody"}})


def test_breakdown_by_an_event_property_keeps_the_top(loaded: History) -> None:
    result = dist(loaded, breakdown={"properties": ["course"]})
    rows = {tuple(s["breakdown"]): s["counts"] for s in result["series"]}
    # math: alice 2, bob 1; english: alice 1, carol 5
    assert rows == {("math",): [1, 1, 0, 0], ("english",): [1, 0, 0, 1]}
    top = dist(loaded, breakdown={"properties": ["course"], "limit": 1})
    rows = {tuple(s["breakdown"]): s["persons"] for s in top["series"]}
    assert rows == {("english",): 2, ("$other",): 2}  # a tie of 2 persons: the first value is kept


def test_groups_as_the_unit(loaded: History) -> None:
    result = dist(loaded, unit="school")
    # S-1: alice's 2 signed-in lessons and bob's 1; S-2: carol's 5; lessons without a school are not counted
    assert table(result) == {"1": 0, "2": 0, "3-4": 1, "5-9": 1}


def test_hostile_text_is_harmless(loaded: History) -> None:
    result = dist(loaded, event="x' OR '1'='1", filters=[{"property": "a'); DROP TABLE events; --",
                                                         "value": "'\"; 名字"}])
    assert result["series"] == []
    assert dist(loaded, filters=[{"property": "course", "op": "neq", "value": "Robert'); --"}])[
        "series"][0]["persons"] == 3


def test_equal_edges_are_round() -> None:
    assert equal_edges(999, 4998, 10, whole=False) == [500.0 * i for i in range(1, 10)]
    assert equal_edges(1, 5, 2, whole=True) == [1.0, 4.0]
    assert equal_edges(0, 9, 10, whole=True) == [float(i) for i in range(10)]
    assert equal_edges(7, 7, 10, whole=True) == [7.0]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"measure": "sum"}, "measure sum needs a numeric property"),
        ({"property": "amount"}, "only used by measure sum"),
        ({"buckets": [3, 1]}, "buckets: .*strictly ascending"),
        ({"buckets": []}, "buckets: List should have at least 1 item"),
        ({"bucket_count": 0}, "bucket_count"),
        ({"measure": "often"}, "measure: Input should be"),
        ({"population": {"event": "page_view"}, "breakdown": {"properties": ["course"]}}, "person properties only"),
        ({"unit": "galaxy"}, "unit 'galaxy' is not a group type"),
        ({"population": {"event": "x", "colour": 1}}, "population.colour: Extra inputs"),
        ({"population": {"event": "x", "segment": "payers"}}, "either a segment or an event"),
        ({"population": {"segment": "payers"}, "unit": "school"}, "cannot count unit 'school'"),
    ],
)
def test_errors_say_what_and_where(loaded: History, query: dict[str, Any], words: str) -> None:
    with pytest.raises(QueryError, match=words):
        loaded.run({"kind": "distribution", "event": "lesson_attended",
                                                          **query})
