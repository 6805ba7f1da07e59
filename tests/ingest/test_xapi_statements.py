"""Statement validation by the rules of xAPI 1.0.3 (Data, section 2.4), and the mapping of statements onto the
standard education events and One-ID identities, through the real write path into DuckDB."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from conftest import create_project, make_settings
from edupulse.api.xapi import store_statements
from edupulse.ingest.xapi import StatementError, duration_seconds, signature, validate_statement
from edupulse.runtime import Platform

ADL = "http://adlnet.gov/expapi/verbs/"
AGENT = {"objectType": "Agent", "mbox": "mailto:learner@example.com"}


def good() -> dict[str, Any]:
    return {
        "actor": dict(AGENT),
        "verb": {"id": ADL + "answered", "display": {"en-US": "answered"}},
        "object": {"id": "https://school.example/q/1", "definition": {
            "type": "http://adlnet.gov/expapi/activities/cmi.interaction", "interactionType": "choice",
            "correctResponsesPattern": ["a"], "choices": [{"id": "a", "description": {"en-US": "A"}}]}},
        "result": {"success": True, "score": {"raw": 5, "min": 0, "max": 10, "scaled": 0.5}, "duration": "PT30S"},
        "context": {"registration": "9e13cefd-53d3-4eac-b5ed-2cf6693903bb", "platform": "Moodle",
                    "contextActivities": {"parent": [{"id": "https://school.example/course/1"}]}},
        "timestamp": "2026-09-01T08:30:00.123+08:00",
    }


def change(path: str, value: Any) -> dict[str, Any]:
    statement = good()
    *parents, last = path.split(".")
    node: Any = statement
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return statement


DELETE = object()

BAD = [
    ("actor", DELETE, "statement.actor", "required"),
    ("verb", DELETE, "statement.verb", "required"),
    ("object", DELETE, "statement.object", "required"),
    ("colour", "red", "statement.colour", "not a property"),
    ("id", "1234", "statement.id", "UUID"),
    ("actor.mbox", "learner@example.com", "statement.actor.mbox", "mailto"),
    ("actor.openid", "https://id.example/x", "statement.actor", "one"),
    ("actor.objectType", "Person", "statement.actor.objectType", "not allowed"),
    ("actor", {"objectType": "Agent", "name": "nobody"}, "statement.actor", "exactly one"),
    ("actor", {"objectType": "Group", "name": "team"}, "statement.actor", "member"),
    ("actor", {"objectType": "Group", "member": [{"objectType": "Group", "mbox": "mailto:a@b.c"}]},
     "statement.actor.member[0]", "not Groups"),
    ("actor", {"mbox_sha1sum": "xyz"}, "statement.actor.mbox_sha1sum", "SHA-1"),
    ("actor", {"account": {"name": "u1"}}, "statement.actor.account.homePage", "required"),
    ("actor", {"account": {"homePage": "school", "name": "u1"}}, "statement.actor.account.homePage", "IRI"),
    ("actor.name", None, "statement.actor.name", "null"),
    ("verb.id", "answered", "statement.verb.id", "IRI"),
    ("verb.display", {"en_US": "answered"}, "statement.verb.display.en_US", "language tag"),
    ("verb.display", "answered", "statement.verb.display", "language map"),
    ("object.objectType", "Thing", "statement.object.objectType", "not one of"),
    ("object.id", "has spaces in it", "statement.object.id", "IRI"),
    ("object.definition.interactionType", "essay", "statement.object.definition.interactionType", "not one of"),
    ("object.definition.scale", [{"id": "1"}], "statement.object.definition.scale", "not allowed"),
    ("object.definition.choices", [{"id": "a"}, {"id": "a"}], "statement.object.definition.choices[1].id", "twice"),
    ("result.score.scaled", 1.5, "statement.result.score.scaled", "between -1 and 1"),
    ("result.score.raw", 11, "statement.result.score.raw", "between min and max"),
    ("result.score.min", 10, "statement.result.score.max", "greater than min"),
    ("result.success", "yes", "statement.result.success", "true or false"),
    ("result.duration", "30 seconds", "statement.result.duration", "ISO 8601 duration"),
    ("result.extensions", {"not an iri": 1}, "statement.result.extensions.not an iri", "IRI"),
    ("context.registration", "abc", "statement.context.registration", "UUID"),
    ("context.team", {"mbox": "mailto:t@x.y"}, "statement.context.team", "Group"),
    ("context.contextActivities.parent", [{"id": "x y"}], "statement.context.contextActivities.parent[0].id", "IRI"),
    ("context.contextActivities.sibling", [], "statement.context.contextActivities.sibling", "not a property"),
    ("context.language", "english please", "statement.context.language", "language tag"),
    ("timestamp", "2026-09-01 08:30", "statement.timestamp", "ISO 8601"),
    ("timestamp", "2026-09-01T08:30:00-00:00", "statement.timestamp", "ISO 8601"),
    ("timestamp", "2026-13-01T08:30:00Z", "statement.timestamp", "not a valid date"),
    ("version", "2.0.0", "statement.version", "not supported"),
    ("attachments", [{"usageType": "http://x.y/z", "display": {"en": "a"}, "contentType": "text/plain",
                      "length": 3, "sha2": "abc"}], "statement.attachments[0].sha2", "SHA-2"),
    ("object.definition.interactionType", {"type": "choice"}, "statement.object.definition.interactionType",
     "not one of"),
    ("object.definition.interactionType", "Choice", "statement.object.definition.interactionType", "lower case"),
    ("result.duration", "P4W1D", "statement.result.duration", "ISO 8601 duration"),
    ("result.duration", "PT", "statement.result.duration", "ISO 8601 duration"),
    ("context.contextActivities", {}, "statement.context.contextActivities", "empty"),
    ("context.language", "zh-z-aaa-z-bbb", "statement.context.language", "RFC 5646"),
    ("authority", {"objectType": "Group", "member": [{"mbox": "mailto:a@example.com"}]}, "statement.authority.member",
     "exactly two"),
    ("authority", {"objectType": "Group", "mbox": "mailto:g@example.com", "member": [
        {"account": {"homePage": "http://lrs.example/OAuth/token", "name": "app"}}, {"mbox": "mailto:a@example.com"}]},
     "statement.authority", "anonymous"),
    ("authority", {"objectType": "Group", "member": [{"mbox": "mailto:a@example.com"},
                                                     {"mbox": "mailto:b@example.com"}]},
     "statement.authority.member", "application"),
]


@pytest.mark.parametrize(("path", "value", "location", "reason"), BAD, ids=[f"{b[2]}:{b[3]}" for b in BAD])
def test_bad_statements_are_refused_with_where_and_why(path: str, value: Any, location: str, reason: str) -> None:
    with pytest.raises(StatementError) as caught:
        validate_statement(change(path, value))
    assert caught.value.location == location
    assert reason in caught.value.reason


def test_structural_rules() -> None:
    statement = good()
    statement["object"] = {"objectType": "Agent", "mbox": "mailto:b@x.y"}
    statement["context"]["platform"] = "Moodle"
    with pytest.raises(StatementError, match="only allowed when the statement's object is an Activity"):
        validate_statement(statement)
    sub = good()
    sub["object"] = {"objectType": "SubStatement", "actor": AGENT, "verb": {"id": ADL + "attended"},
                     "object": {"objectType": "SubStatement", "actor": AGENT, "verb": {"id": ADL + "attended"},
                                "object": {"id": "https://x.y/a"}}}
    with pytest.raises(StatementError, match="cannot contain another SubStatement"):
        validate_statement(sub)
    sub["object"]["object"] = {"id": "https://x.y/a"}
    sub["object"]["id"] = "9e13cefd-53d3-4eac-b5ed-2cf6693903bb"
    with pytest.raises(StatementError, match="not a property"):
        validate_statement(sub)
    voiding = {"actor": AGENT, "verb": {"id": ADL + "voided"}, "object": {"id": "https://x.y/a"}}
    with pytest.raises(StatementError, match="StatementRef"):
        validate_statement(voiding)
    for value in (None, [], "statement", 3):
        with pytest.raises(StatementError, match="statement object"):
            validate_statement(value)


def test_accepted_statements_are_normalized() -> None:
    statement = good()
    statement["context"]["contextActivities"] = {"parent": {"id": "https://school.example/course/1"}}
    statement["id"] = "9E13CEFD-53D3-4EAC-B5ED-2CF6693903BB"
    out = validate_statement(statement)
    assert out["context"]["contextActivities"]["parent"] == [{"id": "https://school.example/course/1"}]
    assert out["id"] == "9e13cefd-53d3-4eac-b5ed-2cf6693903bb"
    group = good()
    group["actor"] = {"objectType": "Group", "member": [AGENT, {"account": {"homePage": "https://x.y", "name": "u"}}]}
    validate_statement(group)


def test_signature_ignores_what_the_lrs_sets() -> None:
    one = good()
    two = copy.deepcopy(one)
    two.update(stored="2026-09-02T00:00:00Z", version="1.0.3", authority=AGENT, timestamp="2026-09-01T00:30:00.123Z")
    assert signature(one) == signature(two)
    two["result"]["success"] = False
    assert signature(one) != signature(two)


def test_durations() -> None:
    assert duration_seconds("PT1H30M") == 5400
    assert duration_seconds("P1DT0.5S") == 86400.5
    assert duration_seconds("PT") is None
    assert duration_seconds("P") is None


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = make_settings(tmp_path_factory.mktemp("xapi-map"))
    create_project(settings, "LMS")
    with Platform(settings).open() as plat:
        yield plat


def send(plat: Platform, statements: list[dict[str, Any]]) -> list[str]:
    project = plat.meta.project_by_name("LMS")
    assert project is not None
    authority = {"objectType": "Agent", "account": {"homePage": "http://127.0.0.1", "name": "project:1"}}
    ids, prepared = store_statements(plat, project, statements, authority)
    future = plat.ingestor.commit(project, prepared, "xapi")
    if future is not None:
        future.result()
    plat.flush()
    return ids


def test_statements_become_education_events_and_identities(platform: Platform) -> None:
    course = {"id": "https://school.example/course/math", "definition": {"type": "http://adlnet.gov/expapi/activities/course"}}
    lesson = {"id": "https://school.example/lesson/7", "definition": {"type": "http://adlnet.gov/expapi/activities/lesson"}}
    account = {"account": {"homePage": "https://lms.example", "name": "stu-9"}}
    when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    parent = {"contextActivities": {"parent": [course]}}
    statements = [
        {"actor": account, "verb": {"id": ADL + "registered"}, "object": course, "timestamp": when},
        {"actor": account, "verb": {"id": ADL + "attended"}, "object": lesson, "context": parent,
         "result": {"duration": "PT45M"}, "timestamp": when},
        {"actor": account, "verb": {"id": ADL + "completed"}, "object": lesson, "context": parent, "timestamp": when},
        {"actor": {"mbox": "mailto:Stu9@Example.com"}, "verb": {"id": ADL + "answered"},
         "object": {"id": "https://school.example/q/1"}, "context": parent,
         "result": {"success": False, "response": "b"}, "timestamp": when},
        {"actor": {"openid": "https://id.example/stu9"}, "verb": {"id": ADL + "passed"}, "object": course,
         "result": {"score": {"scaled": 0.8}}, "timestamp": when},
        {"actor": {"mbox_sha1sum": "A" * 40}, "verb": {"id": ADL + "completed"}, "object": course, "timestamp": when},
        {"actor": {"objectType": "Group", "member": [account, {"mbox": "mailto:t@x.y"}]},
         "verb": {"id": "https://w3id.org/xapi/dod-isd/verbs/reviewed"}, "object": lesson, "timestamp": when},
    ]
    ids = send(platform, statements)
    rows = platform.store.query(
        "SELECT event, distinct_id, prop_course_id, prop_lesson_id, prop_question_id, prop_correct, prop_duration_s, "
        "prop_score, json_extract_string(properties, '$.result'), "
        "json_extract_string(properties, '$.xapi_statement_id'), prop_source_system FROM events ORDER BY insert_id"
    ).rows
    by_statement: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_statement.setdefault(row[9], []).append(row[:9])
    math, l7 = course["id"], lesson["id"]
    assert by_statement[ids[0]] == [("course_enrolled", "stu-9", math, None, None, None, None, None, None)]
    assert by_statement[ids[1]] == [("lesson_attended", "stu-9", math, l7, None, None, 2700.0, None, None)]
    assert by_statement[ids[2]] == [("lesson_completed", "stu-9", math, l7, None, None, None, None, None)]
    assert by_statement[ids[3]] == [("quiz_answered", "stu9@example.com", math, None, "https://school.example/q/1",
                                     False, None, None, None)]
    assert by_statement[ids[4]] == [("assessment_result", "https://id.example/stu9", math, None, None, None, None,
                                     80.0, "passed")]
    assert by_statement[ids[5]][0][:3] == ("course_completed", "a" * 40, math)
    assert sorted(r[:2] for r in by_statement[ids[6]]) == [("xapi_reviewed", "stu-9"), ("xapi_reviewed", "t@x.y")]
    identities = set(platform.store.query("SELECT id_type, id_value FROM identities").rows)
    assert {("login_id", "stu-9"), ("email", "stu9@example.com"), ("openid", "https://id.example/stu9"),
            ("email_sha1", "a" * 40), ("email", "t@x.y")} <= identities
    # Sent again (a retry): stored once.
    assert send(platform, statements[:1] and [{**statements[0], "id": ids[0]}]) == ids[:1]
    count = platform.store.query("SELECT count(*) FROM events WHERE event = 'course_enrolled'").rows
    assert count == [(1,)]
