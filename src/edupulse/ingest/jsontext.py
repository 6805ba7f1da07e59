"""Reading the JSON of ingestion requests whatever its depth.

The JSON reader (orjson) refuses a document that nests arrays and objects 1,024 levels deep or more, and
the rest of the request would go with it. So a body too deep to read is read again with every value below
`CUT_DEPTH` levels replaced by null: the records around the deep one are kept, and the deep one still
nests more than `records.MAX_VALUE_DEPTH` levels, so validation refuses it on its own with that reason.
Values are never replaced in a body that reads as it is.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

CUT_DEPTH = 200  # deeper than any value validation accepts, shallow enough for every reader

# A string (with its escapes) or one bracket: the tokens that decide the depth, found by the regex engine.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def loads(raw: bytes | str) -> Any:
    """The JSON value of `raw`; orjson.JSONDecodeError when it is not JSON (as orjson.loads)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" not in exc.msg:
            raise
    data = raw.encode() if isinstance(raw, str) else raw
    return orjson.loads(cut_deep(data, CUT_DEPTH))


def cut_deep(data: bytes, depth: int) -> bytes:
    """`data` with every array or object that opens below `depth` levels replaced by null."""
    parts: list[bytes] = []
    level, kept, cut_start = 0, 0, -1
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token[0] == 0x22:  # a string: brackets inside it do not count
            continue
        if token in (b"[", b"{"):
            level += 1
            if level == depth + 1:
                cut_start = match.start()
        else:
            if level == depth + 1 and cut_start >= 0:
                parts += [data[kept:cut_start], b"null"]
                kept, cut_start = match.end(), -1
            level -= 1
    parts.append(data[kept:])
    return b"".join(parts)
