"""The API's validation rules, asked through `ingest.records.normalize` (never restated here).

The column-wise import screens rows quickly and conservatively; whatever the screens are not sure of is
decided here, by normalizing the record the row would be as an API record. Single values (an event name,
an identity type, a property name) are checked the same way, inside a minimal record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from edupulse.conf import IngestSettings
from edupulse.ingest.records import RecordError, ValidationContext, normalize, to_micros
from edupulse.store.schema import PropertyType

PROFILE_OPS = ("set", "set_once", "increment", "append", "unset")
_PROBE_ID = "probe"


def validation_context(
    timezone: str, typed: dict[str, PropertyType], settings: IngestSettings, now: dt.datetime | None = None
) -> ValidationContext:
    """The context the API would validate with, for this project, now."""
    now = now or dt.datetime.now(dt.UTC)
    return ValidationContext(
        now_us=to_micros(now),
        timezone=ZoneInfo(timezone),
        typed_properties=typed,
        max_future_us=settings.max_future_seconds * 1_000_000,
        max_past_us=settings.max_past_days * 86_400_000_000,
    )


def check(record: dict[str, Any], ctx: ValidationContext) -> dict[str, Any]:
    """Normalize one record as the API would; raises RecordError."""
    return normalize(record, ctx)


def refusal(record: dict[str, Any], ctx: ValidationContext) -> RecordError | None:
    try:
        normalize(record, ctx)
    except RecordError as exc:
        return exc
    return None


def event_name_error(name: Any, ctx: ValidationContext) -> RecordError | None:
    return refusal({"type": "track", "event": name, "distinct_id": _PROBE_ID}, ctx)


def id_type_error(id_type: Any, ctx: ValidationContext) -> RecordError | None:
    return refusal({"type": "track", "event": "e", "distinct_id": _PROBE_ID, "distinct_id_type": id_type}, ctx)


def property_name_error(name: str, ctx: ValidationContext) -> RecordError | None:
    return refusal({"type": "track", "event": "e", "distinct_id": _PROBE_ID, "properties": {name: None}}, ctx)


def group_key_error(group_type: str, key: Any, ctx: ValidationContext) -> RecordError | None:
    return refusal({"type": "track", "event": "e", "distinct_id": _PROBE_ID, "groups": {group_type: key}}, ctx)


def identifier_error(value: Any, ctx: ValidationContext, id_type: str = "anonymous_id") -> RecordError | None:
    return refusal({"type": "track", "event": "e", "distinct_id": value, "distinct_id_type": id_type}, ctx)


def identities_record(pairs: list[tuple[str, Any]], time: Any) -> dict[str, Any]:
    """The API record that links these identities (an `identify`); one identity links nothing, so it is
    checked as the distinct_id of a profile record and only recorded."""
    (first_type, first), rest = pairs[0], pairs[1:]
    if not rest:
        return {"type": "profile_set", "distinct_id": first, "distinct_id_type": first_type, "time": time,
                "properties": {}}
    return {"type": "identify", "distinct_id": first, "distinct_id_type": first_type, "time": time,
            "identities": dict(rest)}
