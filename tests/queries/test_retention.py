"""Retention on a tiny hand-built history (cohorts, periods cut in the project's zone, merged identities,
on / on or after, breakdowns, units, filters, errors), on both engines; and on a seeded random history,
where every cohort agrees with ClickHouse's own `retention` function on the same rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from test_funnel import random_history, sh, track

from edupulse.queries.errors import QueryError
from engines import History, csv_of, requires_chdb

S1, S2 = {"school": "S1"}, {"school": "S2"}

HISTORY: list[dict[str, Any]] = [
    # anna signs up anonymously late on the 1st and attends after midnight (day 1), then on the 4th (day 3)
    track("dev-r", "signup", "2026-09-01T23:30:00", login=False, src="douyin", groups=S1),
    {"type": "identify", "distinct_id": "anna", "anonymous_id": "dev-r", "time": sh("2026-09-02T00:00:00")},
    track("anna", "lesson", "2026-09-02T00:30:00", subject="math", groups=S1),
    track("anna", "lesson", "2026-09-04T10:00:00", subject="english", groups=S1),
    track("anna", "lesson", "2026-09-08T10:00:00", subject="english", groups=S1),
    # ben attends on his signup day (day 0: not a return), on day 2 and day 4; signs up again on the 3rd
    track("ben", "signup", "2026-09-01T10:00:00", src="baidu", groups=S1),
    track("ben", "lesson", "2026-09-01T12:00:00", subject="english", groups=S1),
    track("ben", "signup", "2026-09-03T09:00:00", src="wechat", groups=S1),
    track("ben", "lesson", "2026-09-03T10:00:00", subject="english", groups=S1),
    track("ben", "lesson", "2026-09-05T10:00:00", subject="english", groups=S1),
    # cara signs up at 07:00 on the 2nd local time (the 1st in UTC) and never returns
    track("cara", "signup", "2026-09-02T07:00:00"),
    # dan only attends: in no cohort
    track("dan", "lesson", "2026-09-01T10:00:00", subject="math"),
    # eve signed up before the range too: her first signup in the range is on the 2nd
    track("eve", "signup", "2026-08-31T20:00:00", src="douyin", groups=S2),
    track("eve", "signup", "2026-09-02T08:00:00", groups=S2),
    track("eve", "lesson", "2026-09-03T08:00:00", subject="math", groups=S2),
]

BASE = {"start_event": {"event": "signup"}, "return_event": {"event": "lesson"}, "periods": 3,
        "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-03"}}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("retention"), HISTORY, name="Retention School")
    yield history
    history.close()


def retention(loaded: History, **query: Any) -> dict[str, Any]:
    return loaded.both({"kind": "retention", **BASE, **query})


def table(result: dict[str, Any], index: int = 0) -> dict[str, list[Any]]:
    return {c["cohort"]: c["values"] for c in result["results"][index]["cohorts"]}


def by_breakdown(result: dict[str, Any]) -> dict[Any, dict[str, list[Any]]]:
    return {tuple(r["breakdown"]): table(result, i) for i, r in enumerate(result["results"])}


def test_first_time_cohorts_by_day(loaded: History) -> None:
    result = retention(loaded)
    # 1st: anna (day 1 at 00:30, day 3), ben (day 2); 2nd: cara (07:00 local), eve (day 1)
    assert table(result) == {"2026-09-01": [2, 1, 1, 1], "2026-09-02": [2, 1, 0, 0]}
    assert result["results"][0]["average"]["values"] == [4, 2, 1, 1]
    assert result["results"][0]["average"]["rates"] == [1.0, 0.5, 0.25, 0.25]
    assert result["results"][0]["cohorts"][0]["rates"] == [1.0, 0.5, 0.5, 0.5]


def test_on_or_after(loaded: History) -> None:
    # anna returned on days 1 and 3, ben on day 2 (day 4 is past the 3 periods)
    assert table(retention(loaded, mode="on_or_after")) == {"2026-09-01": [2, 2, 2, 1], "2026-09-02": [2, 1, 0, 0]}


def test_recurring_cohorts(loaded: History) -> None:
    # ben's second signup puts him in the 3rd's cohort too: his lesson at 10:00 that day is day 0
    assert table(retention(loaded, cohort="recurring")) == {
        "2026-09-01": [2, 1, 1, 1], "2026-09-02": [2, 1, 0, 0], "2026-09-03": [1, 0, 1, 0]}


def test_weeks_months_and_periods_still_to_come(loaded: History) -> None:
    # the week of Monday 31 August; week 1 holds anna's lesson of the 8th
    assert table(retention(loaded, period="week", periods=1)) == {"2026-08-31": [4, 1]}
    # October is still to come on 10 September: no value yet
    result = retention(loaded, period="month", periods=1)
    assert table(result) == {"2026-09-01": [4, None]}
    assert result["results"][0]["average"]["rates"] == [1.0, None]
    # on the 4th, the 5th is still to come; the 4th itself counts so far
    early = loaded.both({"kind": "retention", **BASE}, now=dt.datetime(2026, 9, 4, 4, tzinfo=dt.UTC))
    assert table(early)["2026-09-02"] == [2, 1, 0, None]


def test_breakdowns_read_the_start_event(loaded: History) -> None:
    result = retention(loaded, breakdown={"properties": ["src"]})
    assert by_breakdown(result) == {(None,): {"2026-09-02": [2, 1, 0, 0]},
                                    ("baidu",): {"2026-09-01": [1, 0, 1, 0]},
                                    ("douyin",): {"2026-09-01": [1, 1, 0, 1]}}
    recurring = retention(loaded, cohort="recurring", breakdown={"properties": ["src"]})
    assert by_breakdown(recurring)[("wechat",)] == {"2026-09-03": [1, 0, 1, 0]}
    top = retention(loaded, breakdown={"properties": ["src"], "limit": 1})
    assert by_breakdown(top) == {(None,): {"2026-09-02": [2, 1, 0, 0]},
                                 ("$other",): {"2026-09-01": [2, 1, 1, 1]}}


def test_filters_and_units(loaded: History) -> None:
    douyin = retention(loaded, start_event={"event": "signup", "filters": [{"property": "src", "value": "douyin"}]})
    assert table(douyin) == {"2026-09-01": [1, 1, 0, 1]}
    math = retention(loaded, return_event={"event": "lesson", "filters": [{"property": "subject", "value": "math"}]})
    assert table(math) == {"2026-09-01": [2, 1, 0, 0], "2026-09-02": [2, 1, 0, 0]}
    schools = retention(loaded, unit="school")
    assert table(schools) == {"2026-09-01": [1, 1, 1, 1], "2026-09-02": [1, 1, 0, 0]}
    hostile = retention(loaded, start_event={"event": "x'); DROP TABLE events; --",
                                             "filters": [{"property": "名'\"", "value": "'--"}]})
    assert hostile["results"] == []


def test_csv(loaded: History) -> None:
    text = csv_of(retention(loaded))
    assert text.splitlines() == ["breakdown,cohort,size,period_0,period_1,period_2,period_3",
                                 ",2026-09-01,2,2,1,1,1", ",2026-09-02,2,2,1,0,0"]


@pytest.mark.parametrize(("query", "words"), [
    ({"period": "year"}, "period"),
    ({"periods": 0}, "periods"),
    ({"mode": "after"}, "mode"),
    ({"return_event": None}, "return_event"),
    ({"start_event": {"event": ""}}, "start_event.event"),
    ({"unit": "galaxy"}, "unit 'galaxy'"),
    ({"date_range": {"date_from": "2000-01-01", "date_to": "2026-09-03"}}, "at most 400 cohorts"),
])
def test_errors_say_what_and_where(loaded: History, query: dict[str, Any], words: str) -> None:
    with pytest.raises(QueryError, match=words):
        loaded.run({"kind": "retention", **BASE, **query})


# a random history against ClickHouse's retention ---------------------------------------------------


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """250 persons, 1 to 12 events each of s (start), r (return) and z, over 12 days from 1 September."""
    records = random_history(5, 250, ["s", "r", "r", "z"], (1, 12), dt.datetime(2026, 9, 1), 12 * 24 * 60)
    history = History(tmp_path_factory.mktemp("retention-crowd"), records, name="Random Retention")
    yield history
    history.close()


def oracle(history: History, cohort: str, mode: str, periods: int, first: int, last: int) -> dict[int, list[int]]:
    """Per cohort day number: ClickHouse's retention() summed over the cohort's persons."""
    store = history.service("clickhouse").store
    if mode == "on":
        returns = [f"ev.event = 'r' AND ev.p = co.c + {k}" for k in range(1, periods + 1)]
    else:
        returns = [f"ev.event = 'r' AND ev.p >= co.c + {k} AND ev.p <= co.c + {periods}" for k in range(1, periods + 1)]
    cohorts = ("SELECT u, min(p) AS c FROM ev WHERE event = 's' AND p BETWEEN {a} AND {b} GROUP BY u"
               if cohort == "first_time" else
               "SELECT DISTINCT u, p AS c FROM ev WHERE event = 's' AND p BETWEEN {a} AND {b}").format(a=first, b=last)
    sql = f"""
        WITH ev AS (SELECT resolved_person_id AS u, event,
                           intDiv(toUnixTimestamp64Micro(time) + 28800000000, 86400000000) AS p
                    FROM edupulse.events_resolved WHERE project_id = {history.project.id}),
             co AS ({cohorts})
        SELECT c, sumForEach(arrayMap(x -> toUInt64(x), r)) FROM (
            SELECT co.u AS u, co.c AS c, retention(ev.event = 's' AND ev.p = co.c, {", ".join(returns)}) AS r
            FROM ev INNER JOIN co ON ev.u = co.u GROUP BY co.u, co.c)
        GROUP BY c"""
    return {int(c): [int(v) for v in values] for c, values in store.query(sql).rows}


@requires_chdb
@pytest.mark.parametrize("cohort", ["first_time", "recurring"])
@pytest.mark.parametrize("mode", ["on", "on_or_after"])
def test_random_history_agrees_with_clickhouse_retention(crowd: History, cohort: str, mode: str) -> None:
    periods = 5
    query = {"kind": "retention", "start_event": {"event": "s"}, "return_event": {"event": "r"}, "cohort": cohort,
             "mode": mode, "periods": periods, "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-06"}}
    result = crowd.both(query, now=dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
    first = (dt.date(2026, 9, 1) - dt.date(1970, 1, 1)).days
    expected = oracle(crowd, cohort, mode, periods, first, first + 5)
    ours = {(dt.date.fromisoformat(c["cohort"]) - dt.date(1970, 1, 1)).days: c["values"]
            for c in result["results"][0]["cohorts"]}
    assert sum(v[0] for v in expected.values()) > 100
    assert ours == expected
