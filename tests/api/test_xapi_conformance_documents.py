"""xAPI 1.0.3 conformance, documents: the State, Agent Profile and Activity Profile resources, the Agents and
Activities resources and concurrency (Communication 2.2-2.7, 3.1), one test or case per numbered requirement, against
a live server on loopback; and that every requirement of xapi_conformance.SECTIONS is covered somewhere."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from xapi_conformance import LRS, NOT_TESTED, agent, agent_json, all_requirements, lrs, section_of, statement

__all__ = ["lrs"]

STATE, ACTIVITY_PROFILE, AGENT_PROFILE = "/activities/state", "/activities/profile", "/agents/profile"


def state_params(**extra: str) -> dict[str, str]:
    return {"activityId": f"http://example.com/activity/{uuid.uuid4().hex}", "agent": agent_json(agent()),
            "stateId": f"state-{uuid.uuid4().hex[:8]}", **extra}


def activity_profile_params(**extra: str) -> dict[str, str]:
    return {"activityId": f"http://example.com/activity/{uuid.uuid4().hex}",
            "profileId": f"profile-{uuid.uuid4().hex[:8]}", **extra}


def agent_profile_params(**extra: str) -> dict[str, str]:
    return {"agent": agent_json(agent()), "profileId": f"profile-{uuid.uuid4().hex[:8]}", **extra}


PARAMS = {STATE: state_params, ACTIVITY_PROFILE: activity_profile_params, AGENT_PROFILE: agent_profile_params}
ID_PARAM = {STATE: "stateId", ACTIVITY_PROFILE: "profileId", AGENT_PROFILE: "profileId"}


def without(params: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in names}


@dataclass(frozen=True)
class Refusal:
    """A request that must be refused with 400: method, resource, what to drop or change in the parameters."""

    requirement: str
    method: str
    resource: str
    drop: str | None = None
    change: tuple[str, str] | None = None

    @property
    def id(self) -> str:
        what = f"no-{self.drop}" if self.drop else f"bad-{self.change[0] if self.change else ''}"
        return f"{self.requirement}-{self.method}-{self.resource.strip('/').replace('/', '-')}-{what}"


def refusals() -> list[Refusal]:
    out = []
    state = [("00196", "DELETE"), ("00197", "GET"), ("00198", "POST"), ("00199", "PUT")]
    out += [Refusal(f"XAPI-{n}", m, STATE, change=("agent", "not JSON")) for n, m in state]
    out += [Refusal(f"XAPI-{n}", m, STATE, change=("registration", "not a UUID"))
            for n, m in [("00200", "DELETE"), ("00201", "GET"), ("00202", "POST"), ("00203", "PUT")]]
    out += [Refusal("XAPI-00204", "GET", STATE, change=("since", "not a timestamp")),
            Refusal("XAPI-00205", "GET", STATE, drop="stateId", change=("since", "1")),
            Refusal("XAPI-00206", "PUT", STATE, drop="stateId"), Refusal("XAPI-00211", "POST", STATE, drop="stateId")]
    out += [Refusal(f"XAPI-{n}", m, STATE, drop="activityId")
            for n, m in [("00207", "DELETE"), ("00208", "GET"), ("00209", "POST"), ("00210", "PUT")]]
    out += [Refusal(f"XAPI-{n}", m, STATE, drop="agent")
            for n, m in [("00212", "DELETE"), ("00213", "GET"), ("00214", "POST"), ("00215", "PUT")]]
    out += [Refusal(f"XAPI-{n}", m, STATE, change=("activityId", "1"))
            for n, m in [("00224", "DELETE"), ("00225", "GET"), ("00226", "POST"), ("00228", "PUT")]]
    out += [Refusal(f"XAPI-{n}", m, AGENT_PROFILE, change=("agent", json.dumps({"objectType": "Group",
                                                                               "member": [agent()]})))
            for n, m in [("00255", "DELETE"), ("00256", "POST"), ("00257", "PUT"), ("00258", "GET")]]
    out += [Refusal("XAPI-00260", "GET", AGENT_PROFILE, drop="profileId", change=("since", "yesterday"))]
    out += [Refusal(f"XAPI-{n}", m, AGENT_PROFILE, drop="agent")
            for n, m in [("00261", "GET"), ("00262", "DELETE"), ("00263", "POST"), ("00264", "PUT")]]
    out += [Refusal(f"XAPI-{n}", m, AGENT_PROFILE, drop="profileId")
            for n, m in [("00265", "DELETE"), ("00266", "POST"), ("00267", "PUT")]]
    out += [Refusal(f"XAPI-{n}", m, AGENT_PROFILE, change=("profileid", "x"))
            for n, m in [("00276", "POST"), ("00277", "PUT")]]
    out += [Refusal("XAPI-00295", "GET", ACTIVITY_PROFILE, drop="profileId", change=("since", "not a timestamp"))]
    out += [Refusal(f"XAPI-{n}", m, ACTIVITY_PROFILE, drop="activityId")
            for n, m in [("00296", "GET"), ("00297", "DELETE"), ("00298", "POST"), ("00299", "PUT")]]
    out += [Refusal(f"XAPI-{n}", m, ACTIVITY_PROFILE, drop="profileId")
            for n, m in [("00300", "DELETE"), ("00301", "POST"), ("00302", "PUT")]]
    out += [Refusal("XAPI-00304", "GET", ACTIVITY_PROFILE, change=("agent", "not JSON"))]
    out += [Refusal(f"XAPI-{n}", m, ACTIVITY_PROFILE, change=("profileid", "x"))
            for n, m in [("00305", "DELETE"), ("00306", "POST"), ("00307", "PUT")]]
    return out


REFUSALS = refusals()


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_document_parameters(lrs: LRS, case: Refusal) -> None:
    params = without(PARAMS[case.resource](), *([case.drop] if case.drop else []))
    if case.change:
        params[case.change[0]] = case.change[1]
    body = {"json": {"x": 1}} if case.method in ("PUT", "POST") else {}
    response = lrs.request(case.method, case.resource, params=params, **body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]


def put(lrs: LRS, resource: str, params: dict[str, str], document: Any, **headers: str) -> httpx.Response:
    return lrs.request("PUT", resource, params=params, json=document, headers=headers)


def post(lrs: LRS, resource: str, params: dict[str, str], document: Any, **headers: str) -> httpx.Response:
    return lrs.request("POST", resource, params=params, json=document, headers=headers)


def get(lrs: LRS, resource: str, params: dict[str, str]) -> httpx.Response:
    return lrs.request("GET", resource, params=params)


@pytest.mark.parametrize("resource", [STATE, ACTIVITY_PROFILE, AGENT_PROFILE])
def test_00141_00187_to_00195_00216_to_00223_00259_00268_to_00275_00285_to_00294_00303_documents(
        lrs: LRS, resource: str) -> None:
    """Each document resource: PUT, POST, GET one and the ids (with since), DELETE (Communication 2.3, 2.6, 2.7)."""
    params = PARAMS[resource]()
    id_param = ID_PARAM[resource]
    assert put(lrs, resource, params, {"a": 1}).status_code == 204  # XAPI-00190, 00273, 00287, 00293
    one = get(lrs, resource, params)  # XAPI-00188, 00192, 00217, 00269, 00274, 00288, 00290
    assert one.status_code == 200
    assert one.json() == {"a": 1}
    assert one.headers["content-type"].startswith("application/json")
    assert re.fullmatch(r'"[0-9a-f]{40}"', one.headers["etag"])
    assert one.headers["last-modified"]
    moment = dt.datetime.now(dt.UTC).isoformat()
    time.sleep(0.01)
    second = {**params, id_param: params[id_param] + "-2"}
    assert post(lrs, resource, second, {"b": 2}).status_code == 204  # XAPI-00189, 00272, 00286, 00292
    listing = without(params, id_param)
    ids = get(lrs, resource, listing)  # XAPI-00193, 00270, 00289
    assert ids.status_code == 200
    assert sorted(ids.json()) == sorted([params[id_param], second[id_param]])
    since = get(lrs, resource, {**listing, "since": moment})  # XAPI-00195, 00221, 00222, 00268, 00275, 00294, 00303
    assert since.json() == [second[id_param]]
    assert get(lrs, resource, {**params, "since": moment}).json() == {"a": 1}  # since does not apply to one document
    assert lrs.request("DELETE", resource, params=params).status_code == 204  # XAPI-00187, 00191, 00216, 00271, 00285
    assert get(lrs, resource, params).status_code == 404
    if resource == STATE:  # XAPI-00194, XAPI-00223: every state of the Activity and Agent
        assert lrs.request("DELETE", resource, params=listing).status_code == 204
        assert get(lrs, resource, listing).json() == []


def test_00218_00219_00220_00227_state_registration(lrs: LRS) -> None:
    params = state_params()
    registration = str(uuid.uuid4())
    with_registration = {**params, "registration": registration}
    assert put(lrs, STATE, with_registration, {"page": 3}).status_code == 204  # XAPI-00218
    assert post(lrs, STATE, with_registration, {"score": 1}).status_code == 204  # XAPI-00227
    assert get(lrs, STATE, with_registration).json() == {"page": 3, "score": 1}  # XAPI-00220
    assert get(lrs, STATE, params).status_code == 404  # another registration's document
    assert lrs.request("DELETE", STATE, params=with_registration).status_code == 204  # XAPI-00219
    assert get(lrs, STATE, with_registration).status_code == 404


@pytest.mark.parametrize("resource", [STATE, ACTIVITY_PROFILE, AGENT_PROFILE])
def test_00182_to_00186_00229_00232_to_00235_00278_to_00284_00308_to_00314_merge(lrs: LRS, resource: str) -> None:
    params = PARAMS[resource]()
    assert post(lrs, resource, params, {"car": {"make": "Ford", "model": "Escape"}, "driver": "Dale"}).status_code \
        == 204  # XAPI-00233, 00280, 00310: a POST of a new document stores it
    assert post(lrs, resource, params, {"car": {"make": "Dodge"}, "series": "sprint"}).status_code == 204
    merged = {"car": {"make": "Dodge"}, "driver": "Dale", "series": "sprint"}  # XAPI-00183, 00184, 00185, 00186
    assert get(lrs, resource, params).json() == merged  # XAPI-00234, 00279, 00308
    not_json = lrs.request("POST", resource, params=params, content=b"abc", headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 400  # XAPI-00232, 00278, 00309
    not_object = post(lrs, resource, params, [1, 2])
    assert not_object.status_code == 400  # XAPI-00229, 00281, 00313
    broken = lrs.request("POST", resource, params=params, content=b'{"a": ',
                         headers={"Content-Type": "application/json"})
    assert broken.status_code == 400  # XAPI-00235, 00284, 00314
    assert get(lrs, resource, params).json() == merged  # XAPI-00182: refused requests change nothing
    other = PARAMS[resource]()
    for document in (b"1", b"true"):  # a new document of any content (XAPI-00231, 00283, 00312)
        response = lrs.request("POST", resource, params={**other, ID_PARAM[resource]: document.decode()},
                               content=document, headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 204


def test_00322_concurrency(lrs: LRS) -> None:
    for resource in (STATE, ACTIVITY_PROFILE, AGENT_PROFILE):
        params = PARAMS[resource]()
        assert put(lrs, resource, params, {"v": 1}, **{"If-None-Match": "*"}).status_code == 204
        etag = get(lrs, resource, params).headers["etag"]
        assert put(lrs, resource, params, {"v": 9}, **{"If-None-Match": "*"}).status_code == 412
        assert put(lrs, resource, params, {"v": 2}, **{"If-Match": etag}).status_code == 204
        assert put(lrs, resource, params, {"v": 3}, **{"If-Match": etag}).status_code == 412  # etag is stale
        assert post(lrs, resource, params, {"w": 1}, **{"If-Match": etag}).status_code == 412
        assert lrs.request("DELETE", resource, params=params, headers={"If-Match": etag}).status_code == 412
        assert get(lrs, resource, params).json() == {"v": 2}
        unconditional = put(lrs, resource, params, {"v": 4})
        if resource == STATE:  # State takes PUT without concurrency headers (Communication 3.1.s3)
            assert unconditional.status_code == 204
        else:
            assert unconditional.status_code == 409
            assert "If-Match" in unconditional.json()["error"]
            assert get(lrs, resource, params).json() == {"v": 2}
        assert put(lrs, resource, {**params, ID_PARAM[resource]: "absent"}, {"v": 1}, **{"If-Match": '"0"'}
                   ).status_code == 412
        head = lrs.request("HEAD", resource, params=params)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["etag"]


def test_00230_00245_00252_00282_00311_00139_00140_endpoints(lrs: LRS) -> None:
    for path in (STATE, ACTIVITY_PROFILE, AGENT_PROFILE, "/agents", "/activities", "/statements"):
        response = lrs.request("OPTIONS", path, headers={"Origin": "http://school.example.com",
                                                         "Access-Control-Request-Method": "PUT"})
        assert response.status_code == 204, path  # browsers on other sites may use every resource
        expected = 200 if path == "/statements" else 400  # the others ask for their parameters
        assert lrs.request("GET", path).status_code == expected, path


def test_00236_to_00249_agents(lrs: LRS) -> None:
    learner = {"objectType": "Agent", "name": "Li Lei", "mbox": f"mailto:{uuid.uuid4().hex[:8]}@example.com"}
    lrs.store(statement(actor=learner))
    lrs.store(statement(actor={**learner, "name": "李雷"}))
    person = lrs.request("GET", "/agents", params={"agent": agent_json(learner)})  # XAPI-00236, 00245, 00248
    assert person.status_code == 200
    body = person.json()
    assert body["objectType"] == "Person"  # XAPI-00237, 00246
    assert set(body["name"]) == {"Li Lei", "李雷"}  # XAPI-00238
    assert body["mbox"] == [learner["mbox"]]
    assert body["mbox"][0].startswith("mailto:")
    for ifi, key in ((lambda: {"mbox_sha1sum": hashlib.sha1(uuid.uuid4().bytes).hexdigest()},  # XAPI-00240
                      "mbox_sha1sum"),
                     (lambda: {"openid": f"http://openid.example.com/{uuid.uuid4().hex}"}, "openid"),  # XAPI-00241
                     (lambda: {"account": {"homePage": "http://lms.example.com", "name": uuid.uuid4().hex}},
                      "account")):  # XAPI-00242
        unknown = ifi()
        found = lrs.request("GET", "/agents", params={"agent": agent_json(unknown)}).json()
        assert found == {"objectType": "Person", key: [unknown[key]]}  # XAPI-00247: only what was asked
    assert lrs.request("GET", "/agents").status_code == 400  # XAPI-00243
    assert lrs.request("GET", "/agents", params={"agent": '{"name": "x"}'}).status_code == 400  # XAPI-00249


def test_00250_to_00254_activities(lrs: LRS) -> None:
    activity = f"http://example.com/activity/{uuid.uuid4().hex}"
    lrs.store(statement(object={"id": activity, "definition": {"name": {"en-US": "Fractions"},
                                                                "type": "http://adlnet.gov/expapi/activities/lesson"}}))
    lrs.store(statement(object={"id": activity, "definition": {"name": {"zh-CN": "分数"},
                                                                "description": {"en-US": "Adding fractions"}}}))
    found = lrs.request("GET", "/activities", params={"activityId": activity})  # XAPI-00251, 00252, 00253
    assert found.status_code == 200
    assert found.json() == {"objectType": "Activity", "id": activity, "definition": {  # XAPI-00254
        "name": {"en-US": "Fractions", "zh-CN": "分数"}, "description": {"en-US": "Adding fractions"},
        "type": "http://adlnet.gov/expapi/activities/lesson"}}
    assert lrs.request("GET", "/activities").status_code == 400  # XAPI-00250
    unknown = lrs.request("GET", "/activities", params={"activityId": "http://example.com/never"}).json()
    assert unknown == {"objectType": "Activity", "id": "http://example.com/never"}


def test_every_requirement_is_covered() -> None:
    """Each numbered requirement appears in a test name or case id of the conformance modules, or in NOT_TESTED."""
    here = Path(__file__).parent
    text = "".join((here / name).read_text(encoding="utf-8") for name in (
        "test_xapi_conformance_statements.py", "test_xapi_conformance_documents.py"))
    mentioned = {f"XAPI-{n}" for n in re.findall(r"XAPI-(\d{5})", text)}
    mentioned.update(case.requirement for case in REFUSALS)
    for name in re.findall(r"def test_([0-9_to]+)_", text):
        numbers = [int(n) for n in re.findall(r"\d{5}", name)]
        mentioned.update(f"XAPI-{n:05d}" for n in numbers)
        for low, high in re.findall(r"(\d{5})_to_(\d{5})", name):
            mentioned.update(f"XAPI-{n:05d}" for n in range(int(low), int(high) + 1))
    missing = [r for r in all_requirements() if r not in mentioned and r not in NOT_TESTED]
    assert missing == [], [(r, section_of(r)) for r in missing]
