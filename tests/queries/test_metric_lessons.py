"""Lesson metrics count a lesson when it starts, not when it was scheduled: a school that sends a term's schedule
on the day of enrolment gets the attendance of the lessons held, not of every lesson planned (PRODUCT.md: "scheduled
lessons that required attendance"); a lesson_scheduled without starts_at counts when it was sent. The `entries`
ratio counts a cohort's entries (the learning indicators' scheduled lessons). On both engines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.meta.catalogue import MetricCatalogue
from edupulse.packs import learning_indicators
from edupulse.queries.metrics import MetricDefinition
from engines import History, requires_chdb


def sh(text: str) -> str:
    return f"2026-{text}+08:00"


def track(who: str, event: str, time: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "distinct_id": who, "distinct_id_type": "login_id", "time": sh(time),
            "properties": properties}


def scheduled(who: str, sent: str, lesson: str, starts: str | None) -> dict[str, Any]:
    return track(who, "lesson_scheduled", sent, lesson_id=lesson, course_id="math",
                 **({"starts_at": sh(starts)} if starts else {}))


RECORDS = [
    # ann's whole term is scheduled on enrolment; two lessons have been held by 10 September, both attended
    *[scheduled("ann", "09-01T09:00:00", f"L{i}", f"09-{2 + 7 * (i - 1):02d}T19:00:00") for i in (1, 2, 3, 4)],
    track("ann", "lesson_attended", "09-02T19:01:00", lesson_id="L1"),
    track("ann", "lesson_attended", "09-09T18:58:00", lesson_id="L2"),  # joined two minutes early
    # bob's lessons are scheduled the day before; he missed the second
    scheduled("bob", "09-01T10:00:00", "L1", "09-02T19:00:00"),
    track("bob", "lesson_attended", "09-02T19:00:00", lesson_id="L1"),
    scheduled("bob", "09-08T10:00:00", "L2", "09-09T19:00:00"),
    # cat's system sends no start time: her lesson counts when it was scheduled
    scheduled("cat", "09-03T10:00:00", "L1", None),
    track("cat", "lesson_attended", "09-03T19:00:00", lesson_id="L1"),
]
RANGE = {"date_from": "2026-09-01", "date_to": "2026-09-10"}


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("lessons"), RECORDS)
    catalogue = MetricCatalogue(history.platform.meta)
    catalogue.ensure_defaults(history.project.id)
    part = next(m for m in learning_indicators.METRICS if m.name == "scheduled_lessons")
    catalogue.create(history.project.id, part.name, part.definition, None, "test")
    yield history
    history.close()


@requires_chdb
def test_attendance_counts_the_lessons_held(school: History) -> None:
    result = school.both({"kind": "trends", "series": [{"metric": "attendance_rate"}, {"metric": "scheduled_lessons"}],
                          "date_range": RANGE, "granularity": "day"})
    rate, lessons = result["series"]
    assert rate["aggregated_value"] == pytest.approx(4 / 5 * 100)  # ann 2 of 2 held, bob 1 of 2, cat 1 of 1
    assert lessons["aggregated_value"] == 5
    by_day = dict(zip(result["buckets"], lessons["data"], strict=True))
    assert {day[:10]: n for day, n in by_day.items() if n} == {"2026-09-02": 2, "2026-09-03": 1, "2026-09-09": 2}
    days = dict(zip(result["buckets"], rate["data"], strict=True))
    assert days[next(d for d in days if d.startswith("2026-09-09"))] == pytest.approx(50.0)


@requires_chdb
def test_a_later_range_counts_the_lessons_planned_for_it(school: History) -> None:
    later = {"date_from": "2026-09-15", "date_to": "2026-09-30"}
    result = school.both({"kind": "trends", "series": [{"metric": "scheduled_lessons"}], "date_range": later,
                          "granularity": "month"})
    assert result["series"][0]["aggregated_value"] == 2  # ann's L3 and L4, planned for those weeks


def test_entries_take_no_outcome() -> None:
    with pytest.raises(ValueError, match="takes no outcome"):
        MetricDefinition.model_validate({"title": "x", "unit": "count", "ratio": "entries",
                                         "cohort": {"event": "lesson_scheduled"},
                                         "outcome": {"event": "lesson_attended"}})


def members(school: History, condition: dict[str, Any]) -> list[str]:
    result = school.both({"kind": "segments", "definition": {"condition": condition}})
    return sorted(i["value"] for p in result["persons"] for i in p["identities"] if i["type"] == "login_id")


@requires_chdb
def test_a_segment_condition_places_lessons_by_their_start(school: History) -> None:
    started = {"event": "lesson_scheduled", "time": "starts_at", "window": {"last_days": 3}}  # 8 to 10 September
    assert members(school, started) == ["ann", "bob"]
    assert members(school, {"event": "lesson_scheduled", "window": {"last_days": 3}}) == ["bob"]  # when sent
    # a lesson that started in those days, and no attendance in them (the supervision pack's churned tier)
    churned = {"and": [started, {"event": "lesson_attended", "window": {"last_days": 3}, "at_most": 0}]}
    assert members(school, churned) == ["bob"]
    # ann's lessons planned for later have not started: they count for nobody yet
    later = {"event": "lesson_scheduled", "time": "starts_at", "window": {"date_from": "2026-09-10"}}
    assert members(school, later) == []
    assert members(school, {"event": "lesson_scheduled", "time": "starts_at", "at_least": 3}) == []
    assert members(school, {"event": "lesson_scheduled", "time": "starts_at", "at_least": 2}) == ["ann", "bob"]


def test_the_time_of_a_condition_must_be_a_time_property(school: History) -> None:
    from edupulse.queries.errors import QueryError

    with pytest.raises(QueryError, match="not a time property"):
        school.run({"kind": "segments", "definition": {"condition": {"event": "lesson_scheduled",
                                                                     "time": "lesson_id"}}})
