"""PostHog compatible /capture/, /batch/, /e/, /i/v0/e/: the official `posthog` Python SDK against a real server,
the body forms posthog-js uses (gzip, base64, lz64 made by the lz-string npm package), identity events, clock
skew, and bad input answered in PostHog's error style while the good events stay."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import shutil
import subprocess
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from posthog import Posthog

from compat_support import NODE_MODULES, ModuleServer, Project, shared

__all__ = ["shared"]


def client(server_url: str, project: Project, **options: Any) -> Posthog:
    return Posthog(project.keys.write_key, host=server_url, sync_mode=True, **options)


def iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_python_sdk(shared: ModuleServer) -> None:
    project = shared.project()
    ph = client(shared.running().url, project, gzip=True)
    ph.capture("$pageview", distinct_id="anon-1",
               properties={"$current_url": "https://edu.example/math", "utm_source": "douyin"})
    ph.alias(previous_id="anon-1", distinct_id="13800000001")
    at = dt.datetime.now(dt.UTC)
    for _ in range(2):  # a client's retry: the same event again, stored once
        ph.capture("lesson_attended", distinct_id="13800000001", properties={"lesson_id": "L-1", "duration_s": 2700},
                   groups={"school": "S-1"}, uuid=str(uuid.UUID(int=7)), timestamp=at)
    ph.set(distinct_id="anon-1", properties={"grade": "G5"})
    ph.set_once(distinct_id="anon-1", properties={"first_channel": "douyin"})
    ph.set_once(distinct_id="anon-1", properties={"first_channel": "baidu"})
    ph.group_identify("school", "S-1", {"name": "No. 1 Middle School"})
    ph.capture("course_viewed", distinct_id="anon-1", properties={"course_id": "C-1", "$set": {"city": "Hangzhou"},
                                                                   "$unset": ["grade"]})
    ph.shutdown()
    assert shared.quarantine(project) == []
    stored = shared.stored(project)

    assert stored.event_names() == ["$pageview", "$create_alias", "lesson_attended", "course_viewed"]
    page = stored.events[0]
    assert (page[1], page[5], page[6]) == ("anon-1", "https://edu.example/math", "douyin")
    assert stored.events[2][3] == str(uuid.UUID(int=7))
    assert len(stored.persons_of(("anonymous_id", "anon-1"), ("anonymous_id", "13800000001"))) == 1
    assert stored.properties_of("anonymous_id", "anon-1") == {"first_channel": "douyin", "city": "Hangzhou"}
    assert stored.entities[("group", "school", "S-1")] == {"name": "No. 1 Middle School"}
    assert "$set" not in json.loads(stored.events[3][4])


def test_identify_groups_and_clock_skew(shared: ModuleServer) -> None:
    project = shared.project()
    base = shared.running().url
    now = dt.datetime.now(dt.UTC)
    behind = now - dt.timedelta(minutes=10)  # the client's clock is ten minutes slow
    batch = [
        {"event": "$pageview", "distinct_id": "anon-9", "timestamp": iso(behind - dt.timedelta(seconds=5)),
         "properties": {"$current_url": "https://edu.example/"}},
        {"event": "$identify", "distinct_id": "u-9", "timestamp": iso(behind - dt.timedelta(seconds=4)),
         "properties": {"$anon_distinct_id": "anon-9"}, "$set": {"grade": "G7"}, "$set_once": {"first": "web"}},
        {"event": "homework_submitted", "distinct_id": "u-9", "timestamp": iso(behind - dt.timedelta(seconds=3)),
         "properties": {"$groups": {"class": "C-7"}, "score": 92}},
    ]
    body = {"api_key": project.keys.write_key, "batch": batch, "sent_at": iso(behind)}
    response = httpx.post(f"{base}/batch/", json=body)
    assert response.json() == {"status": 1, "accepted": 3, "rejected": 0}
    stored = shared.stored(project)
    assert stored.event_names() == ["$pageview", "$identify", "homework_submitted"]
    for (_, _, millis, *_), seconds in zip(stored.events, (5, 4, 3), strict=True):
        assert abs(millis - (now.timestamp() - seconds) * 1000) < 30_000  # corrected by sent_at
    assert len(stored.persons_of(("anonymous_id", "anon-9"), ("login_id", "u-9"), ("anonymous_id", "u-9"))) == 1
    assert stored.properties_of("login_id", "u-9") == {"grade": "G7", "first": "web"}
    assert {p for _, p in stored.resolved} == stored.persons_of(("login_id", "u-9"))


def lz64(text: str) -> str:
    """lz-string's own compressToBase64 (the npm package), as old posthog-js versions send it."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "lz-string").is_dir():
        pytest.skip("needs node and the lz-string npm package (make browser-deps)")
    script = "process.stdout.write(require('lz-string').compressToBase64(require('fs').readFileSync(0, 'utf8')))"
    out = subprocess.run([node, "-e", script], input=text, capture_output=True, text=True, check=True,
                         cwd=NODE_MODULES.parent, timeout=60)
    return out.stdout


FORMS = ("gzip-js", "base64", "lz64", "json-list", "single", "get")


