"""Regression tests of issue 13 against one real server: nothing answers 500, a record too deep is refused on
its own, ids beyond the database's integers are 422, deleting what is not there is 404, the sql kind checks
functions by the names the engine reads, an unreadable query body says why, and a retry is stored once
whatever time it carries."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ProjectKeys, Server, create_project, make_settings
from edupulse.api.params import MAX_ID
from edupulse.ingest.jsontext import CUT_DEPTH, cut_deep, loads
from edupulse.ingest.recent_ids import RecentIds
from edupulse.ingest.records import MAX_VALUE_DEPTH

HUGE = 1180591620717411303424  # 2**70


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ProjectKeys, ProjectKeys]]:
    settings = make_settings(tmp_path_factory.mktemp("robust"))
    mine, other = create_project(settings, "Mine"), create_project(settings, "Other")
    server = Server(settings).start()
    yield server, mine, other
    server.kill()


def deep_text(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def native_batch(depth: int, prefix: str) -> str:
    good = [json.dumps({"type": "track", "event": "page_view", "distinct_id": "u", "event_id": f"{prefix}-{i}"})
            for i in (1, 2)]
    bad = ('{"type": "track", "event": "page_view", "distinct_id": "u", "event_id": "' + prefix
           + '-deep", "properties": {"x": ' + deep_text(depth) + "}}")
    return '{"batch": [' + ", ".join([good[0], bad, good[1]]) + "]}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# 1. nesting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH + 1, 256, 300, 1100, 100_000])
def test_a_record_too_deep_is_refused_on_its_own(site: tuple[Server, ProjectKeys, ProjectKeys], depth: int) -> None:
    server, mine, _ = site
    for path, params, headers in (("/api/v1/ingest", {}, bearer(mine.write_key)),
                                  ("/api/v1/ingest/beacon", {"key": mine.write_key}, {})):
        response = httpx.post(f"{server.url}{path}", params=params, headers=headers, timeout=60,
                              content=native_batch(depth, f"{path}-{depth}"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
        assert body["results"][1]["field"] == "properties.x"
        assert f"more than {MAX_VALUE_DEPTH} levels" in body["results"][1]["reason"]


def test_the_depth_limit_itself_is_accepted(site: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, mine, _ = site
    response = httpx.post(f"{server.url}/api/v1/ingest", headers=bearer(mine.write_key), timeout=30,
                          content=native_batch(MAX_VALUE_DEPTH - 1, "at-limit"))  # {"x": <depth-1>} is depth 64
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 3


@pytest.mark.parametrize("depth", [256, 1100])
def test_every_protocol_refuses_only_the_deep_record(site: tuple[Server, ProjectKeys, ProjectKeys],
                                                     depth: int) -> None:
    server, mine, _ = site
    deep = deep_text(depth)
    posthog = ('{"api_key": "' + mine.write_key + '", "batch": [{"event": "e", "distinct_id": "u", "properties": '
               '{"x": ' + deep + '}}, {"event": "e", "distinct_id": "u"}]}')
    response = httpx.post(f"{server.url}/batch/", content=posthog, timeout=30)
    assert (response.status_code, response.json()["accepted"]) == (200, 1), response.text
    segment = ('{"writeKey": "' + mine.write_key + '", "batch": [{"type": "track", "event": "e", "userId": "u", '
               '"properties": {"x": ' + deep + '}}, {"type": "track", "event": "e", "userId": "u"}]}')
    response = httpx.post(f"{server.url}/v1/batch", content=segment, timeout=30)
    assert (response.status_code, response.json()["accepted"]) == (200, 1), response.text
    sensors = ('[{"type": "track", "event": "e", "distinct_id": "u", "properties": {"x": ' + deep + '}}, '
               '{"type": "track", "event": "e", "distinct_id": "u", "properties": {}}]')
    response = httpx.post(f"{server.url}/sa", params={"token": mine.write_key}, timeout=30,
                          data={"data_list": base64.b64encode(gzip.compress(sensors.encode())).decode(), "gzip": "1"})
    assert (response.status_code, response.json()["accepted"]) == (200, 1), response.text
    profiles = ('{"batch": [{"type": "profile_set", "distinct_id": "u", "properties": {"x": ' + deep + '}}, '
                '{"type": "profile_set", "distinct_id": "u", "properties": {"y": 1}}]}')
    response = httpx.post(f"{server.url}/api/v1/ingest", headers=bearer(mine.write_key), content=profiles, timeout=30)
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "accepted"]


def test_cut_deep_replaces_only_what_is_too_deep() -> None:
    text = '{"s": "[[[{{", "v": ' + deep_text(5) + "}"
    assert cut_deep(text.encode(), 3) == b'{"s": "[[[{{", "v": {"a":{"a":null}}}'
    assert cut_deep(text.encode(), 10) == text.encode()
    assert loads(deep_text(2000).encode())["a"]["a"] is not None
    value = loads(deep_text(2000).encode())
    for _ in range(CUT_DEPTH - 1):
        value = value["a"]
    assert value == {"a": None}


def test_deep_statements_and_unhashable_unset_names_are_refused_not_500(
        site: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, mine, _ = site
    response = httpx.post(f"{server.url}/api/v1/ingest", headers=bearer(mine.write_key), timeout=30,
                          json={"batch": [{"type": "profile_unset", "distinct_id": "u", "properties": [{"a": 1}]}]})
    assert response.json()["results"][0]["field"] == "properties[0]"
    statement = {"actor": {"mbox": "mailto:a@b.example"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
                 "object": {"id": "http://school.example/lesson/1",
                            "definition": {"extensions": {"http://x.example/deep": nested(300)}}}}
    text = json.dumps(statement)
    auth = base64.b64encode(f"{mine.write_key}:".encode()).decode()
    response = httpx.post(f"{server.url}/xapi/statements", content=text, timeout=30,
                          headers={"Authorization": f"Basic {auth}", "X-Experience-API-Version": "1.0.3",
                                   "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "more than 64 levels deep" in response.json()["error"]


# 2. integers beyond the database's ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", f"/api/v1/dashboards/{HUGE}", None),
    ("GET", f"/api/v1/quarantine?offset={HUGE}", None),
    ("PUT", f"/api/v1/users/{HUGE}/role", {"role": "viewer"}),
    ("POST", f"/api/v1/users/{HUGE}/enable", None),
    ("POST", f"/api/v1/users/{HUGE}/password", {"password": "a long new password"}),
    ("POST", f"/api/v1/dashboards/{HUGE}/share", {"enabled": True}),
    ("GET", f"/api/v1/advisors/{HUGE}/assignments", None),
    ("POST", "/api/v1/dashboards/1/items", {"report_id": HUGE}),
    ("POST", "/api/v1/reports", {"name": "r", "query": {"kind": "trends", "series": [{"event": "e"}]},
                                 "dashboard_id": HUGE}),
    ("GET", f"/api/v1/audit?before_id={HUGE}", None),
    ("DELETE", f"/api/v1/keys/{MAX_ID + 1}", None),
])
def test_huge_ids_are_422_with_the_bound(site: tuple[Server, ProjectKeys, ProjectKeys], method: str, path: str,
                                         body: Any) -> None:
    server, mine, _ = site
    response = httpx.request(method, f"{server.url}{path}", json=body, headers=bearer(mine.api_key), timeout=30)
    assert response.status_code == 422, response.text
    assert str(MAX_ID) in response.text


# 3. deleting what is not there ----------------------------------------------------------------------


def test_delete_of_a_missing_or_foreign_report_or_dashboard_is_404(
        site: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, mine, other = site
    query = {"kind": "trends", "series": [{"event": "page_view"}]}
    board = httpx.post(f"{server.url}/api/v1/dashboards", json={"name": "Theirs"}, headers=bearer(other.api_key),
                       timeout=30).json()
    report = httpx.post(f"{server.url}/api/v1/reports", json={"name": "Theirs", "query": query,
                                                             "dashboard_id": board["id"]},
                        headers=bearer(other.api_key), timeout=30).json()
    for path in (f"/api/v1/reports/{report['id']}", f"/api/v1/dashboards/{board['id']}", "/api/v1/reports/999999",
                 "/api/v1/dashboards/999999"):
        response = httpx.delete(f"{server.url}{path}", headers=bearer(mine.api_key), timeout=30)
        assert response.status_code == 404, (path, response.text)
    still = httpx.get(f"{server.url}/api/v1/dashboards/{board['id']}", headers=bearer(other.api_key), timeout=30)
    assert [i["report"]["id"] for i in still.json()["items"]] == [report["id"]]
    gone = httpx.delete(f"{server.url}/api/v1/reports/{report['id']}", headers=bearer(other.api_key), timeout=30)
    assert (gone.status_code, gone.json()) == (200, {"deleted": report["id"]})


# 6. functions by their rendered names ---------------------------------------------------------------


@pytest.mark.parametrize("sql", ["select version()", 'select "version"()', "SELECT VERSION() AS v FROM events",
                                 "select current_user", "select 'x'.getenv()"])
def test_sql_refuses_functions_by_the_engines_name(site: tuple[Server, ProjectKeys, ProjectKeys], sql: str) -> None:
    server, mine, _ = site
    response = httpx.post(f"{server.url}/api/v1/query", json={"kind": "sql", "sql": sql},
                          headers=bearer(mine.api_key), timeout=30)
    assert response.status_code == 400, response.text
    assert "is not allowed" in response.json()["error"]


def test_sql_still_runs_ordinary_functions(site: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, mine, _ = site
    response = httpx.post(f"{server.url}/api/v1/query", headers=bearer(mine.api_key), timeout=30,
                          json={"kind": "sql", "sql": "select count(*) as n, lower('A') as a from events t(x)"})
    assert response.status_code in (200, 400), response.text
    response = httpx.post(f"{server.url}/api/v1/query", headers=bearer(mine.api_key), timeout=30,
                          json={"kind": "sql", "sql": "select count(*) as n, upper('a') as version from events"})
    assert response.status_code == 200, response.text


# 7. an unreadable query body ------------------------------------------------------------------------


def test_a_query_body_too_deep_says_why(site: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, mine, _ = site
    headers = {**bearer(mine.api_key), "Content-Type": "application/json"}
    response = httpx.post(f"{server.url}/api/v1/query", content="[" * 100_000 + "]" * 100_000, headers=headers,
                          timeout=30)
    assert response.status_code == 400
    assert "nests arrays and objects too deeply" in response.json()["detail"]
    response = httpx.post(f"{server.url}/api/v1/reports", content=b'{"name": "\xff"}', headers=headers, timeout=30)
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["detail"]


# 5. Allow lists every method of the path ------------------------------------------------------------


def test_405_allows_every_method_of_the_path(site: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, mine, _ = site
    response = httpx.patch(f"{server.url}/api/v1/reports/1", headers=bearer(mine.api_key), timeout=30)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"PUT", "DELETE"}


# 4. a retry with another time -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_retry_stamped_with_a_new_time_is_stored_once(site: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, mine, _ = site
    now = dt.datetime.now(dt.UTC)

    def send(sent: dt.datetime) -> None:
        at = sent.isoformat()
        batch = [{"type": "track", "event": "retried", "distinct_id": "r", "event_id": "retry-1", "time": at},
                 {"type": "track", "event": "retried", "distinct_id": "r", "identities": {"mobile": "139"},
                  "event_id": "retry-2", "time": at},
                 {"type": "profile_set", "distinct_id": "r", "event_id": "retry-3", "time": at,
                  "properties": {"grade": "G5"}},
                 {"type": "item_set", "item_type": "course", "item_id": "c", "event_id": "retry-4", "time": at,
                  "properties": {"title": "Math"}}]
        response = httpx.post(f"{server.url}/api/v1/ingest", json={"batch": batch}, headers=bearer(mine.write_key),
                              timeout=30)
        assert response.json()["accepted"] == 4, response.text

    send(now - dt.timedelta(days=2))
    send(now - dt.timedelta(seconds=30))  # the client stamped the send time on the retry
    server.stop()
    server.start()  # and again after a restart, which reloads the index from the store
    send(now - dt.timedelta(minutes=1))
    server.stop()
    try:
        assert server.query("SELECT count(*) FROM events WHERE event = 'retried'") == [(2,)]
        assert server.query("SELECT count(*) FROM profile_ops WHERE insert_id = 'retry-3'") == [(1,)]
        assert server.query("SELECT count(*) FROM entity_ops WHERE insert_id = 'retry-4'") == [(1,)]
    finally:
        server.start()


def test_the_recent_index_finds_ids_by_table_and_project_and_forgets_old_ones() -> None:
    recent = RecentIds(window_us=1_000)
    for i in range(200):
        recent.add([("events", 1, f"id{i}"), ("profile_ops", 1, f"op{i}")], received_us=i * 10)
    assert len(recent.chunks) <= 9  # merged as they grow: about log2(n) arrays
    assert recent.maybe_stored("events", 1, ["id199", "id150", "op199", "nope"]) == ["id199", "id150"]
    assert recent.maybe_stored("events", 2, ["id199"]) == []
    assert recent.maybe_stored("profile_ops", 1, ["op199", "id199"]) == ["op199"]
    recent.prune(10_000_000)
    assert recent.maybe_stored("events", 1, ["id199"]) == []
    assert len(recent) == 0
    off = RecentIds(window_us=0)
    off.add([("events", 1, "x")], received_us=1)
    assert off.maybe_stored("events", 1, ["x"]) == []
