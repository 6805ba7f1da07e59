"""Once, and never lost: a real server sends a scheduled journey to a slow receiver, is SIGKILLed while
sending, and started again. Every person gets their message; a message arrives twice only if it was in flight
at the kill, and then with the same idempotency key (no person ever sees two different keys)."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import httpx
from receivers import receiver

from conftest import ProjectKeys, ServerFactory

PERSONS = 240


def test_sigkill_while_sending_loses_nothing_and_repeats_only_with_the_same_key(
        server_factory: ServerFactory, project: ProjectKeys) -> None:
    env = {"EDUPULSE_SCHEDULER__CHECK_SECONDS": "1", "EDUPULSE_JOURNEYS__ALLOWED_HOSTS": "127.0.0.1/32",
           "EDUPULSE_JOURNEYS__IN_FLIGHT_SECONDS": "2", "EDUPULSE_JOURNEYS__SEND_THREADS": "4",
           "EDUPULSE_JOURNEYS__SEND_BATCH": "8"}
    server = server_factory(env).start()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {project.api_key}"}, timeout=60)
    records = [{"type": "track", "event": "lesson_missed", "distinct_id": f"p{i}", "distinct_id_type": "login_id"}
               for i in range(PERSONS)]
    ingest = httpx.post(f"{server.url}/api/v1/ingest", json={"batch": records},
                        headers={"Authorization": f"Bearer {project.write_key}"}, timeout=60)
    assert ingest.status_code == 200, ingest.text
    assert api.post("/api/v1/segments", json={"name": "missed", "definition": {
        "condition": {"event": "lesson_missed"}}}).status_code == 201
    assert api.put("/api/v1/journey-channels/crm", json={"kind": "webhook",
                                                         "secrets": {"signing_secret": "s"}}).status_code == 200
    with receiver(delay=0.05) as rx:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the loader has the persons in the store
            members = api.post("/api/v1/query", json={"kind": "segments", "segment": "missed"})
            if members.status_code == 200 and "240" in members.text:
                break
            time.sleep(0.2)
        local = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
        spec = {"name": "crash", "holdout": 0,
                "trigger": {"schedule": {"every": "once", "date": local.date().isoformat(),
                                         "at": local.strftime("%H:%M")}, "audience": {"segment": "missed"}},
                "steps": [{"action": "webhook", "url": rx.url + "/h", "channel": "crm",
                           "body": {"who": "{{person.login_id}}"}}]}
        made = api.post("/api/v1/journeys", json=spec)
        assert made.status_code == 201, made.text
        jid = made.json()["id"]
        assert api.post(f"/api/v1/journeys/{jid}/start").status_code == 200
        deadline = time.monotonic() + 60
        while len(rx.requests) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(rx.requests) >= 40, server.output()
        server.kill()
        at_kill = len(rx.requests)
        assert at_kill < PERSONS, "everything was sent before the kill: make the receiver slower"
        server.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            results = api.get(f"/api/v1/journeys/{jid}/results").json()
            if results["arms"]["treatment"]["sent"] == PERSONS:
                break
            time.sleep(0.2)
        assert results["arms"]["treatment"] == {"entered": PERSONS, "sent": PERSONS, "converted": 0}
        keys_of: dict[str, set[str]] = {}
        for r in rx.requests:
            keys_of.setdefault(r.json()["who"], set()).add(r.headers["idempotency-key"])
    assert sorted(keys_of) == sorted(f"p{i}" for i in range(PERSONS))
    assert all(len(keys) == 1 for keys in keys_of.values())
    assert len({k for keys in keys_of.values() for k in keys}) == PERSONS
    assert len(rx.requests) - PERSONS <= 8  # repeats: at most the tries in flight at the kill (a batch of 8)
    api.close()


def test_an_event_reaches_the_webhook_seconds_after_ingestion(server_factory: ServerFactory,
                                                              project: ProjectKeys) -> None:
    server = server_factory({"EDUPULSE_JOURNEYS__ALLOWED_HOSTS": "127.0.0.1/32"}).start()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {project.api_key}"}, timeout=60)
    assert api.put("/api/v1/journey-channels/crm", json={"kind": "webhook",
                                                         "secrets": {"signing_secret": "s"}}).status_code == 200
    with receiver() as rx:
        made = api.post("/api/v1/journeys", json={
            "name": "welcome", "holdout": 0, "trigger": {"event": "lead_created"},
            "steps": [{"action": "webhook", "url": rx.url + "/lead", "channel": "crm",
                       "body": {"lead": "{{person.crm_lead_id}}", "channel": "{{event.properties.channel}}"}}]})
        assert made.status_code == 201, made.text
        assert api.post(f"/api/v1/journeys/{made.json()['id']}/start").status_code == 200
        sent = time.monotonic()
        answer = httpx.post(f"{server.url}/api/v1/ingest", headers={"Authorization": f"Bearer {project.write_key}"},
                            json={"batch": [{"type": "track", "event": "lead_created", "distinct_id": "L-1",
                                             "distinct_id_type": "crm_lead_id", "properties": {"channel": "douyin"}}]})
        assert answer.status_code == 200, answer.text
        while not rx.requests and time.monotonic() - sent < 10:
            time.sleep(0.01)
        assert [r.json() for r in rx.requests] == [{"lead": "L-1", "channel": "douyin"}]
        assert rx.requests[0].at - time.time() + time.monotonic() - sent < 5
    api.close()
