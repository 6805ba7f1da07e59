"""Insert ids for rows that have none, derived from the row's content, so that importing a file again (or an
overlapping export with the same columns) stores each row once.

The id is a 128-bit hash (32 hex digits) of the row's values in the order of their targets' names
(`distinct_id`, `event`, `properties.amount`, ...), seeded with those names, so column order does not
matter. It is computed column by column: each distinct text value is hashed once with MD5, numbers and
times by their 64-bit value, and a row's values are folded together with the SplitMix64 mixer; all of it is
fixed arithmetic, so the same file gives the same ids on any machine and any version. Identical rows in one
import are different rows (two equal orders on the same day): the n-th copy gets `#n` after the hash, which
is again the same when the file is imported again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from edupulse.importer.mapping import Layout

_SEP = "\x1f"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NULL = (np.uint64(0x6A09E667F3BCC908), np.uint64(0xBB67AE8584CAA73B))  # the lanes of an empty value
_NUMBER_SEEDS = (np.uint64(0x3C6EF372FE94F82B), np.uint64(0xA54FF53A5F1D36F1))


def labelled_columns(layout: Layout) -> list[tuple[str, str]]:
    """(label, source column) of everything that makes a row what it is, sorted by label."""
    pairs = [(target, source) for target, source in layout.fields.items() if target != "insert_id"]
    pairs += [(f"properties.{name}", source) for name, source in layout.properties.items()]
    pairs += [(f"groups.{name}", source) for name, source in layout.groups.items()]
    pairs += [(f"identities.{name}", source) for name, source in layout.identities.items()]
    return sorted(pairs)


def _signature(layout: Layout, present: set[str]) -> str:
    labels = [label for label, source in labelled_columns(layout) if source in present]
    constants = [f"{target}={value}" for target, value in sorted(layout.constants.items())]
    return _SEP.join([*labels, *constants])


def _mix(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finalizer, in place (wrapping 64-bit arithmetic)."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _md5_lanes(values: Sequence[bytes]) -> np.ndarray:
    joined = b"".join(hashlib.md5(v, usedforsecurity=False).digest() for v in values)
    return np.frombuffer(joined, dtype="<u8").reshape(-1, 2) if values else np.empty((0, 2), dtype=np.uint64)


def _value_lanes(array: pa.Array, con: duckdb.DuckDBPyConnection, encoded: pa.DictionaryArray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hash lanes per row of one column; empty values get the _NULL lanes. `encoded` is the column
    dictionary-encoded, when the caller has it already."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    kind = array.type
    if encoded is not None or pa.types.is_string(kind) or pa.types.is_large_string(kind) or (
        pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
    ):
        encoded = encoded if encoded is not None else pc.dictionary_encode(array)
        values = encoded.dictionary.to_pylist()
        lanes = np.vstack([_md5_lanes([v.encode() if isinstance(v, str) else v for v in values]),
                           np.array([_NULL], dtype=np.uint64)])
        codes = encoded.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)
        return lanes[:, 0][codes], lanes[:, 1][codes]
    bits = _number_bits(array)
    if bits is None:
        bits = _text_bits(array, con)
    first = _mix(bits ^ _NUMBER_SEEDS[0])
    second = _mix(bits ^ _NUMBER_SEEDS[1])
    if array.null_count:
        valid = np.asarray(pc.is_valid(array).to_numpy(zero_copy_only=False), dtype=bool)
        first = np.where(valid, first, _NULL[0])
        second = np.where(valid, second, _NULL[1])
    return first, second


def _number_bits(array: pa.Array) -> np.ndarray | None:
    """The 64 bits of each number, time or date (the instant for times with a zone); None for other types."""
    kind = array.type
    if pa.types.is_boolean(kind):
        array = array.cast(pa.uint8())
        kind = array.type
    if pa.types.is_timestamp(kind):
        array = array.cast(pa.timestamp("us", tz=kind.tz), safe=False).cast(pa.int64())
    elif pa.types.is_date(kind):
        array = array.cast(pa.date32()).cast(pa.int32())
    elif pa.types.is_floating(kind):
        array = array.cast(pa.float64())
    elif not pa.types.is_integer(kind):
        return None
    numbers = array.fill_null(0).to_numpy(zero_copy_only=False)
    if numbers.dtype == np.float64:
        return numbers.view(np.uint64)
    return numbers.astype(np.int64, copy=False).view(np.uint64) if numbers.dtype != np.uint64 else numbers


def _text_bits(array: pa.Array, con: duckdb.DuckDBPyConnection) -> np.ndarray:
    """Nested and other values: DuckDB's text of the value, hashed (first 64 bits of its MD5)."""
    cur = con.cursor()
    try:
        cur.register("hash_values", pa.table({"v": array}))
        result = cur.sql("SELECT md5(CAST(v AS VARCHAR)) AS h FROM hash_values").to_arrow_table().column(0)
    finally:
        cur.close()
    return np.array([int(h[:16], 16) if h else 0 for h in result.to_pylist()], dtype=np.uint64)


