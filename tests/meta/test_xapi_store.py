"""The xAPI statement store on SQLite and, when EDUPULSE_TEST_POSTGRES_URL is set, on PostgreSQL (a fresh schema
per test): conflicts, voiding, filters, StatementRef matching and paging."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
import pytest

from edupulse.ingest.records import to_micros
from edupulse.ingest.xapi import StatementError, complete, signature, validate_statement
from edupulse.meta.db import MetadataStore
from edupulse.meta.xapi import NewStatement, StatementConflict, StatementFilter, StatementStore

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


def test_statement_store(meta: MetadataStore) -> None:
    project = meta.create_project("LMS").project.id
    store = StatementStore(meta)
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
