"""Rows of a file as API records: plain JSON values, CSV text read as numbers where a number is needed.

Used for every profiles, identities and spend row, and for the event rows the column-wise path leaves to
the API rules. The conversions here are the reference the column-wise path must agree with.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

import orjson

from edupulse.importer.mapping import Layout
from edupulse.importer.rules import PROFILE_OPS
from edupulse.ingest.records import RecordError
from edupulse.store.schema import PropertyType

MILLIS_TEXT = re.compile(r"^-?\d{1,16}(\.\d+)?$")
NUMBER_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
RECORD_TEXT_LIMIT = 65536


class ValueProblem(ValueError):
    """A value that has no JSON form (binary data, a duration)."""


def plain(value: Any) -> Any:
    """A value read by pyarrow as the JSON value an API client would have sent."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo is not None else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        raise ValueProblem("is binary data; store text or numbers")
    raise ValueProblem(f"has a {type(value).__name__} value, which has no JSON form; store text or numbers")


def number_from_text(value: Any) -> Any:
    """CSV text that is a number, as the number; anything else unchanged."""
    if isinstance(value, str) and NUMBER_TEXT.match(value.strip()):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return float(text)
    return value


def time_from_text(value: Any) -> Any:
    """CSV text of digits is milliseconds since 1970-01-01 (the API's number form of a time)."""
    if isinstance(value, str) and MILLIS_TEXT.match(value.strip()):
        return number_from_text(value)
    return value


def record_text(row: dict[str, Any]) -> str:
    """The row as JSON for the quarantine."""
    text = orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return text[:RECORD_TEXT_LIMIT]


class RowReader:
    """Turns one row (source column -> value) into the API record it stands for."""

    def __init__(self, layout: Layout, text_only: bool, typed: dict[str, PropertyType]) -> None:
        self.layout = layout
        self.text_only = text_only
        self.typed = typed

    def _get(self, row: dict[str, Any], target: str) -> Any:
        source = self.layout.fields.get(target)
        if source is not None:
            return self._plain(row.get(source), target)
        return self.layout.constants.get(target)

    def _plain(self, value: Any, field: str) -> Any:
        try:
            return plain(value)
        except ValueProblem as exc:
            raise RecordError(field, str(exc)) from None

    def _time(self, value: Any) -> Any:
        return time_from_text(value) if self.text_only else value

    def properties(self, row: dict[str, Any], numbers: bool = False) -> dict[str, Any]:
        props: dict[str, Any] = {}
        source = self.layout.fields.get("properties")
        if source is not None and row.get(source) is not None:
            raw = row[source]
            if isinstance(raw, str):
                try:
                    raw = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise RecordError("properties", f"is not valid JSON ({exc.msg})") from None
            raw = self._plain(raw, "properties")
            if not isinstance(raw, dict):
                raise RecordError("properties", f"must be a JSON object, got {type(raw).__name__}")
            props.update({k: v for k, v in raw.items() if v is not None})
        for name, constant in self.layout.constants.items():
            if name.startswith("properties."):
                props[name[len("properties."):]] = constant
        for name, column in self.layout.properties.items():
            value = row.get(column)
            if value is None:
                continue
            value = self._plain(value, f"properties.{name}")
            if self.text_only:
                if numbers:
                    value = number_from_text(value)
                elif self.typed.get(name) is PropertyType.TIME:
                    value = time_from_text(value)
            props[name] = value
        return props

    def _named(self, row: dict[str, Any], table: dict[str, str], prefix: str) -> dict[str, Any]:
        out = {name[len(prefix):]: value for name, value in self.layout.constants.items() if name.startswith(prefix)}
        for name, column in table.items():
            value = row.get(column)
            if value is not None:
                out[name] = self._plain(value, f"{prefix}{name}")
        return out

    def _person(self, record: dict[str, Any], row: dict[str, Any]) -> None:
        record["distinct_id"] = self._get(row, "distinct_id")
        id_type = self._get(row, "distinct_id_type")
        if id_type is not None:
            record["distinct_id_type"] = id_type
        identities = self._named(row, self.layout.identities, "identities.")
        if identities:
            record["identities"] = identities

    def event(self, row: dict[str, Any], insert_id: str | None) -> dict[str, Any]:
        record: dict[str, Any] = {"type": "track", "event": self._get(row, "event")}
        self._person(record, row)
        time = self._time(self._get(row, "time"))
        if time is None:
            raise RecordError("time", "is empty; every imported event needs the time it happened")
        record["time"] = time
        if insert_id is not None:
            record["event_id"] = insert_id
        record["properties"] = self.properties(row)
        groups = self._named(row, self.layout.groups, "groups.")
        if groups:
            record["groups"] = groups
        return record

    def profile(self, row: dict[str, Any], insert_id: str | None) -> dict[str, Any]:
        op = self._get(row, "op")
        op = "set" if op is None else str(op).strip().lower()
        if op not in PROFILE_OPS:
            raise RecordError("op", f"{op!r} is not a profile operation; use one of {', '.join(PROFILE_OPS)}")
        record: dict[str, Any] = {"type": f"profile_{op}"}
        self._person(record, row)
        time = self._time(self._get(row, "time"))
        if time is not None:
            record["time"] = time
        if insert_id is not None:
            record["event_id"] = insert_id
        props = self.properties(row, numbers=op == "increment")
        record["properties"] = sorted(props) if op == "unset" else props
        return record

    def identities(self, row: dict[str, Any]) -> list[tuple[str, Any]]:
        pairs = []
        for id_type, column in self.layout.identities.items():
            value = self._plain(row.get(column), f"identities.{id_type}")
            if value is not None and value != "":
                pairs.append((id_type, value))
        return pairs
