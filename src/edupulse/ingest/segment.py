"""Segment / RudderStack wire format: what analytics-python, rudder-sdk-python and analytics.js post to /v1/*.

`/v1/batch` takes `{"batch": [message, ...], "sentAt"}`; `/v1/track`, `/v1/identify`, ... take one message
(its `type` may be left out there). userId is the person's login_id, anonymousId an anonymous_id; a message
carrying both links them. Times are corrected for the client's clock skew with `sentAt`, as Segment does.

    track     -> track
    page      -> track "$pageview" (name, category and the context's page and campaign as properties)
    screen    -> track "$screen"
    identify  -> identify (when it has both userId and anonymousId) and profile_set of the traits
    alias     -> alias: userId (login_id) and previousId (anonymous_id)
    group     -> group_set: group type from traits.group_type (default "institution"), key groupId, traits
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from edupulse.ingest import jsontext
from edupulse.ingest.compat import Clock, Translation, object_or_empty, stable_id, text_id
from edupulse.ingest.records import RecordError, parse_time
from edupulse.ingest.validate import BodyError

SOURCE = "segment"
MESSAGE_TYPES = ("track", "identify", "alias", "page", "screen", "group")
DEFAULT_GROUP_TYPE = "institution"
_CAMPAIGN = (("source", "utm_source"), ("medium", "utm_medium"), ("name", "utm_campaign"),
             ("content", "utm_content"), ("term", "utm_term"))


def parse_body(body: bytes, kind: str | None, max_records: int) -> tuple[list[Any], dict[str, Any]]:
    """The messages of a request (for /v1/batch its batch, else the one message) and the envelope."""
    try:
        payload = jsontext.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(payload, dict):
        raise BodyError(400, "body must be a JSON object")
    if kind is None:
        batch = payload.get("batch")
        if not isinstance(batch, list):
            raise BodyError(400, 'body must be {"batch": [message, ...]}')
        if len(batch) > max_records:
            raise BodyError(413, f"batch has {len(batch)} messages; at most {max_records} per request")
        return batch, payload
    return [{**payload, "type": payload.get("type") or kind}], payload


def sent_at_us(envelope: Mapping[str, Any]) -> int | None:
    raw = envelope.get("sentAt")
    if raw is None:
        return None
    try:
        return parse_time(raw, "sentAt", Clock.UTC)
    except RecordError:
        return None  # a bad sentAt only loses the clock correction


def _person(message: dict[str, Any]) -> dict[str, Any]:
    user, anonymous = message.get("userId"), message.get("anonymousId")
    if user is None and anonymous is None:
        raise RecordError("userId", "give userId or anonymousId")
    if user is None:
        return {"distinct_id": text_id(anonymous, "anonymousId"), "distinct_id_type": "anonymous_id"}
    out: dict[str, Any] = {"distinct_id": text_id(user, "userId"), "distinct_id_type": "login_id"}
    if anonymous is not None:
        out["identities"] = {"anonymous_id": text_id(anonymous, "anonymousId")}
    return out


def _context_properties(context: dict[str, Any]) -> dict[str, Any]:
    """The standard properties Segment clients put in the context: the page and the campaign (utm)."""
    out: dict[str, Any] = {}
    page = context.get("page")
    if isinstance(page, dict):
        for name in ("url", "referrer"):
            if isinstance(page.get(name), str):
                out[name] = page[name]
    campaign = context.get("campaign")
    if isinstance(campaign, dict):
        for name, standard in _CAMPAIGN:
            if isinstance(campaign.get(name), str):
                out[standard] = campaign[name]
    library = context.get("library")
    if isinstance(library, dict) and isinstance(library.get("name"), str):
        out["$lib"] = library["name"]
    return out


def _traits(message: dict[str, Any]) -> dict[str, Any]:
    """identify's and group's traits: at the root (Segment) or in the context (RudderStack's clients)."""
    traits = object_or_empty(message.get("traits"), "traits")
    if not traits:
        context = object_or_empty(message.get("context"), "context")
        traits = object_or_empty(context.get("traits"), "context.traits")
    return traits


def _event_id(message: dict[str, Any]) -> str | None:
    raw = message.get("messageId")
    if raw is None:
        return None
    text = str(raw)
    return text if 0 < len(text) <= 128 else stable_id(SOURCE, text)


def translate(message: Any, clock: Clock) -> Iterator[dict[str, Any]]:
    """The native records of one Segment message; RecordError when it cannot be taken."""
    if not isinstance(message, dict):
        raise RecordError("message", f"must be a JSON object, got {type(message).__name__}")
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise RecordError("type", f"{kind!r} is not a message type; use one of {', '.join(MESSAGE_TYPES)}")
    time = clock.time(message)
    common: dict[str, Any] = {} if time is None else {"time": time}
    event_id = _event_id(message)
    if kind == "group":
        traits = dict(_traits(message))
        group_type = traits.pop("group_type", None) or DEFAULT_GROUP_TYPE
        yield {"type": "group_set", "group_type": group_type, "group_key": text_id(message.get("groupId"), "groupId"),
               "properties": traits, **common}
        return
    person = {**_person(message), **common}
    if kind == "alias":
        if message.get("userId") is None:
            raise RecordError("userId", "alias needs userId (the new ID) and previousId")
        yield {"type": "alias", "distinct_id": person["distinct_id"], "distinct_id_type": "login_id",
               "alias": text_id(message.get("previousId"), "previousId"), **common}
        return
    if kind == "identify":
        if "identities" in person:
            yield {"type": "identify", "distinct_id": person["distinct_id"],
                   "anonymous_id": person["identities"]["anonymous_id"], **common}
        traits = _traits(message)
        if traits:
            yield {"type": "profile_set", **person, "properties": traits}
        return
    context = object_or_empty(message.get("context"), "context")
    props = {**_context_properties(context), **object_or_empty(message.get("properties"), "properties")}
    if kind == "track":
        event = message.get("event")
    else:
        event = "$pageview" if kind == "page" else "$screen"
        for name in ("name", "category"):
            if message.get(name) is not None:
                props.setdefault(name, message[name])
    out = {"type": "track", "event": event, **person, "properties": props}
    if event_id is not None:
        out["event_id"] = event_id
    yield out


def translate_all(messages: list[Any], clock: Clock) -> Translation:
    """The native records of a request's Segment messages."""
    translation = Translation()
    for raw in messages:
        translation.add(raw, lambda m: translate(m, clock))
    return translation
