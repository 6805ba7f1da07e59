"""xAPI statements as standard education events (PRODUCT.md): each stored statement becomes native `track`
records that then take the native path (validation, quarantine, log, One-ID). See docs/xapi.md for the table.

The record's insert ID is derived from the statement id, so a statement sent again, or a request retried after
a failure, stores its events once.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from edupulse.ingest.xapi import VOIDED, duration_seconds

ADL = "http://adlnet.gov/expapi/verbs/"
COURSE_TYPES = frozenset({"http://adlnet.gov/expapi/activities/course", "https://w3id.org/xapi/cmi5/activitytype/course"})
ASSESSMENT_TYPES = frozenset({"http://adlnet.gov/expapi/activities/assessment"})
_NAME_SAFE = re.compile(r"[^a-z0-9]+")


def actor_identity(actor: dict[str, Any]) -> tuple[str, str] | None:
    """(identity type, value) of an Agent or identified Group: mbox -> email (without mailto:), mbox_sha1sum ->
    email_sha1, openid -> openid, account -> login_id (its name). None for an anonymous Group."""
    if "mbox" in actor:
        return "email", actor["mbox"].removeprefix("mailto:").lower()
    if "mbox_sha1sum" in actor:
        return "email_sha1", actor["mbox_sha1sum"].lower()
    if "openid" in actor:
        return "openid", actor["openid"]
    if "account" in actor:
        return "login_id", actor["account"]["name"]
    return None


@functools.lru_cache(maxsize=4096)
def _verb_name(verb_id: str) -> str:
    tail = verb_id.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    return _NAME_SAFE.sub("_", tail.lower()).strip("_")[:60] or "statement"


def _name(definition: dict[str, Any]) -> str | None:
    names = definition.get("name") or {}
    for tag in ("zh-CN", "en-US", "en"):
        if tag in names:
            return str(names[tag])
    return str(next(iter(names.values()))) if names else None


def _course_id(context: dict[str, Any]) -> str | None:
    """The course a lesson or question belongs to: a parent or grouping activity of a course type, else the first
    parent activity."""
    groups = context.get("contextActivities", {})
    for key in ("parent", "grouping"):
        for item in groups.get(key, []):
            if item.get("definition", {}).get("type") in COURSE_TYPES:
                return str(item["id"])
    parents = groups.get("parent", [])
    return str(parents[0]["id"]) if parents else None


def event_name(verb_id: str, activity_type: str | None) -> str | None:
    """The event a verb becomes; None for statements that only act on other statements (voided)."""
    if verb_id == VOIDED:
        return None
    verb = _verb_name(verb_id) if verb_id.startswith(ADL) else None
    is_course = activity_type in COURSE_TYPES
    if verb == "registered":
        return "course_enrolled"
    if verb == "attended":
        return "lesson_attended"
    if verb == "completed":
        return "course_completed" if is_course else "lesson_completed"
    if verb == "answered":
        return "quiz_answered"
    if verb in ("passed", "failed"):
        return "assessment_result"
    return "xapi_" + _verb_name(verb_id)


def _properties(statement: dict[str, Any], event: str) -> dict[str, Any]:
    obj = statement["object"]
    context = statement.get("context", {})
    definition = obj.get("definition", {}) if obj.get("objectType", "Activity") == "Activity" else {}
    activity_id = obj.get("id") if obj.get("objectType", "Activity") in ("Activity", "StatementRef") else None
    props: dict[str, Any] = {"source_system": "xapi", "xapi_statement_id": statement["id"],
                             "xapi_verb": statement["verb"]["id"]}
    optional = {"activity_id": activity_id, "activity_type": definition.get("type"), "activity_name": _name(definition),
                "registration": context.get("registration"), "platform": context.get("platform")}
    course = _course_id(context)
    if event in ("course_enrolled", "course_completed") or (
        event == "assessment_result" and definition.get("type") in COURSE_TYPES
    ):
        optional["course_id"] = activity_id
    else:
        optional["course_id"] = course
    if event in ("lesson_attended", "lesson_completed"):
        optional["lesson_id"] = activity_id
    if event == "quiz_answered":
        optional["question_id"] = activity_id
    if event == "assessment_result":
        optional["result"] = "passed" if _verb_name(statement["verb"]["id"]) == "passed" else "failed"
    props.update({k: v for k, v in optional.items() if v is not None})
    props.update(_result(statement.get("result", {}), event))
    return props


def _result(result: dict[str, Any], event: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    score = result.get("score", {})
    if "raw" in score:
        props["score"] = score["raw"]
    elif "scaled" in score:
        props["score"] = score["scaled"] * 100
    if "scaled" in score:
        props["score_scaled"] = score["scaled"]
    for key in ("success", "completion", "response"):
        if key in result:
            props[key] = result[key]
    if event == "quiz_answered" and "success" in result:
        props["correct"] = result["success"]
    if "duration" in result:
        seconds = duration_seconds(result["duration"])
        if seconds is not None:
            props["duration_s"] = seconds
    return props


def to_records(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """Native track records of one stored statement (one per member for an anonymous Group actor)."""
    obj = statement["object"]
    activity_type = obj.get("definition", {}).get("type") if obj.get("objectType", "Activity") == "Activity" else None
    event = event_name(statement["verb"]["id"], activity_type)
    if event is None:
        return []
    actor = statement["actor"]
    who = actor_identity(actor)
    actors = [who] if who else [actor_identity(m) for m in actor.get("member", [])]
    props = _properties(statement, event)
    records = []
    for index, identity in enumerate(a for a in actors if a is not None):
        records.append({
            "type": "track", "event": event, "distinct_id": identity[1], "distinct_id_type": identity[0],
            "time": statement["timestamp"], "event_id": f"xapi:{statement['id']}" + (f":{index}" if index else ""),
            "properties": props,
        })
    return records
