"""Sensors Analytics wire format: what the official Sensors SDKs post to `/sa` and `/sa.gif`.

A request carries `data` (one record, or a JSON array) or `data_list` (a JSON array) as a form field or a
query parameter, base64-encoded UTF-8 JSON, gzip-compressed first when `gzip=1` (the server SDKs), plain
base64 from the web SDK (which may fall back to plain JSON). Each Sensors record becomes one native record:

    track              -> track
    track_signup       -> track "$SignUp" linking login_id distinct_id and anonymous_id original_id
    track_id_bind      -> track "$BindID" linking every identity in `identities` (ID-Mapping 3.0)
    track_id_unbind    -> track "$UnbindID" of that identity (links are never undone; see docs/identity.md)
    profile_*          -> profile_* (same names)
    item_set           -> item_set
    item_delete        -> item_set with {"$deleted": true}
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from edupulse.ingest import jsontext
from edupulse.ingest.compat import Translation, object_or_empty, stable_id, text_id, with_standard_names
from edupulse.ingest.records import PROFILE_OPS, RecordError
from edupulse.ingest.validate import BodyError

SOURCE = "sensors"
EVENT_TYPES = ("track", "track_signup", "track_id_bind", "track_id_unbind")
ITEM_TYPES = ("item_set", "item_delete")
SENSORS_TYPES = (*EVENT_TYPES, *PROFILE_OPS, *ITEM_TYPES)
# ID-Mapping 3.0 identity keys (without "$identity_") that have a native identity type of another name.
IDENTITY_TYPES = {
    "login_id": "login_id",
    "cookie_id": "anonymous_id",
    "anonymous_id": "anonymous_id",
    "distinct_id": "anonymous_id",
    "mobile": "mobile",
    "email": "email",
    "android_id": "device_id",
    "android_uuid": "device_id",
    "android_oaid": "device_id",
    "oaid": "device_id",
    "idfa": "device_id",
    "idfv": "device_id",
    "ios_uuid": "device_id",
    "mp_openid": "wechat_openid",
    "mp_id": "wechat_openid",
    "mp_unionid": "wechat_unionid",
}
STANDARD_NAMES = (("$url", "url"), ("$referrer", "referrer"), ("$utm_source", "utm_source"),
                  ("$utm_medium", "utm_medium"), ("$utm_campaign", "utm_campaign"),
                  ("$utm_content", "utm_content"), ("$utm_term", "utm_term"))
# Flags of the protocol, not properties of the event.
_PROTOCOL_PROPERTIES = ("$is_login_id", "$project", "$token")
_CUSTOM_KEY = re.compile(r"[^a-z0-9_]")


def decode_field(value: str, gzipped: bool, name: str, limit: int) -> tuple[Any, int]:
    """The JSON in one `data` / `data_list` field value, and its size in bytes."""
    text = value.strip()
    if not gzipped and text[:1] in ("{", "["):
        raw = text.encode()  # the web SDK sends plain JSON when the browser cannot base64-encode
    else:
        padded = text.replace("-", "+").replace("_", "/").replace(" ", "+")
        try:
            raw = base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise BodyError(400, f"{name} is not base64 (nor plain JSON)") from None
        if gzipped or raw[:2] == b"\x1f\x8b":
            try:
                inflater = zlib.decompressobj(wbits=31)
                raw = inflater.decompress(raw, limit + 1)
            except zlib.error as exc:
                raise BodyError(400, f"{name} is not gzip after base64 decoding ({exc}); gzip=1 says it is") from None
            if len(raw) > limit:
                raise BodyError(413, f"{name} is over {limit} bytes once decompressed: send smaller batches")
    try:
        return jsontext.loads(raw), len(raw)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"{name} does not decode to JSON: {exc.msg} at position {exc.pos}") from None


def parse_form(fields: Mapping[str, str], limit: int, max_records: int) -> tuple[str, list[Any], int]:
    """The sent records of a request's fields (query parameters and form fields together), the name to
    use for them in errors ("data_list" or "data") and their decoded size in bytes."""
    gzipped = fields.get("gzip", "0").strip() == "1"
    if fields.get("data_list"):
        name = "data_list"
    elif fields.get("data"):
        name = "data"
    else:
        raise BodyError(400, "send the records in a form field or query parameter named data or data_list")
    decoded, size = decode_field(fields[name], gzipped, name, limit)
    records = decoded if isinstance(decoded, list) else [decoded]
    if len(records) > max_records:
        raise BodyError(413, f"{name} has {len(records)} records; at most {max_records} per request")
    return name, records, size


def identity_type(key: Any) -> str:
    """The native identity type of an ID-Mapping 3.0 key such as "$identity_mobile" or "student_no"."""
    if not isinstance(key, str) or not key:
        raise RecordError("identities", f"{key!r} is not an identity key")
    bare = key.removeprefix("$identity_")
    mapped = IDENTITY_TYPES.get(bare)
    if mapped is not None:
        return mapped
    if bare.startswith("$"):
        raise RecordError(f"identities.{key}", "is a reserved key this server does not know")
    return _CUSTOM_KEY.sub("_", bare.lower())


def _identities(record: dict[str, Any], props: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """(primary type, primary value, more identities) of a Sensors record."""
    raw = object_or_empty(record.get("identities"), "identities")
    extra: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for key, value in raw.items():
        pairs.append((identity_type(key), text_id(value, f"identities.{key}")))
    distinct = record.get("distinct_id")
    is_login = props.get("$is_login_id") is True or (
        record.get("login_id") is not None and record.get("login_id") == distinct
    )
    if distinct is not None:
        distinct = text_id(distinct, "distinct_id")
        spelled = {f"{key}+{value}" for key, value in raw.items()}
        if not any(value == distinct for _, value in pairs) and distinct not in spelled:
            pairs.insert(0, ("login_id" if is_login else "anonymous_id", distinct))
    anonymous = record.get("anonymous_id")
    if anonymous is not None and anonymous != distinct:
        pairs.append(("anonymous_id", text_id(anonymous, "anonymous_id")))
    if not pairs:
        raise RecordError("distinct_id", "is required (or identities)")
    pairs.sort(key=lambda pair: pair[0] != "login_id")  # the login identity decides whom the record is for
    primary_type, primary = pairs[0]
    for id_type, value in pairs[1:]:
        # a native record carries one value per identity type: a second value of a type is left out
        if id_type != primary_type:
            extra.setdefault(id_type, value)
    return primary_type, primary, extra


def _person(record: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    distinct = record.get("distinct_id")
    if distinct.__class__ is str and distinct and record.get("identities") is None and record.get(
            "anonymous_id") in (None, distinct):  # the common case of the server SDKs: one ID
        is_login = props.get("$is_login_id") is True or record.get("login_id") == distinct
        return {"distinct_id": distinct, "distinct_id_type": "login_id" if is_login else "anonymous_id"}
    primary_type, primary, extra = _identities(record, props)
    out: dict[str, Any] = {"distinct_id": primary, "distinct_id_type": primary_type}
    if extra:
        out["identities"] = extra
    return out


def translate(record: Any, project_names: frozenset[str], token: str | None) -> Iterator[dict[str, Any]]:
    """The native record of one Sensors record; RecordError when it cannot be one."""
    if not isinstance(record, dict):
        raise RecordError("record", f"must be a JSON object, got {type(record).__name__}")
    kind = record.get("type")
    if kind not in SENSORS_TYPES:
        raise RecordError("type", f"{kind!r} is not a Sensors record type; use one of {', '.join(SENSORS_TYPES)}")
    project = record.get("project")
    if project is not None and project not in project_names:
        raise RecordError("project", f"{project!r} is not the project of this write key")
    if record.get("token") is not None and token is not None and record["token"] != token:
        raise RecordError("token", "differs from the write key of the request")
    props = dict(object_or_empty(record.get("properties"), "properties"))
    time = record.get("time")
    common: dict[str, Any] = {} if time is None else {"time": time}
    if kind in ITEM_TYPES:
        if kind == "item_delete":
            props = {"$deleted": True}
        yield {"type": "item_set", "item_type": record.get("item_type"), "item_id": record.get("item_id"),
               "properties": props, **common}
        return
    person = _person(record, props)
    for name in _PROTOCOL_PROPERTIES:
        props.pop(name, None)
    if kind in PROFILE_OPS:
        yield {"type": kind, **person, "properties": props, **common}
        return
    event = record.get("event")
    if kind == "track_signup":
        event = event or "$SignUp"
        original = text_id(record.get("original_id"), "original_id")
        person = {"distinct_id": person["distinct_id"], "distinct_id_type": "login_id",
                  "identities": {**person.get("identities", {}), "anonymous_id": original}}
        if original == person["distinct_id"]:
            raise RecordError("original_id", "is the same as distinct_id: track_signup links two different IDs")
    elif kind == "track_id_bind":
        event = event or "$BindID"
    elif kind == "track_id_unbind":
        event = event or "$UnbindID"
        props["$unbind"] = f"{person['distinct_id_type']}:{person['distinct_id']}"
    out = {"type": "track", "event": event, **person, "properties": with_standard_names(props, STANDARD_NAMES),
           **common}
    if record.get("_track_id") is not None:  # the web SDK's own id of the record: retries are stored once
        out["event_id"] = stable_id(SOURCE, person["distinct_id"], time, record["_track_id"], event)
    yield out


def translate_all(records: list[Any], project_names: frozenset[str], token: str | None) -> Translation:
    """The native records of a request's Sensors records."""
    translation = Translation()
    for raw in records:
        translation.add(raw, lambda r: translate(r, project_names, token))
    return translation


def project_names(name: str) -> frozenset[str]:
    """The names a request may give for a project in `?project=` or a record's `project`: its name, and the
    name written as a Sensors project name (lower case, other characters as _), e.g. spring_english."""
    return frozenset({name, name.lower(), project_slug(name)})


def project_slug(name: str) -> str:
    """A project name as Sensors writes project names: spring_english for "Spring English"."""
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
