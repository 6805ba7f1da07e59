"""Segment / RudderStack compatible /v1/*: the official segment-analytics-python and rudder-sdk-python clients
against a real server, the single-message endpoints, clock skew, and bad input answered in Segment's error
style while the good messages stay."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from compat_support import ModuleServer, Project, Stored, shared

__all__ = ["shared"]


def story(analytics: Any) -> None:
    """The same short story of a learner, in the Segment API both clients share."""
    analytics.page(anonymous_id="anon-1", name="Math G5", properties={"url": "https://edu.example/math"},
                   context={"campaign": {"source": "douyin", "medium": "cpc"}})
    analytics.identify("u-1", {"grade": "G5", "city": "Hangzhou"}, anonymous_id="anon-1")
    at = dt.datetime.now(dt.UTC)
    for _ in range(2):  # a client's retry: the same message again, stored once
        analytics.track("u-1", "lesson_attended", {"lesson_id": "L-1", "duration_s": 2700}, timestamp=at,
                        message_id="msg-7")
    analytics.screen("u-1", name="Lesson", properties={"lesson_id": "L-1"})
    analytics.group("u-1", "S-1", {"name": "No. 1 Middle School", "group_type": "school"})
    analytics.alias("13800000001", "u-1")
    analytics.flush()


def check_story(stored: Stored) -> None:
    assert stored.event_names() == ["$pageview", "lesson_attended", "$screen"]
    page = stored.events[0]
    assert (page[1], page[5], page[6]) == ("anon-1", "https://edu.example/math", "douyin")
    assert json.loads(page[4])["name"] == "Math G5"
    assert stored.events[1][3] == "msg-7"
    person = stored.persons_of(("anonymous_id", "anon-1"), ("login_id", "u-1"), ("anonymous_id", "13800000001"))
    assert len(person) == 1
    assert {p for _, p in stored.resolved} == person
    assert stored.properties_of("login_id", "u-1") == {"grade": "G5", "city": "Hangzhou"}
    assert stored.entities[("group", "school", "S-1")] == {"name": "No. 1 Middle School"}


def test_official_clients(shared: ModuleServer) -> None:
    base = shared.running().url
    errors: list[Any] = []
    segment, rudder = shared.project(), shared.project()
    story(SegmentClient(segment.keys.write_key, host=base, sync_mode=True, gzip=True, on_error=errors.append))
    story(RudderClient(rudder.keys.write_key, host=base, sync_mode=True, on_error=errors.append))
    assert errors == []
    assert shared.quarantine(segment) == shared.quarantine(rudder) == []
    stored = shared.stored_many([segment, rudder])
    check_story(stored[segment.id])
    check_story(stored[rudder.id])


def auth(project: Project) -> tuple[str, str]:
    return (project.keys.write_key, "")


def test_single_message_endpoints_and_clock_skew(shared: ModuleServer) -> None:
    project = shared.project()
    base = shared.running().url
    now = dt.datetime.now(dt.UTC)
    ahead = now + dt.timedelta(hours=2)  # the client's clock is two hours fast
    messages = {
        "track": {"userId": "u-2", "event": "order_paid", "properties": {"amount": 1999, "order_id": "O-1"}},
        "identify": {"userId": "u-2", "traits": {"grade": "G8"}},
        "page": {"anonymousId": "a-2", "name": "Home"},
        "screen": {"userId": "u-2", "name": "Home"},
        "group": {"userId": "u-2", "groupId": "I-1", "traits": {"name": "Spring English"}},
        "alias": {"userId": "u-2", "previousId": "a-2"},
    }
    with httpx.Client(timeout=30, auth=auth(project)) as http:
        for kind, message in messages.items():
            body = {**message, "timestamp": (ahead - dt.timedelta(seconds=60)).isoformat(), "sentAt": ahead.isoformat()}
            response = http.post(f"{base}/v1/{kind}", json=body)
            assert response.json() == {"success": True, "accepted": 1, "rejected": 0}, (kind, response.text)
    stored = shared.stored(project)
    assert stored.event_names() == ["order_paid", "$pageview", "$screen"]
    for _, _, millis, *_ in stored.events:
        assert abs(millis - (now.timestamp() - 60) * 1000) < 30_000  # corrected by sentAt
    assert stored.entities[("group", "institution", "I-1")] == {"name": "Spring English"}
    assert len(stored.persons_of(("login_id", "u-2"), ("anonymous_id", "a-2"))) == 1


BAD = [
    ({"type": "purchase", "userId": "x"}, "type", "is not a message type"),
    ({"type": "track", "event": "e"}, "userId", "give userId or anonymousId"),
    ({"type": "track", "userId": "x"}, "event", "non-empty"),
    ({"type": "track", "userId": "x", "event": "e", "timestamp": "soon"}, "timestamp", "is not a time"),
    ({"type": "identify", "userId": "x", "traits": ["a"]}, "traits", "must be an object"),
    ({"type": "alias", "userId": "x"}, "previousId", "is required"),
    ({"type": "group", "userId": "x"}, "groupId", "is required"),
    ({"type": "track", "userId": "x", "event": "e", "properties": {"amount": "lots"}}, "properties.amount",
     "must be a number"),
]


def test_bad_messages_are_quarantined_and_the_rest_kept(shared: ModuleServer) -> None:
    project = shared.project()
    good = {"type": "track", "anonymousId": "ok", "event": "page_view"}
    sent = [x for message, _, _ in BAD for x in (good, message)]
    response = httpx.post(f"{shared.running().url}/v1/batch", json={"batch": sent}, auth=auth(project))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["accepted"], body["rejected"]) == (True, len(BAD), len(BAD))
    for error, (_, field, reason) in zip(body["errors"], BAD, strict=True):
        assert (error["field"], reason in error["reason"]) == (field, True), error
    quarantined = shared.quarantine(project)
    assert {q["source"] for q in quarantined} == {"segment"}
    assert sorted(q["location"] for q in quarantined) == sorted(
        f"batch[{2 * i + 1}]: {field}" for i, (_, field, _) in enumerate(BAD))
    assert len(shared.stored(project).events) == len(BAD)


@pytest.mark.parametrize(("path", "body", "use_auth", "status", "message"), [
    ("/v1/batch", {"batch": []}, False, 401, "basic-auth user name"),
    ("/v1/batch", b"{oops", True, 400, "not valid JSON"),
    ("/v1/batch", {"messages": []}, True, 400, '{"batch": [message, ...]}'),
    ("/v1/track", [1], True, 400, "must be a JSON object"),
])
def test_bad_requests(shared: ModuleServer, path: str, body: Any, use_auth: bool, status: int,
                      message: str) -> None:
    project = shared.project()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(f"{shared.running().url}{path}", content=content, auth=auth(project) if use_auth else None,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    answer = response.json()
    assert (answer["success"], message in answer["message"]) == (False, True), answer
    assert answer["code"]
    if use_auth:
        assert [q["source"] for q in shared.quarantine(project)] == ["segment"]


def test_write_key_in_the_body_and_unknown_keys(shared: ModuleServer) -> None:
    project = shared.project()
    base = shared.running().url
    message = {"type": "track", "userId": "u", "event": "e"}
    ok = httpx.post(f"{base}/v1/batch", json={"batch": [message], "writeKey": project.keys.write_key})
    assert ok.status_code == 200, ok.text
    wrong = httpx.post(f"{base}/v1/batch", json={"batch": [message]}, auth=("wk_nope", ""))
    assert wrong.status_code == 401
    assert "unknown write key" in wrong.json()["message"]
