"""A chunk of event rows as the store's columns: converted column by column, with the rows the screens leave to
the API rules marked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from edupulse.importer import columns as col
from edupulse.importer.mapping import Layout
from edupulse.ingest.records import ValidationContext
from edupulse.store.schema import PropertyType

DEFAULT_ID_TYPE = "anonymous_id"
_JSON_UNSAFE = r'["\\\x00-\x1f\x7f]'  # text needing escapes in JSON (and DEL, to be safe)


@dataclass
class EventColumns:
    """A chunk's event columns, converted, and which rows the screens leave to the row rules."""

    n: int
    event: pa.Array
    distinct_id: col.Converted
    id_type: pa.Array | None  # None: one type for every row
    time: pa.Array
    typed: dict[str, pa.Array] = field(default_factory=dict)
    untyped: dict[str, pa.Array] = field(default_factory=dict)
    groups: dict[int, pa.Array] = field(default_factory=dict)
    suspect: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def flag(self, rows: np.ndarray) -> None:
        self.suspect |= rows


class EventColumnReader:
    """Converts the columns of one chunk; knows the project's typed properties, group slots and time zone."""

    def __init__(
        self, ctx: ValidationContext, typed: dict[str, PropertyType], slots: dict[str, int], times: col.TimeReader,
        id_type_error: Callable[[str], object], property_name_check: Callable[[str], None],
    ) -> None:
        self.ctx = ctx
        self.typed = typed
        self.slots = slots
        self.times = times
        self.id_type_error = id_type_error
        self.property_name_check = property_name_check

    def read(self, table: pa.Table, layout: Layout) -> EventColumns:
        n = table.num_rows
        names = set(table.column_names)

        def column(source: str | None) -> pa.Array:
            return table.column(source) if source in names else pa.nulls(n, pa.string())

        suspect = np.zeros(n, dtype=bool)
        if "event" in layout.constants:
            event = pa.repeat(pa.scalar(layout.constants["event"], pa.string()), n)
        else:
            converted = col.event_names(column(layout.fields.get("event")))
            event, suspect = converted.values, suspect | converted.suspect
        distinct = col.identifiers(column(layout.fields.get("distinct_id")))
        time = self.times.read(column(layout.fields.get("time")))
        cols = EventColumns(n=n, event=event, distinct_id=distinct, id_type=None, time=time.values,
                            suspect=suspect | distinct.suspect | time.suspect)
        cols.flag(col.mask(pc.is_null(distinct.values), null_is=True) | self._out_of_range(time.values))
        if "distinct_id_type" in layout.fields:
            cols.id_type = self._id_types(column(layout.fields["distinct_id_type"]), layout, cols)
        self._properties(table, layout, cols)
        self._groups(table, layout, cols, column)
        for source in layout.identities.values():
            if source in names:  # links between identities are made by the row rules
                cols.flag(col.mask(pc.is_valid(table.column(source))))
        return cols

    def _id_types(self, array: pa.Array, layout: Layout, cols: EventColumns) -> pa.Array | None:
        array = col.plain_array(array)
        if not pa.types.is_string(array.type):
            cols.flag(col.mask(pc.is_valid(array)))
            return None
        bad = [v for v in pc.unique(array).to_pylist() if v is not None and self.id_type_error(v)]
        if bad:
            cols.flag(col.mask(pc.is_in(array, value_set=pa.array(bad, pa.string()))))
        return array.fill_null(layout.constants.get("distinct_id_type", DEFAULT_ID_TYPE))

    def _out_of_range(self, times: pa.Array) -> np.ndarray:
        micros = times.cast(pa.int64())
        late = pc.greater(micros, self.ctx.now_us + self.ctx.max_future_us)
        early = pc.less(micros, self.ctx.now_us - self.ctx.max_past_us)
        return col.mask(pc.or_(late, early))

    def _groups(self, table: pa.Table, layout: Layout, cols: EventColumns, column: Callable[[str], pa.Array]) -> None:
        for group_type, source in layout.groups.items():
            keys = col.identifiers(column(source))
            cols.groups[self.slots[group_type]] = keys.values
            cols.flag(keys.suspect)
        for target, value in layout.constants.items():
            if target.startswith("groups."):
                slot = self.slots[target[len("groups."):]]
                cols.groups[slot] = pa.repeat(pa.scalar(value, pa.string()), cols.n)

    def _properties(self, table: pa.Table, layout: Layout, cols: EventColumns) -> None:
        n = table.num_rows
        sources = {name: table.column(source) for name, source in layout.properties.items()
                   if source in table.column_names}
        json_source = layout.fields.get("properties")
        if json_source is not None and json_source in table.column_names:
            self._json_column(col.plain_array(table.column(json_source)), sources, cols)
        for target, value in layout.constants.items():
            if target.startswith("properties."):
                sources[target[len("properties."):]] = pa.repeat(pa.scalar(value, pa.string()), n)
        for name, array in sources.items():
            kind = self.typed.get(name)
            converted = col.typed(array, kind, self.times) if kind is not None else col.untyped(array)
            if converted.values.null_count < n:
                (cols.typed if kind is not None else cols.untyped)[name] = converted.values
            cols.flag(converted.suspect)

    def _json_column(self, array: pa.Array, sources: dict[str, pa.Array], cols: EventColumns) -> None:
        """A struct column's fields are property columns; JSON text is left to the row rules."""
        if not pa.types.is_struct(array.type):
            cols.flag(col.mask(pc.is_valid(array)))
            return
        for i in range(array.type.num_fields):
            name = array.type.field(i).name
            values = pc.struct_field(array, [i])
            if name in sources:  # a column and a key of the same name: the row rules let the column win
                cols.flag(col.mask(pc.is_valid(values)))
                continue
            self.property_name_check(name)
            sources[name] = values


