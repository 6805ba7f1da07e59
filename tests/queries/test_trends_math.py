"""Trends beyond counting: active units over rolling windows (DAU/WAU/MAU), per-person statistics,
counting groups instead of persons, formulas over series, CSV export; on DuckDB and ClickHouse alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edupulse.queries.errors import QueryError
from engines import History, csv_of


def sh(text: str) -> str:
    return f"{text}+08:00"


def lesson(who: str, when: str, school: str, login: bool = True) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": "lesson_attended", "distinct_id": who, "time": sh(when),
                              "groups": {"school": school}}
    if login:
        record["distinct_id_type"] = "login_id"
    return record


RECORDS = [
    lesson("dev-a", "2026-09-01T23:30:00", "S1", login=False),  # anonymous, then identified as a
    {"type": "identify", "distinct_id": "a", "anonymous_id": "dev-a", "time": sh("2026-09-02T00:00:00")},
    lesson("a", "2026-09-02T09:00:00", "S1"),
    lesson("a", "2026-09-02T19:00:00", "S1"),
    lesson("a", "2026-09-05T19:00:00", "S1"),
    lesson("b", "2026-09-02T10:00:00", "S1"),
    lesson("b", "2026-09-09T10:00:00", "S1"),
    lesson("c", "2026-08-20T10:00:00", "S2"),  # before the range: only in the 30-day window
    lesson("c", "2026-09-08T10:00:00", "S2"),
    {"type": "group_set", "group_type": "school", "group_key": "S1", "properties": {"tier": "A", "students": 2400}},
    {"type": "group_set", "group_type": "school", "group_key": "S2", "properties": {"tier": "B", "students": 800}},
]
RANGE = {"date_from": "2026-09-01", "date_to": "2026-09-10"}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    h = History(tmp_path_factory.mktemp("trends-math"), RECORDS, name="Rolling School")
    yield h
    h.close()


def trends(history: History, **query: Any) -> dict[str, Any]:
    query.setdefault("date_range", RANGE)
    return history.both({"kind": "trends", **query})


def test_daily_weekly_monthly_active(history: History) -> None:
    result = trends(history, series=[{"event": "lesson_attended", "math": m} for m in ("dau", "wau", "mau")])
    dau, wau, mau = (s["data"] for s in result["series"])
    assert dau == [1, 2, 0, 0, 1, 0, 0, 1, 1, 0]
    assert wau == [1, 2, 2, 2, 2, 2, 2, 3, 3, 3]
    assert mau == [2, 3, 3, 3, 3, 3, 3, 3, 3, 3]
    assert result["series"][0]["aggregated_value"] == 0.6  # the mean of the days


def test_per_person_statistics(history: History) -> None:
    def stat(math: str) -> dict[str, Any]:
        return trends(history, series=[{"event": "lesson_attended", "math": math}])["series"][0]

    assert stat("avg_per_person")["data"][1] == 1.5  # 2 September: a twice, b once
    assert stat("max_per_person")["data"][1] == 2
    assert stat("min_per_person")["data"][1] == 1
    assert stat("median_per_person")["data"][1] == 1.5
    assert stat("avg_per_person")["aggregated_value"] == pytest.approx(7 / 3)  # a 4, b 2, c 1
    assert stat("median_per_person")["aggregated_value"] == 2
    assert stat("p90_per_person")["aggregated_value"] == pytest.approx(3.6)


def test_groups_as_the_unit(history: History) -> None:
    result = trends(history, unit="school", series=[{"event": "lesson_attended", "math": "unique"},
                                                     {"event": "lesson_attended", "math": "wau"}])
    unique, wau = result["series"]
    assert unique["data"] == [1, 1, 0, 0, 1, 0, 0, 1, 1, 0]
    assert unique["aggregated_value"] == 2
    assert wau["data"] == [1, 1, 1, 1, 1, 1, 1, 2, 2, 2]
    with pytest.raises(QueryError, match="unit 'campus' is not a group type"):
        history.run({"kind": "trends", "unit": "campus", "series": [{"event": "lesson_attended"}]})


def test_group_keys_and_group_properties(history: History) -> None:
    by_school = trends(history, series=[{"event": "lesson_attended"}],
                       breakdown={"properties": ["group.school", "group.school.tier"]})
    assert {tuple(s["breakdown"]): s["aggregated_value"] for s in by_school["series"]} == {
        ("S1", "A"): 6, ("S2", "B"): 1}
    large = trends(history, series=[{"event": "lesson_attended", "math": "unique"}],
                   filters=[{"property": "group.school.students", "op": "gt", "value": 2000}])
    assert large["series"][0]["aggregated_value"] == 2  # a and b
    with pytest.raises(QueryError, match="group type 'campus' is not known"):
        history.run({"kind": "trends", "series": [{"event": "x"}],
                     "filters": [{"property": "group.campus.size", "op": "is_set"}]})


def test_formula_over_series(history: History) -> None:
    result = trends(history, series=[{"event": "lesson_attended"}, {"event": "lesson_attended", "math": "unique"}],
                    formula="A / B", formula_name="lessons per learner")
    formula = result["series"][-1]
    assert formula["label"] == "lessons per learner"
    assert formula["aggregated_value"] == pytest.approx(7 / 3)
    assert formula["data"][1] == 1.5
    assert formula["data"][2] is None  # 0 / 0


@pytest.mark.parametrize(
    ("formula", "words"),
    [("A / C", "C is not a series"), ("__import__('os')", "only"), ("A ** 2", "only"), ("A +", "not an arithmetic")],
)
def test_formula_errors(history: History, formula: str, words: str) -> None:
    with pytest.raises(QueryError, match=words):
        history.run({"kind": "trends", "series": [{"event": "x"}, {"event": "y"}], "formula": formula})


def test_rolling_needs_days(history: History) -> None:
    with pytest.raises(QueryError, match="use granularity day"):
        history.run({"kind": "trends", "series": [{"event": "x", "math": "wau"}], "granularity": "week"})


def test_csv_export(history: History, tmp_path: Path) -> None:
    result = trends(history, series=[{"event": "lesson_attended"}], granularity="week")
    text = csv_of(result)
    lines = text.strip().split("\n")
    assert lines[0].startswith("series,")
    assert "lesson_attended" in lines[1]


def test_hostile_names_and_values_on_both_engines(tmp_path: Path) -> None:
    name = "年级\"'; DROP TABLE events; --\\"
    value = "五年级 ' OR 1=1 -- \\ \" 🎓"
    records = [{"type": "track", "event": "quiz'answered", "distinct_id": "x", "time": sh("2026-09-02T10:00:00"),
                "properties": {name: value, "n": 3}},
               {"type": "track", "event": "quiz'answered", "distinct_id": "y", "time": sh("2026-09-02T11:00:00"),
                "properties": {name: "other", "n": "4"}}]
    h = History(tmp_path, records, name="Hostile School")
    try:
        result = h.both({"kind": "trends", "series": [{"event": "quiz'answered"}], "date_range": RANGE,
                         "breakdown": {"properties": [name]}, "filters": [{"property": name, "op": "in",
                                                                          "value": [value, "other"]}]})
        assert {s["breakdown"][0]: s["aggregated_value"] for s in result["series"]} == {value: 1, "other": 1}
        regex = h.both({"kind": "trends", "series": [{"event": "quiz'answered"}], "date_range": RANGE,
                        "filters": [{"property": name, "op": "regex", "value": "^五.*🎓$"}]})
        assert regex["series"][0]["aggregated_value"] == 1
        numbers = h.both({"kind": "trends", "series": [{"event": "quiz'answered", "math": "sum", "property": "n"}],
                          "date_range": RANGE})
        assert numbers["series"][0]["aggregated_value"] == 7  # a number and numeric text alike
    finally:
        h.close()
