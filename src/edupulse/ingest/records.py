"""Validation of native ingestion records into normalized internal records.

A normalized record is a plain dict (kept small because it is written to the log and read back):

    {"type": ..., "time": <microseconds since epoch, UTC>, "ids": [[id_type, value], ...],
     "insert_id": str | None, "event": str, "properties": {...}, "groups": {type: key},
     "entity_type": str, "entity_key": str}

`ids[0]` is the record's primary identity (its distinct_id). Only the keys a type needs are present.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from edupulse.store.schema import PropertyType

TRACK = "track"
PROFILE_OPS = (
    "profile_set",
    "profile_set_once",
    "profile_increment",
    "profile_append",
    "profile_unset",
    "profile_delete",
)
LINK_TYPES = ("identify", "alias")
ENTITY_TYPES = ("group_set", "item_set")
RECORD_TYPES = (TRACK, *PROFILE_OPS, *LINK_TYPES, *ENTITY_TYPES)

BUILTIN_ID_TYPES = (
    "anonymous_id",
    "device_id",
    "login_id",
    "mobile",
    "wechat_unionid",
    "wechat_openid",
    "crm_lead_id",
    "email",
)
UNIQUE_ID_TYPES = frozenset({"login_id"})
_ID_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_NAME_BAD = re.compile(r"[\x00-\x1f\x7f]")
MAX_ID_LEN = 255
MAX_NAME_LEN = 100
MAX_PROP_NAME_LEN = 255
MAX_STRING_LEN = 8192
MAX_VALUE_DEPTH = 64  # levels of arrays and objects in one property value (docs/ingestion.md)
_STRING = PropertyType.STRING
_NUMBER = PropertyType.NUMBER


class RecordError(ValueError):
    """Why one record was refused: `field` names where, `reason` says what to change."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ValidationContext:
    """What validation needs to know about the project and the clock."""

    now_us: int
    timezone: ZoneInfo
    typed_properties: Mapping[str, PropertyType]
    group_types: frozenset[str] | None = None  # None: any group type name is acceptable
    max_future_us: int = 24 * 3600 * 1_000_000
    max_past_us: int = 3650 * 2 * 86400 * 1_000_000


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_micros(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def parse_time(value: Any, field: str, tz: dt.tzinfo) -> int:
    """ISO 8601 text (naive = project time zone) or a number of milliseconds since the epoch."""
    if isinstance(value, bool):
        raise RecordError(field, "must be an ISO 8601 time or milliseconds since 1970-01-01, not true/false")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise RecordError(field, "must be a finite number of milliseconds")
        return int(value * 1000)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise RecordError(
                field, f"{value[:40]!r} is not a time; use ISO 8601 such as 2026-09-01T08:30:00+08:00"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return to_micros(parsed)
    raise RecordError(field, f"must be an ISO 8601 string or a number, got {type(value).__name__}")


def _identifier(value: Any, field: str) -> str:
    if isinstance(value, bool) or value is None:
        raise RecordError(field, "is required and must be a non-empty string")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise RecordError(field, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise RecordError(field, "must not be empty")
    if len(value) > MAX_ID_LEN:
        raise RecordError(field, f"is {len(value)} characters long; at most {MAX_ID_LEN} are allowed")
    return value


def _id_type(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _ID_TYPE.match(value):
        raise RecordError(field, f"{value!r} is not an identity type; use lower-case letters, digits and _")
    return value


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordError(field, "is required and must be a non-empty string")
    if len(value) > MAX_NAME_LEN:
        raise RecordError(field, f"is {len(value)} characters long; at most {MAX_NAME_LEN} are allowed")
    if _NAME_BAD.search(value):
        raise RecordError(field, "must not contain control characters")
    return value


def _coerce(name: str, value: Any, kind: PropertyType, tz: ZoneInfo) -> Any:
    field = f"properties.{name}"
    if value is None:
        return None
    if kind is PropertyType.STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise RecordError(field, f"must be a string, got {type(value).__name__}")
    if kind is PropertyType.NUMBER:
        if isinstance(value, bool):
            raise RecordError(field, "must be a number, got true/false")
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise RecordError(field, "must be a finite number")
            return value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise RecordError(field, f"must be a number, got {value[:40]!r}") from None
            if math.isfinite(number):
                return number
        raise RecordError(field, f"must be a number, got {type(value).__name__}")
    if kind is PropertyType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise RecordError(field, f"must be true or false, got {value!r:.40}")
    return parse_time(value, field, tz)


def _properties(raw: Any, ctx: ValidationContext, field: str = "properties") -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RecordError(field, f"must be an object, got {type(raw).__name__}")
    out: dict[str, Any] = {}
    typed = ctx.typed_properties
    # The hot path of ingestion: plain type checks first, the general rules only when they fail.
    for key, value in raw.items():
        if key.__class__ is not str or not key or len(key) > MAX_PROP_NAME_LEN or (
            not key.isprintable() and _NAME_BAD.search(key)
        ):
            raise RecordError(
                f"{field}.{str(key)[:40]}", "property names must be 1-255 characters without control characters"
            )
        kind = typed.get(key)
        cls = value.__class__
        if kind is None:
            if cls is str:
                if len(value) > MAX_STRING_LEN:
                    raise RecordError(f"{field}.{key}", f"text is {len(value)} characters; at most {MAX_STRING_LEN}")
            elif cls is float and not math.isfinite(value):
                raise RecordError(f"{field}.{key}", "must be a finite number")
            elif (cls is dict or cls is list) and nested_too_deep(value, MAX_VALUE_DEPTH):
                raise RecordError(f"{field}.{key}", f"nests arrays and objects more than {MAX_VALUE_DEPTH} "
                                                    "levels deep")
            out[key] = value
        elif (kind is _STRING and cls is str) or (
            kind is _NUMBER and (cls is int or (cls is float and math.isfinite(value)))
        ):
            out[key] = value
        else:
            out[key] = _coerce(key, value, kind, ctx.timezone)
    return out


def nested_too_deep(value: Any, limit: int) -> bool:
    """Whether `value` nests arrays and objects more than `limit` levels (a flat list or object is 1)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if item.__class__ is dict else item:
            if child.__class__ is dict or child.__class__ is list:
                stack.append((child, depth + 1))
    return False


def _time(record: dict[str, Any], ctx: ValidationContext) -> int:
    raw = record.get("time")
    if raw is None:
        return ctx.now_us
    us = parse_time(raw, "time", ctx.timezone)
    if us > ctx.now_us + ctx.max_future_us:
        raise RecordError(
            "time",
            f"{raw!r} is in the future (more than {ctx.max_future_us // 3_600_000_000} h ahead of the server clock)",
        )
    if us < ctx.now_us - ctx.max_past_us:
        raise RecordError(
            "time", f"{raw!r} is too far in the past (more than {ctx.max_past_us // 86_400_000_000} days)"
        )
    return us


def _identities(record: dict[str, Any], primary_type: str) -> list[list[str]]:
    ids = [[primary_type, _identifier(record.get("distinct_id"), "distinct_id")]]
    extra = record.get("identities")
    if extra is not None:
        if not isinstance(extra, dict):
            raise RecordError(
                "identities", 'must be an object of identity type to value, e.g. {"mobile": "13800000000"}'
            )
        for id_type, value in extra.items():
            pair = [_id_type(id_type, f"identities.{id_type}"), _identifier(value, f"identities.{id_type}")]
            if pair not in ids:
                ids.append(pair)
    return ids


def _primary_type(record: dict[str, Any], default: str) -> str:
    if "distinct_id_type" in record:
        return _id_type(record["distinct_id_type"], "distinct_id_type")
    if record.get("is_login_id") is True:
        return "login_id"
    return default


def _insert_id(record: dict[str, Any]) -> str | None:
    field = "event_id" if record.get("event_id") is not None else "$insert_id"
    raw = record.get(field)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise RecordError(field, "must be a string")
    raw = str(raw)
    if not raw or len(raw) > 128:
        raise RecordError(field, "must be 1 to 128 characters")
    return raw


def normalize(record: Any, ctx: ValidationContext) -> dict[str, Any]:
    """Validate one native record; return its normalized form or raise RecordError."""
    if not isinstance(record, dict):
        raise RecordError("record", f"must be an object, got {type(record).__name__}")
    kind = record.get("type")
    if kind not in RECORD_TYPES:
        raise RecordError("type", f"{kind!r} is not a record type; use one of {', '.join(RECORD_TYPES)}")
    out: dict[str, Any] = {"type": kind, "time": _time(record, ctx), "insert_id": _insert_id(record)}
    if kind == TRACK:
        out["event"] = _name(record.get("event"), "event")
        out["ids"] = _identities(record, _primary_type(record, "anonymous_id"))
        out["properties"] = _properties(record.get("properties"), ctx)
        groups = record.get("groups")
        if groups is not None:
            out["groups"] = _groups(groups, ctx)
    elif kind in PROFILE_OPS:
        out["ids"] = _identities(record, _primary_type(record, "anonymous_id"))
        out["properties"] = _profile_properties(kind, record.get("properties"), ctx)
    elif kind in LINK_TYPES:
        out["ids"] = _link_ids(kind, record)
    else:
        out["entity_type"] = _id_type(
            record.get("group_type" if kind == "group_set" else "item_type"),
            "group_type" if kind == "group_set" else "item_type",
        )
        out["entity_key"] = _identifier(
            record.get("group_key" if kind == "group_set" else "item_id"),
            "group_key" if kind == "group_set" else "item_id",
        )
        out["properties"] = _properties(record.get("properties"), ctx)
    return out


def _groups(raw: Any, ctx: ValidationContext) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise RecordError("groups", 'must be an object of group type to key, e.g. {"school": "s-12"}')
    out = {}
    for group_type, key in raw.items():
        _id_type(group_type, f"groups.{group_type}")
        if ctx.group_types is not None and group_type not in ctx.group_types:
            raise RecordError(f"groups.{group_type}", "is not a group type of this project")
        out[group_type] = _identifier(key, f"groups.{group_type}")
    return out


def _profile_properties(kind: str, raw: Any, ctx: ValidationContext) -> dict[str, Any]:
    if kind == "profile_delete":
        return {}
    if kind == "profile_unset":
        if isinstance(raw, list):
            for index, name in enumerate(raw):
                if not isinstance(name, str):
                    raise RecordError(f"properties[{index}]", f"must be a property name, got {type(name).__name__}")
            raw = dict.fromkeys(raw, True)
        props = _properties(raw, ValidationContext(ctx.now_us, ctx.timezone, {}))
        return dict.fromkeys(props, True)
    props = _properties(raw, ctx)
    if kind == "profile_increment":
        for name, value in props.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RecordError(f"properties.{name}", "profile_increment needs numbers")
    if kind == "profile_append":
        for name, value in props.items():
            if isinstance(value, list):
                continue
            if isinstance(value, dict):
                raise RecordError(f"properties.{name}", "profile_append takes a value or a list of values")
            props[name] = [value]
    return props


def _link_ids(kind: str, record: dict[str, Any]) -> list[list[str]]:
    primary = _primary_type(record, "login_id" if kind == "identify" else "anonymous_id")
    ids = _identities(record, primary)
    other_field = "anonymous_id" if kind == "identify" else "alias"
    other = record.get(other_field)
    if other is not None:
        other_type = (
            "anonymous_id" if kind == "identify" else _id_type(record.get("alias_type", "anonymous_id"), "alias_type")
        )
        pair = [other_type, _identifier(other, other_field)]
        if pair not in ids:
            ids.append(pair)
    if len(ids) < 2:
        raise RecordError(other_field, f"{kind} links identities: give {other_field} or identities")
    return ids
