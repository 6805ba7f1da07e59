"""Trends on a tiny hand-built history, written through the real write path: days cut in the project's
time zone, persons across merged identities, property math, filters, breakdowns, errors; the API and
the command line give the same answer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from conftest import ProjectKeys, Server
from edupulse.cli import main
from edupulse.queries.errors import QueryError
from edupulse.queries.service import QueryService
from engines import NOW, History


def sh(text: str) -> str:
    """A wall-clock time in Asia/Shanghai (the project's zone) as ISO text."""
    return f"{text}+08:00"


HISTORY: list[dict[str, Any]] = [
    # dev-1 browses anonymously, then signs in as alice: one person
    {"type": "track", "event": "page_view", "distinct_id": "dev-1", "time": sh("2026-09-01T23:30:00"),
     "properties": {"utm_source": "douyin", "page": "/math"}},
    {"type": "track", "event": "page_view", "distinct_id": "dev-1", "time": sh("2026-09-02T00:30:00"),
     "properties": {"utm_source": "douyin", "page": "/english"}},
    {"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-1", "time": sh("2026-09-02T00:31:00")},
    {"type": "track", "event": "page_view", "distinct_id": "alice", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T09:00:00"), "properties": {"utm_source": "baidu", "page": "/math/g5"}},
    {"type": "track", "event": "page_view", "distinct_id": "bob", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T10:00:00"), "properties": {"page": "/"}},
    {"type": "track", "event": "page_view", "distinct_id": "carol", "distinct_id_type": "login_id",
     "time": sh("2026-09-03T08:00:00"), "properties": {"utm_source": "wechat", "page": "/math"}},
    {"type": "track", "event": "order_paid", "distinct_id": "alice", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T20:00:00"), "properties": {"amount": 1999, "order_type": "first"}},
    {"type": "track", "event": "order_paid", "distinct_id": "bob", "distinct_id_type": "login_id",
     "time": sh("2026-09-03T20:00:00"), "properties": {"amount": 999, "order_type": "first"}},
    {"type": "track", "event": "order_paid", "distinct_id": "alice", "distinct_id_type": "login_id",
     "time": sh("2026-09-08T20:00:00"), "properties": {"amount": 2999, "order_type": "renewal"}},
    {"type": "profile_set", "distinct_id": "alice", "distinct_id_type": "login_id", "time": sh("2026-09-02T00:00:00"),
     "properties": {"grade": "G5", "city": "Hangzhou"}},
    {"type": "profile_set", "distinct_id": "bob", "distinct_id_type": "login_id", "time": sh("2026-09-02T00:00:00"),
     "properties": {"grade": "G3"}},
    # the previous week, for comparison
    {"type": "track", "event": "page_view", "distinct_id": "dave", "time": sh("2026-08-28T10:00:00")},
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("trends"), HISTORY, name="Trends School")
    yield history
    history.close()


def trends(loaded: History, **query: Any) -> dict[str, Any]:
    """Run on DuckDB and ClickHouse; both must agree."""
    query.setdefault("date_range", {"date_from": "2026-09-01", "date_to": "2026-09-03"})
    return loaded.both({"kind": "trends", **query})


def data(result: dict[str, Any], index: int = 0) -> list[Any]:
    return list(result["series"][index]["data"])


def test_days_are_cut_in_the_project_time_zone(loaded: Any) -> None:
    result = trends(loaded, series=[{"event": "page_view"}])
    assert result["buckets"] == ["2026-09-01", "2026-09-02", "2026-09-03"]
    # 23:30 on the 1st and 00:30 on the 2nd local time are on different days (both on the 1st in UTC)
    assert data(result) == [1, 3, 1]
    assert result["series"][0]["aggregated_value"] == 5


def test_unique_persons_follow_merges(loaded: Any) -> None:
    result = trends(loaded, series=[{"event": "page_view", "math": "unique_persons"},
                                    {"event": "page_view", "math": "avg_per_person"}])
    assert data(result, 0) == [1, 2, 1]  # dev-1 and alice are one person on the 2nd
    assert result["series"][0]["aggregated_value"] == 3  # alice, bob, carol
    assert result["series"][1]["aggregated_value"] == pytest.approx(5 / 3)


def test_property_math(loaded: Any) -> None:
    def total(math: str, **extra: Any) -> Any:
        return trends(loaded, series=[{"event": "order_paid", "math": math, "property": "amount"}],
                      date_range={"date_from": "2026-09-01", "date_to": "2026-09-09"}, **extra)

    assert total("sum")["series"][0]["aggregated_value"] == 1999 + 999 + 2999
    assert total("avg")["series"][0]["aggregated_value"] == pytest.approx((1999 + 999 + 2999) / 3)
    assert total("min")["series"][0]["aggregated_value"] == 999
    assert total("max")["series"][0]["aggregated_value"] == 2999
    assert total("median")["series"][0]["aggregated_value"] == 1999
    assert total("p90")["series"][0]["aggregated_value"] == pytest.approx(1999 + 0.8 * 1000)
    weekly = total("sum", granularity="week")
    assert weekly["buckets"] == ["2026-08-31", "2026-09-07"]  # weeks start on Monday
    assert data(weekly) == [2998, 2999]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([{"property": "utm_source", "value": "douyin"}], 2),
        ([{"property": "utm_source", "op": "neq", "value": "douyin"}], 3),  # also events without utm_source
        ([{"property": "utm_source", "op": "in", "value": ["baidu", "wechat"]}], 2),
        ([{"property": "page", "op": "contains", "value": "math"}], 3),
        ([{"property": "page", "op": "not_contains", "value": "math"}], 2),
        ([{"property": "page", "op": "regex", "value": "^/math/g[0-9]$"}], 1),
        ([{"property": "utm_source", "op": "is_set"}], 4),
        ([{"property": "utm_source", "op": "is_not_set"}], 1),
        ([{"property": "person.grade", "value": "G5"}], 3),  # alice's, including her anonymous ones
        ([{"property": "person.city", "op": "is_not_set"}], 2),
        ([{"or": [{"property": "utm_source", "value": "wechat"}, {"property": "person.grade", "value": "G3"}]}], 2),
        ([{"and": [{"property": "utm_source", "op": "is_set"}, {"property": "page", "op": "neq", "value": "/math"}]}],
         2),
    ],
)
def test_filters(loaded: Any, filters: list[Any], expected: int) -> None:
    result = trends(loaded, series=[{"event": "page_view"}], filters=filters)
    assert result["series"][0]["aggregated_value"] == expected


def test_numeric_filters_on_typed_and_untyped_properties(loaded: Any) -> None:
    week = {"date_from": "2026-09-01", "date_to": "2026-09-09"}
    series = [{"event": "order_paid"}]
    assert trends(loaded, series=series, date_range=week,
                  filters=[{"property": "amount", "op": "gt", "value": 1000}])["series"][0]["aggregated_value"] == 2
    assert trends(loaded, series=series, date_range=week, filters=[
        {"property": "amount", "op": "between", "value": [999, 1999]}])["series"][0]["aggregated_value"] == 2
    assert trends(loaded, series=series, date_range=week,
                  filters=[{"property": "amount", "value": 999}])["series"][0]["aggregated_value"] == 1


def test_breakdown_top_values_and_other(loaded: Any) -> None:
    result = trends(loaded, series=[{"event": "page_view"}], breakdown={"properties": ["utm_source"], "limit": 2})
    by_value = {tuple(s["breakdown"]): s["aggregated_value"] for s in result["series"]}
    # douyin (2) is first; of the values with one event the first in order is kept: no value sorts first
    assert by_value == {("douyin",): 2, (None,): 1, ("$other",): 2}
    persons = trends(loaded, series=[{"event": "page_view", "math": "unique_persons"}],
                     breakdown={"properties": ["utm_source", "person.grade"]})
    rows = {tuple(s["breakdown"]): s["aggregated_value"] for s in persons["series"]}
    assert rows == {("douyin", "G5"): 1, ("baidu", "G5"): 1, ("wechat", None): 1, (None, "G3"): 1}


def test_hours_and_previous_period(loaded: Any) -> None:
    result = trends(loaded, series=[{"event": "page_view"}], granularity="hour",
                    date_range={"date_from": "2026-09-02", "date_to": "2026-09-02"})
    assert len(result["buckets"]) == 24
    assert result["buckets"][9] == "2026-09-02T09:00"
    assert data(result)[0] == 1
    assert data(result)[9] == 1
    compared = trends(loaded, series=[{"event": "page_view"}], compare_previous=True,
                      date_range={"date_from": "2026-08-31", "date_to": "2026-09-06"})
    assert compared["previous"]["date_from"] == "2026-08-24"
    assert compared["previous"]["series"][0]["aggregated_value"] == 1
    relative = trends(loaded, series=[{"event": "order_paid"}], date_range={"date_from": "-7d"})
    assert relative["date_from"] == "2026-09-03"
    assert relative["date_to"] == "2026-09-10"
    assert relative["series"][0]["aggregated_value"] == 2


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"kind": "nope"}, "not an analysis model"),
        ({"kind": "trends"}, "series: Field required"),
        ({"kind": "trends", "series": [{"event": "x", "math": "sum"}]}, "needs a numeric property"),
        ({"kind": "trends", "series": [{"event": "x"}], "colour": "red"}, "colour: Extra inputs"),
        ({"kind": "trends", "series": [{"event": "x"}], "date_range": {"date_from": "last week"}}, "not a date"),
        ({"kind": "trends", "series": [{"event": "x"}], "filters": [{"property": "a", "op": "in", "value": 1}]},
         "non-empty list"),
        ({"kind": "trends", "series": [{"event": "x"}], "filters": [{"property": "a", "op": "regex", "value": "("}]},
         "not valid"),
        ({"kind": "trends", "series": [{"event": "x"}], "granularity": "minute",
          "date_range": {"date_from": "-30d"}}, "at most 2 days"),
    ],
)
def test_errors_say_what_and_where(loaded: Any, query: dict[str, Any], words: str) -> None:
    platform, project = loaded.platform, loaded.project
    with pytest.raises(QueryError, match=words):
        QueryService(platform.store).run(project, query, now=NOW)


