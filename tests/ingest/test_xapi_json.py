"""Reading a request's statements: the fast reader (orjson and a count of colons) gives exactly what the standard
reader gives, and refuses exactly what it refuses, a property repeated in one object above all (XAPI-00021)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edupulse.ingest.xapi import StatementError, _parse_strictly, parse_json

KEYS = st.sampled_from(["a", "b", "id", "http://x.example/ext:1", "k:", ":", "é", "\\", '"'])
SCALARS = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(alphabet=st.sampled_from(list("ab:\"\\/é{}[], \u2028")), max_size=8)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.lists(st.tuples(KEYS, inner), max_size=4), max_leaves=12)


def write(value: Any, escape_colons: bool, spaced: bool) -> str:
    """JSON text of `value`, where a list of (key, value) pairs is an object written with its keys as given
    (repeats kept), colons in strings spelled \\u003a or not."""
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        colon = " : " if spaced else ":"
        return "{" + ",".join(write(k, escape_colons, spaced) + colon + write(v, escape_colons, spaced)
                              for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(write(v, escape_colons, spaced) for v in value) + "]"
    text = json.dumps(value, ensure_ascii=False)
    return text.replace(":", "\\u003a") if escape_colons and isinstance(value, str) else text


def outcome(read: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", read(body)
    except StatementError as exc:
        return "refused", exc.reason


@settings(max_examples=400, deadline=None)
@given(VALUES, st.booleans(), st.booleans())
def test_the_fast_reader_agrees_with_the_standard_one(value: Any, escape_colons: bool, spaced: bool) -> None:
    body = write(value, escape_colons, spaced).encode()
    fast, strict = outcome(parse_json, body), outcome(_parse_strictly, body)
    assert fast == strict
    assert repr(fast) == repr(strict)  # 1 stays 1, never 1.0


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"a":1,"a":2}', "twice"),
    (b'[{"id":"x","verb":{"id":"v","id":"w"}}]', "twice"),
    (b'{"a":"http://x","a" : 1}', "twice"),
    (b'{"a":"x\\u003ay","a":1}', "twice"),  # an escaped colon in a string cannot hide the repeat
    (b'{"a":"x\\u003Ay", "b":1,"b":2}', "twice"),
    (b"[NaN]", "not a JSON number"),
    (b"[1,", "not valid JSON"),
    (b"\xff", "UTF-8"),
])
def test_refusals(body: bytes, reason: str) -> None:
    with pytest.raises(StatementError, match=reason):
        parse_json(body)


def test_integers_beyond_64_bits_stay_exact() -> None:
    assert parse_json(b'{"n": 18446744073709551616, "m": -9223372036854775809}') == \
        {"n": 18446744073709551616, "m": -9223372036854775809}


def test_a_body_nested_deeper_than_the_fast_writer_goes_is_read_by_the_standard_reader() -> None:
    """orjson reads 300 levels but will not write more than 255: such a body is read by the standard reader
    (the statement rules then refuse it for its depth), never an error of the server."""
    deep = "[" * 300 + "1" + "]" * 300
    assert parse_json(f'{{"a": {deep}}}'.encode()) == _parse_strictly(f'{{"a": {deep}}}'.encode())
