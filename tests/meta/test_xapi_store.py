"""The xAPI stores on SQLite and, when EDUPULSE_TEST_POSTGRES_URL is set, on PostgreSQL (a fresh schema per test):
statements (conflicts, voiding, filters, StatementRef matching, paging, the group commit under concurrency),
canonical Activities, and documents (merge, concurrency, per-project isolation)."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from typing import Any

import orjson
import pytest

from edupulse.ingest.records import to_micros
from edupulse.ingest.xapi import StatementError, complete, signature, validate_statement
from edupulse.meta.db import MetadataStore
from edupulse.meta.xapi import NewStatement, StatementConflict, StatementFilter, StatementStore
from edupulse.meta.xapi_activities import ActivityCatalogue
from edupulse.meta.xapi_documents import (
    ACTIVITY_PROFILE,
    AGENT_PROFILE,
    STATE,
    DocumentError,
    DocumentScope,
    DocumentStore,
    Preconditions,
)

ADL = "http://adlnet.gov/expapi/verbs/"


AUTHORITY = {"objectType": "Agent", "account": {"homePage": "http://127.0.0.1", "name": "project:1"}}


def new(raw: dict[str, Any]) -> NewStatement:
    statement = validate_statement(raw)
    now = dt.datetime.now(dt.UTC)
    return NewStatement(complete(statement, now, AUTHORITY), signature(statement), to_micros(now),
                        statement.get("timestamp"))


def stmt(verb: str = "attended", activity: str = "https://s.example/l/1", who: str = "a", **extra: Any
         ) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "actor": {"mbox": f"mailto:{who}@s.example"}, "verb": {"id": ADL + verb},
            "object": {"id": activity}, **extra}


def ids(rows: list[tuple[int, str]]) -> list[str]:
    return [orjson.loads(doc)["id"] for _, doc in rows]


@pytest.mark.parametrize("deferred", [False, True], ids=["at-once", "deferred"])
def test_statement_store(meta: MetadataStore, deferred: bool) -> None:
    project = meta.create_project("LMS").project.id
    store = StatementStore(meta, deferred=deferred)
    first = stmt(context={"contextActivities": {"grouping": [{"id": "https://s.example/c/1"}]},
                          "instructor": {"mbox": "mailto:t@s.example"}})
    second = stmt(verb="completed", who="b")
    third = stmt(activity="https://s.example/l/2")
    stored = store.save(project, [new(first), new(second), new(third)])
    assert [s["id"] for s in stored] == [first["id"], second["id"], third["id"]]
    assert store.save(project, [new(first)])[0] == stored[0]  # the same statement again: the stored one
    with pytest.raises(StatementConflict):
        store.save(project, [new({**first, "result": {"success": True}})])

    everything = store.query(project, StatementFilter(), None, 10)
    assert ids(everything) == [third["id"], second["id"], first["id"]]
    page = store.query(project, StatementFilter(ascending=True), None, 2)
    assert ids(page) == [first["id"], second["id"]]
    assert ids(store.query(project, StatementFilter(ascending=True), page[-1][0], 2)) == [third["id"]]
    assert ids(store.query(project, StatementFilter(agent="mbox:mailto:b@s.example"), None, 10)) == [second["id"]]
    teacher = StatementFilter(agent="mbox:mailto:t@s.example")
    assert store.query(project, teacher, None, 10) == []
    teacher.related_agents = True
    assert ids(store.query(project, teacher, None, 10)) == [first["id"]]
    course = StatementFilter(activity="https://s.example/c/1", related_activities=True)
    assert ids(store.query(project, course, None, 10)) == [first["id"]]
    assert ids(store.query(project, StatementFilter(verb=ADL + "completed"), None, 10)) == [second["id"]]

    voiding = stmt(verb="voided")
    voiding["object"] = {"objectType": "StatementRef", "id": first["id"]}
    store.save(project, [new(voiding)])
    assert store.get(project, first["id"], voided=False) is None
    assert store.get(project, first["id"], voided=True) is not None
    # The voiding statement matches the filters its target matches; the target is no longer returned.
    assert ids(store.query(project, course, None, 10)) == [voiding["id"]]
    again = stmt(verb="voided")
    again["object"] = {"objectType": "StatementRef", "id": voiding["id"]}
    with pytest.raises(StatementError, match="cannot be voided"):
        store.save(project, [new(again)])
    other = meta.create_project("Other").project.id
    assert store.query(other, StatementFilter(), None, 10) == []
    assert store.get(other, second["id"], voided=False) is None


@pytest.mark.parametrize("deferred", [False, True], ids=["at-once", "deferred"])
def test_concurrent_requests_share_a_commit_and_keep_their_outcomes(meta: MetadataStore, deferred: bool) -> None:
    """The group commit: requests saved from many threads at once are each stored or refused on their own."""
    project = meta.create_project("Busy LMS").project.id
    store = StatementStore(meta, deferred=deferred, index_seconds=0.01)
    kept = stmt()
    store.save(project, [new(kept)])
    batches = [[new(stmt(who=f"w{i}-{k}")) for k in range(5)] for i in range(12)]
    batches[3] = [new({**kept, "result": {"success": False}})]  # a conflict in the middle of the group
    outcomes: list[Any] = [None] * len(batches)

    def save(i: int) -> None:
        try:
            outcomes[i] = store.save(project, batches[i])
        except StatementConflict as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert isinstance(outcomes[3], StatementConflict)
    assert all(len(o) == 5 for i, o in enumerate(outcomes) if i != 3)
    assert len(store.query(project, StatementFilter(), None, 100)) == 1 + 11 * 5
    assert len({row[0] for row in store.query(project, StatementFilter(), None, 100)}) == 56  # row ids unique


@pytest.mark.parametrize("deferred", [False, True], ids=["at-once", "deferred"])
def test_one_group_decides_its_requests_in_arrival_order(meta: MetadataStore, deferred: bool) -> None:
    """Requests committed in one group see the requests before them in it, as if each had been stored alone:
    a statement added earlier in the group conflicts or repeats, is voided, and voids; a refused request changes
    nothing; another project's statement of the same id is its own."""
    project, other = (meta.create_project(name).project.id for name in ("Group LMS", "Other LMS"))
    store = StatementStore(meta, deferred=deferred, index_seconds=3600)
    x, y, w = stmt(who="x"), stmt(who="y"), stmt(who="w")

    def voiding(target: str) -> dict[str, Any]:
        return {**stmt(verb="voided"), "object": {"objectType": "StatementRef", "id": target}}

    v1, v2 = voiding(x["id"]), voiding(w["id"])
    requests = [(project, [x, y]), (project, [v1]), (project, [{**x, "result": {"success": True}}]), (project, [x]),
                (project, [voiding(v1["id"])]), (project, [v2]), (project, [w]), (other, [x])]
    writer = store._writer
    writer._writing = True  # as if a group were being written: every request below queues for the next one
    outcomes: list[Any] = [None] * len(requests)

    def save(i: int) -> None:
        try:
            outcomes[i] = store.save(requests[i][0], [new(r) for r in requests[i][1]])
        except (StatementConflict, StatementError) as exc:
            outcomes[i] = exc

    threads = []
    for i in range(len(requests)):
        threads.append(threading.Thread(target=save, args=(i,)))
        threads[-1].start()
        while len(writer._queue) <= i:  # queued in this order
            threading.Event().wait(0.001)
    writer._lead()
    for thread in threads:
        thread.join()
    assert [s["id"] for s in outcomes[0]] == [x["id"], y["id"]]
    assert isinstance(outcomes[2], StatementConflict)
    assert outcomes[3][0]["id"] == x["id"]
    assert outcomes[3][0]["stored"] == outcomes[0][0]["stored"]
    assert isinstance(outcomes[4], StatementError)
    assert "cannot be voided" in str(outcomes[4])
    assert store.get(project, x["id"], voided=False) is None
    assert store.get(project, x["id"], voided=True) is not None
    assert store.get(project, w["id"], voided=True) is not None  # voided by a statement that came before it
    assert store.get(project, v1["id"], voided=False) is not None
    assert store.get(other, x["id"], voided=False) is not None
    assert sorted(ids(store.query(project, StatementFilter(), None, 10))) == sorted([y["id"], v1["id"], v2["id"]])
    assert not writer._writing
    assert not writer._queue


