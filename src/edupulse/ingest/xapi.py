"""xAPI 1.0.3 statements: validation by the rules of the specification (Data, section 2) and the values the
LRS fills in (id, stored, timestamp, version, authority).

A refused statement raises `StatementError` with the path of the offending property
(`statement[2].actor.mbox`) and a reason a person can act on. Validation returns a copy of the statement in
the form the LRS stores: context activities given as a single object become lists of one, as the
specification requires of an LRS (in sub-statements too). The special data types (IRIs, UUIDs, language tags,
timestamps, durations) are checked in `xapi_types`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from typing import Any

import orjson

from edupulse.ingest.records import nested_too_deep
from edupulse.ingest.xapi_types import (
    StatementError,
    duration_seconds,
    format_timestamp,
    iri,
    language_map,
    language_tag,
    parse_timestamp,
    sha1_text,
    string,
    type_name,
    uuid_text,
)

__all__ = ["StatementError", "duration_seconds", "format_timestamp", "iri", "parse_timestamp", "uuid_text"]

XAPI_VERSION = "1.0.3"
SUPPORTED_VERSIONS = ("1.0.3", "1.0.2", "1.0.1", "1.0.0")
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
SIGNATURE_USAGE = "http://adlnet.gov/expapi/attachments/signature"
IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
INTERACTION_TYPES = frozenset(
    {"true-false", "choice", "fill-in", "long-fill-in", "matching", "performance", "sequencing", "likert", "numeric",
     "other"}
)
# Which interaction components each interaction type may carry (Data 2.4.4.1.1).
COMPONENTS = {"choice": {"choices"}, "sequencing": {"choices"}, "likert": {"scale"}, "matching": {"source", "target"},
              "performance": {"steps"}}
ALL_COMPONENTS = ("choices", "scale", "source", "target", "steps")
MAX_STATEMENT_DEPTH = 64  # levels of arrays and objects in a statement (docs/xapi.md)

_VERSION = re.compile(r"^1\.0(\.\d+)?$")
_SHA2 = re.compile(r"^(?:[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128})$")
# Every digit as 0 and every other byte as 1, to find a run of 19 digits (an integer that may be beyond 64 bits,
# which orjson reads as a float) with one search of bytes rather than a regular expression (20 times slower).
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else 0x01 for i in range(256))
_LONG_DIGITS = b"0" * 19
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9][\w!#$&^.+-]*(\s*;.*)?$")

STATEMENT_KEYS = frozenset(
    {"id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority", "version", "attachments"}
)
SUBSTATEMENT_KEYS = frozenset({"objectType", "actor", "verb", "object", "result", "context", "timestamp",
                               "attachments"})
ACCOUNT_KEYS = frozenset({"homePage", "name"})
GROUP_KEYS = frozenset({"objectType", "name", "member", *IFIS})
AGENT_KEYS = frozenset({"objectType", "name", *IFIS})
VERB_KEYS = frozenset({"id", "display"})
COMPONENT_KEYS = frozenset({"id", "description"})
DEFINITION_KEYS = frozenset({"name", "description", "type", "moreInfo", "extensions", "interactionType",
                             "correctResponsesPattern", *ALL_COMPONENTS})
ACTIVITY_KEYS = frozenset({"objectType", "id", "definition"})
REF_KEYS = frozenset({"objectType", "id"})
RESULT_KEYS = frozenset({"score", "success", "completion", "response", "duration", "extensions"})
SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})
CONTEXT_KEYS = frozenset({"registration", "instructor", "team", "contextActivities", "revision", "platform", "language",
                          "statement", "extensions"})
CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})
ATTACHMENT_KEYS = frozenset({"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"})


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise ValueError(f"the property {repeated[:40]!r} appears twice in one object")
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """A request's statements as JSON; an object with a property twice is refused (Data 2.4, XAPI-00021), which
    faster parsers let through silently (they keep the last).

    orjson reads the body, and the colons tell whether it kept every property: outside strings, valid JSON has one
    colon per property, so the body has as many colons as the value written back by orjson (which writes each
    property once and never escapes a colon) unless a property was dropped, or a string spells a colon as the escape
    \\u003a. Anything else (a repeat, such an escape, a body orjson refuses, a run of 19 digits, which may be an
    integer beyond 64 bits that orjson would turn into a float) is read again by the standard reader, which finds the
    property repeated and says so, keeps the integer exact, or gives the reason the body is not JSON."""
    if b"\\u003" not in body and _LONG_DIGITS not in body.translate(_DIGITS_AS_ZERO):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            try:
                if body.count(b":") == orjson.dumps(value).count(b":"):
                    return value
            except orjson.JSONEncodeError:  # nested deeper than orjson writes: the standard reader decides
                pass
    return _parse_strictly(body)


def _parse_strictly(body: bytes) -> Any:
    try:
        return json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise StatementError("body", "is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise StatementError("body", f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise StatementError("body", f"is not valid JSON: {exc}") from None


def is_supported_version(text: str) -> bool:
    """Whether an X-Experience-API-Version header (or a statement's version) is 1.0 or 1.0.x (Communication 3.3)."""
    return bool(_VERSION.match(text))


_type_name = type_name
_string = string


def _object(value: Any, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StatementError(path, f"must be an object, got {_type_name(value)}")
    if not allowed.issuperset(value):
        extra = value.keys() - allowed
        first = sorted(extra, key=str)[0]
        raise StatementError(f"{path}.{first}",
                             f"is not a property xAPI defines here; allowed: {', '.join(sorted(allowed))}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise StatementError(path, f"must be true or false, got {_type_name(value)}")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatementError(path, f"must be a number, got {_type_name(value)}")
    return float(value)


def _extensions(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise StatementError(path, f"must be an object whose keys are IRIs, got {_type_name(value)}")
    for key in value:
        iri(key, f"{path}.{key}")


def _account(value: Any, path: str) -> None:
    account = _object(value, path, ACCOUNT_KEYS)
    for key in ("homePage", "name"):
        if key not in account:
            raise StatementError(f"{path}.{key}", "is required in an account")
    iri(account["homePage"], f"{path}.homePage")
    _string(account["name"], f"{path}.name")


def _ifi(agent: dict[str, Any], path: str) -> int:
    given = [key for key in IFIS if key in agent]
    for key in given:
        value = agent[key]
        where = f"{path}.{key}"
        if key == "mbox":
            text = _string(value, where)
            if not text.startswith("mailto:") or "@" not in text or " " in text:
                raise StatementError(where, f"{text[:60]!r} must be a mailto IRI such as mailto:learner@example.com")
        elif key == "mbox_sha1sum":
            sha1_text(value, where)
        elif key == "openid":
            iri(value, where)
        else:
            _account(value, where)
    if len(given) > 1:
        raise StatementError(path, f"has {len(given)} identifiers ({', '.join(given)}); an Agent or Group has one")
    return len(given)


def agent(value: Any, path: str, group_allowed: bool = True, object_type_required: bool = False) -> None:
    """An Agent or Group (Data 2.4.2)."""
    if not isinstance(value, dict):
        raise StatementError(path, f"must be an Agent or Group object, got {_type_name(value)}")
    kind = value.get("objectType", "Agent" if not object_type_required else None)
    if kind == "Group" and group_allowed:
        group = _object(value, path, GROUP_KEYS)
        count = _ifi(group, path)
        if "name" in group:
            _string(group["name"], f"{path}.name")
        members = group.get("member")
        if members is None and count == 0:
            raise StatementError(path, "an anonymous Group (one without mbox, mbox_sha1sum, openid or account) "
                                       "needs a member list")
        if members is not None:
            if not isinstance(members, list) or (count == 0 and not members):
                raise StatementError(f"{path}.member", "must be a non-empty array of Agents")
            for i, member in enumerate(members):
                if isinstance(member, dict) and member.get("objectType") == "Group":
                    raise StatementError(f"{path}.member[{i}]", "a Group's members are Agents, not Groups")
                agent(member, f"{path}.member[{i}]", group_allowed=False)
        return
    if kind != "Agent":
        allowed = "Agent or Group" if group_allowed else "Agent"
        if kind is None:
            raise StatementError(f"{path}.objectType", f"is required here and must be {allowed}")
        raise StatementError(f"{path}.objectType", f"{kind!r} is not allowed here; use {allowed}")
    found = _object(value, path, AGENT_KEYS)
    if "name" in found:
        _string(found["name"], f"{path}.name")
    if _ifi(found, path) != 1:
        raise StatementError(path, "an Agent needs exactly one of mbox, mbox_sha1sum, openid, account")


def verb(value: Any, path: str) -> None:
    found = _object(value, path, VERB_KEYS)
    if "id" not in found:
        raise StatementError(f"{path}.id", "is required")
    iri(found["id"], f"{path}.id")
    if "display" in found:
        language_map(found["display"], f"{path}.display")


def _components(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise StatementError(path, f"must be an array of interaction components, got {_type_name(value)}")
    seen: set[str] = set()
    for i, component in enumerate(value):
        item = _object(component, f"{path}[{i}]", COMPONENT_KEYS)
        if "id" not in item:
            raise StatementError(f"{path}[{i}].id", "is required")
        ident = _string(item["id"], f"{path}[{i}].id")
        if ident in seen:
            raise StatementError(f"{path}[{i}].id", f"{ident!r} is used twice in this list")
        seen.add(ident)
        if "description" in item:
            language_map(item["description"], f"{path}[{i}].description")


def _definition(value: Any, path: str) -> None:
    found = _object(value, path, DEFINITION_KEYS)
    for key in ("name", "description"):
        if key in found:
            language_map(found[key], f"{path}.{key}")
    for key in ("type", "moreInfo"):
        if key in found:
            iri(found[key], f"{path}.{key}")
    if "extensions" in found:
        _extensions(found["extensions"], f"{path}.extensions")
    interaction = found.get("interactionType")
    if interaction is not None and (not isinstance(interaction, str) or interaction not in INTERACTION_TYPES):
        raise StatementError(f"{path}.interactionType",
                             f"{str(interaction)[:40]!r} is not one of {', '.join(sorted(INTERACTION_TYPES))} "
                             "(exactly, in lower case)")
    pattern = found.get("correctResponsesPattern")
    if pattern is not None and (not isinstance(pattern, list) or not all(isinstance(p, str) for p in pattern)):
        raise StatementError(f"{path}.correctResponsesPattern", "must be an array of strings")
    given = [key for key in ALL_COMPONENTS if key in found]
    if (given or pattern is not None) and interaction is None:
        raise StatementError(f"{path}.interactionType", "is required when interaction properties are given")
    for key in given:
        if key not in COMPONENTS.get(str(interaction), set()):
            raise StatementError(f"{path}.{key}", f"is not allowed for interactionType {interaction!r}")
        _components(found[key], f"{path}.{key}")


def activity(value: Any, path: str) -> None:
    found = _object(value, path, ACTIVITY_KEYS)
    if found.get("objectType", "Activity") != "Activity":
        raise StatementError(f"{path}.objectType", "must be Activity")
    if "id" not in found:
        raise StatementError(f"{path}.id", "is required")
    iri(found["id"], f"{path}.id")
    if "definition" in found:
        _definition(found["definition"], f"{path}.definition")


def statement_ref(value: Any, path: str) -> None:
    found = _object(value, path, REF_KEYS)
    if found.get("objectType") != "StatementRef":
        raise StatementError(f"{path}.objectType", "must be StatementRef")
    if "id" not in found:
        raise StatementError(f"{path}.id", "is required")
    uuid_text(found["id"], f"{path}.id")


def _statement_object(value: Any, path: str, inside_substatement: bool) -> dict[str, Any]:
    """The object as stored (a sub-statement's context activities become lists too)."""
    if not isinstance(value, dict):
        raise StatementError(path, f"must be an object (Activity, Agent, Group, SubStatement or StatementRef), "
                                   f"got {_type_name(value)}")
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        activity(value, path)
    elif kind in ("Agent", "Group"):
        agent(value, path, object_type_required=True)
    elif kind == "StatementRef":
        statement_ref(value, path)
    elif kind == "SubStatement":
        if inside_substatement:
            raise StatementError(f"{path}.objectType", "a SubStatement cannot contain another SubStatement")
        return _body(value, path, SUBSTATEMENT_KEYS, substatement=True)
    else:
        raise StatementError(f"{path}.objectType",
                             f"{str(kind)[:40]!r} is not one of Activity, Agent, Group, SubStatement, StatementRef")
    return value


def _result(value: Any, path: str) -> None:
    found = _object(value, path, RESULT_KEYS)
    if "score" in found:
        score = _object(found["score"], f"{path}.score", SCORE_KEYS)
        numbers = {key: _number(score[key], f"{path}.score.{key}") for key in score}
        if "scaled" in numbers and not -1 <= numbers["scaled"] <= 1:
            raise StatementError(f"{path}.score.scaled", "must be between -1 and 1")
        low, high = numbers.get("min"), numbers.get("max")
        if low is not None and high is not None and low >= high:
            raise StatementError(f"{path}.score.max", "must be greater than min")
        raw = numbers.get("raw")
        if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
            raise StatementError(f"{path}.score.raw", "must be between min and max")
    for key in ("success", "completion"):
        if key in found:
            _bool(found[key], f"{path}.{key}")
    if "response" in found:
        _string(found["response"], f"{path}.response")
    if "duration" in found and duration_seconds(_string(found["duration"], f"{path}.duration")) is None:
        raise StatementError(f"{path}.duration",
                             f"{found['duration'][:40]!r} is not an ISO 8601 duration such as PT45M")
    if "extensions" in found:
        _extensions(found["extensions"], f"{path}.extensions")


def _context(value: Any, path: str, object_is_activity: bool) -> dict[str, Any]:
    found = _object(value, path, CONTEXT_KEYS)
    out = dict(found)
    if "registration" in found:
        uuid_text(found["registration"], f"{path}.registration")
    if "instructor" in found:
        agent(found["instructor"], f"{path}.instructor")
    if "team" in found:
        team = found["team"]
        if not isinstance(team, dict) or team.get("objectType") != "Group":
            raise StatementError(f"{path}.team", "must be a Group (objectType Group)")
        agent(team, f"{path}.team")
    for key in ("revision", "platform"):
        if key in found:
            _string(found[key], f"{path}.{key}")
            if not object_is_activity:
                raise StatementError(f"{path}.{key}", "is only allowed when the statement's object is an Activity")
    if "language" in found:
        language_tag(found["language"], f"{path}.language")
    if "statement" in found:
        statement_ref(found["statement"], f"{path}.statement")
    if "extensions" in found:
        _extensions(found["extensions"], f"{path}.extensions")
    if "contextActivities" in found:
        groups = _object(found["contextActivities"], f"{path}.contextActivities", CONTEXT_ACTIVITY_KEYS)
        if not groups:
            raise StatementError(f"{path}.contextActivities", "is empty; give parent, grouping, category or other, "
                                                              "or leave contextActivities out")
        normalized = {}
        for key, items in groups.items():
            where = f"{path}.contextActivities.{key}"
            listed = items if isinstance(items, list) else [items]
            for i, item in enumerate(listed):
                activity(item, f"{where}[{i}]" if isinstance(items, list) else where)
            normalized[key] = listed
        out["contextActivities"] = normalized
    return out


def _attachments(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise StatementError(path, f"must be an array, got {_type_name(value)}")
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        found = _object(item, where, ATTACHMENT_KEYS)
        for key in ("usageType", "display", "contentType", "length", "sha2"):
            if key not in found:
                raise StatementError(f"{where}.{key}", "is required in an attachment")
        iri(found["usageType"], f"{where}.usageType")
        language_map(found["display"], f"{where}.display")
        if "description" in found:
            language_map(found["description"], f"{where}.description")
        if not _MEDIA_TYPE.match(_string(found["contentType"], f"{where}.contentType")):
            raise StatementError(f"{where}.contentType", f"{found['contentType'][:40]!r} is not an Internet media "
                                                         "type such as application/pdf")
        if not _SHA2.match(_string(found["sha2"], f"{where}.sha2")):
            raise StatementError(f"{where}.sha2", "must be the hexadecimal SHA-2 digest (SHA-256, SHA-384 or SHA-512) "
                                                  "of the attachment's content")
        if isinstance(found["length"], bool) or not isinstance(found["length"], int) or found["length"] < 0:
            raise StatementError(f"{where}.length", "must be a whole number of bytes")
        if "fileUrl" in found:
            iri(found["fileUrl"], f"{where}.fileUrl")


def _body(value: dict[str, Any], path: str, keys: frozenset[str], substatement: bool) -> dict[str, Any]:
    found = _object(value, path, keys)
    for key in ("actor", "verb", "object"):
        if key not in found:
            raise StatementError(f"{path}.{key}", "is required")
    out = dict(found)
    agent(found["actor"], f"{path}.actor")
    verb(found["verb"], f"{path}.verb")
    out["object"] = _statement_object(found["object"], f"{path}.object", substatement)
    if found["verb"]["id"] == VOIDED and (
        not isinstance(found["object"], dict) or found["object"].get("objectType") != "StatementRef"
    ):
        raise StatementError(f"{path}.object", "a voiding statement (verb voided) must have a StatementRef object")
    if "result" in found:
        _result(found["result"], f"{path}.result")
    if "context" in found:
        object_is_activity = found["object"].get("objectType", "Activity") == "Activity"
        out["context"] = _context(found["context"], f"{path}.context", object_is_activity)
    if "timestamp" in found:
        parse_timestamp(found["timestamp"], f"{path}.timestamp")
    if "attachments" in found:
        _attachments(found["attachments"], f"{path}.attachments")
    return out


def validate_statement(value: Any, path: str = "statement") -> dict[str, Any]:
    """Check one statement against the specification; return it in the form the LRS stores."""
    if not isinstance(value, dict):
        raise StatementError(path, f"must be a statement object, got {_type_name(value)}")
    if nested_too_deep(value, MAX_STATEMENT_DEPTH):
        raise StatementError(path, f"nests arrays and objects more than {MAX_STATEMENT_DEPTH} levels deep")
    out = _body(value, path, STATEMENT_KEYS, substatement=False)
    if "id" in value:
        out["id"] = uuid_text(value["id"], f"{path}.id")
    if "version" in value and not _VERSION.match(_string(value["version"], f"{path}.version")):
        raise StatementError(f"{path}.version", f"{value['version']!r} is not supported; use 1.0.x")
    if "stored" in value:
        parse_timestamp(value["stored"], f"{path}.stored")
    if "authority" in value:
        authority(value["authority"], f"{path}.authority")
    return out


def authority(value: Any, path: str) -> None:
    """Who asserts a statement (Data 2.4.9): an Agent, or, in 3-legged OAuth, an anonymous Group of exactly two
    Agents, the application (identified by an account) and the user."""
    agent(value, path)
    if value.get("objectType") != "Group":
        return
    if any(key in value for key in IFIS):
        raise StatementError(path, "an authority Group is anonymous (an application and a user), not an identified "
                                   "Group")
    members = value.get("member", [])
    if len(members) != 2:
        raise StatementError(f"{path}.member", f"an authority Group has exactly two Agents (the OAuth application and "
                                               f"the user), not {len(members)}")
    if not any("account" in m for m in members):
        raise StatementError(f"{path}.member", "one of an authority Group's two Agents is the OAuth application, "
                                               "identified by an account")


def signature(statement: dict[str, Any]) -> str:
    """What makes two statements with one id the same statement (Data 2.3.1 "Statement Comparison"): everything
    but the properties the LRS sets (authority, stored, version) and the timestamp, which is compared as an instant
    and only when the statement sent again has one (the LRS fills it in when missing)."""
    comparable = {k: v for k, v in statement.items() if k not in ("authority", "stored", "version", "id", "timestamp")}
    try:
        return hashlib.sha256(orjson.dumps(comparable, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except orjson.JSONEncodeError as exc:  # nesting deeper than JSON serializers allow, or integers beyond 64 bits
        raise StatementError("statement", f"cannot be stored: {exc}") from None


def complete(statement: dict[str, Any], stored: dt.datetime | str, asserted_by: dict[str, Any]) -> dict[str, Any]:
    """The statement as the LRS stores it: id, timestamp, stored, authority (`asserted_by`, from the credentials)
    and version filled in. `stored` may be given already formatted (a request's statements share it)."""
    out = dict(statement)
    stored_text = stored if isinstance(stored, str) else format_timestamp(stored)
    out["id"] = statement.get("id") or str(uuid.uuid4())
    out.setdefault("timestamp", stored_text)
    out["stored"] = stored_text
    out["authority"] = asserted_by
    out.setdefault("version", "1.0.0")
    return out


def ifi_key(actor: dict[str, Any]) -> str | None:
    """A canonical text of an Agent's or Group's identifier (for filters); None for an anonymous Group."""
    if "mbox" in actor:
        return "mbox:" + actor["mbox"].lower()
    if "mbox_sha1sum" in actor:
        return "mbox_sha1sum:" + actor["mbox_sha1sum"].lower()
    if "openid" in actor:
        return "openid:" + actor["openid"]
    if "account" in actor:
        return "account:" + actor["account"]["homePage"] + "|" + actor["account"]["name"]
    return None
