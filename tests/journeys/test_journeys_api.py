"""The journeys API: definitions refused with the field and the reason (never a 500), versions and the audit
log, draft / running / paused / finished, channels whose secrets are stored encrypted and never returned,
permissions by role, and a scheduled journey over a segment that sends signed webhooks to a real receiver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from journey_app import JourneyApp, build
from receivers import receiver
from sqlalchemy import select

from edupulse.meta.journey_models import JourneyChannel

SECRET = "whsec-very-secret-value"


@pytest.fixture(scope="module")
def ja(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JourneyApp]:
    yield from build(tmp_path_factory.mktemp("journeys"))


@pytest.fixture(scope="module")
def channel(ja: JourneyApp) -> str:
    answer = ja.client.put("/api/v1/journey-channels/crm", headers=ja.as_("admin"),
                           json={"kind": "webhook", "secrets": {"signing_secret": SECRET}})
    assert answer.status_code == 200, answer.text
    return "crm"


def journey(name: str, url: str = "http://127.0.0.1:9/hook", **extra: Any) -> dict[str, Any]:
    return {"name": name, "trigger": {"schedule": {"every": "day", "at": "09:00"}, "audience": {"segment": "missed"}},
            "steps": [{"action": "webhook", "url": url, "channel": "crm", "body": {"who": "{{person.login_id}}"}}],
            **extra}


@pytest.mark.parametrize(("body", "field", "status"), [
    ({"name": "x", "steps": [{"exit": True}]}, "trigger", 400),
    ({**journey("x"), "trigger": {"schedule": {"every": "day"}, "audience": {"segment": "nope"}}},
     "trigger.audience.segment", 400),
    ({**journey("x"), "steps": []}, "steps", 400),
    ({**journey("x"), "holdout": 0.9}, "holdout", 400),
    ({**journey("x"), "steps": [{"wait": {"value": 2}}]}, "steps.0.wait", 400),
    ({**journey("x"), "steps": [{"action": "webhook", "url": "http://10.1.2.3/x", "channel": "crm"}]},
     "steps.0.url", 400),
    ({**journey("x"), "steps": [{"action": "webhook", "url": "http://127.0.0.1/x", "channel": "nope"}]},
     "steps.0.channel", 400),
    ({**journey("x"), "steps": [{"if": {"segment": "ghost"}, "then": [{"exit": True}]}]}, "steps.0.if", 400),
    ({**journey("x"), "steps": [{"action": "webhook", "url": "http://127.0.0.1/x", "channel": "crm",
                                 "headers": {"Idempotency-Key": "mine"}}]}, "steps.0.headers", 400),
    ([1, 2], "journey", 400),
    (journey("taken"), "name", 409),
])
def test_bad_definitions_name_the_field(ja: JourneyApp, channel: str, body: Any, field: str, status: int) -> None:
    if field == "name":
        assert ja.client.post("/api/v1/journeys", json=body, headers=ja.as_("analyst")).status_code == 201
    answer = ja.client.post("/api/v1/journeys", json=body, headers=ja.as_("analyst"))
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["error"]


def test_not_json_is_a_400(ja: JourneyApp) -> None:
    answer = ja.client.post("/api/v1/journeys", content=b"{nope", headers={**ja.as_("analyst"),
                                                                          "content-type": "application/json"})
    assert (answer.status_code, answer.json()["field"]) == (400, "body")


def test_lifecycle_versions_and_audit(ja: JourneyApp, channel: str) -> None:
    c, who = ja.client, ja.as_("analyst")
    made = c.post("/api/v1/journeys", json=journey("life"), headers=who).json()
    assert (made["status"], made["version"]) == ("draft", 1)
    jid = made["id"]
    assert c.put(f"/api/v1/journeys/{jid}", json={**journey("life"), "holdout": 0.2}, headers=who).json()[
        "version"] == 2
    assert c.post(f"/api/v1/journeys/{jid}/start", headers=who).json()["status"] == "running"
    assert c.post(f"/api/v1/journeys/{jid}/start", headers=who).status_code == 409
    moved = {**journey("life"), "trigger": {"schedule": {"every": "day", "at": "10:00"},
                                            "audience": {"segment": "missed"}}}
    refused = c.put(f"/api/v1/journeys/{jid}", json=moved, headers=who)
    assert (refused.status_code, refused.json()["field"]) == (409, "trigger")
    assert c.delete(f"/api/v1/journeys/{jid}", headers=who).status_code == 409
    assert c.post(f"/api/v1/journeys/{jid}/pause", headers=who).json()["status"] == "paused"
    assert c.put(f"/api/v1/journeys/{jid}", json=moved, headers=who).json()["version"] == 3
    assert c.post(f"/api/v1/journeys/{jid}/finish", headers=who).json()["status"] == "finished"
    shown = c.get(f"/api/v1/journeys/{jid}", headers=ja.as_("viewer")).json()
    assert [(v["version"], v["change"]) for v in shown["versions"]] == [
        (1, "created"), (2, "changed"), (2, "started"), (2, "paused"), (3, "changed"), (3, "finished")]
    assert c.get("/api/v1/journeys/999999", headers=who).status_code == 404
    audit = c.get("/api/v1/audit", params={"action": "journey.", "limit": 50}, headers=ja.as_("admin")).json()
    actions = {e["action"] for e in audit["entries"] if e["target"] == f"journey:{jid}"}
    assert actions == {"journey.create", "journey.update", "journey.start", "journey.pause", "journey.finish"}
    assert c.delete(f"/api/v1/journeys/{jid}", headers=who).status_code == 200


def test_secrets_are_sealed_and_never_returned(ja: JourneyApp, channel: str) -> None:
    c = ja.client
    robot = c.put("/api/v1/journey-channels/robot", headers=ja.as_("admin"),
                  json={"kind": "dingtalk", "secrets": {"webhook_url": "https://oapi.dingtalk.com/robot/send?"
                                                                        "access_token=tok-123",
                                                        "signing_secret": "SECdingding"}})
    assert robot.status_code == 200, robot.text
    assert robot.json()["secrets_set"] == ["signing_secret", "webhook_url"]
    listed = c.get("/api/v1/journey-channels", headers=ja.as_("analyst"))
    for text in (robot.text, listed.text):
        assert not [v for v in (SECRET, "SECdingding", "tok-123") if v in text]
    with ja.platform.meta.session() as s:
        stored = " ".join(r.secret + str(r.config) for r in s.scalars(select(JourneyChannel)))
    assert not [v for v in (SECRET, "SECdingding", "tok-123") if v in stored]
    missing = c.put("/api/v1/journey-channels/hook2", headers=ja.as_("admin"), json={"kind": "webhook"})
    assert (missing.status_code, missing.json()["field"]) == (400, "secrets.signing_secret")
    odd = c.put("/api/v1/journey-channels/hook3", headers=ja.as_("admin"),
                json={"kind": "webhook", "secrets": {"password": "x"}})
    assert (odd.status_code, odd.json()["field"]) == (400, "secrets.password")


@pytest.mark.parametrize(("who", "method", "path", "status"), [
    ("analyst", "put", "/api/v1/journey-channels/mine", 403),
    ("analyst", "put", "/api/v1/journey-settings", 403),
    ("viewer", "post", "/api/v1/journeys", 403),
    ("advisor", "post", "/api/v1/journeys", 403),
    ("viewer", "get", "/api/v1/journey-channels", 403),
    ("viewer", "get", "/api/v1/journeys", 200),
])
def test_permissions(ja: JourneyApp, who: str, method: str, path: str, status: int) -> None:
    body = {"kind": "webhook", "secrets": {"signing_secret": "s"}} if "channels" in path else journey("perm")
    answer = getattr(ja.client, method)(path, headers=ja.as_(who), **({"json": body} if method != "get" else {}))
    assert answer.status_code == status, answer.text


def test_settings_refuse_bad_hosts(ja: JourneyApp) -> None:
    bad = ja.client.put("/api/v1/journey-settings", headers=ja.as_("admin"), json={"allowed_hosts": ["no such"]})
    assert bad.status_code == 400
    assert bad.json()["field"].startswith("settings.allowed_hosts")


def test_a_scheduled_journey_over_a_segment_sends_signed_webhooks(ja: JourneyApp, channel: str) -> None:
    zone = ZoneInfo(ja.project.timezone)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    ja.clock[0] = now
    local = now.astimezone(zone)
    with receiver() as rx:
        spec = journey("recall", url=rx.url + "/recall", holdout=0,
                       steps=[{"if": {"property": "person.grade", "op": "gte", "value": 3},
                               "then": [{"action": "webhook", "url": rx.url + "/recall", "channel": "crm",
                                         "body": {"who": "{{person.login_id}}", "grade": "{{person.grade}}",
                                                  "journey": "{{journey.name}}"}}]}])
        spec["trigger"] = {"schedule": {"every": "once", "date": local.date().isoformat(),
                                        "at": local.strftime("%H:%M")}, "audience": {"segment": "missed"}}
        jid = ja.client.post("/api/v1/journeys", json=spec, headers=ja.as_("analyst")).json()["id"]
        assert ja.client.post(f"/api/v1/journeys/{jid}/start", headers=ja.as_("analyst")).status_code == 200
        job = ja.runtime.schedule_job()
        assert job.run(now + dt.timedelta(seconds=5)) == {jid: 4}
        assert job.run(now + dt.timedelta(seconds=6)) == {}  # that occurrence ran already
        ja.runtime.worker.tick(now + dt.timedelta(seconds=5))
        got = sorted((r.json()["who"], r.json()["grade"]) for r in rx.requests)
        assert got == [("s1", 6), ("s2", 3), ("s3", 5)]
        assert all(r.path == "/recall" and r.headers["x-edupulse-signature"].startswith("sha256=")
                   for r in rx.requests)
    log = ja.client.get(f"/api/v1/journeys/{jid}/deliveries", headers=ja.as_("viewer")).json()["deliveries"]
    assert sorted(d["person"] for d in log) == ["login_id:s1", "login_id:s2", "login_id:s3"]
    assert all(d["status"] == "sent" and d["identities"] for d in log)
    results = ja.client.get(f"/api/v1/journeys/{jid}/results", headers=ja.as_("viewer")).json()
    assert results["arms"] == {"treatment": {"entered": 4, "sent": 3, "converted": 0},
                               "holdout": {"entered": 0, "converted": 0}}
    assert results["uplift"]["error"]
    listed = ja.client.get("/api/v1/journeys", headers=ja.as_("viewer")).json()["journeys"]
    assert next(j for j in listed if j["id"] == jid)["counts"]["sent"] == 3


def test_the_editor_previews_the_reach_of_a_trigger(ja: JourneyApp, channel: str) -> None:
    segment = ja.client.post("/api/v1/journeys/preview", json=journey("preview"), headers=ja.as_("viewer"))
    assert segment.json() == {"persons": 4, "basis": "segment"}
    event = ja.client.post("/api/v1/journeys/preview", headers=ja.as_("viewer"), json={
        "name": "p", "trigger": {"event": "lesson_missed"}, "steps": [{"exit": True}]})
    assert event.json() == {"persons": 4, "basis": "event_7d"}
    bad = ja.client.post("/api/v1/journeys/preview", headers=ja.as_("viewer"), json={"name": "p", "steps": []})
    assert bad.status_code == 400