def _seed(signature: str) -> tuple[np.uint64, np.uint64]:
    first, second = np.frombuffer(hashlib.md5(signature.encode(), usedforsecurity=False).digest(), dtype="<u8")
    return np.uint64(first), np.uint64(second)


def table_digests(
    con: duckdb.DuckDBPyConnection, table: pa.Table, layout: Layout,
    encodings: dict[str, pa.DictionaryArray] | None = None,
) -> tuple[pa.Array, np.ndarray]:
    """The content hash of every row of an Arrow table, as 32 hex digits and as its first 64 bits.
    `encodings` holds columns (by source name) dictionary-encoded already."""
    present = set(table.column_names)
    n = table.num_rows
    seed = _seed(_signature(layout, present))
    first = np.full(n, seed[0], dtype=np.uint64)
    second = np.full(n, seed[1], dtype=np.uint64)
    for _, source in labelled_columns(layout):
        if source in present:
            a, b = _value_lanes(table.column(source), con, (encodings or {}).get(source))
            first ^= a
            _mix(first)
            second += b
            second ^= np.uint64(0x9E3779B97F4A7C15)
            _mix(second)
    return _hex(first, second), first


def _hex(first: np.ndarray, second: np.ndarray) -> pa.Array:
    n = len(first)
    raw = np.empty((n, 2), dtype=">u8")
    raw[:, 0] = first
    raw[:, 1] = second
    octets = raw.view(np.uint8).reshape(n, 16)
    text = np.empty((n, 32), dtype=np.uint8)
    text[:, 0::2] = _HEX[octets >> 4]
    text[:, 1::2] = _HEX[octets & 15]
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def row_digest(row: dict[str, Any], layout: Layout) -> str:
    """MD5 hex of one row given as plain values (rows pyarrow could not type, and row-wise kinds)."""
    present = set(row)
    content: list[Any] = [_signature(layout, present)]
    content += [row.get(source) for _, source in labelled_columns(layout) if source in present]
    data = orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS)
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Occurrences:
    """Counts identical rows across one import, in 8 bytes per row."""

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.uint64)

    def number(self, keys: np.ndarray) -> np.ndarray:
        """For each row, how many identical rows came before it in this import (0 for the first)."""
        ordered = np.sort(keys)
        seen = self._seen
        met_before = False
        if len(seen):
            at = np.minimum(np.searchsorted(seen, ordered), len(seen) - 1)
            met_before = bool(np.any(seen[at] == ordered))
        repeated_here = bool(np.any(ordered[1:] == ordered[:-1]))
        self._seen = np.sort(np.concatenate([seen, ordered]), kind="stable")  # a merge of two sorted runs
        if not met_before and not repeated_here:
            return np.zeros(len(keys), dtype=np.int64)
        return self._count(keys, seen)

    @staticmethod
    def _count(keys: np.ndarray, seen: np.ndarray) -> np.ndarray:
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        earlier = np.searchsorted(seen, ordered, side="right") - np.searchsorted(seen, ordered, side="left")
        # rank among equal keys within this chunk, in row order (the sort is stable)
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        run_of = np.repeat(starts, np.diff(np.r_[starts, len(ordered)]))
        counts = np.empty(len(keys), dtype=np.int64)
        counts[order] = earlier + np.arange(len(ordered)) - run_of
        return counts


def with_occurrence(digests: pa.Array, counts: np.ndarray) -> pa.Array:
    """`digest` for the first of identical rows, `digest#n` for the n-th."""
    repeated = np.flatnonzero(counts)
    if not len(repeated):
        return digests
    values = digests.to_pylist()
    for i in repeated:
        values[i] = f"{values[i]}#{int(counts[i]) + 1}"
    return pa.array(values, pa.string())


def assign_table(
    con: duckdb.DuckDBPyConnection, table: pa.Table, layout: Layout, occurrences: Occurrences,
    encodings: dict[str, pa.DictionaryArray] | None = None,
) -> pa.Array:
    """Derived insert ids of a chunk, counting identical rows of the whole import."""
    digests, keys = table_digests(con, table, layout, encodings)
    return with_occurrence(digests, occurrences.number(keys))


def assign_rows(rows: Sequence[dict[str, Any]], layout: Layout, occurrences: Occurrences) -> list[str]:
    """Derived insert ids of rows given as plain values."""
    digests = [row_digest(row, layout) for row in rows]
    keys = np.array([int(d[:16], 16) for d in digests], dtype=np.uint64)
    return with_occurrence(pa.array(digests, pa.string()), occurrences.number(keys)).to_pylist()
