"""GET /xapi/statements: its parameters (xAPI Communication 2.1.3), `more` paging tokens and the `ids` and
`canonical` formats of returned statements."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from edupulse.ingest.records import to_micros
from edupulse.ingest.xapi import StatementError, agent, ifi_key, iri, parse_timestamp, uuid_text
from edupulse.meta.xapi import StatementFilter

MAX_LIMIT = 500
SINGLE = frozenset({"statementId", "voidedStatementId"})
QUERY_PARAMS = frozenset({"agent", "verb", "activity", "registration", "related_activities", "related_agents",
                          "since", "until", "limit", "format", "attachments", "ascending"})
FORMATS = ("exact", "ids", "canonical")


@dataclass
class StatementQuery:
    """A parsed GET: either one statement by id or a filter with paging."""

    statement_id: str | None = None
    voided: bool = False
    filter: StatementFilter | None = None
    limit: int = MAX_LIMIT
    after: int | None = None
    format: str = "exact"
    attachments: bool = False
    params: dict[str, str] | None = None  # the filter's own parameters, carried in `more` tokens


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise StatementError(name, f"must be true or false, got {value[:20]!r}")
    return value == "true"


def parse_query(params: Mapping[str, str]) -> StatementQuery:
    """Validate the query string of GET /xapi/statements; StatementError names the parameter that is wrong."""
    if "more" in params:
        if len(params) > 1:
            raise StatementError("more", "a more link is used alone: send it as it was returned")
        return decode_more(params["more"])
    unknown = sorted(set(params) - QUERY_PARAMS - SINGLE)
    if unknown:
        raise StatementError(unknown[0], f"is not a parameter of the statements resource; use "
                                         f"{', '.join(sorted(QUERY_PARAMS | SINGLE))}")
    out = StatementQuery(format=params.get("format", "exact"), attachments=_flag(params, "attachments"))
    if out.format not in FORMATS:
        raise StatementError("format", f"{out.format[:20]!r} is not one of {', '.join(FORMATS)}")
    single = sorted(SINGLE & set(params))
    if single:
        others = sorted(set(params) - SINGLE - {"format", "attachments"})
        if len(single) > 1 or others:
            raise StatementError(single[0], f"cannot be combined with {', '.join(single[1:] + others)}")
        out.statement_id = uuid_text(params[single[0]], single[0])
        out.voided = single[0] == "voidedStatementId"
        return out
    return _filter(params, out)


def _filter(params: Mapping[str, str], out: StatementQuery) -> StatementQuery:
    f = StatementFilter(related_activities=_flag(params, "related_activities"),
                        related_agents=_flag(params, "related_agents"), ascending=_flag(params, "ascending"))
    if "agent" in params:
        try:
            value = orjson.loads(params["agent"])
        except orjson.JSONDecodeError:
            raise StatementError("agent", "must be an Agent or identified Group as JSON, e.g. "
                                          '{"mbox": "mailto:learner@example.com"}') from None
        agent(value, "agent")
        f.agent = ifi_key(value)
        if f.agent is None:
            raise StatementError("agent", "an anonymous Group cannot be used as a filter")
    if "verb" in params:
        f.verb = iri(params["verb"], "verb")
    if "activity" in params:
        f.activity = iri(params["activity"], "activity")
    if "registration" in params:
        f.registration = uuid_text(params["registration"], "registration")
    # Some clients send Python's str(datetime), with a space where ISO 8601 has T.
    if "since" in params:
        f.since_us = to_micros(parse_timestamp(params["since"].replace(" ", "T", 1), "since"))
    if "until" in params:
        f.until_us = to_micros(parse_timestamp(params["until"].replace(" ", "T", 1), "until"))
    limit = params.get("limit", "0")
    if not limit.isdigit():
        raise StatementError("limit", f"must be a whole number of statements (0 for the server's maximum), got "
                                      f"{limit[:20]!r}")
    out.limit = min(int(limit), MAX_LIMIT) or MAX_LIMIT
    out.filter = f
    out.params = dict(params)
    return out


def encode_more(query: StatementQuery, after: int) -> str:
    """The `more` link for the page after row `after` (relative to the server root, as the spec asks)."""
    token = base64.urlsafe_b64encode(orjson.dumps({"q": query.params, "a": after})).decode().rstrip("=")
    return f"/xapi/statements?more={token}"


def decode_more(token: str) -> StatementQuery:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        params, after = data["q"], int(data["a"])
        if not isinstance(params, dict):
            raise TypeError
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise StatementError("more", "is not a more link this server returned") from None
    out = parse_query({str(k): str(v) for k, v in params.items() if k != "more"})
    out.after = after
    return out


def _ids_agent(value: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in value.items() if k in ("objectType", "mbox", "mbox_sha1sum", "openid", "account")}
    if "member" in value and ifi_key(value) is None:
        out["member"] = [_ids_agent(m) for m in value["member"]]
    return out


def _ids_object(value: dict[str, Any]) -> dict[str, Any]:
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        return {k: v for k, v in value.items() if k in ("objectType", "id")}
    if kind in ("Agent", "Group"):
        return _ids_agent(value)
    if kind == "SubStatement":
        return as_ids(value)
    return value


def as_ids(statement: dict[str, Any]) -> dict[str, Any]:
    """format=ids: Agents, Groups, Activities and Verbs reduced to what identifies them."""
    out = dict(statement)
    out["actor"] = _ids_agent(statement["actor"])
    out["verb"] = {"id": statement["verb"]["id"]}
    out["object"] = _ids_object(statement["object"])
    if "authority" in statement:
        out["authority"] = _ids_agent(statement["authority"])
    if "context" in statement:
        context = dict(statement["context"])
        for key in ("instructor", "team"):
            if key in context:
                context[key] = _ids_agent(context[key])
        if "contextActivities" in context:
            context["contextActivities"] = {k: [_ids_object(a) for a in v]
                                            for k, v in context["contextActivities"].items()}
        out["context"] = context
    return out


def _pick(languages: dict[str, str], wanted: list[str]) -> dict[str, str]:
    lowered = {tag.lower(): tag for tag in languages}
    for tag in wanted:
        for candidate in (tag, tag.split("-")[0]):
            if candidate in lowered:
                return {lowered[candidate]: languages[lowered[candidate]]}
    first = next(iter(languages), None)
    return {first: languages[first]} if first is not None else {}


def _with_definitions(statement: dict[str, Any], canonical: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The statement with its Activities (object, context activities, and a sub-statement's) given the LRS's
    canonical definitions."""

    def activity(value: dict[str, Any]) -> dict[str, Any]:
        found = canonical.get(value.get("id", ""))
        return {**value, "definition": found} if found is not None else value

    out = dict(statement)
    obj = statement.get("object", {})
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        out["object"] = activity(obj)
    elif kind == "SubStatement":
        out["object"] = _with_definitions(obj, canonical)
    groups = statement.get("context", {}).get("contextActivities")
    if groups:
        out["context"] = {**statement["context"],
                          "contextActivities": {k: [activity(a) for a in v] for k, v in groups.items()}}
    return out


def as_canonical(value: Any, wanted: list[str], canonical: Mapping[str, dict[str, Any]] | None = None) -> Any:
    """format=canonical: Activities with the LRS's canonical definitions (`canonical`, by Activity id; given for a
    statement) and every language map (display, name, description) reduced to one language, the first of
    Accept-Language that it has, else its first. Agents and extensions are left as they are."""
    if canonical:
        value = _with_definitions(value, canonical)
    if isinstance(value, list):
        return [as_canonical(v, wanted) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "extensions":
            out[key] = item
        elif key in ("display", "name", "description") and isinstance(item, dict) and _is_language_map(item):
            out[key] = _pick(item, wanted)
        else:
            out[key] = as_canonical(item, wanted)
    return out


def _is_language_map(value: dict[str, Any]) -> bool:
    return all(isinstance(v, str) for v in value.values())


def accept_languages(header: str) -> list[str]:
    """Language tags of an Accept-Language header, best first."""
    ranked = []
    for part in header.split(","):
        tag, _, q = part.strip().partition(";q=")
        if tag and tag != "*":
            try:
                ranked.append((-float(q or 1), tag.lower()))
            except ValueError:
                continue
    return [tag for _, tag in sorted(ranked)]
