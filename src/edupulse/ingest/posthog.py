"""PostHog wire format: what posthog-js and the PostHog server SDKs post to /capture/, /batch/, /e/, /i/v0/e/.

Bodies: a JSON object `{"api_key", "batch": [...], "sent_at"}`, a JSON list of events or one event; gzip
(Content-Encoding or `?compression=gzip-js`), or a form field `data=` holding base64 (`compression=base64`)
or lz-string base64 (`compression=lz64`) of that JSON.

PostHog distinct IDs become identities of type anonymous_id; `$identify` also makes its distinct_id the
person's login_id and links `$anon_distinct_id` to it. One PostHog event may become several native records:

    $identify        -> identify (login_id d + anonymous_id d + anonymous_id $anon_distinct_id), track
    $create_alias    -> alias (anonymous_id d + anonymous_id alias), track
    $groupidentify   -> group_set ($group_type, $group_key, $group_set)
    $set / $set_once -> profile_set / profile_set_once of the event's $set / $set_once
    any other event  -> track with groups from $groups
    ... and any event's $set, $set_once, $unset -> profile_set, profile_set_once, profile_unset
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from edupulse.ingest import jsontext
from edupulse.ingest.compat import Clock, Translation, object_or_empty, text_id, with_standard_names
from edupulse.ingest.lzstring import LZStringError, decompress_from_base64
from edupulse.ingest.records import RecordError, parse_time
from edupulse.ingest.validate import BodyError

SOURCE = "posthog"
STANDARD_NAMES = (("$current_url", "url"), ("$referrer", "referrer"))
# Fields of the protocol carried in properties, not properties of the event.
_PROTOCOL_PROPERTIES = ("token", "api_key", "distinct_id", "$set", "$set_once", "$unset", "$groups",
                        "$anon_distinct_id")
_UTC = dt.UTC


def _json(raw: bytes | str, what: str) -> Any:
    try:
        return jsontext.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from None


def decode_data(value: str, compression: str) -> Any:
    """The JSON in a form field `data=` (base64, lz64 or plain JSON)."""
    text = value.strip()
    if compression == "lz64":
        try:
            return _json(decompress_from_base64(text), "data (lz64)")
        except LZStringError as exc:
            raise BodyError(400, f"data is not lz-string base64 (compression=lz64): {exc}") from None
    if text[:1] in ("{", "["):
        return _json(text, "data")
    padded = text.replace("-", "+").replace("_", "/").replace(" ", "+")
    try:
        raw = base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BodyError(400, "data is neither JSON nor base64 (compression=base64)") from None
    return _json(raw, "data (base64)")


def parse_payload(body: bytes, form: Mapping[str, str] | None, compression: str) -> Any:
    """The JSON payload of a request (an object or a list): from the form field `data` when there is one."""
    if form is not None and "data" in form:
        return decode_data(form["data"], form.get("compression", compression))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"body is not UTF-8 (nor gzip): invalid byte at offset {exc.start}") from None
    if not text.strip():
        raise BodyError(400, "body is empty: send a JSON event, a list of events or {\"batch\": [...]}")
    return _json(text, "body")


def events_of(payload: Any, max_records: int) -> tuple[list[Any], dict[str, Any]]:
    """The events of a payload and its envelope (api_key, token, sent_at)."""
    if isinstance(payload, list):
        events, envelope = payload, {}
    elif isinstance(payload, dict) and "batch" in payload:
        events, envelope = payload["batch"], payload
        if not isinstance(events, list):
            raise BodyError(400, "batch must be a list of events")
    elif isinstance(payload, dict) and isinstance(payload.get("data"), list | dict):
        inner = payload["data"]
        events, envelope = (inner if isinstance(inner, list) else [inner]), payload
    elif isinstance(payload, dict):
        events, envelope = [payload], payload
    else:
        raise BodyError(400, "body must be a JSON event, a list of events or {\"batch\": [...]}")
    if len(events) > max_records:
        raise BodyError(413, f"batch has {len(events)} events; at most {max_records} per request")
    return events, envelope


def api_key(envelope: Mapping[str, Any], query: Mapping[str, str], events: list[Any]) -> str | None:
    """The project key as PostHog clients send it: api_key or token in the body, the query, or the first event."""
    for source in (envelope, query):
        for name in ("api_key", "token"):
            if isinstance(source.get(name), str) and source[name]:
                return str(source[name])
    first: dict[str, Any] = events[0] if events and isinstance(events[0], dict) else {}
    props = first.get("properties")
    for place in (first, props if isinstance(props, dict) else {}):
        for name in ("api_key", "token", "$token"):
            if isinstance(place.get(name), str) and place[name]:
                return str(place[name])
    return None


def sent_at_us(envelope: Mapping[str, Any], query: Mapping[str, str]) -> int | None:
    """When the client sent the request, by its own clock (body sent_at, or ?_= / ?sent_at= milliseconds)."""
    raw: Any = envelope.get("sent_at")
    if raw is None:
        raw = query.get("sent_at") or query.get("_")
        if raw is not None and raw.isdigit():
            raw = int(raw)
    if raw is None:
        return None
    try:
        return parse_time(raw, "sent_at", _UTC)
    except RecordError:
        return None  # a bad sent_at only loses the clock correction


def _distinct_id(event: dict[str, Any], props: dict[str, Any]) -> str:
    raw = event.get("distinct_id", props.get("distinct_id", event.get("$distinct_id")))
    return text_id(raw, "distinct_id")


def _person_ops(person: dict[str, Any], event: dict[str, Any], props: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key, kind in (("$set", "profile_set"), ("$set_once", "profile_set_once")):
        values = event.get(key, props.get(key))
        if values:
            yield {"type": kind, **person, "properties": object_or_empty(values, key)}
    unset = event.get("$unset", props.get("$unset"))
    if unset:
        if not isinstance(unset, list | dict):
            raise RecordError("$unset", "must be a list of property names")
        yield {"type": "profile_unset", **person, "properties": unset}


def translate(event: Any, clock: Clock) -> Iterator[dict[str, Any]]:
    """The native records of one PostHog event; RecordError when it cannot be taken."""
    if not isinstance(event, dict):
        raise RecordError("event", f"must be a JSON object, got {type(event).__name__}")
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise RecordError("event", "is required: the event name")
    props = dict(object_or_empty(event.get("properties"), "properties"))
    distinct = _distinct_id(event, props)
    time = clock.time(event)
    common: dict[str, Any] = {} if time is None else {"time": time}
    person = {"distinct_id": distinct, "distinct_id_type": "anonymous_id", **common}
    if name == "$groupidentify":
        yield {"type": "group_set", "group_type": props.get("$group_type"), "group_key": props.get("$group_key"),
               "properties": object_or_empty(props.get("$group_set"), "properties.$group_set"), **common}
        return
    if name == "$identify":
        link = {"type": "identify", "distinct_id": distinct, "distinct_id_type": "login_id",
                "identities": {"anonymous_id": distinct}, **common}
        anon = props.get("$anon_distinct_id")
        if anon is not None and anon != distinct:
            link["anonymous_id"] = text_id(anon, "properties.$anon_distinct_id")
        yield link
    elif name == "$create_alias":
        alias = text_id(props.get("alias", event.get("alias")), "properties.alias")
        if alias != distinct:
            yield {"type": "alias", **person, "alias": alias}
    if name not in ("$set", "$set_once"):
        out = {"type": "track", "event": name, **person}
        groups = props.get("$groups")
        if groups:
            out["groups"] = groups
        uuid = event.get("uuid")
        if uuid is not None:
            out["event_id"] = uuid
        clean = {k: v for k, v in props.items() if k not in _PROTOCOL_PROPERTIES} if any(
            k in props for k in _PROTOCOL_PROPERTIES) else props
        out["properties"] = with_standard_names(clean, STANDARD_NAMES)
        yield out
    yield from _person_ops(person, event, props)


def translate_all(events: list[Any], clock: Clock) -> Translation:
    """The native records of a request's PostHog events."""
    translation = Translation()
    for raw in events:
        translation.add(raw, lambda e: translate(e, clock))
    return translation