def pending_rows(meta: MetadataStore) -> int:
    with meta.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM xapi_pending_statements").scalar_one())


def voiding_of(target: str) -> dict[str, Any]:
    return {**stmt(verb="voided"), "object": {"objectType": "StatementRef", "id": target}}


def test_deferred_rules_see_the_statements_not_yet_indexed(meta: MetadataStore) -> None:
    """The server's store on SQLite answers a request once its statements are durable in the pending table, and
    indexes them later: until then the rules of ids and voiding see them as stored (a repeat, a conflict, voiding
    one, voiding a voiding one, a target voided before it arrives), and a read indexes everything before it. On
    PostgreSQL the same store indexes at once."""
    project = meta.create_project("Deferred LMS").project.id
    store = StatementStore(meta, deferred=True, index_seconds=3600)
    sqlite = meta.engine.dialect.name == "sqlite"
    x, y, w = stmt(who="x", activity="https://s.example/l/7"), stmt(who="y"), stmt(who="w")
    first = store.save(project, [new(x), new(y)])
    assert pending_rows(meta) == (2 if sqlite else 0)
    assert store.save(project, [new(x)])[0] == first[0]  # a repeat: the statement as stored
    with pytest.raises(StatementConflict):
        store.save(project, [new({**x, "result": {"success": True}})])
    v1 = voiding_of(x["id"])
    store.save(project, [new(v1)])
    with pytest.raises(StatementError, match="cannot be voided"):
        store.save(project, [new(voiding_of(v1["id"]))])
    v2 = voiding_of(w["id"])
    store.save(project, [new(v2)])
    store.save(project, [new(w)])  # voided by a statement that came before it
    assert pending_rows(meta) == (5 if sqlite else 0)
    assert store.get(project, x["id"], voided=False) is None  # the read indexes first
    assert pending_rows(meta) == 0
    assert store.get(project, x["id"], voided=True) is not None
    assert store.get(project, w["id"], voided=True) is not None
    assert ids(store.query(project, StatementFilter(ascending=True), None, 10)) == [y["id"], v1["id"], v2["id"]]
    assert ids(store.query(project, StatementFilter(activity="https://s.example/l/7"), None, 10)) == [v1["id"]]
    with meta.engine.connect() as conn:  # row ids in the order the statements were accepted
        order = [sid for (sid,) in conn.exec_driver_sql("SELECT statement_id FROM xapi_statements ORDER BY id")]
    assert order == [x["id"], y["id"], v1["id"], v2["id"], w["id"]]
    assert store.activities.get(project, "https://s.example/l/7") is None  # no definition given: none made up


