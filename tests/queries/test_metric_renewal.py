"""The catalogue's renewal_rate on a hand-built school, on DuckDB and on ClickHouse: a student's course ends at
the start of the last lesson scheduled for them in it, known once the 14 days after that day are over without
another; a refunded course does not end; a renewal counts from 7 days before to 30 days after the end."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from engines import History, requires_chdb


def sh(text: str) -> str:
    return f"{text}+08:00"


def lesson(who: str, course: str, starts: str) -> dict[str, Any]:
    """A lesson_scheduled sent the day before the lesson starts."""
    at = dt.datetime.fromisoformat(sh(starts))
    return {"type": "track", "event": "lesson_scheduled", "distinct_id": who, "distinct_id_type": "login_id",
            "time": (at - dt.timedelta(days=1)).isoformat(),
            "properties": {"lesson_id": f"{course}-{starts[:10]}", "course_id": course, "starts_at": at.isoformat()}}


def event(name: str, who: str, time: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "distinct_id": who, "distinct_id_type": "login_id", "time": sh(time),
            "properties": properties}


def renewal(who: str, time: str) -> dict[str, Any]:
    return event("order_paid", who, time, order_type="renewal", amount=1000, course_id="next")


RECORDS = [
    # ends 3 Sep, renews 3 days later: renewed
    lesson("ann", "A", "2026-09-01T19:00:00"), lesson("ann", "A", "2026-09-03T19:00:00"),
    renewal("ann", "2026-09-06T10:00:00"),
    # ends 3 Sep, never renews (attended or not, the course ended)
    lesson("ben", "A", "2026-09-01T19:00:00"), lesson("ben", "A", "2026-09-03T19:00:00"),
    # ends 3 Sep, renews 35 days later: too late
    lesson("cai", "A", "2026-09-01T19:00:00"), lesson("cai", "A", "2026-09-03T19:00:00"),
    renewal("cai", "2026-10-08T19:00:00"),
    # paid back: the refunded course does not end
    lesson("dai", "A", "2026-09-01T19:00:00"), event("order_refunded", "dai", "2026-09-02T09:00:00", course_id="A"),
    # two courses: A ends 3 Sep, B ends 12 Oct; renews 5 days before B ends (counts for B only)
    lesson("eve", "A", "2026-09-01T19:00:00"), lesson("eve", "A", "2026-09-03T19:00:00"),
    lesson("eve", "B", "2026-10-05T19:00:00"), lesson("eve", "B", "2026-10-12T19:00:00"),
    renewal("eve", "2026-10-07T10:00:00"),
    # last lesson 25 Oct: fewer than 14 days before the end of October, so its end is not known yet
    lesson("fay", "A", "2026-10-18T19:00:00"), lesson("fay", "A", "2026-10-25T19:00:00"),
]
RANGE = {"date_from": "2026-09-01", "date_to": "2026-10-31"}
LATER = dt.datetime(2026, 12, 1, 4, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("renewal"), RECORDS, name="Renewal School")
    yield history
    history.close()


def rate(school: History, date_range: dict[str, str], now: dt.datetime = LATER,
         granularity: str = "month") -> dict[str, Any]:
    query = {"kind": "trends", "series": [{"metric": "renewal_rate"}], "date_range": date_range,
             "granularity": granularity}
    return dict(school.both(query, now)["series"][0])


@requires_chdb
def test_course_ends_and_renewals(school: History) -> None:
    # asked on 1 November: fay's course (last lesson 25 October) may still be running
    series = rate(school, RANGE, now=dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC))
    # September: ann (renewed), ben, cai, eve's A; October: eve's B (renewed); dai's course was refunded
    assert series["data"] == [pytest.approx(25.0), pytest.approx(100.0)]
    assert series["aggregated_value"] == pytest.approx(2 / 5 * 100)


@requires_chdb
def test_an_end_is_known_once_14_days_after_its_day_are_over(school: History) -> None:
    # asked on 1 December: fay's course has ended, and she did not renew
    later = rate(school, RANGE)
    assert later["data"] == [pytest.approx(25.0), pytest.approx(50.0)]
    assert later["aggregated_value"] == pytest.approx(2 / 6 * 100)
    # a month's value does not depend on the range it is asked in
    assert rate(school, {"date_from": "2026-10-01", "date_to": "2026-10-31"})["aggregated_value"] == \
        pytest.approx(50.0)
    assert rate(school, {"date_from": "2026-09-01", "date_to": "2026-09-20"}, granularity="day")[
        "aggregated_value"] == pytest.approx(25.0)
    # the September ends (3 September) are known once the 14 days after that day are over: from 18 September,
    # local time
    assert rate(school, RANGE, now=dt.datetime(2026, 9, 10, 4, tzinfo=dt.UTC))["aggregated_value"] is None
    assert rate(school, RANGE, now=dt.datetime(2026, 9, 17, 15, tzinfo=dt.UTC))["aggregated_value"] is None
    assert rate(school, RANGE, now=dt.datetime(2026, 9, 17, 17, tzinfo=dt.UTC))["aggregated_value"] == \
        pytest.approx(25.0)


def test_a_cohort_time_must_be_a_time_property(school: History) -> None:
    from edupulse.meta.catalogue import MetricCatalogue
    from edupulse.queries.errors import QueryError

    MetricCatalogue(school.platform.meta).create(school.project.id, "lesson_renewal", {
        "title": "t", "unit": "%", "ratio": "rate", "outcome": {"event": "order_paid"},
        "cohort": {"event": "lesson_scheduled", "per": "course_id", "time": "lesson_id", "last": True}},
        owner_user_id=None, author="test")
    with pytest.raises(QueryError, match=r"cohort\.time: property 'lesson_id' is not a time property"):
        school.run({"kind": "trends", "series": [{"metric": "lesson_renewal"}], "date_range": RANGE}, now=LATER)


@pytest.mark.parametrize(("cohort", "words"), [
    ({"event": "a", "first": True, "last": True}, "first or its last event, not both"),
    ({"event": "a", "settle_days": 14}, "settle_days belongs to a cohort of last events"),
    ({"event": "a", "unless": {"event": "b", "same": True}}, "unless.same needs cohort.per"),
])
def test_cohort_definitions_say_what_is_wrong(cohort: dict[str, Any], words: str) -> None:
    from edupulse.queries.metrics import validate_definition

    with pytest.raises(ValueError, match=words):
        validate_definition({"title": "t", "unit": "%", "cohort": cohort, "ratio": "rate",
                             "outcome": {"event": "b"}})

