"""The OpenAPI description tells the truth, for every route, including routes added later: each operation is
called without credentials, with a write key, with the secret API key and with a signed-in session, with an
empty and a broken body, and must answer a status (and media type) its description lists. Every integer a
route takes has a documented maximum the databases can hold."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edupulse.api.params import MAX_ID


@pytest.fixture(scope="module")
def gov(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An app of its own: calling every operation revokes keys and changes users that the session-wide one
    keeps for the tests after this module."""
    from gov_fixtures import build

    root: Path = tmp_path_factory.mktemp("openapi")
    yield from build(root)


def spec(gov: Any) -> dict[str, Any]:
    response = gov.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def input_integers(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, schema) of every integer in the parameters and request bodies, $refs followed."""
    components = document.get("components", {}).get("schemas", {})
    found: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in seen:
                seen.add(ref)
                walk(components.get(ref.rsplit("/", 1)[-1]), ref)
            if node.get("type") == "integer":
                found.append((where, node))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    for method, path, op in operations(document):
        walk(op.get("parameters", []), f"{method} {path} parameters")
        walk(op.get("requestBody", {}), f"{method} {path} body")
    return found


def test_every_integer_a_route_takes_has_a_maximum(gov: Any) -> None:
    taken = input_integers(spec(gov))
    assert taken, "no integer parameters found: the walk is broken"
    unbounded = [w for w, s in taken if not (isinstance(s.get("maximum"), int | float) and s["maximum"] <= MAX_ID)]
    assert not unbounded, f"integers without a maximum (use edupulse.api.params): {unbounded}"


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def documented(op: dict[str, Any], status: int) -> bool:
    responses = op["responses"]
    return str(status) in responses or f"{str(status)[0]}XX" in responses or "default" in responses


@pytest.mark.parametrize("who", ["nobody", "write key", "secret API key", "session"])
def test_every_operation_answers_only_what_it_documents(gov: Any, who: str) -> None:
    document = spec(gov)
    headers: dict[str, str] = {}
    client = gov.client
    if who == "write key":
        headers = {"Authorization": f"Bearer {gov.a.write_key}"}
    elif who == "secret API key":
        headers = {"Authorization": f"Bearer {gov.a_api_key}"}
    elif who == "session":
        client, csrf = gov.session("admin")
        headers = {"X-CSRF-Token": csrf, "X-EduPulse-Project": gov.a.name}
    wrong = []
    for method, path, op in operations(document):
        if path.startswith("/api/v1/auth/logout") or (who == "session" and "/users/{user_id}" in path):
            continue  # would end the session the other calls use
        for body in (b"{}", b"[", b'{"batch": 1}'):
            response = client.request(method, concrete(path), headers={**headers, "Content-Type": "application/json"},
                                      content=body if method not in ("GET", "HEAD", "DELETE") else None)
            media = response.headers.get("content-type", "").split(";")[0]
            content = op["responses"].get(str(response.status_code), {}).get("content")
            if not documented(op, response.status_code):
                wrong.append(f"{method} {path} ({who}, {body!r}): {response.status_code} is not documented "
                             f"(documented: {sorted(op['responses'])}): {response.text[:200]}")
            elif content and response.content and media not in content:
                wrong.append(f"{method} {path} ({who}): {media} is not documented for {response.status_code}")
    assert not wrong, "\n".join(wrong)