def test_deferred_statements_are_indexed_after_a_restart(meta: MetadataStore) -> None:
    """A server stopped (even by kill -9) before it indexed leaves the accepted statements in the pending table:
    the next store indexes them before it decides anything, so they conflict, are voided and read as before,
    and new statements come after them."""
    project = meta.create_project("Restarted LMS").project.id
    lesson = "https://s.example/l/8"
    a = stmt(who="a") | {"object": {"id": lesson, "definition": {"name": {"en-US": "Decimals"}}}}
    b = stmt(who="b")
    StatementStore(meta, deferred=True, index_seconds=3600).save(project, [new(a), new(b)])
    # The process that accepted them is gone; a new one opens the store.
    store = StatementStore(meta, deferred=True, index_seconds=3600)
    with pytest.raises(StatementConflict):
        store.save(project, [new({**a, "result": {"success": True}})])
    assert pending_rows(meta) == 0
    c = stmt(who="c")
    store.save(project, [new(c), new(voiding_of(b["id"]))])
    assert store.get(project, b["id"], voided=True) is not None
    assert ids(store.query(project, StatementFilter(ascending=True), None, 10))[:2] == [a["id"], c["id"]]
    assert store.activities.get(project, lesson) == {"name": {"en-US": "Decimals"}}


def test_accepted_statements_are_indexed_without_reads(meta: MetadataStore) -> None:
    """Accepted statements reach the indexed tables by themselves, about every `index_seconds`."""
    project = meta.create_project("Quiet LMS").project.id
    store = StatementStore(meta, deferred=True, index_seconds=0.05)
    store.save(project, [new(stmt(who=f"q{i}")) for i in range(30)])
    deadline = time.monotonic() + 60
    while pending_rows(meta) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pending_rows(meta) == 0
    with meta.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM xapi_statements").scalar_one() == 30


