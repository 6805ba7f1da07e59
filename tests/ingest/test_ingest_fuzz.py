"""Property-based fuzzing of the ingestion endpoints against a real server: generated records and bodies with
deep nesting, integers beyond 64 bits, odd unicode (lone surrogates escaped in JSON, control characters, RTL
marks, emoji), wrong types and broken JSON. Whatever is sent: no 5xx; a native batch gets one result per
record, accepted + rejected = sent; a body that is not a batch gets a 4xx that says why; the server stays up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ProjectKeys, Server, create_project, make_settings

pytestmark = pytest.mark.slow

ODD_TEXT = st.text(st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["", " ", "\u202e", "\x00", "\x1f", "😀", "é", "\ufeff", "a" * 300, "$insert_id", "properties", "../../etc"])
HUGE_INTS = st.sampled_from([2**63, -(2**63) - 1, 2**64, 2**70, 10**40, -(10**30)])
SCALARS = (st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats(allow_nan=False, allow_infinity=False)
           | ODD_TEXT)


def deep(depth: int, leaf: Any = 1) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf} if depth % 2 else [leaf]
    return leaf


VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
                      max_leaves=8) | st.integers(1, 400).map(deep)
RECORD_FIELDS = {
    "type": st.sampled_from(["track", "profile_set", "profile_set_once", "profile_increment", "profile_append",
                             "profile_unset", "profile_delete", "identify", "alias", "group_set", "item_set"]) | VALUES,
    "event": ODD_TEXT | VALUES,
    "distinct_id": ODD_TEXT | st.integers() | HUGE_INTS | VALUES,
    "distinct_id_type": st.sampled_from(["login_id", "mobile", "Bad Type"]) | VALUES,
    "time": st.sampled_from(["2026-01-01T00:00:00+08:00", "2026-13-01", "now", 1.7e12, 1e300]) | VALUES,
    "event_id": ODD_TEXT | st.integers() | HUGE_INTS | VALUES,
    "properties": st.dictionaries(ODD_TEXT, VALUES, max_size=4) | VALUES,
    "groups": st.dictionaries(ODD_TEXT, ODD_TEXT | VALUES, max_size=2) | VALUES,
    "identities": st.dictionaries(ODD_TEXT, ODD_TEXT | VALUES, max_size=2) | VALUES,
    "anonymous_id": ODD_TEXT | VALUES,
    "group_type": ODD_TEXT, "group_key": ODD_TEXT | VALUES, "item_type": ODD_TEXT, "item_id": ODD_TEXT | VALUES,
}
RECORDS = st.fixed_dictionaries({}, optional=RECORD_FIELDS) | VALUES


def as_json(value: Any) -> str:
    """JSON text of the value, huge integers as digits, non-ASCII text escaped or not (by the text's length)."""
    return json.dumps(value, ensure_ascii=len(str(value)) % 2 == 1)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ProjectKeys]]:
    settings_ = make_settings(tmp_path_factory.mktemp("ingest-fuzz"))
    keys = create_project(settings_, "Fuzzed")
    server = Server(settings_).start()
    yield server, keys
    server.kill()


FUZZ = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@FUZZ
@given(batch=st.lists(RECORDS, max_size=6))
def test_native_batches(target: tuple[Server, ProjectKeys], batch: list[Any]) -> None:
    server, keys = target
    text = '{"batch": [' + ", ".join(as_json(r) for r in batch) + "]}"
    for path, params, headers in (("/api/v1/ingest", {}, {"Authorization": f"Bearer {keys.write_key}"}),
                                  ("/api/v1/ingest/beacon", {"key": keys.write_key}, {})):
        response = httpx.post(f"{server.url}{path}", params=params, headers=headers, content=text.encode(), timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["results"]) == len(batch)
        assert body["accepted"] + body["rejected"] == len(batch)
        assert all(r["status"] == "accepted" or r["reason"] for r in body["results"])


@FUZZ
@given(body=st.binary(max_size=200) | VALUES.map(as_json).map(str.encode)
       | st.integers(1000, 3000).map(lambda d: ("[" * d + "]" * d).encode()))
def test_any_body(target: tuple[Server, ProjectKeys], body: bytes) -> None:
    server, keys = target
    response = httpx.post(f"{server.url}/api/v1/ingest", headers={"Authorization": f"Bearer {keys.write_key}"},
                          content=body, timeout=60)
    assert response.status_code in (200, 400, 413), response.text
    if response.status_code != 200:
        assert response.json()["error"]


@FUZZ
@given(messages=st.lists(st.fixed_dictionaries({}, optional={
    "event": ODD_TEXT | VALUES, "distinct_id": ODD_TEXT | VALUES, "properties": VALUES, "timestamp": VALUES,
    "type": st.sampled_from(["track", "identify", "alias", "page", "group"]) | VALUES, "userId": ODD_TEXT | VALUES,
    "anonymousId": ODD_TEXT | VALUES, "traits": VALUES, "context": VALUES, "uuid": VALUES, "messageId": VALUES,
    "$set": VALUES, "$groups": VALUES, "groupId": VALUES}) | VALUES, max_size=4))
def test_protocol_batches(target: tuple[Server, ProjectKeys], messages: list[Any]) -> None:
    server, keys = target
    listed = "[" + ", ".join(as_json(m) for m in messages) + "]"
    posthog = httpx.post(f"{server.url}/batch/", timeout=60,
                         content=f'{{"api_key": "{keys.write_key}", "batch": {listed}}}'.encode())
    segment = httpx.post(f"{server.url}/v1/batch", timeout=60,
                         content=f'{{"writeKey": "{keys.write_key}", "batch": {listed}}}'.encode())
    sensors = httpx.post(f"{server.url}/sa", params={"token": keys.write_key}, data={"data_list": listed}, timeout=60)
    for response in (posthog, segment, sensors):
        assert response.status_code in (200, 400, 413), (response.request.url, response.text)
    assert server.running