def json_objects(untyped: dict[str, pa.Array], con: duckdb.DuckDBPyConnection) -> pa.Array:
    """The properties without a typed column as one JSON object per row, absent values left out."""
    keys = [orjson.dumps(name).decode() + ":" for name in untyped]
    if len(untyped) == 1:
        return _json_fragments(next(iter(untyped.values())), "{" + keys[0], "}", con)
    fragments = [_json_fragments(values, key, "", con) for key, values in zip(keys, untyped.values(), strict=True)]
    joined = pc.binary_join_element_wise(*fragments, ",", null_handling="skip")
    wrapped = pc.binary_join_element_wise("{", joined, "}", "")
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), wrapped)


def _json_fragments(values: pa.Array, prefix: str, suffix: str, con: duckdb.DuckDBPyConnection) -> pa.Array:
    """prefix + the JSON of each value + suffix (null where the value is); built once per distinct value when
    values repeat, which properties mostly do."""
    encoded = pc.dictionary_encode(values)
    if len(encoded.dictionary) * 2 < len(values):
        return _json_text(encoded.dictionary, prefix, suffix, con).take(encoded.indices)
    return _json_text(values, prefix, suffix, con)


def _json_text(values: pa.Array, prefix: str, suffix: str, con: duckdb.DuckDBPyConnection) -> pa.Array:
    kind = values.type
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind):
        text = values.cast(pa.string())
    elif pa.types.is_string(kind) and not pc.any(pc.match_substring_regex(values, _JSON_UNSAFE)).as_py():
        text = pc.binary_join_element_wise('"', values, '"', "")
    else:
        cur = con.cursor()  # DuckDB writes JSON numbers and escapes text
        try:
            cur.register("json_values", pa.table({"v": values}))
            text = cur.sql("SELECT to_json(v)::VARCHAR AS v FROM json_values").to_arrow_table().column(0)
        finally:
            cur.close()
        text = text.combine_chunks()
    return pc.binary_join_element_wise(prefix, text, suffix, "")