def test_voiding_while_statements_are_being_indexed(meta: MetadataStore) -> None:
    """The indexing thread moves accepted statements between requests that accept more and void earlier ones,
    some still pending, some just moved: every statement is stored once, exactly the targets are voided, and the
    rules keep refusing to void a voiding statement whichever table holds it."""
    project = meta.create_project("Racing LMS").project.id
    store = StatementStore(meta, deferred=True, index_seconds=0.002)
    first = stmt(who="first")
    store.save(project, [new(first)])
    deadline = time.monotonic() + 60
    while pending_rows(meta) and time.monotonic() < deadline:  # the indexing thread is running
        time.sleep(0.01)
    accepted: list[str] = [first["id"]]
    voided: set[str] = set()
    voidings: list[str] = []
    moved_meanwhile = 0
    for round_ in range(40):
        batch = [stmt(who=f"r{round_}-{k}") for k in range(10)]
        store.save(project, [new(s) for s in batch])
        accepted += [s["id"] for s in batch]
        target = accepted[(round_ * 7) % len(accepted)]
        if target not in voided:
            v = voiding_of(target)
            store.save(project, [new(v)])
            voided.add(target)
            voidings.append(v["id"])
        if voidings and round_ % 5 == 4:
            with pytest.raises(StatementError, match="cannot be voided"):
                store.save(project, [new(voiding_of(voidings[-1]))])
        time.sleep(0.004 * (round_ % 3))
        with meta.engine.connect() as conn:
            moved_meanwhile = conn.exec_driver_sql("SELECT count(*) FROM xapi_statements").scalar_one()
    if meta.engine.dialect.name == "sqlite":
        assert moved_meanwhile > 100  # statements were moved while the rules ran
    store.flush()
    assert pending_rows(meta) == 0
    with meta.engine.connect() as conn:
        rows = dict(conn.exec_driver_sql("SELECT statement_id, voided FROM xapi_statements").all())
    assert sorted(rows) == sorted(accepted + voidings)
    assert {sid for sid, is_voided in rows.items() if is_voided} == voided


