"""Sensors Analytics compatible /sa and /sa.gif: the official Python SDK (PyPI sensorsanalyticssdk) against a
real server, every record type, ID-Mapping 3.0, and bad input answered with reasons while good records stay."""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sensorsanalytics
from sensorsanalytics import SensorsAnalyticsIdentity as Identity

from compat_support import ModuleServer, Project, shared
from edupulse.ingest.sensors import project_slug

__all__ = ["shared"]


def sa_url(server_url: str, project: Project, path: str = "/sa") -> str:
    return f"{server_url}{path}?project={project_slug(project.keys.name)}&token={project.keys.write_key}"


def encode(records: Any, gzipped: bool = True) -> str:
    raw = json.dumps(records).encode()
    return base64.b64encode(gzip.compress(raw) if gzipped else raw).decode()


def test_python_sdk_every_record_type(shared: ModuleServer) -> None:
    project = shared.project()
    url = sa_url(shared.running().url, project)
    sa = sensorsanalytics.SensorsAnalytics(sensorsanalytics.DefaultConsumer(url))
    sa.track("anon-1", "$pageview", {"$url": "https://edu.example/math", "$utm_source": "douyin"})
    sa.track_signup("u-1", "anon-1", {"channel": "douyin"})
    sa.profile_set("u-1", {"grade": "G5", "city": "Hangzhou"}, is_login_id=True)
    sa.profile_set_once("u-1", {"first_channel": "douyin"}, is_login_id=True)
    sa.profile_set_once("u-1", {"first_channel": "baidu"}, is_login_id=True)
    sa.profile_increment("u-1", {"lessons": 3}, is_login_id=True)
    sa.profile_append("u-1", {"tags": ["math"]}, is_login_id=True)
    sa.profile_unset("u-1", ["city"], is_login_id=True)
    sa.profile_set("u-2", {"grade": "G1"}, is_login_id=True)
    sa.profile_delete("u-2", is_login_id=True)
    sa.item_set("course", "C-1", {"title": "Math G5"})
    sa.item_delete("course", "C-2")
    sa.bind(Identity(Identity.LOGIN_ID, "u-1"), Identity(Identity.MOBILE, "13800000001"))
    sa.track_by_id("lesson_attended", {"lesson_id": "L-1", "duration_s": 2700},
                   Identity(Identity.MOBILE, "13800000001"))
    sa.profile_set_by_id({"school": "No. 1"}, Identity(Identity.MOBILE, "13800000001"))
    sa.unbind(Identity(Identity.MOBILE, "13800000001"))
    sa.close()
    batch = sensorsanalytics.SensorsAnalytics(sensorsanalytics.BatchConsumer(url, max_size=50))
    for i in range(120):  # three data_list requests of at most 50 records
        batch.track(f"batch-{i % 7}", "quiz_answered", {"question_id": f"Q-{i}", "correct": i % 2 == 0})
    batch.close()
    assert shared.quarantine(project) == []
    stored = shared.stored(project)

    names = stored.event_names()
    assert names[:4] == ["$pageview", "$SignUp", "$BindID", "lesson_attended"]
    assert names.count("quiz_answered") == 120
    assert "$UnbindID" in names
    page = stored.events[0]
    assert (page[1], page[5], page[6]) == ("anon-1", "https://edu.example/math", "douyin")
    assert "$is_login_id" not in json.loads(stored.events[1][4])
    # signup links the anonymous ID to the login; bind links the mobile; all one person
    person = stored.persons_of(("anonymous_id", "anon-1"), ("login_id", "u-1"), ("mobile", "13800000001"))
    assert len(person) == 1
    assert stored.properties_of("login_id", "u-1") == {
        "grade": "G5", "first_channel": "douyin", "lessons": 3, "tags": ["math"], "school": "No. 1"}
    assert stored.properties_of("login_id", "u-2") == {}
    assert stored.entities[("item", "course", "C-1")] == {"title": "Math G5"}
    assert stored.entities[("item", "course", "C-2")] == {"$deleted": True}
    lesson = next(e for e in stored.events if e[0] == "lesson_attended")
    assert {p for e, p in stored.resolved if e == "lesson_attended"} == person
    assert json.loads(lesson[4])["$lib"] == "python"


