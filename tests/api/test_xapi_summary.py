"""The LRS summary of the ingestion page (GET /api/v1/xapi/summary) against a real server: its counts equal what
was sent through /xapi (statements, voided ones, verbs, documents), the latest statements are the ones read back
through the statements resource, the verb filter, the empty state, and masking of the people in statements."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ProjectKeys, Server, create_project, make_settings
from edupulse.meta.db import MetadataStore
from edupulse.meta.xapi_summary import summarize

ADL = "http://adlnet.gov/expapi/verbs/"
V = {"X-Experience-API-Version": "1.0.3"}


@pytest.fixture(scope="module")
def lrs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ProjectKeys, ProjectKeys]]:
    settings = make_settings(tmp_path_factory.mktemp("lrs-summary"))
    keys, empty = create_project(settings, "LMS"), create_project(settings, "Quiet school")
    server = Server(settings).start()
    yield server, keys, empty
    server.kill()


def _xapi(keys: ProjectKeys) -> dict[str, str]:
    token = base64.b64encode(f"{keys.write_key}:{keys.api_key}".encode()).decode()
    return {**V, "Authorization": f"Basic {token}"}


def _summary(server: Server, keys: ProjectKeys, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/xapi/summary", params=params, timeout=30,
                         headers={"Authorization": f"Bearer {keys.api_key}"})
    assert response.status_code == 200, response.text
    return response.json()


def _statement(actor: dict[str, Any], verb: str, lesson: int, name: dict[str, str] | None = None) -> dict[str, Any]:
    definition = {"type": "http://adlnet.gov/expapi/activities/lesson", **({"name": name} if name else {})}
    return {"id": str(uuid.uuid4()), "actor": {"objectType": "Agent", **actor},
            "verb": {"id": ADL + verb, "display": {"en-US": verb}},
            "object": {"id": f"https://school.example/lesson/{lesson}", "definition": definition}}


def test_an_empty_lrs_says_so_and_gives_its_endpoint(lrs: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, _, empty = lrs
    found = _summary(server, empty)
    assert found["endpoint"] == f"{server.url}/xapi/"
    assert found["summary"] == {"statements": 0, "voided": 0, "last_stored": None, "verbs": [], "verbs_of_latest": 0,
                                "activities": 0,
                                "documents": {"state": 0, "activity_profile": 0, "agent_profile": 0}, "recent": []}


def test_counts_verbs_documents_and_latest_statements_equal_what_was_sent(
        lrs: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, keys, _ = lrs
    headers = _xapi(keys)
    sent = [_statement({"name": "Li Lei", "mbox": "mailto:lilei@school.example"}, "attended", 1),
            _statement({"mbox": "mailto:hanmei@school.example"}, "attended", 2),
            _statement({"account": {"homePage": "https://lms.example", "name": "stu-7"}}, "attended", 1),
            _statement({"account": {"homePage": "https://lms.example", "name": "stu-7"}}, "completed", 1,
                       {"en-US": "Fractions", "zh-CN": "分数"}),
            _statement({"openid": "https://id.example/stu-9"}, "completed", 3)]
    response = httpx.post(f"{server.url}/xapi/statements", json=sent, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    voiding = {"actor": {"objectType": "Agent", "mbox": "mailto:teacher@school.example"},
               "verb": {"id": ADL + "voided", "display": {"en-US": "voided"}},
               "object": {"objectType": "StatementRef", "id": sent[1]["id"]}}
    voiding_id = httpx.post(f"{server.url}/xapi/statements", json=voiding, headers=headers, timeout=30).json()[0]
    state = httpx.put(f"{server.url}/xapi/activities/state", headers=headers, timeout=30, json={"page": 3},
                      params={"activityId": "https://school.example/lesson/1", "stateId": "bookmark",
                              "agent": '{"mbox": "mailto:lilei@school.example"}'})
    assert state.status_code == 204, state.text

    summary = _summary(server, keys)["summary"]  # at once: accepted statements are counted without waiting
    assert summary["statements"] == 6
    assert summary["voided"] == 1
    assert [(v["verb"], v["statements"]) for v in summary["verbs"]] == [
        (ADL + "attended", 3), (ADL + "completed", 2), (ADL + "voided", 1)]
    assert summary["verbs"][0]["display"] == {"en-US": "attended"}
    assert summary["verbs_of_latest"] == 6
    assert summary["activities"] == 3  # lessons 1, 2 and 3 came with a definition
    assert summary["documents"] == {"state": 1, "activity_profile": 0, "agent_profile": 0}

    newest = httpx.get(f"{server.url}/xapi/statements", params={"statementId": voiding_id}, headers=headers,
                       timeout=30).json()
    assert summary["last_stored"] == newest["stored"]
    recent = summary["recent"]
    assert [r["id"] for r in recent] == [voiding_id] + [s["id"] for s in reversed(sent)]
    assert [r["actor"] for r in recent] == ["teacher@school.example", "https://id.example/stu-9", "stu-7", "stu-7",
                                           "hanmei@school.example", "Li Lei"]
    assert [r["voided"] for r in recent] == [False, False, False, False, True, False]
    assert [r["event"] for r in recent] == [None, "lesson_completed", "lesson_completed", "lesson_attended",
                                           "lesson_attended", "lesson_attended"]
    assert recent[0]["object"] == sent[1]["id"]
    assert recent[0]["object_type"] == "StatementRef"
    assert recent[2]["object_name"] == {"en-US": "Fractions", "zh-CN": "分数"}
    assert recent[2]["statement"]["verb"]["id"] == ADL + "completed"

    only = _summary(server, keys, verb=ADL + "completed", limit=1)["summary"]["recent"]
    assert [r["id"] for r in only] == [sent[4]["id"]]
    assert _summary(server, keys, verb=ADL + "failed")["summary"]["recent"] == []


def test_refused_statements_are_counted_and_listed_by_source(lrs: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, keys, _ = lrs
    before = _summary(server, keys)
    bad = {"actor": {"mbox": "mailto:x@school.example"}, "object": {"id": "https://school.example/lesson/1"}}
    refused = httpx.post(f"{server.url}/xapi/statements", json=bad, headers=_xapi(keys), timeout=30)
    assert refused.status_code == 400
    native = httpx.post(f"{server.url}/api/v1/ingest", json={"batch": [{"type": "track", "event": ""}]}, timeout=30,
                        headers={"Authorization": f"Bearer {keys.write_key}"})
    assert native.status_code == 200
    after = _summary(server, keys)
    assert after["refused"] == before["refused"] + 1
    assert after["summary"]["statements"] == before["summary"]["statements"]
    auth = {"Authorization": f"Bearer {keys.api_key}"}
    listed = httpx.get(f"{server.url}/api/v1/quarantine", params={"source": "xapi"}, headers=auth, timeout=30).json()
    assert listed["total"] == after["refused"]
    assert {r["source"] for r in listed["records"]} == {"xapi"}
    assert listed["records"][0]["location"] == "statement.verb"
    everything = httpx.get(f"{server.url}/api/v1/quarantine", headers=auth, timeout=30).json()
    assert everything["sources"] == {"native": everything["total"] - listed["total"], "xapi": listed["total"]}
    assert everything["sources"]["native"] >= 1


def test_bad_parameters_and_callers_are_refused(lrs: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, keys, _ = lrs
    url = f"{server.url}/api/v1/xapi/summary"
    for params in ({"limit": 0}, {"limit": 101}, {"verb": ""}):
        refused = httpx.get(url, params=params, headers={"Authorization": f"Bearer {keys.api_key}"}, timeout=30)
        assert refused.status_code == 422, params
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {keys.write_key}"}, timeout=30).status_code in (401, 403)


def test_without_personal_view_people_are_masked_and_statements_left_out(
        lrs: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    server, keys, _ = lrs
    meta = MetadataStore(server.settings.resolved_metadata_url)
    try:
        project = meta.project_by_api_key(keys.api_key)
        assert project is not None
        shown = summarize(meta, project.id, personal=True)
        masked = summarize(meta, project.id, personal=False, mask=lambda text: text[:1] + "***")
    finally:
        meta.engine.dispose()
    assert shown.statements == masked.statements > 0
    assert [r.actor[:1] + "***" for r in shown.recent] == [r.actor for r in masked.recent]
    assert all(r.statement is None for r in masked.recent)
    assert all(r.statement is not None for r in shown.recent)
