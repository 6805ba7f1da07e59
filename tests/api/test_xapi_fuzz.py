"""No request to the xAPI resources produces a 500: statements generated from the grammar of xAPI 1.0.3 (Data 2.4),
then broken at a random place (a property dropped, a value of another JSON type, an unknown key, an empty
object), are sent to a live server; every answer is a 200 or a 4xx with a reason, never a server error. Query and
document parameters are walked the same way."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xapi_conformance import ADL, LRS, lrs

__all__ = ["lrs"]

iris = st.sampled_from(["http://example.com/a", "https://school.example/course/1", "urn:x:1", "tag:x,2026:1"])
tags = st.sampled_from(["en-US", "zh-CN", "zh-Hans-CN", "de", "en"])
language_maps = st.dictionaries(tags, st.text(max_size=8), min_size=1, max_size=2)
uuids = st.uuids().map(str)
timestamps = st.sampled_from(["2026-09-01T08:30:00Z", "2026-09-01T08:30:00.123+08:00", "20260901T083000Z",
                              "2026-02-28T23:59:59.999999-05:00"])
durations = st.sampled_from(["PT45M", "P1DT2H", "P4W", "PT0.5S", "P1Y2M3DT4H5M6S"])

ifis = st.one_of(
    st.builds(lambda n: {"mbox": f"mailto:{n}@example.com"}, st.text("abcdef", min_size=1, max_size=6)),
    st.builds(lambda n: {"account": {"homePage": "http://lms.example.com", "name": n}}, st.text(min_size=1,
                                                                                                   max_size=6)),
    st.just({"openid": "http://openid.example.com/x"}),
    st.just({"mbox_sha1sum": "ebd31e95054c018b10727ccffd2ef2ec3a016ee9"}),
)
agents = st.builds(lambda ifi, name: {"objectType": "Agent", **ifi, **name}, ifis,
                   st.one_of(st.just({}), st.builds(lambda n: {"name": n}, st.text(max_size=6))))
groups = st.one_of(
    st.builds(lambda m: {"objectType": "Group", "member": m}, st.lists(agents, min_size=1, max_size=2)),
    st.builds(lambda ifi: {"objectType": "Group", **ifi}, ifis),
)
actors = st.one_of(agents, groups)
verbs = st.builds(lambda i, d: {"id": i, **d}, st.sampled_from([ADL + "attended", ADL + "completed", ADL + "answered"]),
                  st.one_of(st.just({}), st.builds(lambda m: {"display": m}, language_maps)))
components = st.lists(st.builds(lambda i, d: {"id": i, "description": d}, st.text("abc", min_size=1, max_size=3),
                                language_maps), max_size=3, unique_by=lambda c: c["id"])
definitions = st.one_of(
    st.builds(lambda n, t: {"name": n, "type": t}, language_maps, iris),
    st.builds(lambda c: {"interactionType": "choice", "correctResponsesPattern": ["a"], "choices": c}, components),
    st.builds(lambda c: {"interactionType": "likert", "scale": c}, components),
)
activities = st.builds(lambda i, d: {"objectType": "Activity", "id": i, **d}, iris,
                       st.one_of(st.just({}), st.builds(lambda d: {"definition": d}, definitions)))
context_activities = st.dictionaries(st.sampled_from(["parent", "grouping", "category", "other"]),
                                     st.one_of(activities, st.lists(activities, min_size=1, max_size=2)),
                                     min_size=1, max_size=2)
contexts = st.fixed_dictionaries({}, optional={
    "registration": uuids, "instructor": agents, "team": groups, "contextActivities": context_activities,
    "revision": st.text(max_size=4), "platform": st.text(max_size=4), "language": tags,
    "statement": st.builds(lambda i: {"objectType": "StatementRef", "id": i}, uuids),
    "extensions": st.dictionaries(iris, st.none() | st.integers() | st.text(max_size=3), max_size=2)})
results = st.fixed_dictionaries({}, optional={
    "score": st.fixed_dictionaries({}, optional={"scaled": st.floats(-1, 1), "raw": st.integers(0, 10),
                                                 "min": st.just(0), "max": st.just(10)}),
    "success": st.booleans(), "completion": st.booleans(), "response": st.text(max_size=5), "duration": durations})
substatements = st.builds(lambda a, v, o, c: {"objectType": "SubStatement", "actor": a, "verb": v, "object": o,
                                              **({"context": c} if c else {})}, actors, verbs, activities,
                          st.one_of(st.just({}), contexts))
objects = st.one_of(activities, agents, groups, substatements,
                    st.builds(lambda i: {"objectType": "StatementRef", "id": i}, uuids))
statements = st.builds(
    lambda base, extra: {**base, **extra},
    st.fixed_dictionaries({"actor": actors, "verb": verbs, "object": objects}),
    st.fixed_dictionaries({}, optional={"id": uuids, "result": results, "context": contexts, "timestamp": timestamps,
                                        "version": st.sampled_from(["1.0.0", "1.0", "1.0.3"])}))
finite = st.floats(allow_nan=False, allow_infinity=False)  # JSON has no NaN or infinity
junk = st.recursive(st.none() | st.booleans() | st.integers() | finite | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner,
                                                                                 max_size=2), max_leaves=4)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def _break(draw: st.DrawFn, statement: dict[str, Any]) -> None:
    # Each property name of the grammar is as likely to be broken as any other, however deep or rare it is.
    by_name: dict[Any, list[tuple[Any, ...]]] = {}
    for place in paths(statement)[1:]:
        by_name.setdefault(place[-1] if isinstance(place[-1], str) else "[]", []).append(place)
    place = draw(st.sampled_from(by_name[draw(st.sampled_from(sorted(by_name, key=str)))]))
    *parents, last = place
    node: Any = statement
    for key in parents:
        node = node[key]
    how = draw(st.sampled_from(["replace", "replace", "drop", "unknown key", "empty"]))
    if how == "replace":
        node[last] = draw(st.one_of(st.dictionaries(st.text(max_size=3), junk, max_size=2), st.lists(junk, max_size=2),
                                    junk))
    elif how == "drop":
        node.pop(last)
    elif how == "unknown key" and isinstance(node[last], dict):
        node[last]["Colour"] = draw(junk)
    else:
        node[last] = {} if isinstance(node[last], dict) else []


@st.composite
def broken_statements(draw: st.DrawFn) -> Any:
    """A statement of the grammar broken at one to three places (or, now and then, left valid)."""
    statement = draw(statements)
    for _ in range(draw(st.integers(0, 3))):
        if not isinstance(statement, dict) or not statement:
            break
        _break(draw, statement)
    return statement


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


@FUZZ
@given(batch=st.lists(broken_statements(), min_size=1, max_size=8))
def test_no_statement_is_a_500(lrs: LRS, batch: list[Any]) -> None:
    response = lrs.post(batch)
    assert response.status_code in (200, 400, 409), response.text
    if response.status_code == 400:
        assert response.json()["error"]


PARAMETERS = ["statementId", "voidedStatementId", "agent", "verb", "activity", "registration", "related_activities",
              "related_agents", "since", "until", "limit", "format", "attachments", "ascending", "activityId",
              "stateId", "profileId", "more"]
values = st.one_of(st.text(max_size=8), junk.map(json.dumps), uuids, iris, timestamps,
                   st.just('{"mbox": "mailto:a@example.com"}'))


@FUZZ
@given(method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]),
       path=st.sampled_from(["/statements", "/activities/state", "/activities/profile", "/agents/profile",
                             "/agents", "/activities"]),
       params=st.dictionaries(st.sampled_from(PARAMETERS), values, max_size=4),
       body=st.one_of(st.none(), junk.map(lambda v: json.dumps(v).encode()), st.binary(max_size=16)),
       headers=st.fixed_dictionaries({}, optional={
           "If-Match": st.sampled_from(["*", '"abc"', "W/\"x\", \"y\"", ""]), "If-None-Match": st.just("*"),
           "Content-Type": st.sampled_from(["application/json", "text/plain", "multipart/mixed",
                                            "multipart/mixed; boundary=x", "application/x-www-form-urlencoded"])}))
def test_no_request_is_a_500(lrs: LRS, method: str, path: str, params: dict[str, str], body: bytes | None,
                             headers: dict[str, str]) -> None:
    if path == "/statements" and method in ("PUT", "POST") and body is None:
        body = json.dumps({"id": str(uuid.uuid4())}).encode()
    response = lrs.request(method, path, params=params, content=body, headers=headers)
    assert response.status_code < 500, (method, path, params, response.text)


def _templates() -> list[dict[str, Any]]:
    from test_xapi_conformance_statements import full, interaction, substatement

    sub = substatement(result={"score": {"raw": 1}}, context={"contextActivities": {"parent": [{"id": "http://x.y/p"}]}})
    return [full(), interaction("choice"), interaction("likert", scale=[{"id": "1"}]),
            interaction("matching", source=[{"id": "1"}], target=[{"id": "2"}]),
            interaction("performance", steps=[{"id": "1"}]), sub,
            {**full(), "object": {"objectType": "Group", "mbox": "mailto:g@example.com",
                                  "member": [{"mbox": "mailto:m@example.com"}]}}]


KINDS_OF_JSON = [None, {}, [], 0, 1.5, "", "x", True, {"k": 1}, ["x"], [{}]]


def test_every_place_of_the_grammar_with_every_kind_of_json(lrs: LRS) -> None:
    """Deterministic walk: each property of statements using every part of the grammar, replaced by each kind of
    JSON value (sent 60 to a request; a request is refused whole, so an unexpected failure of any one shows)."""
    broken = []
    for template in _templates():
        for place in paths(template)[1:]:
            for value in KINDS_OF_JSON:
                statement = json.loads(json.dumps(template))
                node: Any = statement
                for key in place[:-1]:
                    node = node[key]
                node[place[-1]] = value
                statement["id"] = str(uuid.uuid4())
                broken.append(statement)
    for start in range(0, len(broken), 60):
        response = lrs.post(broken[start:start + 60])
        assert response.status_code in (200, 400), response.text