def test_forms_single_batch_plain_and_gif(shared: ModuleServer) -> None:
    project = shared.project()
    base = shared.running().url
    now = int(time.time() * 1000)
    one = {"type": "track", "event": "page_view", "distinct_id": "d-1", "time": now, "_track_id": 11,
           "properties": {"$url": "https://a"}}
    many = [{**one, "distinct_id": f"d-{i}", "_track_id": 100 + i} for i in range(3)]
    with httpx.Client(timeout=30) as http:
        # web SDK image request: GET /sa.gif?data=<base64 JSON>&ext=crc=..., answered with a GIF
        query = urlencode({"data": encode(one, False), "ext": "crc=1"})
        gif = http.get(f"{sa_url(base, project, '/sa.gif')}&{query}")
        assert (gif.status_code, gif.headers["content-type"]) == (200, "image/gif"), gif.text
        # web SDK batch: POST data_list=<base64 JSON array>, no gzip
        plain = http.post(sa_url(base, project), data={"data_list": encode(many, False)})
        assert plain.json() == {"code": 0, "accepted": 3, "rejected": 0}
        # a retry of the same web SDK records is stored once (their _track_id)
        http.post(sa_url(base, project), data={"data_list": encode(many, False)})
        gz = http.post(sa_url(base, project), data={"data": encode({**one, "_track_id": 12}), "gzip": "1"})
        assert gz.json()["accepted"] == 1
        raw = http.post(sa_url(base, project), data={"data": json.dumps({**one, "_track_id": 13})})
        assert raw.json()["accepted"] == 1
        # the token may come in the record instead of the URL (the SDKs' $token)
        by_record = http.post(f"{base}/sa", data={"data": encode({**one, "_track_id": 14,
                                                                   "token": project.keys.write_key})})
        assert by_record.json()["accepted"] == 1, by_record.text
    stored = shared.stored(project)
    assert len(stored.events) == 7


BAD = [
    ({"type": "track_everything", "distinct_id": "x"}, "type", "is not a Sensors record type"),
    ({"type": "track", "event": "e", "distinct_id": "x", "project": "other"}, "project", "not the project"),
    ({"type": "track", "event": "e"}, "distinct_id", "is required"),
    ({"type": "track", "event": "", "distinct_id": "x"}, "event", "non-empty"),
    ({"type": "track_signup", "event": "$SignUp", "distinct_id": "x"}, "original_id", "required"),
    ({"type": "profile_increment", "distinct_id": "x", "properties": {"n": "many"}}, "properties.n", "needs numbers"),
    ({"type": "track", "event": "e", "distinct_id": "x", "time": 4102444800000}, "time", "in the future"),
    ({"type": "item_set", "item_type": "course"}, "item_id", "is required"),
    ({"type": "track", "event": "e", "identities": {"$weird": "v"}}, "identities.$weird", "reserved"),
    ("not an object", "record", "must be a JSON object"),
]


def test_bad_records_are_quarantined_and_the_rest_kept(shared: ModuleServer) -> None:
    project = shared.project()
    good = {"type": "track", "event": "page_view", "distinct_id": "ok"}
    sent = [x for record, _, _ in BAD for x in (good, record)]
    response = httpx.post(sa_url(shared.running().url, project), data={"data_list": encode(sent), "gzip": "1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (len(BAD), len(BAD))
    for error, (_, field, reason) in zip(body["errors"], BAD, strict=True):
        assert error["field"] == field, error
        assert reason in error["reason"], error
    quarantined = shared.quarantine(project)
    assert {q["source"] for q in quarantined} == {"sensors"}
    locations = sorted(q["location"] for q in quarantined)
    assert locations == sorted(f"data_list[{2 * i + 1}]: {field}" for i, (_, field, _) in enumerate(BAD))
    assert any(json.loads(q["record"]) == BAD[0][0] for q in quarantined)  # as it was sent
    assert len(shared.stored(project).events) == len(BAD)


@pytest.mark.parametrize(("fields", "status", "reason"), [
    ({}, 400, "data or data_list"),
    ({"data_list": "%%%not base64"}, 400, "not base64"),
    ({"data_list": base64.b64encode(b"not gzip").decode(), "gzip": "1"}, 400, "not gzip"),
    ({"data": base64.b64encode(b"{oops").decode()}, 400, "does not decode to JSON"),
])
def test_bad_requests_are_refused_with_a_reason(shared: ModuleServer, fields: dict[str, str], status: int,
                                                reason: str) -> None:
    project = shared.project()
    response = httpx.post(sa_url(shared.running().url, project), data=fields, timeout=30)
    assert response.status_code == status, response.text
    assert reason in response.json()["error"]
    quarantined = shared.quarantine(project)
    assert [q["source"] for q in quarantined] == ["sensors"]


def test_keys_and_project_names(shared: ModuleServer) -> None:
    project = shared.project()
    base = shared.running().url
    data = {"data": encode({"type": "track", "event": "e", "distinct_id": "x"})}
    missing = httpx.post(f"{base}/sa?project=default", data=data)
    assert missing.status_code == 401
    assert "?token=" in missing.json()["error"]
    unknown = httpx.post(f"{base}/sa?token=wk_nope", data=data)
    assert unknown.status_code == 401
    wrong = httpx.post(f"{base}/sa?project=default&token={project.keys.write_key}", data=data)
    assert wrong.status_code == 403
    assert project_slug(project.keys.name) in wrong.json()["error"]
    for name in (project.keys.name, project_slug(project.keys.name)):
        ok = httpx.post(f"{base}/sa", params={"project": name, "token": project.keys.write_key}, data=data)
        assert ok.status_code == 200, ok.text