def test_an_id_stored_by_another_process_meanwhile_is_decided_again(meta: MetadataStore,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process stores a statement between this one's lookup and its insert: the unique index refuses the
    insert (on PostgreSQL from COPY too), and the request is decided again, alone: the same statement is the stored
    one, another statement of that id is a conflict."""
    from edupulse.meta import xapi_writes

    project = meta.create_project("Two servers").project.id
    mine, other = StatementStore(meta), StatementStore(meta)
    x = stmt(who="x")
    other.save(project, [new(x)])
    first_lookup = [True]
    select_in = xapi_writes._select_in

    def late(*args: Any) -> Any:  # the first lookup ran before the other process committed
        if first_lookup[0]:
            first_lookup[0] = False
            return iter(())
        return select_in(*args)

    monkeypatch.setattr(xapi_writes, "_select_in", late)
    again = mine.save(project, [new(x), new(stmt(who="y"))])
    found = other.get(project, x["id"], voided=False)
    assert found is not None
    assert again[0]["stored"] == orjson.loads(found[0])["stored"]  # the statement stored first
    assert sorted(ids(mine.query(project, StatementFilter(), None, 10))) == sorted([x["id"], again[1]["id"]])
    first_lookup[0] = True
    with pytest.raises(StatementConflict):
        mine.save(project, [new({**x, "result": {"success": True}})])


def test_canonical_activities_and_agent_names(meta: MetadataStore) -> None:
    project = meta.create_project("Definitions").project.id
    store = StatementStore(meta)
    lesson = "https://s.example/l/9"
    store.save(project, [new(stmt(activity=lesson) | {"object": {"id": lesson, "definition": {
        "name": {"en-US": "Fractions"}, "type": "http://adlnet.gov/expapi/activities/lesson"}}})])
    store.save(project, [new(stmt(activity=lesson) | {"actor": {"mbox": "mailto:a@s.example", "name": "Ann"},
                                                       "object": {"id": lesson, "definition": {
                                                           "name": {"zh-CN": "分数"}}}})])
    assert store.activities.get(project, lesson) == {"name": {"en-US": "Fractions", "zh-CN": "分数"},
                                                     "type": "http://adlnet.gov/expapi/activities/lesson"}
    assert ActivityCatalogue(meta).get(project, lesson) == store.activities.get(project, lesson)  # not a cache
    assert store.activities.get(meta.create_project("Elsewhere").project.id, lesson) is None
    assert store.agent_names(project, "mbox:mailto:a@s.example") == ["Ann"]


def test_documents(meta: MetadataStore) -> None:
    project = meta.create_project("Documents").project.id
    other = meta.create_project("Another school").project.id
    documents = DocumentStore(meta)
    scope = DocumentScope(STATE, "https://s.example/l/1", "mbox:mailto:a@s.example")
    with_registration = DocumentScope(STATE, scope.activity_id, scope.agent_key, str(uuid.uuid4()))
    none = Preconditions()
    documents.put(project, scope, "bookmark", "application/json", b'{"page": 1}', none, 1, merge=False)
    documents.put(project, with_registration, "bookmark", "application/json", b'{"page": 7}', none, 2, merge=False)
    documents.put(project, scope, "bookmark", "application/json", b'{"score": 3}', none, 3, merge=True)
    found = documents.get(project, scope, "bookmark")
    assert found is not None
    assert orjson.loads(found.content) == {"page": 1, "score": 3}
    assert found.etag == hashlib.sha1(found.content).hexdigest()
    assert documents.ids(project, scope, None) == (["bookmark"], 3)  # every registration's ids, once
    assert documents.ids(project, with_registration, None) == (["bookmark"], 2)
    assert documents.ids(project, scope, 2) == (["bookmark"], 3)
    assert documents.get(other, scope, "bookmark") is None  # projects are kept apart
    with pytest.raises(DocumentError) as refused:
        documents.put(project, scope, "bookmark", "text/plain", b"x", none, 4, merge=True)
    assert refused.value.status == 400
    profile = DocumentScope(ACTIVITY_PROFILE, "https://s.example/c/1")
    documents.put(project, profile, "settings", "application/octet-stream", bytes(range(256)), none, 5, merge=False)
    with pytest.raises(DocumentError) as conflict:
        documents.put(project, profile, "settings", "text/plain", b"y", none, 6, merge=False)
    assert conflict.value.status == 409
    stale = Preconditions.parse('"0000"', None)
    with pytest.raises(DocumentError) as failed:
        documents.delete(project, profile, "settings", stale)
    assert failed.value.status == 412
    current = documents.get(project, profile, "settings")
    assert current is not None
    assert current.content == bytes(range(256))
    documents.delete(project, profile, "settings", Preconditions.parse(f'W/"{current.etag}"', None))
    assert documents.get(project, profile, "settings") is None
    assert documents.delete_all(project, scope) == 2


def test_documents_one_writer_wins(meta: MetadataStore) -> None:
    """Two clients holding the same ETag: exactly one replaces the document, the other gets 412."""
    project = meta.create_project("Race").project.id
    documents = DocumentStore(meta)
    scope = DocumentScope(AGENT_PROFILE, agent_key="mbox:mailto:a@s.example")
    documents.put(project, scope, "prefs", "application/json", b"{}", Preconditions(), 1, merge=False)
    current = documents.get(project, scope, "prefs")
    assert current is not None
    statuses: list[int] = []

    def write(i: int) -> None:
        try:
            documents.put(project, scope, "prefs", "application/json", f'{{"v": {i}}}'.encode(),
                          Preconditions.parse(f'"{current.etag}"', None), 2 + i, merge=False)
            statuses.append(204)
        except DocumentError as exc:
            statuses.append(exc.status)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [204, 412, 412, 412, 412, 412]


def test_statement_references_are_followed_along_chains(meta: MetadataStore) -> None:
    project = meta.create_project("Chains").project.id
    store = StatementStore(meta)
    first = stmt(activity="https://s.example/l/chain")
    second = stmt(verb="commented") | {"object": {"objectType": "StatementRef", "id": first["id"]}}
    third = stmt(verb="liked") | {"object": {"objectType": "StatementRef", "id": second["id"]}}
    store.save(project, [new(first), new(second), new(third)])
    found = store.query(project, StatementFilter(activity="https://s.example/l/chain"), None, 10)
    assert ids(found) == [third["id"], second["id"], first["id"]]


def test_lrs_summary(meta: MetadataStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from edupulse.meta import xapi_summary
    from edupulse.meta.xapi_summary import summarize

    project, other = meta.create_project("LMS").project.id, meta.create_project("Other").project.id
    store = StatementStore(meta, deferred=True)
    assert summarize(meta, project).statements == 0
    late = stmt(who="late")  # voided before it arrives
    early_void = stmt(verb="voided", object={"objectType": "StatementRef", "id": late["id"]})
    sent = [stmt(), stmt(verb="completed"), stmt(verb="completed", who="b"), early_void]
    store.save(project, [new(s) for s in sent])
    store.save(other, [new(stmt(verb="failed")) for _ in range(3)])
    voiding = stmt(verb="voided", object={"objectType": "StatementRef", "id": sent[0]["id"]})
    store.save(project, [new(late), new(voiding)])
    store.flush()
    summary = summarize(meta, project)
    assert (summary.statements, summary.voided) == (6, 2)
    assert [(v.verb, v.statements) for v in summary.verbs] == [(ADL + "attended", 2), (ADL + "completed", 2),
                                                               (ADL + "voided", 2)]  # ties by verb
    assert [r.voided for r in summary.recent] == [False, True, False, False, False, True]
    assert summarize(meta, other).voided == 0
    assert [v.statements for v in summarize(meta, other).verbs] == [3]
    monkeypatch.setattr(xapi_summary, "VERB_WINDOW", 2)  # the verbs of the latest two statements
    windowed = summarize(meta, project, verb=ADL + "completed", recent=1)
    assert windowed.verbs_of_latest == 2
    assert sorted(v.verb for v in windowed.verbs) == [ADL + "attended", ADL + "voided"]
    assert [r.id for r in windowed.recent] == [sent[2]["id"]]


def test_lrs_summary_labels_every_kind_of_object(meta: MetadataStore) -> None:
    from edupulse.meta.xapi_summary import summarize

    project = meta.create_project("LMS").project.id
    store = StatementStore(meta, deferred=True)
    sub = {"objectType": "SubStatement", "actor": {"mbox": "mailto:x@s.example"}, "verb": {"id": ADL + "attended"},
           "object": {"id": "https://s.example/l/9"}}
    group = {"objectType": "Group", "member": [{"mbox": "mailto:m1@s.example"}, {"mbox": "mailto:m2@s.example"}]}
    sent = [stmt(verb="planned", object=sub), stmt(verb="mentored", object={"objectType": "Agent", "name": "Wang",
                                                                     "mbox": "mailto:w@s.example"}),
            {**stmt(verb="attended"), "actor": group}]
    store.save(project, [new(s) for s in sent])
    store.flush()
    recent = summarize(meta, project).recent
    assert [(r.actor, r.object, r.object_type, r.event) for r in recent] == [
        ("Group (2)", "https://s.example/l/1", "Activity", "lesson_attended"),
        ("a@s.example", "Wang", "Agent", "xapi_mentored"),
        ("a@s.example", f"SubStatement ({ADL}attended)", "SubStatement", "xapi_planned")]
    masked = summarize(meta, project, personal=False, mask=lambda text: "*")
    assert [(r.actor, r.object) for r in masked.recent] == [("*", "https://s.example/l/1"), ("*", "*"),
                                                            ("*", f"SubStatement ({ADL}attended)")]
