"""LTV on a tiny hand-built history, on DuckDB and ClickHouse: cohorts by the first start event in the
project's time zone, day N as local days, revenue across merged identities, refunds, days not yet reached
as null, the all-cohorts curve, breakdowns, hostile input and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.queries.errors import QueryError
from engines import History, csv_of

# NOW is 12:00 on 10 September in Asia/Shanghai


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
    # ann: a lead at 23:30 while anonymous; pays 40 minutes later, on her local day 1 (the same UTC day)
    event("lead_created", "dev-3", "09-01T23:30:00", login=False, channel="douyin"),
    {"type": "identify", "distinct_id": "ann", "anonymous_id": "dev-3", "time": "2026-09-01T23:50:00+08:00"},
    event("order_paid", "ann", "09-02T00:10:00", amount=100),
    event("order_paid", "ann", "09-08T10:00:00", amount=50),  # day 7
    event("order_refunded", "ann", "09-09T10:00:00", amount=30),  # day 8
    # ben: paid before his lead (not counted), then 200 on day 0
    event("order_paid", "ben", "08-31T10:00:00", amount=999),
    event("lead_created", "ben", "09-01T10:00:00", channel="baidu", school="S-9"),
    event("order_paid", "ben", "09-01T11:00:00", amount=200, school="S-9"),
    # cy's first lead is before the range: in no cohort
    event("lead_created", "cy", "08-20T10:00:00", channel="baidu"),
    event("lead_created", "cy", "09-02T10:00:00", channel="baidu"),
    event("order_paid", "cy", "09-02T11:00:00", amount=5000),
    # di never pays
    event("lead_created", "di", "09-02T09:00:00", channel="douyin"),
    # ed: a lead on the 9th, 300 on day 1 (today)
    event("lead_created", "ed", "09-09T20:00:00"),
    event("order_paid", "ed", "09-10T09:00:00", amount=300),
]

RANGE = {"date_from": "2026-09-01", "date_to": "2026-09-09"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("ltv"), HISTORY, name="LTV School")
    yield history
    history.close()


def ltv(loaded: History, **query: Any) -> dict[str, Any]:
    query.setdefault("date_range", RANGE)
    query.setdefault("days", [0, 1, 7, 9])
    return loaded.both({"kind": "ltv", **query})


def cohorts(result: dict[str, Any], index: int = 0) -> dict[str, tuple[int, list[Any]]]:
    return {c["cohort"]: (c["size"], c["revenue"]) for c in result["series"][index]["cohorts"]}


def test_daily_cohorts_with_days_not_reached_as_null(loaded: History) -> None:
    result = ltv(loaded, cohort="day")
    assert cohorts(result) == {
        "2026-09-01": (2, [200, 300, 350, 350]),  # ann's 100 is on her local day 1
        "2026-09-02": (1, [0, 0, 0, None]),  # di; day 9 is tomorrow
        "2026-09-09": (1, [0, 300, None, None]),  # ed; day 1 is today
    }
    first = result["series"][0]["cohorts"][0]
    assert first["per_person"] == [100, 150, 175, 175]
    series = result["series"][0]
    assert series["size"] == 4
    # over the cohorts that reached day N: all three, all three, the first two, the first
    assert series["revenue"] == [200, 600, 350, 350]
    assert series["per_person"] == [pytest.approx(50), pytest.approx(150), pytest.approx(350 / 3), pytest.approx(175)]
    assert "2026-09-01,2,200" in csv_of(result)


def test_refunds_are_subtracted(loaded: History) -> None:
    result = ltv(loaded, cohort="day", revenue={"refund_event": "order_refunded"})
    assert cohorts(result)["2026-09-01"] == (2, [200, 300, 350, 320])


def test_weekly_and_monthly_cohorts(loaded: History) -> None:
    weekly = ltv(loaded, cohort="week")
    # the week of Monday 31 August ends for the range on the 6th: day 1 reached, day 7 not yet
    assert cohorts(weekly) == {"2026-08-31": (3, [200, 300, None, None]), "2026-09-07": (1, [0, 300, None, None])}
    monthly = ltv(loaded, cohort="month")
    assert cohorts(monthly) == {"2026-09-01": (4, [200, 600, None, None])}


def test_start_event_and_breakdown(loaded: History) -> None:
    anything = ltv(loaded, cohort="month", start={"event": None})
    # ben's and cy's first events are before the range
    assert cohorts(anything) == {"2026-09-01": (3, [0, 400, None, None])}
    by_channel = ltv(loaded, cohort="month", breakdown={"properties": ["channel"]})
    rows = {tuple(s["breakdown"]): (s["size"], s["revenue"][:2]) for s in by_channel["series"]}
    assert rows == {("douyin",): (2, [0, 100]), ("baidu",): (1, [200, 200]), (None,): (1, [0, 300])}
    filtered = ltv(loaded, cohort="month", filters=[{"property": "channel", "value": "baidu"}],
                   revenue={"filters": [{"property": "amount", "op": "lt", "value": 1000}]})
    assert cohorts(filtered) == {"2026-09-01": (1, [200, 200, None, None])}


def test_groups_as_the_unit(loaded: History) -> None:
    result = ltv(loaded, cohort="month", unit="school")
    assert cohorts(result) == {"2026-09-01": (1, [200, 200, None, None])}


def test_relative_range_and_no_data(loaded: History) -> None:
    result = loaded.both({"kind": "ltv", "date_range": {"date_from": "-1d"}, "cohort": "day"})
    assert result["days"] == [0, 1, 7, 14, 30, 60, 90]
    assert cohorts(result) == {"2026-09-09": (1, [0, 300, None, None, None, None, None])}
    empty = ltv(loaded, start={"event": "nothing'); DROP TABLE events; --"},
                breakdown={"properties": ["ch'an\"nel 名"]})
    assert empty["series"] == []
    odd = ltv(loaded, cohort="month", revenue={"event": "order_paid", "property": "amo'unt\"); DROP TABLE x; --",
                                                "refund_event": "退款' OR 1=1"})
    assert cohorts(odd) == {"2026-09-01": (4, [0, 0, None, None])}


@pytest.mark.parametrize("kind", ["distribution", "interval", "ltv"])
def test_the_documented_examples_run(loaded: History, kind: str, documented: dict[str, dict[str, Any]]) -> None:
    query = documented[kind]
    assert "series" in loaded.both(query)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"days": [7, 1]}, "days: .*ascending"),
        ({"days": [-1]}, "days: .*from 0 to 3650"),
        ({"days": []}, "days: List should have at least 1 item"),
        ({"cohort": "hour"}, "cohort: Input should be"),
        ({"revenue": {"amount": 1}}, "revenue.amount: Extra inputs"),
        ({"unit": "moon"}, "unit 'moon' is not a group type"),
    ],
)
def test_errors_say_what_and_where(loaded: History, query: dict[str, Any], words: str) -> None:
    with pytest.raises(QueryError, match=words):
        loaded.run({"kind": "ltv", **query})