def test_user_text_cannot_escape_its_literal(loaded: Any) -> None:
    result = trends(loaded, series=[{"event": "page_view' OR '1'='1"}],
                    filters=[{"property": "x') OR 1=1 --", "value": "'; DROP TABLE events; --"}])
    assert result["series"][0]["aggregated_value"] == 0
    assert trends(loaded, series=[{"event": "page_view"}])["series"][0]["aggregated_value"] == 5


def test_api_and_command_line_give_the_same_answer(server: Server, project: ProjectKeys, tmp_path: Path) -> None:
    records = [{**r, "time": r["time"]} for r in HISTORY if r["type"] != "profile_set"]
    response = httpx.post(f"{server.url}/api/v1/ingest", json={"batch": records},
                          headers={"Authorization": f"Bearer {project.write_key}"})
    assert response.json()["rejected"] == 0
    query = {"kind": "trends", "series": [{"event": "page_view", "math": "unique_persons"}],
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-03"}}
    api = {"Authorization": f"Bearer {project.api_key}"}
    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    while True:  # the loader stores acknowledged records within moments
        answer = httpx.post(f"{server.url}/api/v1/query", json=query, headers=api)
        assert answer.status_code == 200, answer.text
        if answer.json()["series"][0]["aggregated_value"] == 3 or dt.datetime.now() > deadline:
            break
    assert answer.json()["series"][0]["data"] == [1, 2, 1]
    again = httpx.post(f"{server.url}/api/v1/query", json=query, headers=api).json()
    assert again["cached"] is True
    assert again["series"] == answer.json()["series"]
    httpx.post(f"{server.url}/api/v1/ingest", headers={"Authorization": f"Bearer {project.write_key}"},
               json={"batch": [{"type": "track", "event": "page_view", "distinct_id": "erin",
                                "time": sh("2026-09-03T12:00:00")}]})
    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    while True:  # new data changes the data version: the cached result is not served
        fresh = httpx.post(f"{server.url}/api/v1/query", json=query, headers=api).json()
        if fresh["series"][0]["aggregated_value"] == 4 or dt.datetime.now() > deadline:
            break
    assert fresh["series"][0]["data"] == [1, 2, 2]
    as_csv = httpx.post(f"{server.url}/api/v1/query?format=csv", json=query, headers=api)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0] == "series,breakdown,2026-09-01,2026-09-02,2026-09-03,total"
    as_form = httpx.post(f"{server.url}/api/v1/query", content=json.dumps(query),
                         headers={**api, "Content-Type": "application/x-www-form-urlencoded"})  # curl -d's default
    assert as_form.status_code == 415
    assert "Content-Type: application/json" in as_form.json()["error"]
    missing = httpx.delete(f"{server.url}/api/v1/query/nothing-here", headers=api)
    assert missing.status_code == 404
    bad = httpx.post(f"{server.url}/api/v1/query", json={"kind": "trends"}, headers=api)
    assert bad.status_code == 400
    assert "series" in bad.json()["error"]
    assert httpx.post(f"{server.url}/api/v1/query", json=query,
                      headers={"Authorization": f"Bearer {project.write_key}"}).status_code == 403
    server.stop()
    path = tmp_path / "query.json"
    path.write_text(json.dumps(query), encoding="utf-8")
    result = CliRunner().invoke(main, ["--data-dir", str(server.settings.data_dir), "--metadata-url",
                                       server.settings.resolved_metadata_url, "query", str(path),
                                       "--project", project.name])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["series"][0]["data"] == [1, 2, 2]
    result = CliRunner().invoke(main, ["--data-dir", str(server.settings.data_dir), "--metadata-url",
                                       server.settings.resolved_metadata_url, "query", str(path),
                                       "--project", project.name, "--csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].endswith(",1,2,2,4")
