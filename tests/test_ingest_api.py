"""The native ingestion API against a real server process: every record type, and every kind of bad input
answered with a clear error while the good records of the same batch are kept."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
from typing import Any

import httpx
import orjson
import pytest

from conftest import ProjectKeys, Server, cli

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(delta: dt.timedelta = dt.timedelta(0)) -> str:
    return (NOW + delta).isoformat()


def post(server: Server, key: str | None, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        hdrs["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{server.url}/api/v1/ingest", content=content, headers=hdrs, timeout=30)


@pytest.fixture
def running(server: Server) -> tuple[Server, ProjectKeys]:
    keys = server.create_project()
    server.start()
    return server, keys


def track(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "page_view", "distinct_id": f"dev-{i}", "time": iso(), "event_id": f"e-{i}",
            **extra}


def test_every_record_type_is_stored(running: tuple[Server, ProjectKeys]) -> None:
    server, keys = running
    batch = [
        {"type": "track", "event": "lesson_attended", "distinct_id": "dev-1", "time": iso(),
         "event_id": "att-1", "properties": {"lesson_id": "L-1", "duration_s": 2710, "mode": "live", "mood": "ok"},
         "groups": {"class": "C-1", "school": "S-1"}},
        {"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-1", "time": iso()},
        {"type": "alias", "distinct_id": "alice", "distinct_id_type": "login_id", "alias": "13800000001",
         "alias_type": "mobile", "time": iso()},
        {"type": "profile_set", "distinct_id": "alice", "distinct_id_type": "login_id", "time": iso(),
         "properties": {"grade": "G5", "city": "Hangzhou"}},
        {"type": "profile_set_once", "distinct_id": "alice", "distinct_id_type": "login_id", "time": iso(),
         "properties": {"first_channel": "douyin"}},
        {"type": "profile_increment", "distinct_id": "alice", "distinct_id_type": "login_id", "time": iso(),
         "properties": {"lessons": 3}},
        {"type": "profile_append", "distinct_id": "alice", "distinct_id_type": "login_id", "time": iso(),
         "properties": {"tags": ["math"]}},
        {"type": "profile_unset", "distinct_id": "alice", "distinct_id_type": "login_id", "time": iso(),
         "properties": ["city"]},
        {"type": "profile_set", "distinct_id": "bob", "distinct_id_type": "login_id", "time": iso(),
         "properties": {"grade": "G1"}},
        {"type": "profile_delete", "distinct_id": "bob", "distinct_id_type": "login_id",
         "time": iso(dt.timedelta(seconds=1))},
        {"type": "group_set", "group_type": "school", "group_key": "S-1", "time": iso(),
         "properties": {"name": "No. 1 Middle School", "size": 1200}},
        {"type": "item_set", "item_type": "course", "item_id": "C-MATH", "time": iso(),
         "properties": {"title": "Math G5", "price": 1999}},
    ]
    response = post(server, keys.write_key, {"batch": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (len(batch), 0)
    assert [r["status"] for r in body["results"]] == ["accepted"] * len(batch)
    server.stop()

    [(event, lesson, duration, mood, school, klass)] = server.query(
        "SELECT event, prop_lesson_id, prop_duration_s, properties->>'mood', group_0, group_2 FROM events")
    assert (event, lesson, duration, mood, school, klass) == ("lesson_attended", "L-1", 2710.0, "ok", "S-1", "C-1")
    # the anonymous event belongs to alice, whose identities are all one person
    persons = server.query("SELECT id_type, id_value, person_id FROM identities ORDER BY id_value")
    alice = {p for t, v, p in persons if v in ("alice", "dev-1", "13800000001")}
    assert len(alice) == 1
    [(resolved,)] = server.query("SELECT resolved_person_id FROM events_resolved")
    assert resolved in alice
    [(props,)] = server.query("SELECT properties FROM persons WHERE person_id = ?", [next(iter(alice))])
    assert json.loads(props) == {"grade": "G5", "first_channel": "douyin", "lessons": 3, "tags": ["math"]}
    bob = [p for t, v, p in persons if v == "bob"]
    assert server.query("SELECT properties FROM persons WHERE person_id = ?", bob) in ([], [(None,)], [("{}",)])
    entities = server.query("SELECT kind, entity_type, entity_key FROM entities ORDER BY kind")
    assert entities == [("group", "school", "S-1"), ("item", "course", "C-MATH")]


def test_retried_records_are_stored_once(running: tuple[Server, ProjectKeys]) -> None:
    server, keys = running
    batch = [track(i) for i in range(5)] + [{**track(99), "event_id": None, "$insert_id": "ins-99"}]
    for _ in range(3):
        assert post(server, keys.write_key, {"batch": batch}).json()["accepted"] == 6
    server.stop()
    assert server.query("SELECT count(*), count(DISTINCT insert_id) FROM events") == [(6, 6)]


def test_gzip_body(running: tuple[Server, ProjectKeys]) -> None:
    server, keys = running
    body = gzip.compress(orjson.dumps({"batch": [track(1), track(2)]}))
    response = post(server, keys.write_key, body, {"Content-Encoding": "gzip"})
    assert response.json()["accepted"] == 2
    bad = post(server, keys.write_key, b"\x1f\x8bnot really gzip", {"Content-Encoding": "gzip"})
    assert bad.status_code == 400
    assert "gzip" in bad.json()["error"]


BAD_RECORDS = [
    ({"type": "track", "distinct_id": "d", "time": iso()}, "event", "required"),
    ({"type": "track", "event": "page_view", "time": iso()}, "distinct_id", ""),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "properties": [1, 2]}, "properties", "object"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "time": "last tuesday"}, "time", "ISO 8601"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "time": iso(dt.timedelta(days=30))},
     "time", "future"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "time": "1970-01-02T00:00:00Z"}, "time", "past"),
    ({"type": "track", "event": "order_paid", "distinct_id": "d", "properties": {"amount": "lots"}},
     "properties.amount", "number"),
    ({"type": "track", "event": 42, "distinct_id": "d"}, "event", ""),
    ({"type": "teleport", "distinct_id": "d"}, "type", ""),
    ("not an object", "record", "object"),
    ({"type": "alias", "distinct_id": "d"}, "", ""),
    ]


def test_bad_records_are_rejected_with_a_reason_and_the_rest_kept(running: tuple[Server, ProjectKeys]) -> None:
    server, keys = running
    admin = {"Authorization": f"Bearer {keys.api_key}"}
    for n, (record, field, words) in enumerate(BAD_RECORDS):
        response = post(server, keys.write_key, {"batch": [track(2 * n), record, track(2 * n + 1)]})
        assert response.status_code == 200
        body = response.json()
        assert (body["accepted"], body["rejected"]) == (2, 1), record
        result = body["results"][1]
        assert result["status"] == "rejected"
        assert result["field"].startswith(field), (record, result)
        assert words.lower() in result["reason"].lower(), (record, result)
        assert len(result["reason"]) > 10  # a sentence a person can act on
        quarantined = httpx.get(f"{server.url}/api/v1/quarantine", headers=admin, params={"limit": 1}).json()
        assert quarantined["total"] == n + 1
        assert quarantined["records"][0]["reason"] == result["reason"]
    server.stop()
    assert server.query("SELECT count(*) FROM events") == [(2 * len(BAD_RECORDS),)]


BAD_BODIES = [
    (b'{"batch": [', 400, "not valid JSON"),
    (b"\xff\xfe{}", 400, "not UTF-8"),
    (b"[1, 2]", 400, '{"batch"'),
    (b'{"records": []}', 400, '{"batch"'),
    (b'{"batch": {"type": "track"}}', 400, '{"batch"'),
]


def test_bad_bodies(running: tuple[Server, ProjectKeys]) -> None:
    server, keys = running
    for body, status, words in BAD_BODIES:
        response = post(server, keys.write_key, body)
        assert response.status_code == status, body
        assert words in response.json()["error"], body


def test_unparseable_bodies_are_quarantined(running: tuple[Server, ProjectKeys]) -> None:
    server, keys = running
    post(server, keys.write_key, b'{"batch": [{"type": "track"')
    server.stop()
    out = cli(server.data_dir, "quarantine", "list", "--project", keys.name).stdout
    assert "request body" in out
    assert "not valid JSON" in out


def test_keys(running: tuple[Server, ProjectKeys]) -> None:
    server, keys = running
    body = {"batch": [track(1)]}
    missing = post(server, None, body)
    assert missing.status_code == 401
    unknown = post(server, "wk_not-a-real-key", body)
    assert unknown.status_code == 401
    assert post(server, keys.api_key, body).status_code == 401  # the secret key is not a write key
    admin = httpx.get(f"{server.url}/api/v1/quarantine", headers={"Authorization": f"Bearer {keys.write_key}"})
    assert admin.status_code in (401, 403)  # the public write key cannot read anything
    assert "API key" in admin.json()["detail"]
    assert post(server, keys.write_key, body).status_code == 200


def test_limits(server_factory: Any) -> None:
    server = server_factory({"EDUPULSE_INGEST__MAX_BODY_BYTES": "20000", "EDUPULSE_INGEST__MAX_BATCH_RECORDS": "50",
                             "EDUPULSE_INGEST__MAX_RECORD_BYTES": "2000"})
    keys = server.create_project()
    server.start()
    too_many = post(server, keys.write_key, {"batch": [track(i) for i in range(51)]})
    assert too_many.status_code == 413
    assert "at most 50" in too_many.json()["error"]
    too_big = post(server, keys.write_key, {"batch": [track(i, properties={"pad": "x" * 1500}) for i in range(20)]})
    assert too_big.status_code == 413
    assert "20000" in too_big.json()["error"]
    bomb = gzip.compress(orjson.dumps({"batch": [track(1, properties={"pad": "x" * 100_000})]}))
    assert post(server, keys.write_key, bomb, {"Content-Encoding": "gzip"}).status_code == 413
    one_big = post(server, keys.write_key, {"batch": [track(1), track(2, properties={"pad": "x" * 3000})]})
    assert one_big.status_code == 200
    assert one_big.json()["results"][1]["reason"].endswith("at most 2000 per record")
    assert one_big.json()["accepted"] == 1


def test_quarantine_list_command_for_unknown_project(tmp_path: Any) -> None:
    result = subprocess.run([sys.executable, "-m", "edupulse", "--data-dir", str(tmp_path), "quarantine", "list",
                             "--project", "Nope"], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "Nope" in result.stderr
