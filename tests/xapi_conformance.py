"""Helpers of the xAPI conformance tests (test_xapi_conformance_*.py): the numbered requirements of xAPI 1.0.3
(ADL's LRS conformance requirements, XAPI-00001 ... XAPI-00336) by resource, a client of a live server on
loopback, and statements to start from.

Every requirement is covered by a test whose name or case id carries its number, or is listed in NOT_TESTED with
the reason; `test_every_requirement_is_covered` keeps it so.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ProjectKeys, Server, create_project, make_settings

ADL = "http://adlnet.gov/expapi/verbs/"
V = {"X-Experience-API-Version": "1.0.3"}

# (first number, last number, resource): the sections of the requirements, in their order.
SECTIONS = [
    (1, 15, "statements: formatting (Data 2.2)"),
    (16, 20, "statements: voiding (Data 2.3.2)"),
    (21, 107, "statements: properties (Data 2.4)"),
    (108, 114, "statements: retrieval (Data 2.5)"),
    (115, 117, "statements: signed (Data 2.6)"),
    (118, 124, "statements: special data types (Data 4)"),
    (125, 126, "requests: HEAD (Communication 1.1)"),
    (127, 138, "requests: content types (Communication 1.5)"),
    (139, 181, "statements resource (Communication 2.1)"),
    (182, 186, "document resources (Communication 2.2)"),
    (187, 235, "State resource (Communication 2.3)"),
    (236, 249, "Agents resource (Communication 2.4)"),
    (250, 254, "Activities resource (Communication 2.5)"),
    (255, 284, "Agent Profile resource (Communication 2.6)"),
    (285, 314, "Activity Profile resource (Communication 2.7)"),
    (315, 321, "About resource (Communication 2.8)"),
    (322, 322, "concurrency (Communication 3.1)"),
    (323, 329, "error codes (Communication 3.2)"),
    (330, 333, "versioning (Communication 3.3)"),
    (334, 335, "authentication (Communication 4)"),
    (336, 336, "requests: alternate request syntax (Communication 1.3)"),
]
# Numbers with no requirement to test, and why.
NOT_TESTED = {
    "XAPI-00136": "the number is not used by the requirements document",
    "XAPI-00014": "a property of JSON itself (every body this server accepts or returns is parsed as JSON)",
    "XAPI-00137": "withdrawn from ADL's conformance suite: MIME-Version is a header of e-mail, not of HTTP bodies",
    "XAPI-00329": "a 500 for server failures: the tests make sure no request produces one (test_no_request_is_a_500)",
}


def section_of(requirement: str) -> str:
    number = int(requirement.split("-")[1])
    return next(name for first, last, name in SECTIONS if first <= number <= last)


def all_requirements() -> list[str]:
    return [f"XAPI-{n:05d}" for first, last, _ in SECTIONS for n in range(first, last + 1)]


class LRS:
    """A client of the server's xAPI resources with a project's credentials (keep-alive)."""

    def __init__(self, server: Server, keys: ProjectKeys) -> None:
        self.root = server.url
        self.keys = keys
        self.http = httpx.Client(base_url=f"{server.url}/xapi", auth=(keys.write_key, keys.api_key), headers=V,
                                 timeout=30)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def post(self, statements: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post("/statements", json=statements, **kwargs)

    def put(self, statement: Any, statement_id: str | None = None) -> httpx.Response:
        sid = statement_id or statement.get("id") or str(uuid.uuid4())
        return self.http.put("/statements", params={"statementId": sid}, json=statement)

    def get(self, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
        return self.http.get("/statements", params=params, headers=headers)

    def store(self, statement: dict[str, Any]) -> str:
        response = self.post(statement)
        assert response.status_code == 200, response.text
        return str(response.json()[0])

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def lrs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LRS]:
    settings = make_settings(tmp_path_factory.mktemp("xapi-conformance"))
    keys = create_project(settings, "Conformance")
    server = Server(settings).start()
    client = LRS(server, keys)
    yield client
    client.close()
    server.kill()


def agent(name: str | None = None) -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:{name or uuid.uuid4().hex[:12]}@example.com"}


def statement(**extra: Any) -> dict[str, Any]:
    """A valid statement with a fresh id and fresh Agent and Activity ids."""
    base = {"id": str(uuid.uuid4()), "actor": agent(),
            "verb": {"id": ADL + "experienced", "display": {"en-US": "experienced"}},
            "object": {"objectType": "Activity", "id": f"http://example.com/activity/{uuid.uuid4().hex}",
                       "definition": {"name": {"en-US": "Lesson"}, "type": "http://adlnet.gov/expapi/activities/lesson"}}}
    base.update(extra)
    return base


def with_path(value: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    """A copy of `value` with the property at dotted `path` set to `new` (DELETE removes it)."""
    out = copy.deepcopy(value)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if new is DELETE:
        node.pop(int(last) if isinstance(node, list) else last)
    elif isinstance(node, list):
        node[int(last)] = new
    else:
        node[last] = new
    return out


DELETE = object()


def agent_json(value: dict[str, Any]) -> str:
    return json.dumps(value)
