"""xAPI 1.0.3 conformance, statements: Data 2.2-2.6 and 4, Communication 1.1, 1.3, 1.5, 2.1, 3.2-3.3 and 4,
one test or case per numbered requirement (XAPI-000NN in the test's name or case id), against a live server on
loopback. Helpers and the list of requirements: xapi_conformance.py."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from xapi_conformance import ADL, DELETE, LRS, V, agent, agent_json, lrs, statement, with_path

__all__ = ["lrs"]

VOIDED = ADL + "voided"
GROUP = {"objectType": "Group", "name": "Class 5", "member": [agent(), agent()]}
ATTACHMENT = {"usageType": "http://example.com/attachment/certificate", "display": {"en-US": "Certificate"},
              "description": {"en-US": "A certificate"}, "contentType": "application/pdf", "length": 27,
              "sha2": hashlib.sha256(b"here is a simple attachment").hexdigest(),
              "fileUrl": "http://example.com/certificate.pdf"}


def full() -> dict[str, Any]:
    """A statement using every property, each valid."""
    return statement(
        result={"score": {"scaled": 0.5, "raw": 5, "min": 0, "max": 10}, "success": True, "completion": True,
                "response": "a", "duration": "PT1H30M", "extensions": {"http://example.com/ext": {"x": 1}}},
        context={"registration": str(uuid.uuid4()), "instructor": agent(), "team": GROUP,
                 "contextActivities": {"parent": [{"id": "http://example.com/course"}],
                                       "grouping": [{"id": "http://example.com/program"}],
                                       "category": [{"id": "http://example.com/profile"}],
                                       "other": [{"id": "http://example.com/other"}]},
                 "revision": "1", "platform": "web", "language": "en-US",
                 "statement": {"objectType": "StatementRef", "id": str(uuid.uuid4())},
                 "extensions": {"http://example.com/ext": 1}},
        timestamp="2026-09-01T08:30:00.123Z", attachments=[dict(ATTACHMENT)])


def interaction(kind: str = "choice", **definition: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "http://adlnet.gov/expapi/activities/cmi.interaction", "interactionType": kind,
                            "correctResponsesPattern": ["a"]}
    if kind in ("choice", "sequencing"):
        base["choices"] = [{"id": "a", "description": {"en-US": "A"}}, {"id": "b", "description": {"en-US": "B"}}]
    base.update(definition)
    return statement(object={"id": "http://example.com/q/1", "definition": base})


def substatement(**extra: Any) -> dict[str, Any]:
    inner = {"objectType": "SubStatement", "actor": agent(), "verb": {"id": ADL + "attended"},
             "object": {"id": "http://example.com/lesson/1"}, **extra}
    return statement(object=inner)


@dataclass(frozen=True)
class Case:
    requirement: str
    name: str
    make: Callable[[], Any]
    status: int

    @property
    def id(self) -> str:
        return f"{self.requirement}-{self.name}"


def bad(requirement: str, name: str, path: str, value: Any, base: Callable[[], dict[str, Any]] = full) -> Case:
    return Case(requirement, name, lambda: with_path(base(), path, value), 400)


def good(requirement: str, name: str, path: str, value: Any, base: Callable[[], dict[str, Any]] = full) -> Case:
    return Case(requirement, name, lambda: with_path(base(), path, value), 200)


def renamed(key: str, new: str) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        out = full()
        out[new] = out.pop(key)
        return out
    return make


SHA1 = hashlib.sha1(b"mailto:someone@example.com").hexdigest()

CASES = [
    good("XAPI-00001", "extensions-may-be-empty-or-null", "result.extensions", {"http://example.com/e": None}),
    good("XAPI-00001", "context-extensions-empty", "context.extensions", {}),
    bad("XAPI-00001", "actor-name-null", "actor.name", None),
    bad("XAPI-00001", "verb-null", "verb", None),
    bad("XAPI-00001", "context-null", "context", None),
    bad("XAPI-00001", "result-score-null", "result.score", None),
    bad("XAPI-00003", "no-actor", "actor", DELETE),
    bad("XAPI-00004", "no-verb", "verb", DELETE),
    bad("XAPI-00005", "no-object", "object", DELETE),
    bad("XAPI-00006", "number-as-string", "result.score.raw", "5"),
    bad("XAPI-00006", "boolean-as-string", "result.success", "true"),
    bad("XAPI-00007", "empty-uuid", "id", ""),
    bad("XAPI-00007", "uuid-too-long", "id", "9e13cefd-53d3-4eac-b5ed-2cf6693903bbb"),
    bad("XAPI-00007", "mbox-without-mailto", "actor.mbox", "learner@example.com"),
    bad("XAPI-00007", "account-name-number", "actor", {"account": {"homePage": "http://example.com", "name": 5}}),
    Case("XAPI-00008", "key-case", renamed("actor", "Actor"), 400),
    Case("XAPI-00008", "verb-key-case", renamed("verb", "Verb"), 400),
    bad("XAPI-00009", "interaction-type-case", "object.definition.interactionType", "Choice", interaction),
    bad("XAPI-00010", "unknown-key", "colour", "red"),
    bad("XAPI-00010", "member-on-agent", "actor.member", [agent()]),
    bad("XAPI-00011", "iri-without-scheme", "verb.id", "example.com/verbs/experienced"),
    bad("XAPI-00013", "language-map-key", "verb.display", {"en_US": "x"}),
    bad("XAPI-00013", "repeated-extension-singleton", "object.definition.name", {"zh-z-aaa-z-bbb": "x"}),
    good("XAPI-00013", "script-region-tag", "object.definition.name", {"zh-Hans-CN": "课", "sr-Latn-RS": "x"}),
    bad("XAPI-00017", "voiding-an-activity", "verb", {"id": VOIDED}),
    bad("XAPI-00020", "voiding-needs-statementref", "verb", {"id": VOIDED}, statement),
    bad("XAPI-00022", "bad-timestamp", "timestamp", "2026-09-01 08:30"),
    bad("XAPI-00022", "negative-zero-offset", "timestamp", "2026-09-01T08:30:00-00:00"),
    good("XAPI-00023", "stored-is-overwritten", "stored", "2001-01-01T00:00:00Z"),
    bad("XAPI-00024", "authority-not-agent", "authority", {"objectType": "Activity", "id": "http://example.com/a"}),
    bad("XAPI-00025", "attachments-not-array", "attachments", dict(ATTACHMENT)),
    bad("XAPI-00027", "id-not-uuid", "id", "not-a-uuid"),
    bad("XAPI-00028", "id-not-string", "id", 12345),
    bad("XAPI-00029", "uuid-without-dashes", "id", uuid.uuid4().hex),
    bad("XAPI-00030", "uuid-non-hex", "id", "9e13cefd-53d3-4eac-b5ed-2cf6693903zz"),
    bad("XAPI-00031", "actor-objecttype", "actor.objectType", "Activity"),
    bad("XAPI-00032", "objecttype-not-string", "actor.objectType", 1),
    bad("XAPI-00033", "name-not-string", "actor.name", ["Ann"]),
    bad("XAPI-00034", "two-identifiers", "actor.openid", "http://openid.example.com/ann"),
    bad("XAPI-00034", "no-identifier", "actor", {"objectType": "Agent", "name": "nobody"}),
    bad("XAPI-00035", "member-on-verb", "verb.member", [agent()]),
    bad("XAPI-00036", "member-not-agents", "actor", {"objectType": "Group", "member": ["ann"]}),
    bad("XAPI-00036", "group-in-group", "actor", {"objectType": "Group", "member": [GROUP]}),
    bad("XAPI-00037", "anonymous-group-no-member", "actor", {"objectType": "Group", "name": "nobody"}),
    good("XAPI-00037", "identified-group", "actor", {"objectType": "Group", "mbox": "mailto:g@example.com"}),
    bad("XAPI-00038", "mbox-form", "actor.mbox", "mailto:"),
    bad("XAPI-00039", "sha1-not-string", "actor", {"mbox_sha1sum": 42}),
    good("XAPI-00039", "sha1", "actor", {"mbox_sha1sum": SHA1}),
    bad("XAPI-00040", "openid-not-uri", "actor", {"openid": "not a uri"}),
    bad("XAPI-00041", "account-not-object", "actor", {"account": "ann"}),
    bad("XAPI-00042", "account-without-homepage", "actor", {"account": {"name": "ann"}}),
    bad("XAPI-00042", "account-homepage-not-irl", "actor", {"account": {"homePage": "example", "name": "ann"}}),
    bad("XAPI-00043", "account-without-name", "actor", {"account": {"homePage": "http://example.com"}}),
    bad("XAPI-00044", "verb-without-id", "verb", {"display": {"en-US": "x"}}),
    bad("XAPI-00045", "verb-display-not-map", "verb.display", "experienced"),
    bad("XAPI-00046", "object-objecttype", "object.objectType", "Thing"),
    bad("XAPI-00047", "activity-without-id", "object.id", DELETE),
    bad("XAPI-00048", "definition-not-object", "object.definition", "lesson"),
    bad("XAPI-00049", "interaction-type-object", "object.definition.interactionType", {"t": "choice"}, interaction),
    bad("XAPI-00049", "interaction-type-unknown", "object.definition.interactionType", "essay", interaction),
    bad("XAPI-00050", "pattern-not-strings", "object.definition.correctResponsesPattern", [1], interaction),
    bad("XAPI-00051", "steps-not-components", "object.definition.steps", "a",
        lambda: interaction("performance", steps=[{"id": "1"}])),
    bad("XAPI-00052", "target-not-components", "object.definition.target", [{"description": {"en-US": "x"}}],
        lambda: interaction("matching", source=[{"id": "1"}], target=[{"id": "2"}])),
    bad("XAPI-00053", "source-not-components", "object.definition.source", {"id": "1"},
        lambda: interaction("matching", source=[{"id": "1"}], target=[{"id": "2"}])),
    bad("XAPI-00054", "scale-not-components", "object.definition.scale", [5],
        lambda: interaction("likert", scale=[{"id": "1"}])),
    bad("XAPI-00055", "choices-not-components", "object.definition.choices", [["a"]], interaction),
    bad("XAPI-00056", "name-not-map", "object.definition.name", "Lesson"),
    bad("XAPI-00057", "extensions-not-object", "object.definition.extensions", ["http://example.com/e"]),
    bad("XAPI-00058", "component-ids-repeat", "object.definition.choices", [{"id": "a"}, {"id": "a"}], interaction),
    bad("XAPI-00058", "component-without-id", "object.definition.choices", [{"description": {"en": "a"}}],
        interaction),
    bad("XAPI-00059", "description-not-map", "object.definition.description", ["x"]),
    bad("XAPI-00060", "type-not-iri", "object.definition.type", "lesson"),
    bad("XAPI-00061", "moreinfo-not-irl", "object.definition.moreInfo", "more info"),
    bad("XAPI-00062", "component-description-not-map", "object.definition.choices",
        [{"id": "a", "description": "A"}], interaction),
    bad("XAPI-00063", "component-not-object", "object.definition.choices", ["a"], interaction),
    bad("XAPI-00064", "pattern-without-type", "object.definition.interactionType", DELETE, interaction),
    bad("XAPI-00065", "agent-object-without-objecttype", "object", {"mbox": "mailto:b@example.com"}),
    good("XAPI-00065", "agent-object", "object", {"objectType": "Agent", "mbox": "mailto:b@example.com"}, statement),
    bad("XAPI-00066", "substatement-bad-verb", "object.verb", {"id": "attended"}, substatement),
    bad("XAPI-00067", "substatement-authority", "object.authority", agent(), substatement),
    bad("XAPI-00068", "substatement-version", "object.version", "1.0.0", substatement),
    bad("XAPI-00069", "substatement-stored", "object.stored", "2026-09-01T00:00:00Z", substatement),
    bad("XAPI-00070", "substatement-id", "object.id", str(uuid.uuid4()), substatement),
    bad("XAPI-00071", "substatement-in-substatement", "object.object",
        {"objectType": "SubStatement", "actor": agent(), "verb": {"id": ADL + "attended"},
         "object": {"id": "http://example.com/x"}}, substatement),
    bad("XAPI-00072", "statementref-bad-id", "object", {"objectType": "StatementRef", "id": "123"}),
    bad("XAPI-00073", "statementref-without-objecttype", "object", {"id": str(uuid.uuid4())}),
    bad("XAPI-00074", "success-not-boolean", "result.success", 1),
    bad("XAPI-00075", "completion-not-boolean", "result.completion", "yes"),
    bad("XAPI-00076", "response-not-string", "result.response", 5),
    bad("XAPI-00077", "duration-not-iso", "result.duration", "1 hour"),
    bad("XAPI-00078", "result-extensions-not-object", "result.extensions", "x"),
    bad("XAPI-00079", "score-not-object", "result.score", 5),
    bad("XAPI-00080", "max-below-min", "result.score.max", -1),
    bad("XAPI-00081", "min-above-max", "result.score.min", 11),
    bad("XAPI-00082", "raw-above-max", "result.score.raw", 11),
    bad("XAPI-00083", "scaled-above-one", "result.score.scaled", 1.01),
    bad("XAPI-00084", "revision-with-agent-object", "object", {"objectType": "Agent", "mbox": "mailto:b@x.com"},
        lambda: with_path(full(), "context.platform", DELETE)),
    bad("XAPI-00085", "platform-with-agent-object", "object", {"objectType": "Agent", "mbox": "mailto:b@x.com"},
        lambda: with_path(full(), "context.revision", DELETE)),
    bad("XAPI-00086", "context-activities-not-object", "context.contextActivities", ["x"]),
    bad("XAPI-00087", "registration-not-uuid", "context.registration", "abc"),
    bad("XAPI-00087", "instructor-not-agent", "context.instructor", {"name": "x"}),
    bad("XAPI-00088", "team-not-group", "context.team", agent()),
    bad("XAPI-00089", "revision-not-string", "context.revision", 1),
    bad("XAPI-00090", "platform-not-string", "context.platform", True),
    bad("XAPI-00091", "language-not-rfc5646", "context.language", "english please"),
    bad("XAPI-00092", "statement-not-ref", "context.statement", {"objectType": "Activity", "id": "http://x.com"}),
    bad("XAPI-00093", "context-activities-key", "context.contextActivities.parents", [{"id": "http://x.com/a"}]),
    bad("XAPI-00094", "context-activity-not-activity", "context.contextActivities.parent", [{"name": "x"}]),
    bad("XAPI-00095", "context-activities-empty", "context.contextActivities", {}),
    bad("XAPI-00098", "authority-group-of-one", "authority", {"objectType": "Group", "member": [agent()]}),
    bad("XAPI-00098", "authority-identified-group", "authority",
        {"objectType": "Group", "openid": "http://openid.example.com/g",
         "member": [{"account": {"homePage": "http://lrs.example.com/OAuth/token", "name": "app"}}, agent()]}),
    good("XAPI-00098", "authority-oauth-pair", "authority",
         {"objectType": "Group",
          "member": [{"account": {"homePage": "http://lrs.example.com/OAuth/token", "name": "app"}}, agent()]}),
    bad("XAPI-00100", "authority-group-of-three", "authority",
        {"objectType": "Group",
         "member": [{"account": {"homePage": "http://lrs.example.com/OAuth/token", "name": "app"}}, agent(),
                    agent()]}),
    bad("XAPI-00101", "version-2", "version", "2.0.0"),
    good("XAPI-00101", "version-1.0", "version", "1.0"),
    bad("XAPI-00102", "length-not-integer", "attachments.0.length", "27"),
    bad("XAPI-00102", "no-length", "attachments.0.length", DELETE),
    bad("XAPI-00103", "sha2-not-hash", "attachments.0.sha2", "not a hash"),
    bad("XAPI-00104", "fileurl-not-irl", "attachments.0.fileUrl", "certificate.pdf"),
    bad("XAPI-00105", "content-type-not-media-type", "attachments.0.contentType", "pdf"),
    bad("XAPI-00106", "display-not-map", "attachments.0.display", "Certificate"),
    bad("XAPI-00107", "usage-type-not-iri", "attachments.0.usageType", "certificate"),
    bad("XAPI-00118", "extension-key-not-iri", "context.extensions", {"not an iri": 1}),
    good("XAPI-00119", "extension-values-any", "object.definition.extensions",
         {"http://example.com/a": None, "http://example.com/b": "", "http://example.com/c": {}}),
    bad("XAPI-00120", "extensions-not-pairs", "result.extensions", [["http://example.com/e", 1]]),
    bad("XAPI-00121", "language-map-tag", "object.definition.description", {"e": "x"}),
    bad("XAPI-00123", "timestamp-not-iso", "timestamp", "01/09/2026 08:30"),
    good("XAPI-00123", "timestamp-basic-format", "timestamp", "20260901T083000Z"),
    bad("XAPI-00124", "duration-weeks-with-days", "result.duration", "P4W1D"),
    bad("XAPI-00124", "duration-alternative-format", "result.duration", "P0003-06-04T12:30:05"),
    good("XAPI-00124", "duration-weeks", "result.duration", "P4W"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_statement_rules(lrs: LRS, case: Case) -> None:
    body = case.make()
    response = lrs.post(body)
    assert response.status_code == case.status, response.text
    if case.status == 400:
        assert response.json()["error"]
        if _is_uuid(body.get("id")):
            assert lrs.get(statementId=body["id"]).status_code == 404  # nothing of a refused request is kept


def _is_uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def test_00002_floats_keep_their_precision(lrs: LRS) -> None:
    sid = lrs.store(with_path(full(), "result.score.scaled", 0.123456789))
    assert lrs.get(statementId=sid).json()["result"]["score"]["scaled"] == 0.123456789


def test_00122_timestamps_keep_their_precision(lrs: LRS) -> None:
    sid = lrs.store(with_path(full(), "timestamp", "2026-09-01T08:30:00.123456+08:00"))
    assert lrs.get(statementId=sid).json()["timestamp"] == "2026-09-01T08:30:00.123456+08:00"


def test_00012_parameters_follow_the_statement_rules(lrs: LRS) -> None:
    for params in ({"statementId": "abc"}, {"verb": "experienced"}, {"activity": "lesson 1"},
                   {"agent": "{\"name\": \"ann\"}"}, {"registration": "123"}, {"since": "yesterday"},
                   {"limit": "-1"}, {"format": "long"}, {"ascending": "yes"}):
        response = lrs.get(**params)
        assert response.status_code == 400, (params, response.text)


def test_00015_strings_are_utf8(lrs: LRS) -> None:
    sid = lrs.store(with_path(full(), "object.definition.name", {"zh-CN": "分数的加法"}))
    response = lrs.get(statementId=sid)
    assert response.json()["object"]["definition"]["name"]["zh-CN"] == "分数的加法"
    refused = lrs.http.post("/statements", content=b'{"actor": "\xff"}', headers={"Content-Type": "application/json"})
    assert refused.status_code == 400


def void(lrs: LRS, target: str) -> httpx.Response:
    return lrs.post(statement(verb={"id": VOIDED, "display": {"en-US": "voided"}},
                              object={"objectType": "StatementRef", "id": target}))


def test_00016_00018_00019_voiding(lrs: LRS) -> None:
    target = lrs.store(full())
    response = void(lrs, target)
    assert response.status_code == 200
    assert lrs.get(statementId=target).status_code == 404  # XAPI-00018
    assert lrs.get(voidedStatementId=target).json()["id"] == target  # XAPI-00019
    assert void(lrs, response.json()[0]).status_code == 400  # XAPI-00016: a voiding statement cannot be voided


def test_00021_a_property_twice_is_refused(lrs: LRS) -> None:
    text = json.dumps(full())[:-1] + ', "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}'
    response = lrs.http.post("/statements", content=text.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "twice" in response.json()["error"]


def test_00023_00026_00097_00099_the_lrs_fills_in(lrs: LRS) -> None:
    body = full()
    del body["id"]
    sid = lrs.store(body)
    stored = lrs.get(statementId=sid).json()
    assert uuid.UUID(stored["id"])  # XAPI-00026
    assert stored["stored"].endswith("Z")
    assert stored["stored"] != "2001-01-01T00:00:00Z"
    assert stored["authority"]["objectType"] == "Agent"  # XAPI-00099
    assert stored["version"] == "1.0.0"


def test_00096_context_activities_are_returned_as_lists(lrs: LRS) -> None:
    body = with_path(full(), "context.contextActivities.parent", {"id": "http://example.com/course"})
    sid = lrs.store(body)
    assert lrs.get(statementId=sid).json()["context"]["contextActivities"]["parent"] == [
        {"id": "http://example.com/course"}]
    inner = substatement(context={"contextActivities": {"grouping": {"id": "http://example.com/g"}}})
    sid = lrs.store(inner)
    assert lrs.get(statementId=sid).json()["object"]["context"]["contextActivities"]["grouping"] == [
        {"id": "http://example.com/g"}]


def test_00108_to_00114_00149_00154_00173_paging(lrs: LRS) -> None:
    verb = f"http://example.com/verbs/{uuid.uuid4().hex}"
    ids = [lrs.store(statement(verb={"id": verb})) for _ in range(3)]
    first = lrs.get(verb=verb, limit="2").json()
    assert set(first) == {"statements", "more"}  # XAPI-00110, XAPI-00113
    assert len(first["statements"]) == 2  # XAPI-00173
    assert first["more"].startswith("/xapi/statements?")  # XAPI-00108: a relative IRL
    second = httpx.get(lrs.root + first["more"], auth=lrs.http.auth, headers=V).json()  # XAPI-00111, XAPI-00114
    assert [s["id"] for s in first["statements"] + second["statements"]] == ids[::-1]
    assert second["more"] == ""  # XAPI-00109
    empty = lrs.get(verb=verb + "/none")
    assert empty.status_code == 200
    assert empty.json() == {"statements": [], "more": ""}


def test_00125_00126_head_answers_as_get_without_a_body(lrs: LRS) -> None:
    sid = lrs.store(full())
    get = lrs.get(statementId=sid)
    head = lrs.http.head("/statements", params={"statementId": sid})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["last-modified"] == get.headers["last-modified"]
    assert lrs.http.head("/statements", params={"statementId": "bad"}).status_code == 400
    assert lrs.http.head("/about").status_code == 200


def multipart(parts: list[tuple[dict[str, str], bytes]], boundary: str = "xapi-boundary-1") -> tuple[bytes, str]:
    body = b"".join(f"--{boundary}\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
                    + b"\r\n" + content + b"\r\n" for headers, content in parts)
    return body + f"--{boundary}--\r\n".encode(), f"multipart/mixed; boundary={boundary}"


def with_content(content: bytes = b"here is a simple attachment") -> tuple[dict[str, Any], dict[str, str], bytes]:
    digest = hashlib.sha256(content).hexdigest()
    attachment = {**ATTACHMENT, "sha2": digest, "length": len(content), "contentType": "text/plain"}
    del attachment["fileUrl"]
    part = {"Content-Type": "text/plain", "Content-Transfer-Encoding": "binary", "X-Experience-API-Hash": digest}
    return statement(attachments=[attachment]), part, content


def post_multipart(lrs: LRS, body: bytes, content_type: str) -> httpx.Response:
    return lrs.http.post("/statements", content=body, headers={"Content-Type": content_type})


def test_00127_00138_content_type_must_be_json_or_multipart(lrs: LRS) -> None:
    body = json.dumps(full()).encode()
    assert lrs.http.post("/statements", content=body, headers={"Content-Type": "text/plain"}).status_code == 400
    assert lrs.http.post("/statements", content=body).status_code == 400  # no Content-Type


def test_00128_00129_00130_00131_00132_00134_00135_multipart_attachments(lrs: LRS) -> None:
    good_statement, part, content = with_content()
    json_part = ({"Content-Type": "application/json"}, json.dumps(good_statement).encode())
    body, kind = multipart([json_part, (part, content)])
    stored = post_multipart(lrs, body, kind)
    assert stored.status_code == 200, stored.text
    back = lrs.get(statementId=stored.json()[0], attachments="true")  # XAPI-00167
    assert back.headers["content-type"].startswith("multipart/mixed")
    assert content in back.content
    assert part["X-Experience-API-Hash"].encode() in back.content
    fresh, _, _ = with_content()
    extra = ({**part, "X-Experience-API-Hash": hashlib.sha256(b"other").hexdigest()}, b"other")
    checks = {
        "XAPI-00128": multipart([({"Content-Type": "application/json"}, json.dumps(fresh).encode()), (part, content),
                                 extra]),
        "XAPI-00129": multipart([({"Content-Type": "application/json"}, json.dumps(fresh).encode())]),
        "XAPI-00130": (json.dumps(fresh).encode(), kind),
        "XAPI-00131": (multipart([json_part, (part, content)])[0], "multipart/mixed"),
        "XAPI-00132": multipart([({"Content-Type": "application/json"}, json.dumps(fresh).encode()),
                                 ({k: v for k, v in part.items() if k != "X-Experience-API-Hash"}, content)]),
        "XAPI-00134": multipart([({"Content-Type": "text/plain"}, json.dumps(fresh).encode()), (part, content)]),
        "XAPI-00135": multipart([({"Content-Type": "application/json"}, json.dumps(fresh).encode()),
                                 ({k: v for k, v in part.items() if k != "Content-Transfer-Encoding"}, content)]),
        "hash-of-other-content": multipart([({"Content-Type": "application/json"}, json.dumps(fresh).encode()),
                                            (part, b"changed content")]),
    }
    for requirement, (body, kind) in checks.items():
        response = post_multipart(lrs, body, kind)
        assert response.status_code == 400, (requirement, response.text)
    assert lrs.get(statementId=fresh["id"]).status_code == 404
    # multipart/mixed without attachment parts: statements without attachments, or whose attachments have fileUrl
    only_urls = [full(), statement()]
    body, kind = multipart([({"Content-Type": "application/json"}, json.dumps(only_urls).encode())])
    assert post_multipart(lrs, body, kind).status_code == 200


def test_00133_all_statements_are_in_the_first_part(lrs: LRS) -> None:
    first, part, content = with_content()
    second, _, _ = with_content()
    body, kind = multipart([({"Content-Type": "application/json"}, json.dumps(first).encode()),
                            ({"Content-Type": "application/json"}, json.dumps(second).encode()), (part, content)])
    assert post_multipart(lrs, body, kind).status_code == 400
    together = [first, with_path(second, "attachments.0.sha2", first["attachments"][0]["sha2"])]
    body, kind = multipart([({"Content-Type": "application/json"}, json.dumps(together).encode()), (part, content)])
    assert post_multipart(lrs, body, kind).status_code == 200  # one part serves both statements


def test_00139_00147_00146_post_returns_the_ids_in_order(lrs: LRS) -> None:
    batch = [statement(), statement(), statement()]
    response = lrs.post(batch)
    assert response.status_code == 200
    assert response.json() == [s["id"] for s in batch]


def test_00142_a_stored_statement_is_never_changed(lrs: LRS) -> None:
    body = full()
    sid = lrs.store(body)
    before = lrs.get(statementId=sid).json()
    assert lrs.put(with_path(body, "verb", {"id": ADL + "failed"}), sid).status_code == 409
    assert lrs.get(statementId=sid).json() == before


def test_00143_00144_00145_put(lrs: LRS) -> None:
    body = full()
    assert lrs.put(body).status_code == 204
    assert lrs.http.put("/statements", json=full()).status_code == 400  # XAPI-00145: no statementId


def test_00148_00336_alternate_request_syntax(lrs: LRS) -> None:
    auth = "Basic " + base64.b64encode(f"{lrs.keys.write_key}:{lrs.keys.api_key}".encode()).decode()
    form = {"Authorization": auth, "X-Experience-API-Version": "1.0.3"}
    body = full()
    put = httpx.post(f"{lrs.root}/xapi/statements?method=PUT",
                     data={**form, "statementId": body["id"], "content": json.dumps(body),
                           "Content-Type": "application/json"})
    assert put.status_code == 204, put.text
    got = httpx.post(f"{lrs.root}/xapi/statements?method=GET", data={**form, "statementId": body["id"]})
    assert got.status_code == 200
    assert got.json()["id"] == body["id"]
    query = httpx.post(f"{lrs.root}/xapi/statements?method=GET", data={**form, "verb": body["verb"]["id"],
                                                                        "limit": "1"})
    assert query.status_code == 200
    assert set(query.json()) == {"statements", "more"}
    assert httpx.post(f"{lrs.root}/xapi/statements?method=GET&limit=1", data=form).status_code == 400
    assert httpx.post(f"{lrs.root}/xapi/statements?method=PATCH", data=form).status_code == 400
    assert httpx.get(f"{lrs.root}/xapi/statements?method=GET", headers={**V, "Authorization": auth}).status_code == 400


def test_00150_00151_single_statement_parameters(lrs: LRS) -> None:
    sid = lrs.store(full())
    assert lrs.get(statementId=sid, verb=ADL + "experienced").status_code == 400  # XAPI-00151
    assert lrs.get(voidedStatementId=sid, limit="1").status_code == 400  # XAPI-00150
    assert lrs.get(statementId=sid, voidedStatementId=sid).status_code == 400
    assert lrs.get(statementId=sid, format="ids", attachments="false").status_code == 200


def test_00152_00153_00160_consistent_through(lrs: LRS) -> None:
    sid = lrs.store(full())
    ok = lrs.get(statementId=sid)
    through = dt.datetime.fromisoformat(ok.headers["X-Experience-API-Consistent-Through"].replace("Z", "+00:00"))
    stored = dt.datetime.fromisoformat(ok.json()["stored"].replace("Z", "+00:00"))
    assert through >= stored  # XAPI-00152, XAPI-00160
    for response in (lrs.get(statementId="bad"), lrs.get(statementId=str(uuid.uuid4())), lrs.get(limit="x")):
        assert response.status_code in (400, 404)
        assert "X-Experience-API-Consistent-Through" in response.headers  # XAPI-00153


def test_00155_00156_00157_00158_00159_00163_00165_single_statements(lrs: LRS) -> None:
    sid = lrs.store(full())
    one = lrs.get(statementId=sid)
    assert one.status_code == 200
    assert one.json()["id"] == sid
    assert one.headers["content-type"].startswith("application/json")  # XAPI-00165
    assert lrs.get(voidedStatementId=sid).status_code == 404  # XAPI-00163: not voided
    void(lrs, sid)
    assert lrs.get(voidedStatementId=sid).json()["id"] == sid  # XAPI-00155, XAPI-00157


def test_00161_00162_00164_filters_and_voided_targets(lrs: LRS) -> None:
    activity = f"http://example.com/activity/{uuid.uuid4().hex}"
    target = lrs.store(statement(object={"id": activity}))
    kept = lrs.store(statement(object={"id": activity}))
    voiding = void(lrs, target).json()[0]
    response = lrs.get(activity=activity, attachments="false")
    assert response.headers["content-type"].startswith("application/json")  # XAPI-00161
    ids = [s["id"] for s in response.json()["statements"]]
    assert target not in ids
    assert kept in ids
    assert voiding in ids


def test_00166_to_00181_filters(lrs: LRS) -> None:
    learner, other = agent(), agent()
    activity = f"http://example.com/activity/{uuid.uuid4().hex}"
    registration = str(uuid.uuid4())
    verb = f"http://example.com/verbs/{uuid.uuid4().hex}"
    a = lrs.store(statement(actor=learner, verb={"id": verb}, object={"id": activity},
                            context={"registration": registration}))
    b = lrs.store(statement(actor=other, verb={"id": verb}, object={"id": "http://example.com/x"},
                            context={"instructor": learner, "contextActivities": {"parent": [{"id": activity}]}}))
    c = lrs.store(statement(object={"objectType": "SubStatement", "actor": learner, "verb": {"id": verb},
                                    "object": {"id": activity}}))

    def ids(**params: str) -> list[str]:
        response = lrs.get(**params)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["statements"]]

    assert ids(verb=verb, ascending="true") == [a, b]  # XAPI-00166, XAPI-00180
    assert ids(agent=agent_json(learner)) == [a]  # XAPI-00181
    assert set(ids(agent=agent_json(learner), related_agents="true")) == {a, b, c}  # XAPI-00176
    assert ids(activity=activity) == [a]  # XAPI-00179
    assert set(ids(activity=activity, related_activities="true")) == {a, b, c}  # XAPI-00177
    assert ids(registration=registration) == [a]  # XAPI-00178
    stored_b = lrs.get(statementId=b).json()["stored"]
    assert ids(verb=verb, since=stored_b) == []  # XAPI-00175: after since
    assert ids(verb=verb, until=stored_b, ascending="true") == [a, b]  # XAPI-00174: at or before until
    group = {"objectType": "Group", "member": [learner, agent()]}
    d = lrs.store(statement(actor=group, verb={"id": verb}))
    assert ids(agent=agent_json(learner), verb=verb) == [d, a]  # a Group's members match as the Group


def test_00168_to_00172_formats(lrs: LRS) -> None:
    activity = f"http://example.com/activity/{uuid.uuid4().hex}"
    body = statement(object={"id": activity, "definition": {"name": {"en-US": "Lesson", "zh-CN": "课"}}},
                     verb={"id": ADL + "attended", "display": {"en-US": "attended", "zh-CN": "出席"}})
    sid = lrs.store(body)
    lrs.store(statement(object={"id": activity, "definition": {"description": {"en-US": "About fractions"}}}))
    exact = lrs.get(statementId=sid).json()
    assert exact["object"] == body["object"]  # XAPI-00168, XAPI-00170
    ids = lrs.get(statementId=sid, format="ids").json()
    assert ids["object"] == {"id": activity}
    assert ids["verb"] == {"id": ADL + "attended"}
    assert set(ids["actor"]) <= {"objectType", "mbox"}
    canonical = lrs.get(statementId=sid, format="canonical", headers={"Accept-Language": "zh-CN"}).json()
    assert canonical["object"]["definition"]["name"] == {"zh-CN": "课"}  # XAPI-00169, XAPI-00172
    assert canonical["object"]["definition"]["description"] == {"en-US": "About fractions"}
    assert canonical["verb"]["display"] == {"zh-CN": "出席"}
    inner = lrs.store(statement(object={"objectType": "SubStatement", "actor": agent(), "verb": {"id": ADL + "a"},
                                        "object": {"id": activity, "definition": {"name": {"en": "x"}}}}))
    sub = lrs.get(statementId=inner, format="ids").json()["object"]["object"]
    assert set(sub) <= {"id", "objectType"}


def test_00115_00116_00117_signed_statements(lrs: LRS) -> None:
    import xapi_signing as signed
    body = statement()
    token = signed.sign(body, "RS256")
    ok = post_signed(lrs, body, token)
    assert ok.status_code == 200, ok.text
    assert post_signed(lrs, statement(), signed.sign(statement(), "HS256")).status_code == 400  # XAPI-00117
    other = statement()
    assert post_signed(lrs, other, signed.sign(statement(), "RS256")).status_code == 400  # XAPI-00116
    assert post_signed(lrs, statement(), b"not a jws").status_code == 400  # XAPI-00115
    bad_type = statement()
    assert post_signed(lrs, bad_type, signed.sign(bad_type, "RS256"), "text/plain").status_code == 400
    tampered = statement()
    token = signed.sign(tampered, "RS512")
    assert post_signed(lrs, tampered, token[:-6] + (b"AAAAAA" if token[-6:] != b"AAAAAA" else b"BBBBBB")
                       ).status_code == 400


def post_signed(lrs: LRS, body: dict[str, Any], token: bytes, content_type: str = "application/octet-stream"
                ) -> httpx.Response:
    digest = hashlib.sha256(token).hexdigest()
    attachment = {"usageType": "http://adlnet.gov/expapi/attachments/signature", "display": {"en-US": "Signature"},
                  "contentType": content_type, "length": len(token), "sha2": digest}
    sent = {**body, "attachments": [attachment]}
    part = {"Content-Type": "application/octet-stream", "Content-Transfer-Encoding": "binary",
            "X-Experience-API-Hash": digest}
    data, kind = multipart([({"Content-Type": "application/json"}, json.dumps(sent).encode()), (part, token)])
    return post_multipart(lrs, data, kind)


def test_00315_to_00321_about(lrs: LRS) -> None:
    about = httpx.get(f"{lrs.root}/xapi/about")  # no credentials, no version header (XAPI-00321)
    assert about.status_code == 200  # XAPI-00315, XAPI-00319
    body = about.json()
    assert isinstance(body["version"], list)
    assert all(isinstance(v, str) for v in body["version"])
    assert all(v.startswith("1.0.") for v in body["version"])
    assert "1.0.3" in body["version"]
    assert set(body) <= {"version", "extensions"}
    assert isinstance(body.get("extensions", {}), dict)
    without = httpx.get(f"{lrs.root}/xapi/statements", auth=lrs.http.auth)
    assert without.status_code == 400
    assert "X-Experience-API-Version" in without.json()["error"]


def test_00323_00324_00325_00326_00327_00328_errors(lrs: LRS) -> None:
    assert lrs.get(verbs=ADL + "x").status_code == 400  # XAPI-00324
    assert lrs.get(Verb=ADL + "x").status_code == 400  # XAPI-00325
    batch = [statement(), with_path(statement(), "verb.id", "bad")]
    assert lrs.post(batch).status_code == 400  # XAPI-00326
    assert lrs.get(statementId=batch[0]["id"]).status_code == 404
    other_key = httpx.get(f"{lrs.root}/xapi/statements", auth=(lrs.keys.write_key, "sk_not_this_projects"),
                          headers=V)
    assert other_key.status_code in (401, 403)  # XAPI-00327: credentials valid or not, never data
    huge = [statement() for _ in range(10_001)]
    assert lrs.post(huge).status_code == 413  # XAPI-00328
    assert lrs.post(statement()).status_code in (200, 400, 401, 403, 404, 409, 412, 413, 429)  # XAPI-00323


def test_00330_00331_00332_00333_versions(lrs: LRS) -> None:
    for version in ("1.0", "1.0.0", "1.0.3", "1.0.9"):
        response = lrs.http.post("/statements", json=statement(), headers={"X-Experience-API-Version": version})
        assert response.status_code == 200, version  # XAPI-00331
        assert response.headers["X-Experience-API-Version"] == "1.0.3"  # XAPI-00333
    for version in ("0.95", "1.1.0", "2.0.0", "1"):
        response = lrs.http.post("/statements", json=statement(), headers={"X-Experience-API-Version": version})
        assert response.status_code == 400, version
    old = statement(version="1.0.0")
    sid = lrs.store(old)
    back = lrs.get(statementId=sid).json()
    assert back["version"] == "1.0.0"  # XAPI-00330, XAPI-00332
    assert back["actor"] == old["actor"]
    assert back["object"] == old["object"]


def test_00334_00335_basic_authentication(lrs: LRS) -> None:
    assert httpx.get(f"{lrs.root}/xapi/statements", headers=V).status_code == 401  # XAPI-00334
    assert httpx.get(f"{lrs.root}/xapi/statements", headers=V, auth=("wk_unknown", "x")).status_code == 401
    assert httpx.get(f"{lrs.root}/xapi/statements", headers=V, auth=lrs.http.auth).status_code == 200  # XAPI-00335
