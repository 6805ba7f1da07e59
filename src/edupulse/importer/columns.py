"""Column-wise conversion of event columns, with a conservative screen.

Each function converts a whole column to what the store keeps and returns a `suspect` mask: rows whose value
the screen cannot vouch for. Suspect rows are not dropped: the importer decides them one by one with the API
rules (`rules.py`, `values.py`). So a screen may be stricter than the rules but never looser; the tests hold
it to that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from edupulse.importer.values import MILLIS_TEXT, NUMBER_TEXT
from edupulse.ingest.records import MAX_ID_LEN, MAX_NAME_LEN, MAX_STRING_LEN
from edupulse.store.schema import PropertyType

TS = pa.timestamp("us", tz="UTC")
# ISO 8601 shapes both Python's datetime.fromisoformat and DuckDB read the same way; other text is suspect.
_NAIVE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$"
_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$"
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
_MILLIS_LIMIT = 9_000_000_000_000_000  # beyond this, milliseconds * 1000 overflow microseconds in int64


@dataclass
class Converted:
    values: pa.Array
    suspect: np.ndarray  # bool per row
    encoded: pa.DictionaryArray | None = None  # the values dictionary-encoded, when that was needed anyway


def mask(array: pa.Array | pa.ChunkedArray, null_is: bool = False) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls counted as `null_is`."""
    filled = array.fill_null(null_is)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def plain_array(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array with dictionaries decoded and large types narrowed."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    return array


def _none(n: int, kind: pa.DataType, suspect: np.ndarray) -> Converted:
    return Converted(pa.nulls(n, kind), suspect)


def _bad_values(array: pa.Array, ok: Callable[[Any], bool]) -> np.ndarray:
    """Rows whose value fails `ok`, judging each distinct value once (for columns of few values)."""
    uniques = pc.unique(array)
    bad = [v for v in uniques.to_pylist() if v is not None and not ok(v)]
    if not bad:
        return np.zeros(len(array), dtype=bool)
    return mask(pc.is_in(array, value_set=pa.array(bad, array.type)))


def identifiers(array: pa.Array) -> Converted:
    """Identity values and group keys: text (or whole numbers), 1 to 255 characters with nothing the API would
    strip. Control characters anywhere make a value suspect (Python strips more of them than Arrow)."""
    array = plain_array(array)
    n = len(array)
    if pa.types.is_integer(array.type):
        array = array.cast(pa.string())
    if not pa.types.is_string(array.type):
        return _none(n, pa.string(), mask(pc.is_valid(array)))
    encoded = pc.dictionary_encode(array)
    values = encoded.dictionary
    length = pc.utf8_length(values)
    bad = pc.or_(
        pc.or_(pc.equal(length, 0), pc.greater(length, MAX_ID_LEN)),
        pc.or_(pc.not_equal(pc.utf8_trim_whitespace(values), values), pc.match_substring_regex(values, _CONTROL)),
    )
    if not pc.any(bad).as_py():
        return Converted(array, np.zeros(n, dtype=bool), encoded)
    return Converted(array, mask(pc.take(bad, encoded.indices)), encoded)


def event_names(array: pa.Array) -> Converted:
    array = plain_array(array)
    if not pa.types.is_string(array.type):
        return _none(len(array), pa.string(), np.ones(len(array), dtype=bool))

    def ok(value: str) -> bool:
        return bool(value.strip()) and len(value) <= MAX_NAME_LEN and value.isprintable()

    return Converted(array, _bad_values(array, ok) | mask(pc.is_null(array)))


def insert_ids(array: pa.Array) -> Converted:
    """Given event ids: text or whole numbers, 1 to 128 characters."""
    array = plain_array(array)
    n = len(array)
    if pa.types.is_integer(array.type):
        array = array.cast(pa.string())
    if not pa.types.is_string(array.type):
        return _none(n, pa.string(), mask(pc.is_valid(array)))
    length = pc.utf8_length(array)
    return Converted(array, mask(pc.or_(pc.equal(length, 0), pc.greater(length, 128))))


class TimeReader:
    """Times to microseconds since the epoch (UTC): timestamps, dates, milliseconds, ISO 8601 text."""

    def __init__(self, timezone: ZoneInfo, text_only: bool, con: duckdb.DuckDBPyConnection) -> None:
        self.timezone = timezone
        self.text_only = text_only
        self.con = con

    def read(self, array: pa.Array) -> Converted:
        array = plain_array(array)
        n = len(array)
        kind = array.type
        if pa.types.is_timestamp(kind):
            return self._timestamps(array)
        if pa.types.is_date(kind):
            return self._local(array.cast(pa.timestamp("us")))
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return self._millis(array)
        if pa.types.is_string(kind):
            return self._text(array)
        return _none(n, TS, mask(pc.is_valid(array)))

    def _timestamps(self, array: pa.Array) -> Converted:
        if array.type.unit == "ns":
            array = array.cast(pa.timestamp("us", tz=array.type.tz), safe=False)
        if array.type.tz is None:
            return self._local(array.cast(pa.timestamp("us")))
        return Converted(array.cast(TS), np.zeros(len(array), dtype=bool))

    def _local(self, naive: pa.Array) -> Converted:
        """Wall-clock times in the project's time zone; times a clock change makes ambiguous are suspect."""
        zone = self.timezone.key
        try:
            return Converted(pc.assume_timezone(naive, zone).cast(TS), np.zeros(len(naive), dtype=bool))
        except pa.ArrowInvalid:
            pass
        early = pc.assume_timezone(naive, zone, ambiguous="earliest", nonexistent="earliest")
        late = pc.assume_timezone(naive, zone, ambiguous="latest", nonexistent="latest")
        return Converted(early.cast(TS), mask(pc.not_equal(early, late)))

    def _millis(self, array: pa.Array) -> Converted:
        numbers = array.cast(pa.float64()) if pa.types.is_floating(array.type) else array.cast(pa.int64())
        ok = pc.and_(pc.greater(numbers, -_MILLIS_LIMIT), pc.less(numbers, _MILLIS_LIMIT))
        clean = pc.if_else(ok, numbers, None)
        if pa.types.is_floating(numbers.type):
            micros = pc.trunc(pc.multiply(clean, 1000.0)).cast(pa.int64())
        else:
            micros = pc.multiply(clean, 1000)
        return Converted(micros.cast(TS), mask(pc.invert(ok)))

    def _text(self, array: pa.Array) -> Converted:
        if not self.text_only:
            return self._text_iso(array)
        millis = mask(pc.match_substring_regex(array, MILLIS_TEXT.pattern))
        if not millis.any():
            return self._text_iso(array)
        chosen = pa.array(millis)
        from_millis = self._millis(pc.if_else(chosen, array, None).cast(pa.float64()))
        rest = self._text_iso(pc.if_else(chosen, None, array))
        values = pc.if_else(chosen, from_millis.values, rest.values)
        return Converted(values, np.where(millis, from_millis.suspect, rest.suspect))

    def _text_iso(self, array: pa.Array) -> Converted:
        naive = mask(pc.match_substring_regex(array, _NAIVE))
        offset = mask(pc.match_substring_regex(array, _OFFSET))
        valid = mask(pc.is_valid(array))
        values = pa.nulls(len(array), TS)
        suspect = valid & ~naive & ~offset
        if offset.any():
            parsed = self._duckdb_cast(pc.if_else(pa.array(offset), array, None), "TIMESTAMPTZ")
            values = pc.if_else(pa.array(offset), parsed, values)
            suspect |= offset & mask(pc.is_null(parsed))
        if naive.any():
            wall = self._duckdb_cast(pc.if_else(pa.array(naive), array, None), "TIMESTAMP")
            local = self._local(wall)
            values = pc.if_else(pa.array(naive), local.values, values)
            suspect |= naive & (mask(pc.is_null(wall)) | local.suspect)
        return Converted(values, suspect)

    def _duckdb_cast(self, array: pa.Array, sql_type: str) -> pa.Array:
        cur = self.con.cursor()
        try:
            cur.register("time_text", pa.table({"t": array}))
            result = cur.sql(f"SELECT TRY_CAST(t AS {sql_type}) AS t FROM time_text").to_arrow_table()
        finally:
            cur.close()
        column = plain_array(result.column(0))
        target = TS if sql_type == "TIMESTAMPTZ" else pa.timestamp("us")
        return column.cast(target)


def typed(array: pa.Array, kind: PropertyType, times: TimeReader) -> Converted:
    """A property with a typed column, as the column's type (the API's coercions for that type)."""
    array = plain_array(array)
    n = len(array)
    valid = mask(pc.is_valid(array))
    source = array.type
    if kind is PropertyType.TIME:
        return times.read(array)
    if kind is PropertyType.STRING:
        if pa.types.is_string(source):
            return Converted(array, np.zeros(n, dtype=bool))
        if pa.types.is_integer(source):
            return Converted(array.cast(pa.string()), np.zeros(n, dtype=bool))
        return _none(n, pa.string(), valid)
    if kind is PropertyType.NUMBER:
        return _number(array, valid)
    return _boolean(array, valid)


def _number(array: pa.Array, valid: np.ndarray) -> Converted:
    n = len(array)
    source = array.type
    if pa.types.is_integer(source) or pa.types.is_floating(source):
        numbers = array.cast(pa.float64(), safe=False)
    elif pa.types.is_string(source):
        numeric = pc.match_substring_regex(array, NUMBER_TEXT.pattern)
        numbers = pc.if_else(numeric, array, None).cast(pa.float64())
    else:
        return _none(n, pa.float64(), valid)
    finite = mask(pc.is_finite(numbers))
    return Converted(pc.if_else(pa.array(finite), numbers, None), valid & ~finite)


def _boolean(array: pa.Array, valid: np.ndarray) -> Converted:
    n = len(array)
    source = array.type
    if pa.types.is_boolean(source):
        return Converted(array, np.zeros(n, dtype=bool))
    if pa.types.is_integer(source):
        ok = pc.is_in(array, value_set=pa.array([0, 1], source))
        return Converted(pc.if_else(ok, pc.not_equal(array, 0), None), valid & ~mask(ok))
    if pa.types.is_string(source):
        lower = pc.utf8_lower(array)
        ok = pc.is_in(lower, value_set=pa.array(["true", "false"]))
        return Converted(pc.if_else(ok, pc.equal(lower, "true"), None), valid & ~mask(ok))
    return _none(n, pa.bool_(), valid)


def untyped(array: pa.Array) -> Converted:
    """A property without a typed column, as a JSON scalar: text (at most 8192 characters), a whole or finite
    number, true/false; timestamps and dates as ISO 8601 text. Anything nested is left to the row rules."""
    array = plain_array(array)
    n = len(array)
    source = array.type
    valid = mask(pc.is_valid(array))
    none = np.zeros(n, dtype=bool)
    if pa.types.is_string(source):
        return Converted(array, mask(pc.greater(pc.utf8_length(array), MAX_STRING_LEN)))
    if pa.types.is_boolean(source):
        return Converted(array, none)
    if pa.types.is_integer(source):
        return Converted(array.cast(pa.int64()) if not pa.types.is_uint64(source) else array, none)
    if pa.types.is_floating(source):
        numbers = array.cast(pa.float64())
        return Converted(numbers, valid & ~mask(pc.is_finite(numbers)))
    if pa.types.is_date(source):
        return Converted(array.cast(pa.date32()).cast(pa.string()), none)
    if pa.types.is_timestamp(source):
        return Converted(_iso_text(array), none)
    return _none(n, pa.string(), valid)


def _iso_text(array: pa.Array) -> pa.Array:
    """Timestamps as Python's `isoformat()` writes them (UTC with +00:00 when the column has a time zone)."""
    aware = array.type.tz is not None
    micro = array.cast(pa.timestamp("us", tz="UTC" if aware else None), safe=False)
    text = pc.replace_substring_regex(pc.strftime(micro, "%Y-%m-%dT%H:%M:%S"), r"\.000000$", "")
    return pc.binary_join_element_wise(text, "+00:00", "") if aware else text
