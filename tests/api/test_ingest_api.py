"""The native ingestion API against a real server process: every record type, and every kind of bad input
answered with a clear error while the good records of the same batch are kept."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from conftest import ProjectKeys, Server, ServerFactory, cli

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(delta: dt.timedelta = dt.timedelta(0)) -> str:
    return (NOW + delta).isoformat()


def post(server: Server, key: str | None, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes | Iterator) else orjson.dumps(body)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        hdrs["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{server.url}/api/v1/ingest", content=content, headers=hdrs, timeout=30)


def quarantine(server: Server, keys: ProjectKeys, limit: int = 100) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/quarantine", params={"limit": limit}, timeout=30,
                         headers={"Authorization": f"Bearer {keys.api_key}"})
    assert response.status_code == 200, response.text
    return response.json()


def track(i: int | str, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "page_view", "distinct_id": f"dev-{i}", "time": iso(), "event_id": f"e-{i}",
            **extra}


def test_every_record_type_is_stored(server: Server, project: ProjectKeys) -> None:
    later = iso(dt.timedelta(seconds=1))
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
         "properties": {"first_channel": "douyin", "grade": "G9"}},
        {"type": "profile_increment", "distinct_id": "alice", "distinct_id_type": "login_id", "time": iso(),
         "properties": {"lessons": 3}},
        {"type": "profile_increment", "distinct_id": "13800000001", "distinct_id_type": "mobile", "time": later,
         "properties": {"lessons": 2}},
        {"type": "profile_append", "distinct_id": "alice", "distinct_id_type": "login_id", "time": iso(),
         "properties": {"tags": ["math"]}},
        {"type": "profile_append", "distinct_id": "alice", "distinct_id_type": "login_id", "time": later,
         "properties": {"tags": "english"}},
        {"type": "profile_unset", "distinct_id": "alice", "distinct_id_type": "login_id", "time": later,
         "properties": ["city"]},
        {"type": "profile_set", "distinct_id": "bob", "distinct_id_type": "login_id", "time": iso(),
         "properties": {"grade": "G1"}},
        {"type": "profile_delete", "distinct_id": "bob", "distinct_id_type": "login_id", "time": later},
        {"type": "group_set", "group_type": "school", "group_key": "S-1", "time": iso(),
         "properties": {"name": "No. 1 Middle School", "size": 1200}},
        {"type": "item_set", "item_type": "course", "item_id": "C-MATH", "time": iso(),
         "properties": {"title": "Math G5", "price": 1999}},
        {"type": "track", "event": "course_viewed", "distinct_id": "alice", "is_login_id": True, "time": later,
         "event_id": "view-1", "properties": {"course_id": "C-MATH"}, "groups": {"tutoring_center": "TC-9"}},
    ]
    response = post(server, project.write_key, {"batch": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (len(batch), 0), body
    assert body["results"] == [{"index": i, "status": "accepted"} for i in range(len(batch))]
    server.stop()

    events = server.query(
        "SELECT event, insert_id, distinct_id, prop_lesson_id, prop_duration_s, prop_mode, properties->>'mood', "
        "prop_course_id, group_0, group_2, group_3 FROM events ORDER BY time, event")
    assert events == [
        ("lesson_attended", "att-1", "dev-1", "L-1", 2710.0, "live", "ok", None, "S-1", "C-1", None),
        # a group type the project did not have takes the next free slot
        ("course_viewed", "view-1", "alice", None, None, None, None, "C-MATH", None, None, "TC-9"),
    ]
    identities = server.query("SELECT id_type, id_value, person_id FROM identities")
    alice = {p for _, v, p in identities if v in ("alice", "dev-1", "13800000001")}
    assert len(alice) == 1, identities  # anonymous device, login and mobile are one person
    assert {(t, v) for t, v, _ in identities} >= {("anonymous_id", "dev-1"), ("login_id", "alice"),
                                                   ("mobile", "13800000001"), ("login_id", "bob")}
    resolved = server.query("SELECT DISTINCT resolved_person_id FROM events_resolved")
    assert resolved == [(next(iter(alice)),)]  # the event sent before identify belongs to alice too
    [(props,)] = server.query("SELECT properties FROM persons WHERE person_id = ?", [next(iter(alice))])
    assert json.loads(props) == {"grade": "G5", "first_channel": "douyin", "lessons": 5, "tags": ["math", "english"]}
    [bob] = {p for _, v, p in identities if v == "bob"}
    assert [json.loads(p or "{}") for (p,) in server.query("SELECT properties FROM persons WHERE person_id = ?",
                                                            [bob])] in ([], [{}])
    entities = server.query("SELECT kind, entity_type, entity_key, properties FROM entities ORDER BY kind")
    assert [(k, t, key, json.loads(p)) for k, t, key, p in entities] == [
        ("group", "school", "S-1", {"name": "No. 1 Middle School", "size": 1200}),
        ("item", "course", "C-MATH", {"title": "Math G5", "price": 1999}),
    ]


def test_times_numbers_and_empty_batches(server: Server, project: ProjectKeys) -> None:
    millis = int(NOW.timestamp() * 1000) - 60_000
    batch = [
        track("ms", time=millis),
        track("naive", time=NOW.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None).isoformat()),
        track("none", time=None),
        {"type": "track", "event": "page_view", "distinct_id": 10086, "event_id": "numeric-id"},
    ]
    sent = dt.datetime.now(dt.UTC).timestamp() * 1000
    response = post(server, project.write_key, {"batch": batch})
    answered = dt.datetime.now(dt.UTC).timestamp() * 1000
    assert response.json()["accepted"] == 4, response.text
    empty = post(server, project.write_key, {"batch": []})
    assert empty.status_code == 200
    assert empty.json() == {"accepted": 0, "rejected": 0, "results": []}
    server.stop()
    rows = dict(server.query("SELECT insert_id, epoch_ms(time) FROM events"))
    assert rows["e-ms"] == millis
    assert rows["e-naive"] == int(NOW.timestamp() * 1000)  # naive times are read in the project's zone (UTC+8)
    assert sent - 1 <= rows["e-none"] <= answered + 1  # no time: when the server received it
    assert server.query("SELECT distinct_id FROM events WHERE insert_id = 'numeric-id'") == [("10086",)]


def test_retried_records_are_stored_once(server_factory: ServerFactory, project: ProjectKeys) -> None:
    server = server_factory().start()
    batch = [
        *(track(i) for i in range(5)),
        {**track(99), "event_id": None, "$insert_id": "ins-99"},
        track("no-time", time=None),  # the server gives it the time it arrives: a retry arrives later
        {"type": "profile_increment", "distinct_id": "u-1", "time": iso(), "event_id": "inc-1",
         "properties": {"lessons": 1}},
        {"type": "item_set", "item_type": "course", "item_id": "C-1", "time": iso(), "event_id": "item-1",
         "properties": {"title": "Math"}},
    ]
    duplicate_inside = {"batch": [track("twice"), track("twice")]}
    for _ in range(3):
        assert post(server, project.write_key, {"batch": batch}).json()["accepted"] == len(batch)
    assert post(server, project.write_key, duplicate_inside).json()["accepted"] == 2
    server.kill()  # and once more after a crash, when the first copies are only in the store
    server.start()
    assert post(server, project.write_key, {"batch": batch}).json()["accepted"] == len(batch)
    server.stop()
    assert server.query("SELECT count(*), count(DISTINCT insert_id) FROM events") == [(8, 8)]
    assert server.query("SELECT count(*) FROM profile_ops WHERE insert_id = 'inc-1'") == [(1,)]
    assert server.query("SELECT count(*) FROM entity_ops WHERE insert_id = 'item-1'") == [(1,)]
    [(props,)] = server.query("SELECT p.properties FROM persons p JOIN identities i USING (project_id, person_id) "
                              "WHERE i.id_value = 'u-1'")
    assert json.loads(props) == {"lessons": 1}


def test_retried_record_without_a_time_is_stored_once(server: Server, project: ProjectKeys) -> None:
    """Without a time the server stamps each attempt when it arrives; the ID still makes the retry a duplicate."""
    batch = {"batch": [{"type": "track", "event": "page_view", "distinct_id": "d-1", "event_id": "no-time"}]}
    for _ in range(3):
        assert post(server, project.write_key, batch).json()["accepted"] == 1
        time.sleep(0.6)  # the loader stores the first attempt before the retry arrives
    server.stop()
    assert server.query("SELECT count(*) FROM events") == [(1,)]


def test_gzip_body(server: Server, project: ProjectKeys) -> None:
    body = gzip.compress(orjson.dumps({"batch": [track(1), track(2)]}))
    response = post(server, project.write_key, body, {"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    bad = post(server, project.write_key, b"\x1f\x8bnot really gzip", {"Content-Encoding": "gzip"})
    assert bad.status_code == 400
    assert "not valid gzip" in bad.json()["error"]
    truncated = post(server, project.write_key, body[: len(body) // 2], {"Content-Encoding": "gzip"})
    assert truncated.status_code == 400, truncated.text
    assert "not valid gzip: the compressed data ends before the end" in truncated.json()["error"]
    brotli = post(server, project.write_key, b"{}", {"Content-Encoding": "br"})
    assert brotli.status_code == 415
    assert "'br'" in brotli.json()["error"]
    server.stop()
    assert server.query("SELECT insert_id FROM events ORDER BY 1") == [("e-1",), ("e-2",)]


# (record, the field named in the result, words of the reason)
BAD_RECORDS: list[tuple[Any, str, str]] = [
    ({"type": "track", "distinct_id": "d", "time": iso()}, "event", "required"),
    ({"type": "track", "event": "page_view", "time": iso()}, "distinct_id", "required"),
    ({"type": "track", "event": "page_view", "distinct_id": ""}, "distinct_id", "empty"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "properties": [1, 2]}, "properties",
     "must be an object, got list"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "properties": "x=1"}, "properties",
     "must be an object, got str"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "time": "last tuesday"}, "time", "ISO 8601"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "time": True}, "time", "true/false"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "time": iso(dt.timedelta(days=30))},
     "time", "in the future"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "time": "1970-01-02T00:00:00Z"}, "time",
     "too far in the past"),
    ({"type": "track", "event": "order_paid", "distinct_id": "d", "properties": {"amount": "lots"}},
     "properties.amount", "must be a number"),
    ({"type": "track", "event": "answer", "distinct_id": "d", "properties": {"correct": "maybe"}},
     "properties.correct", "true or false"),
    ({"type": "track", "event": 42, "distinct_id": "d"}, "event", "string"),
    ({"type": "track", "event": "x" * 101, "distinct_id": "d"}, "event", "at most 100"),
    ({"type": "track", "event": "page_view", "distinct_id": "d", "groups": ["S-1"]}, "groups", "object"),
    ({"type": "teleport", "distinct_id": "d"}, "type", "not a record type"),
    ({"distinct_id": "d"}, "type", "not a record type"),
    ("not an object", "record", "must be an object"),
    ({"type": "alias", "distinct_id": "d"}, "alias", "give alias"),
    ({"type": "identify", "distinct_id": "d"}, "anonymous_id", "give anonymous_id"),
    ({"type": "profile_increment", "distinct_id": "d", "properties": {"lessons": "many"}}, "properties.lessons",
     "needs numbers"),
    ({"type": "group_set", "group_key": "S-1"}, "group_type", "not an identity type"),
    ({"type": "item_set", "item_type": "course"}, "item_id", "required"),
    ({**track("bad-id"), "event_id": {"id": 1}}, "event_id", "must be a string"),
]


def test_bad_records_are_rejected_with_a_reason_and_the_rest_kept(server: Server, project: ProjectKeys) -> None:
    for n, (record, field, words) in enumerate(BAD_RECORDS):
        response = post(server, project.write_key, {"batch": [track(2 * n), record, track(2 * n + 1)]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["accepted"], body["rejected"]) == (2, 1), (record, body)
        assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
        result = body["results"][1]
        assert result["index"] == 1
        assert result["field"] == field, (record, result)
        assert words.lower() in result["reason"].lower(), (record, result)
        assert len(result["reason"]) > 10  # a sentence a person can act on
        quarantined = quarantine(server, project, limit=1)
        assert quarantined["total"] == n + 1
        [entry] = quarantined["records"]
        assert entry["reason"] == result["reason"]
        assert entry["location"] == f"record 1: {field}"
        assert entry["source"] == "native"
        assert entry["record"] == json.dumps(record, separators=(",", ":"))
    everything = quarantine(server, project, limit=1000)
    assert len(everything["records"]) == len(BAD_RECORDS)
    server.stop()
    assert server.query("SELECT count(*) FROM events") == [(2 * len(BAD_RECORDS),)]
    listed = json.loads("[" + ",".join(cli(server.settings, "quarantine", "list", "--project", project.name,
                                           "--json", "--limit", "1000").stdout.splitlines()) + "]")
    assert [(r["location"], r["reason"]) for r in listed] == [
        (r["location"], r["reason"]) for r in everything["records"]]
    text = cli(server.settings, "quarantine", "list", "--project", project.name, "--limit", "3").stdout
    assert "record 1: event_id" in text
    assert "reason: must be a string" in text


# (body, status, words of the error)
BAD_BODIES = [
    (b'{"batch": [', 400, "not valid JSON"),
    (b"", 400, "not valid JSON"),
    (b"\xff\xfe{}", 400, "not UTF-8"),
    (b'{"batch": ["caf\xe9"]}', 400, "not UTF-8: invalid byte at offset 15"),
    (b"[1, 2]", 400, '{"batch"'),
    (b"null", 400, '{"batch"'),
    (b'{"records": []}', 400, '{"batch"'),
    (b'{"batch": {"type": "track"}}', 400, '{"batch"'),
]


def test_bad_bodies_are_refused_with_a_reason(server: Server, project: ProjectKeys) -> None:
    errors = []
    for body, status, words in BAD_BODIES:
        response = post(server, project.write_key, body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["error"], (body, response.text)
        errors.append(response.json()["error"])
    # refused bodies are kept where an admin can see them, newest first
    entries = quarantine(server, project)["records"]
    assert [(e["location"], e["reason"]) for e in entries] == [("request body", error) for error in errors[::-1]]
    assert entries[-1]["record"] == '{"batch": ['
    server.stop()
    assert server.query("SELECT count(*) FROM events") == [(0,)]
    out = cli(server.settings, "quarantine", "list", "--project", project.name).stdout
    assert "request body" in out
    assert "reason: body is not valid JSON" in out


def test_keys(server: Server, project: ProjectKeys) -> None:
    body = {"batch": [track(1)]}
    missing = post(server, None, body)
    assert missing.status_code == 401
    assert "Authorization: Bearer <write key>" in missing.json()["detail"]
    not_bearer = post(server, None, body, {"Authorization": f"Basic {project.write_key}"})
    assert not_bearer.status_code == 401
    unknown = post(server, "wk_not-a-real-key", body)
    assert unknown.status_code == 401
    assert "unknown write key" in unknown.json()["detail"]
    secret = post(server, project.api_key, body)  # the secret API key is not a write key
    assert secret.status_code == 401
    assert "unknown write key" in secret.json()["detail"]
    admin = httpx.get(f"{server.url}/api/v1/quarantine", headers={"Authorization": f"Bearer {project.write_key}"})
    assert admin.status_code == 403  # the public write key cannot read anything
    assert "write key" in admin.json()["detail"]
    assert httpx.get(f"{server.url}/api/v1/quarantine").status_code == 401
    assert httpx.get(f"{server.url}/api/v1/quarantine", headers={"Authorization": "Bearer sk_guess"}).status_code \
        == 401
    assert post(server, project.write_key, body).status_code == 200
    server.stop()
    assert server.query("SELECT insert_id FROM events") == [("e-1",)]


def test_limits(server_factory: ServerFactory, project: ProjectKeys) -> None:
    server = server_factory({"EDUPULSE_INGEST__MAX_BODY_BYTES": "20000", "EDUPULSE_INGEST__MAX_BATCH_RECORDS": "50",
                             "EDUPULSE_INGEST__MAX_RECORD_BYTES": "2000"}).start()
    too_many = post(server, project.write_key, {"batch": [track(i) for i in range(51)]})
    assert too_many.status_code == 413
    assert too_many.json()["error"] == "batch has 51 records; at most 50 per request"
    assert post(server, project.write_key, {"batch": [track(i) for i in range(50)]}).json()["accepted"] == 50

    too_big = post(server, project.write_key, {"batch": [track(i, properties={"pad": "x" * 1500}) for i in range(20)]})
    assert too_big.status_code == 413
    assert "the limit is 20000" in too_big.json()["error"]
    chunks = iter([b'{"batch": [', *(orjson.dumps(track(i)) + b"," for i in range(200)), b"{}]}"])
    chunked = post(server, project.write_key, chunks)  # no Content-Length: counted while it arrives
    assert chunked.status_code == 413
    assert "over the limit of 20000 bytes" in chunked.json()["error"]
    bomb = gzip.compress(orjson.dumps({"batch": [track(1, properties={"pad": "x" * 100_000})]}))
    assert len(bomb) < 20000
    zipped = post(server, project.write_key, bomb, {"Content-Encoding": "gzip"})
    assert zipped.status_code == 413
    assert "once decompressed" in zipped.json()["error"]

    one_big = post(server, project.write_key, {"batch": [track(100), track(101, properties={"pad": "x" * 3000})]})
    assert one_big.status_code == 200
    assert one_big.json()["accepted"] == 1
    result = one_big.json()["results"][1]
    assert result["field"] == "record"
    assert result["reason"].endswith("bytes as JSON; at most 2000 per record")
    assert quarantine(server, project, limit=1)["records"][0]["reason"] == result["reason"]
    server.stop()
    assert server.query("SELECT count(*) FROM events") == [(51,)]
