"""The xAPI statements resource against a real server: through the `tincan` client (Rustici's Python library)
and through plain HTTP for the requirements of xAPI 1.0.3 (Communication 2.1, Data 2.3-2.4)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ProjectKeys, Server, create_project, make_settings

pytest.importorskip("tincan")
from tincan import (
    Activity,
    ActivityDefinition,
    Agent,
    AgentAccount,
    Context,
    LanguageMap,
    RemoteLRS,
    Result,
    Score,
    Statement,
    StatementRef,
    Verb,
)

ADL = "http://adlnet.gov/expapi/verbs/"
COURSE = "http://adlnet.gov/expapi/activities/course"
V = {"X-Experience-API-Version": "1.0.3"}


@pytest.fixture(scope="module")
def lrs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ProjectKeys, ProjectKeys]]:
    settings = make_settings(tmp_path_factory.mktemp("xapi"))
    keys = create_project(settings, "LMS")
    other = create_project(settings, "Other school")
    server = Server(settings).start()
    yield server, keys, other
    server.kill()


@pytest.fixture
def server(lrs_server: tuple[Server, ProjectKeys, ProjectKeys]) -> Server:
    return lrs_server[0]


@pytest.fixture
def keys(lrs_server: tuple[Server, ProjectKeys, ProjectKeys]) -> ProjectKeys:
    return lrs_server[1]


def basic(user: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Client:
    """Plain HTTP to /xapi/statements with the project's credentials and the version header."""

    def __init__(self, server: Server, keys: ProjectKeys) -> None:
        self.url = f"{server.url}/xapi/statements"
        self.headers = {**V, **basic(keys.write_key, keys.api_key)}

    def post(self, body: Any, **headers: str) -> httpx.Response:
        return httpx.post(self.url, json=body, headers={**self.headers, **headers}, timeout=30)

    def put(self, statement_id: str, body: Any) -> httpx.Response:
        return httpx.put(self.url, params={"statementId": statement_id}, json=body, headers=self.headers, timeout=30)

    def get(self, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
        return httpx.get(self.url, params=params, headers={**self.headers, **(headers or {})}, timeout=30)


@pytest.fixture
def client(server: Server, keys: ProjectKeys) -> Client:
    return Client(server, keys)


def statement(learner: str = "stu-1", verb: str = "attended", activity: str = "https://school.example/lesson/1",
              **extra: Any) -> dict[str, Any]:
    return {"actor": {"objectType": "Agent", "account": {"homePage": "https://school.example", "name": learner}},
            "verb": {"id": ADL + verb, "display": {"en-US": verb, "zh-CN": "动词"}},
            "object": {"objectType": "Activity", "id": activity,
                       "definition": {"name": {"en-US": "Lesson", "zh-CN": "课"}}}, **extra}


def new_id() -> str:
    return str(uuid.uuid4())


# --- through the tincan client -----------------------------------------------------------------------------


@pytest.fixture
def lrs(server: Server, keys: ProjectKeys) -> RemoteLRS:
    return RemoteLRS(endpoint=f"{server.url}/xapi/", version="1.0.1", username=keys.write_key, password=keys.api_key)


def tc_statement(learner: str, verb: str, activity: str, **extra: Any) -> Statement:
    return Statement(
        actor=Agent(name=learner, account=AgentAccount(home_page="https://school.example", name=learner)),
        verb=Verb(id=ADL + verb, display=LanguageMap({"en-US": verb})),
        object=Activity(id=activity, definition=ActivityDefinition(name=LanguageMap({"en-US": "Algebra"}),
                                                                   type=COURSE)),
        **extra)


def test_tincan_saves_retrieves_queries_and_voids(lrs: RemoteLRS) -> None:
    about = lrs.about()
    assert about.success, about.data
    assert "1.0.3" in about.content.version

    registration = new_id()
    course = f"https://school.example/course/{uuid.uuid4().hex}"
    one = tc_statement("tc-1", "registered", course, context=Context(registration=registration))
    saved = lrs.save_statement(one)  # POST: the server assigns the id
    assert saved.success, saved.data
    assert saved.content.id

    with_id = tc_statement("tc-1", "completed", course, id=new_id(),
                           result=Result(score=Score(scaled=0.9), success=True, completion=True, duration="PT1H30M"))
    put = lrs.save_statement(with_id)  # PUT with statementId
    assert put.success, put.data

    many = lrs.save_statements([tc_statement(f"tc-{i}", "attended", course) for i in range(2, 7)])
    assert many.success, many.data
    assert all(s.id for s in many.content)

    fetched = lrs.retrieve_statement(with_id.id)
    assert fetched.success, fetched.data
    got = fetched.content
    assert str(got.id) == str(with_id.id)
    assert got.result.score.scaled == 0.9
    assert got.stored is not None
    assert got.authority is not None

    query = lrs.query_statements({"activity": Activity(id=course), "limit": 2, "ascending": True})
    assert query.success, query.data
    pages = [query.content]
    while pages[-1].more:
        more = lrs.more_statements(pages[-1])
        assert more.success, more.data
        pages.append(more.content)
    ids = [str(s.id) for page in pages for s in page.statements]
    assert len(pages) == 4
    assert len(ids) == 7
    assert len(set(ids)) == 7
    assert ids[0] == str(saved.content.id)  # ascending: oldest first

    by_reg = lrs.query_statements({"registration": registration})
    assert [str(s.id) for s in by_reg.content.statements] == [str(saved.content.id)]
    agent = Agent(account=AgentAccount(home_page="https://school.example", name="tc-1"))
    by_agent = lrs.query_statements({"agent": agent, "verb": Verb(id=ADL + "completed")})
    assert [str(s.id) for s in by_agent.content.statements] == [str(with_id.id)]

    voiding = Statement(actor=agent, verb=Verb(id="http://adlnet.gov/expapi/verbs/voided"),
                        object=StatementRef(id=with_id.id))
    assert lrs.save_statement(voiding).success
    assert not lrs.retrieve_statement(with_id.id).success
    voided = lrs.retrieve_voided_statement(with_id.id)
    assert voided.success, voided.data
    assert str(voided.content.id) == str(with_id.id)
    after = lrs.query_statements({"activity": Activity(id=course)})
    assert str(with_id.id) not in {str(s.id) for s in after.content.statements}


# --- the requirements of the specification, over plain HTTP -----------------------------------------------


def test_version_header_is_required_and_returned(server: Server, keys: ProjectKeys, client: Client) -> None:
    auth = basic(keys.write_key, keys.api_key)
    missing = httpx.post(client.url, json=statement(), headers=auth)
    assert missing.status_code == 400
    assert "X-Experience-API-Version" in missing.json()["error"]
    assert missing.headers["X-Experience-API-Version"] == "1.0.3"
    wrong = httpx.post(client.url, json=statement(), headers={**auth, "X-Experience-API-Version": "0.95"})
    assert wrong.status_code == 400
    ok = client.post(statement())
    assert ok.status_code == 200
    assert ok.headers["X-Experience-API-Version"] == "1.0.3"
    about = httpx.get(f"{server.url}/xapi/about")
    assert about.status_code == 200
    assert "1.0.3" in about.json()["version"]


def test_credentials(client: Client, keys: ProjectKeys, lrs_server: tuple[Server, ProjectKeys, ProjectKeys]) -> None:
    other = lrs_server[2]
    url = client.url
    assert httpx.post(url, json=statement(), headers=V).status_code == 401
    assert httpx.post(url, json=statement(), headers={**V, **basic("wk_nope")}).status_code == 401
    # A write key alone may send statements, not read them.
    assert httpx.post(url, json=statement(), headers={**V, **basic(keys.write_key)}).status_code == 200
    read = httpx.get(url, headers={**V, **basic(keys.write_key)})
    assert read.status_code == 401
    assert "secret API key" in read.json()["error"]
    assert read.headers["WWW-Authenticate"].startswith("Basic")
    # Another project's secret key does not go with this write key.
    assert httpx.get(url, headers={**V, **basic(keys.write_key, other.api_key)}).status_code == 403
    assert httpx.get(url, headers={**V, **basic(keys.write_key, keys.api_key)}).status_code == 200


def test_post_returns_ids_and_fills_what_the_lrs_sets(client: Client) -> None:
    given = new_id().upper()
    response = client.post([statement(id=given), statement(timestamp="2026-09-01T08:30:00+08:00")])
    assert response.status_code == 200, response.text
    ids = response.json()
    assert ids[0] == given.lower()
    assert uuid.UUID(ids[1])
    first = client.get(statementId=ids[0])
    assert first.status_code == 200
    assert "Last-Modified" in first.headers
    assert "X-Experience-API-Consistent-Through" in first.headers
    body = first.json()
    assert body["id"] == ids[0]
    assert body["version"] == "1.0.0"
    assert body["authority"]["objectType"] == "Agent"
    assert body["authority"]["account"]["name"]
    assert body["stored"].endswith("Z")
    assert body["timestamp"] == body["stored"]
    second = client.get(statementId=ids[1]).json()
    assert second["timestamp"] == "2026-09-01T08:30:00+08:00"  # kept as sent
    assert client.get(statementId=ids[0]).content == first.content  # exactly as stored, every time


def test_put_conflict_and_idempotence(client: Client) -> None:
    sid = new_id()
    body = statement(result={"score": {"raw": 80, "min": 0, "max": 100}})
    assert client.put(sid, body).status_code == 204
    assert client.put(sid, body).status_code == 204  # the same statement again is fine
    again = client.post({**body, "id": sid, "timestamp": client.get(statementId=sid).json()["timestamp"]})
    assert again.status_code == 200
    different = client.put(sid, statement(result={"score": {"raw": 20, "min": 0, "max": 100}}))
    assert different.status_code == 409
    assert sid in different.json()["error"]
    assert client.get(statementId=sid).json()["result"]["score"]["raw"] == 80
    mismatch = client.put(sid, {**body, "id": new_id()})
    assert mismatch.status_code == 400
    assert client.put("not-a-uuid", body).status_code == 400
    no_id = httpx.put(client.url, json=body, headers=client.headers)
    assert no_id.status_code == 400
    assert "statementId" in no_id.json()["error"]


def quarantine(server: Server, keys: ProjectKeys) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/v1/quarantine", headers={"Authorization": f"Bearer {keys.api_key}"})
    return [r for r in response.json()["records"] if r["source"] == "xapi"]


def test_a_list_with_a_bad_statement_is_refused_whole(server: Server, keys: ProjectKeys, client: Client) -> None:
    good_id, bad = new_id(), statement(learner="q-1")
    bad["actor"] = {"mbox": "learner@example.com"}  # not a mailto IRI
    response = client.post([statement(id=good_id), bad, statement(verb="completed", result={"score": {"scaled": 2}})])
    assert response.status_code == 400
    error = response.json()
    assert error["location"] == "statement[1].actor.mbox"
    assert "mailto" in error["error"]
    assert "1 more problems" in error["error"]
    assert client.get(statementId=good_id).status_code == 404  # all or nothing
    records = quarantine(server, keys)
    reasons = {r["location"]: r["reason"] for r in records}
    assert "statement[1].actor.mbox" in reasons
    assert "statement[2].result.score.scaled" in reasons
    not_json = httpx.post(client.url, content=b"{nope", headers={**client.headers, "Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert "JSON" in not_json.json()["error"]
    assert any(r["location"] == "request body" for r in quarantine(server, keys))
    tiny = {"actor": {"mbox": "mailto:a@b.c"}, "verb": {"id": ADL + "attended"}, "object": {"id": "https://x.y/1"}}
    too_many = client.post([tiny] * 10_001)
    assert too_many.status_code == 413
    assert "at most 10000" in too_many.json()["error"]
    twice = new_id()
    repeated = client.post([statement(id=twice), statement(id=twice)])
    assert repeated.status_code == 400
    assert "repeats" in repeated.json()["error"]


def test_get_parameters_are_checked(client: Client) -> None:
    for params, where in [
        ({"statementId": new_id(), "verb": ADL + "attended"}, "statementId"),
        ({"statementId": new_id(), "voidedStatementId": new_id()}, "statementId"),
        ({"colour": "red"}, "colour"),
        ({"limit": "-1"}, "limit"),
        ({"agent": '{"name": "nobody"}'}, "agent"),
        ({"agent": "not json"}, "agent"),
        ({"verb": "attended"}, "verb"),
        ({"since": "yesterday"}, "since"),
        ({"format": "pretty"}, "format"),
        ({"ascending": "maybe"}, "ascending"),
        ({"more": "garbage"}, "more"),
    ]:
        response = client.get(**params)
        assert response.status_code == 400, params
        assert response.json()["location"] == where, response.json()
    assert client.get(statementId=new_id()).status_code == 404


def test_filters_and_formats(client: Client) -> None:
    course = f"https://school.example/course/{uuid.uuid4().hex}"
    lesson = f"https://school.example/lesson/{uuid.uuid4().hex}"
    teacher = {"mbox": f"mailto:t-{uuid.uuid4().hex}@school.example"}
    learner = {"objectType": "Agent", "mbox": f"mailto:l-{uuid.uuid4().hex}@school.example"}
    in_course = {"contextActivities": {"parent": {"id": course}}, "instructor": teacher}
    before = client.post(statement(activity=lesson)).json()[0]
    time.sleep(0.01)
    since = dt.datetime.now(dt.UTC).isoformat()
    ids = [client.post({**statement(activity=lesson, context=in_course), "actor": learner}).json()[0],
           client.post({**statement(verb="completed", activity=course), "actor": learner}).json()[0]]
    assert [s["id"] for s in client.get(activity=lesson, since=since).json()["statements"]] == [ids[0]]
    assert {s["id"] for s in client.get(activity=lesson).json()["statements"]} == {ids[0], before}
    related = client.get(activity=course, related_activities="true").json()["statements"]
    assert {s["id"] for s in related} == set(ids)
    assert [s["id"] for s in client.get(activity=course).json()["statements"]] == [ids[1]]
    # The single contextActivities.parent object is returned as a list of one.
    assert isinstance(client.get(statementId=ids[0]).json()["context"]["contextActivities"]["parent"], list)

    assert client.get(agent=json.dumps(teacher)).json()["statements"] == []
    by_teacher = client.get(agent=json.dumps(teacher), related_agents="true").json()["statements"]
    assert [s["id"] for s in by_teacher] == [ids[0]]
    newest_first = [s["id"] for s in client.get(agent=json.dumps(learner)).json()["statements"]]
    assert newest_first == [ids[1], ids[0]]
    until = client.get(statementId=ids[0]).json()["stored"]
    assert [s["id"] for s in client.get(agent=json.dumps(learner), until=until).json()["statements"]] == [ids[0]]

    ids_format = client.get(statementId=ids[0], format="ids").json()
    assert ids_format["verb"] == {"id": ADL + "attended"}
    assert ids_format["object"] == {"objectType": "Activity", "id": lesson}
    canonical = client.get({"Accept-Language": "zh-CN"}, statementId=ids[0], format="canonical").json()
    assert canonical["verb"]["display"] == {"zh-CN": "动词"}
    assert canonical["object"]["definition"]["name"] == {"zh-CN": "课"}
    multipart = client.get(statementId=ids[0], attachments="true")
    assert multipart.headers["content-type"].startswith("multipart/mixed")
    head = httpx.head(client.url, params={"statementId": ids[0]}, headers=client.headers)
    assert head.status_code == 200
    assert head.content == b""


def test_voiding(client: Client) -> None:
    target, other = new_id(), new_id()
    assert client.post([statement(id=target), statement(id=other)]).status_code == 200
    voiding = {"actor": statement()["actor"], "verb": {"id": ADL + "voided"},
               "object": {"objectType": "StatementRef", "id": target}}
    voiding_id = client.post(voiding).json()[0]
    assert client.get(statementId=target).status_code == 404
    assert client.get(voidedStatementId=target).json()["id"] == target
    assert client.get(voidedStatementId=other).status_code == 404
    # The voiding statement itself is returned by filters that match its target (StatementRef rule).
    found = [s["id"] for s in client.get(verb=ADL + "attended", limit="20").json()["statements"]]
    assert voiding_id in found
    assert target not in found
    assert other in found
    cannot = client.post({**voiding, "object": {"objectType": "StatementRef", "id": voiding_id}})
    assert cannot.status_code == 400
    assert "voiding statement" in cannot.json()["error"]
    not_ref = client.post({**voiding, "object": {"id": "https://school.example/x"}})
    assert not_ref.status_code == 400
    # A statement voided before it arrives is stored voided.
    late = new_id()
    client.post({**voiding, "object": {"objectType": "StatementRef", "id": late}})
    client.post(statement(id=late))
    assert client.get(statementId=late).status_code == 404
    assert client.get(voidedStatementId=late).status_code == 200


def test_statements_answered_before_a_kill_are_there_after_the_restart(tmp_path: Any) -> None:
    """kill -9 right after the answers, before the server indexed what it accepted (it indexes about every
    EDUPULSE_INGEST__XAPI_INDEX_SECONDS, an hour here): after the restart every answered statement is there, by
    id, in the filtered list and as a conflict, and the statements accepted next come after them."""
    settings = make_settings(tmp_path)
    keys = create_project(settings, "Killed LMS")
    server = Server(settings, env={"EDUPULSE_INGEST__XAPI_INDEX_SECONDS": "3600"}).start()
    try:
        client = Client(server, keys)
        sent = [[{**statement(f"stu-{i}-{k}"), "id": new_id()} for k in range(50)] for i in range(3)]
        for batch in sent:
            assert client.post(batch).status_code == 200
        voided = sent[0][0]["id"]
        voiding = {**statement(verb="voided"), "id": new_id(), "object": {"objectType": "StatementRef", "id": voided}}
        assert client.post(voiding).status_code == 200
        server.kill()
        with sqlite3.connect(str(tmp_path / "metadata.sqlite")) as db:
            assert db.execute("SELECT count(*) FROM xapi_pending_statements").fetchone()[0] == 151  # not indexed
        server.start()
        assert client.post({**sent[1][0], "result": {"success": True}}).status_code == 409
        later = {**statement("stu-later"), "id": new_id()}
        assert client.post(later).status_code == 200
        for batch in sent:
            for s in batch:
                found = client.get(statementId=s["id"]) if s["id"] != voided else client.get(voidedStatementId=voided)
                assert found.status_code == 200, s["id"]
        listed = client.get(limit="0", ascending="true").json()["statements"]
        expected = [s["id"] for batch in sent for s in batch if s["id"] != voided] + [voiding["id"], later["id"]]
        assert [s["id"] for s in listed] == expected
    finally:
        server.kill()


def test_reads_see_every_statement_answered_before_them_under_concurrent_writes(client: Client) -> None:
    """Threads post lists and read them back at once, by id and by their learner, while the others write: every
    read sees everything its thread was answered before it (the server indexes after answering, and a read first
    indexes what was accepted)."""
    failures: list[str] = []

    def learner(n: int) -> None:
        name = f"rw-{n}-{new_id()[:8]}"
        agent = json.dumps({"objectType": "Agent", "account": {"homePage": "https://school.example", "name": name}})
        mine: list[str] = []
        for _ in range(8):
            batch = [{**statement(name), "id": new_id()} for _ in range(15)]
            if client.post(batch).status_code != 200:
                failures.append(f"{name}: POST refused")
                return
            mine += [s["id"] for s in batch]
            if client.get(statementId=mine[-1]).status_code != 200:
                failures.append(f"{name}: {mine[-1]} not found by id")
            found = client.get(agent=agent, limit="0", ascending="true").json()["statements"]
            if [s["id"] for s in found] != mine:
                failures.append(f"{name}: the agent filter gave {len(found)} of {len(mine)}")

    threads = [threading.Thread(target=learner, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:5]
