"""Condition branches and trigger filters, checked for one person: properties of the person (as they entered)
or of the trigger event, membership of a saved segment, tags, and events received while waiting.

Segments and tags are asked through `Membership`, so that the engine needs no query machinery and tags can be
wired in when they land: `NoTags` answers that nobody has a tag."""

from __future__ import annotations

import re
from typing import Any, Protocol

from edupulse.journeys.model import (
    AllCondition,
    AnyCondition,
    NotCondition,
    PropertyCondition,
    ReceivedCondition,
    SegmentCondition,
    TagCondition,
)
from edupulse.journeys.person import Person
from edupulse.queries.common import Op, PropertyFilter, PropertyRef


class Membership(Protocol):
    """Segment and tag membership of a person in a project."""

    def in_segment(self, project_id: int, segment: str | int, person: Person) -> bool: ...

    def has_tag(self, project_id: int, person: Person, tag: str, value: str | None) -> bool: ...


class NoTags:
    """Membership before tags exist: no person has a tag; segments are not checked (nobody is a member)."""

    def in_segment(self, project_id: int, segment: str | int, person: Person) -> bool:
        return False

    def has_tag(self, project_id: int, person: Person, tag: str, value: str | None) -> bool:
        return False


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(actual: Any, expected: Any) -> bool:
    if _number(actual) and _number(expected):
        return bool(actual == expected)
    return actual is not None and str(actual) == str(expected)


def property_matches(f: PropertyFilter, actual: Any) -> bool:
    """One property condition on a value (None: the property is not set)."""
    op, value = f.op, f.value
    if op is Op.is_set:
        return actual is not None
    if op is Op.is_not_set:
        return actual is None
    if actual is None:
        return op in (Op.neq, Op.not_in, Op.not_contains)
    if op is Op.eq:
        return _equal(actual, value)
    if op is Op.neq:
        return not _equal(actual, value)
    if op in (Op.in_, Op.not_in):
        inside = any(_equal(actual, v) for v in value or [])  # type: ignore[union-attr]
        return inside if op is Op.in_ else not inside
    if op in (Op.contains, Op.not_contains):
        inside = str(value) in str(actual)
        return inside if op is Op.contains else not inside
    if op is Op.regex:
        return re.search(str(value), str(actual)) is not None
    if not _number(actual):
        return False
    if op is Op.between:
        bounds: list[Any] = list(value) if isinstance(value, list) else []
        return len(bounds) == 2 and bool(bounds[0] <= actual <= bounds[1])
    limit: Any = value
    checks = {Op.gt: actual > limit, Op.gte: actual >= limit, Op.lt: actual < limit, Op.lte: actual <= limit}
    return bool(checks[op])


def property_value(ref: str, person: Person, event: dict[str, Any] | None) -> Any:
    parsed = PropertyRef.parse(ref)
    if parsed.source == "person":
        name = parsed.name or ""
        return person.properties.get(name, person.identity(name))
    if parsed.source == "event" and event is not None:
        return (event.get("properties") or {}).get(parsed.name or "")
    return None


def event_matches(filters: list[PropertyFilter], event: dict[str, Any], person: Person) -> bool:
    """An arriving event passes the trigger's filters."""
    return all(property_matches(f, property_value(f.property, person, event)) for f in filters)


def holds(condition: Any, person: Person, event: dict[str, Any] | None, received: list[str], project_id: int,
          membership: Membership) -> bool:
    """Whether a condition holds for a person now."""
    if isinstance(condition, AllCondition):
        return all(holds(c, person, event, received, project_id, membership) for c in condition.all)
    if isinstance(condition, AnyCondition):
        return any(holds(c, person, event, received, project_id, membership) for c in condition.any)
    if isinstance(condition, NotCondition):
        return not holds(condition.negated, person, event, received, project_id, membership)
    if isinstance(condition, PropertyCondition):
        return property_matches(condition, property_value(condition.property, person, event))
    if isinstance(condition, SegmentCondition):
        return membership.in_segment(project_id, condition.segment, person) == condition.member
    if isinstance(condition, TagCondition):
        return membership.has_tag(project_id, person, condition.tag, condition.value) == condition.has
    if isinstance(condition, ReceivedCondition):
        return condition.received in received
    raise TypeError(f"not a condition: {condition!r}")