def send_form(base: str, project: Project, form: str) -> int:
    """Three events (one for "single") in one of the request forms PostHog clients use; how many were sent."""
    events = [{"event": "page_view", "distinct_id": f"d-{i}", "properties": {"token": project.keys.write_key,
                                                                            "学校": "一中"}} for i in range(3)]
    payload = json.dumps(events, ensure_ascii=False)
    if form == "gzip-js":
        response = httpx.post(f"{base}/e/?compression=gzip-js&ver=1.449.2", content=gzip.compress(payload.encode()),
                              headers={"Content-Type": "text/plain"})
    elif form == "base64":
        data = base64.b64encode(payload.encode()).decode()
        response = httpx.post(f"{base}/e/?compression=base64", data={"data": data})
    elif form == "lz64":
        response = httpx.post(f"{base}/i/v0/e/?compression=lz64", data={"data": lz64(payload), "compression": "lz64"})
    elif form == "json-list":
        response = httpx.post(f"{base}/capture/", content=payload.encode(),
                              headers={"Content-Type": "application/json"})
    elif form == "single":
        response = httpx.post(f"{base}/capture", json={**events[0], "api_key": project.keys.write_key})
        events = events[:1]
    else:
        response = httpx.get(f"{base}/e/", params={"data": base64.b64encode(payload.encode()).decode()})
    assert response.status_code == 200, (form, response.text)
    assert response.json()["accepted"] == len(events), form
    return len(events)


def test_body_forms(shared: ModuleServer) -> None:
    base = shared.running().url
    sent = {form: (project := shared.project(), send_form(base, project, form)) for form in FORMS}
    stored = shared.stored_many([project for project, _ in sent.values()])
    for form, (project, count) in sent.items():
        events = stored[project.id].events
        assert len(events) == count, form
        assert json.loads(events[0][4]) == {"学校": "一中"}, form  # the key is not kept as a property


BAD = [
    ({"distinct_id": "x"}, "event", "is required"),
    ({"event": "e"}, "distinct_id", "is required"),
    ({"event": "e", "distinct_id": "x", "timestamp": "yesterday"}, "timestamp", "is not a time"),
    ({"event": "$groupidentify", "distinct_id": "x", "properties": {"$group_key": "k"}}, "group_type", "identity type"),
    ({"event": "e", "distinct_id": "x", "$set": [1]}, "$set", "must be an object"),
    ({"event": "e", "distinct_id": "x", "properties": {"$groups": {"Bad Type": "k"}}}, "groups.Bad Type", "identity"),
    ({"event": "$create_alias", "distinct_id": "x", "properties": {}}, "properties.alias", "required"),
    (17, "event", "must be a JSON object"),
]


def test_bad_events_are_quarantined_and_the_rest_kept(shared: ModuleServer) -> None:
    project = shared.project()
    good = {"event": "page_view", "distinct_id": "ok"}
    sent = [x for event, _, _ in BAD for x in (good, event)]
    response = httpx.post(f"{shared.running().url}/batch/", json={"api_key": project.keys.write_key, "batch": sent})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["accepted"], body["rejected"]) == (1, len(BAD), len(BAD))
    for error, (_, field, reason) in zip(body["errors"], BAD, strict=True):
        assert (error["field"], reason in error["reason"]) == (field, True), error
    quarantined = shared.quarantine(project)
    assert {q["source"] for q in quarantined} == {"posthog"}
    assert sorted(q["location"] for q in quarantined) == sorted(
        f"batch[{2 * i + 1}]: {field}" for i, (_, field, _) in enumerate(BAD))
    assert len(shared.stored(project).events) == len(BAD)


def test_bad_requests_and_keys(shared: ModuleServer) -> None:
    project = shared.project()
    base = shared.running().url
    key = project.keys.write_key
    with httpx.Client(timeout=30) as http:
        cases = [
            (http.post(f"{base}/batch/", json={"batch": [{"event": "e", "distinct_id": "x"}]}), 401, "not provided"),
            (http.post(f"{base}/batch/", json={"api_key": "phc_nope", "batch": []}), 401, "invalid"),
            (http.post(f"{base}/batch/?api_key={key}", content=b"{not json"), 400, "not valid JSON"),
            (http.post(f"{base}/batch/?api_key={key}", json={"batch": "x"}), 400, "batch must be a list"),
            (http.post(f"{base}/e/?compression=lz64&api_key={key}", data={"data": "!!"}), 400, "lz-string"),
            (http.post(f"{base}/e/?api_key={key}", data={"data": "@@@"}), 400, "neither JSON nor base64"),
        ]
    for response, status, detail in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"type", "code", "detail", "attr"}
        assert detail in body["detail"], body
    assert [q["source"] for q in shared.quarantine(project)] == ["posthog"] * 4


def test_acknowledged_batch_survives_kill_9(shared: ModuleServer) -> None:
    project = shared.project()
    now = time.time()
    batch = [{"event": "quiz_answered", "distinct_id": f"d-{i % 50}", "uuid": str(uuid.UUID(int=i)),
              "timestamp": iso(dt.datetime.fromtimestamp(now, dt.UTC)), "properties": {"correct": True}}
             for i in range(2000)]
    response = httpx.post(f"{shared.running().url}/batch/", content=gzip.compress(orjson.dumps(
        {"api_key": project.keys.write_key, "batch": batch})), headers={"Content-Encoding": "gzip"}, timeout=60)
    assert response.json()["accepted"] == 2000
    shared.server.kill()  # SIGKILL right after the answer: acknowledged means on disk
    shared.running()
    assert len(shared.stored(project).events) == 2000
