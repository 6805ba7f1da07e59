"""One person across sources: events of one learner sent through five endpoints of a real server (the native API
for the CRM, the Sensors SDK protocol from the app, PostHog from the web, Segment from a WeCom tool, xAPI from
the LMS) make one person whose timeline names the source of each event; the coverage view counts them; and the
source rules on their own."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import time
from typing import Any

import httpx
import pytest

from compat_support import ModuleServer, Project, shared
from edupulse.ingest.sensors import project_slug
from edupulse.queries.sources import EventSource, source_of

__all__ = ["shared"]
AT = dt.datetime(2026, 9, 1, 2, tzinfo=dt.UTC)


def ms(minutes: int) -> int:
    return int((AT + dt.timedelta(minutes=minutes)).timestamp() * 1000)


def iso(minutes: int) -> str:
    return (AT + dt.timedelta(minutes=minutes)).isoformat()


def send_everything(base: str, project: Project, login: str, mobile: str) -> None:
    keys = project.keys
    bearer = {"Authorization": f"Bearer {keys.write_key}"}
    crm = [{"type": "track", "event": "lead_created", "distinct_id": f"crm-{login}", "distinct_id_type": "crm_lead_id",
            "identities": {"mobile": mobile, "login_id": login}, "time": iso(0),
            "properties": {"channel": "douyin", "source_system": "crm"}},
           {"type": "track", "event": "call_connected", "distinct_id": f"crm-{login}",
            "distinct_id_type": "crm_lead_id", "time": iso(5), "properties": {}}]
    assert httpx.post(f"{base}/api/v1/ingest", json={"batch": crm}, headers=bearer, timeout=30).status_code == 200
    app = [{"type": "track", "event": "trial_attended", "distinct_id": login, "login_id": login, "time": ms(60),
            "properties": {"$lib": "Android", "$is_login_id": True, "platform": "app"}, "_track_id": 1}]
    data = base64.b64encode(gzip.compress(json.dumps(app).encode())).decode()
    sa = f"{base}/sa?project={project_slug(keys.name)}&token={keys.write_key}"
    assert httpx.post(sa, data={"data_list": data, "gzip": "1"}, timeout=30).status_code == 200
    web = {"api_key": keys.write_key, "batch": [
        {"event": "$identify", "distinct_id": login, "timestamp": iso(90), "properties": {"$lib": "web"}},
        {"event": "page_view", "distinct_id": login, "timestamp": iso(91),
         "properties": {"$lib": "web", "url": "https://school.example/course", "platform": "web"}}]}
    assert httpx.post(f"{base}/batch/", json=web, timeout=30).status_code == 200
    wecom = {"batch": [{"type": "track", "userId": login, "event": "wechat_added", "timestamp": iso(120),
                        "context": {"library": {"name": "wecom-sync", "version": "1.0"}}, "properties": {}}]}
    assert httpx.post(f"{base}/v1/batch", json=wecom, auth=(keys.write_key, ""), timeout=30).status_code == 200
    statement = {"actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example", "name": login}},
                 "verb": {"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"en-US": "attended"}},
                 "object": {"objectType": "Activity", "id": "https://lms.example/lesson/1"}, "timestamp": iso(180)}
    xapi = {"X-Experience-API-Version": "1.0.3",
            "Authorization": "Basic " + base64.b64encode(f"{keys.write_key}:{keys.api_key}".encode()).decode()}
    assert httpx.post(f"{base}/xapi/statements", json=statement, headers=xapi, timeout=30).status_code == 200


def ask(base: str, project: Project, query: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{base}/api/v1/query", json=query, timeout=60,
                        headers={"Authorization": f"Bearer {project.keys.api_key}"})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_one_person_through_five_endpoints(shared: ModuleServer) -> None:
    project = shared.project()
    base = shared.running().url
    send_everything(base, project, "stu-7", "13800000007")
    send_everything(base, project, "stu-8", "13800000008")
    person = None
    for _ in range(120):  # until the loader has stored all of them
        found = ask(base, project, {"kind": "person", "identity": {"type": "login_id", "value": "stu-7"}})
        if found["total_events"] >= 6:
            person = found
            break
        time.sleep(0.5)
    assert person is not None
    by_event = {e["event"]: e["source"] for e in person["events"]}
    assert by_event["lead_created"] == {"kind": "crm", "via": "system", "name": "crm"}
    assert by_event["call_connected"] == {"kind": "crm", "via": "api", "name": None}
    assert by_event["trial_attended"] == {"kind": "app", "via": "sdk", "name": "Android"}
    assert by_event["page_view"] == {"kind": "web", "via": "sdk", "name": "web"}
    assert by_event["wechat_added"] == {"kind": "wecom", "via": "sdk", "name": "wecom-sync"}
    assert by_event["lesson_attended"] == {"kind": "learning", "via": "xapi", "name": "xapi"}
    headline = httpx.get(f"{base}/api/v1/packs/one_person/headline", timeout=60,
                         params={"date_from": "2026-08-31", "date_to": "2026-09-02"},
                         headers={"Authorization": f"Bearer {project.keys.api_key}"}).json()
    assert headline["persons"] == 2
    assert [c["persons"] for c in headline["coverage"]] == [0, 0, 0, 2]
    assert {s["source"]: (s["persons"], s["linked"]) for s in headline["by_source"]} == {
        "crm": (2, 2), "wecom": (2, 2), "app": (2, 2), "learning": (2, 2)}
    assert headline["card"]["value"] == 1


@pytest.mark.parametrize(("event", "properties", "expected"), [
    ("lead_created", {"source_system": "crm"}, EventSource(kind="crm", via="system", name="crm")),
    ("quiz_answered", {"source_system": "xapi"}, EventSource(kind="learning", via="xapi", name="xapi")),
    ("lesson_completed", {"xapi_statement_id": "x"}, EventSource(kind="learning", via="xapi", name="xapi")),
    ("page_view", {"platform": "school_app"}, EventSource(kind="app", via="api")),
    ("page_view", {"platform": "h5", "$lib": "js"}, EventSource(kind="web", via="sdk", name="js")),
    ("staff_login", {}, EventSource(kind="other", via="api")),
    ("wechat_added", {"$lib": ""}, EventSource(kind="wecom", via="api")),
])
def test_the_source_rules(event: str, properties: dict[str, Any], expected: EventSource) -> None:
    assert source_of(event, properties) == expected
