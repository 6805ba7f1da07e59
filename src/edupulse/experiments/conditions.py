"""GrowthBook targeting conditions, for the operators EduPulse serves (targeting.gb_condition): $and, $eq,
$ne, $in, $nin, $gt, $gte, $lt, $lte, $exists, $inGroup (saved groups) and $elemMatch with $eq (tags).
Standard library only, like hashing.py, so that our Python client can use both."""

from __future__ import annotations

from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(actual: Any, expected: Any) -> int | None:
    """-1, 0 or 1; numbers compare as numbers (also "8" with 5), other values as text; None if incomparable."""
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    if isinstance(actual, str) and isinstance(expected, str):
        return (actual > expected) - (actual < expected)
    return None


def _operator(op: str, actual: Any, expected: Any, groups: dict[str, list[Any]]) -> bool:
    if op == "$eq":
        return actual == expected
    if op == "$ne":
        return actual != expected
    if op in ("$in", "$nin"):
        if not isinstance(expected, list):
            return False
        inside = any(v in expected for v in actual) if isinstance(actual, list) else actual in expected
        return inside if op == "$in" else not inside
    if op == "$exists":
        return (actual is not None) == bool(expected)
    if op == "$inGroup":
        return actual is not None and actual in groups.get(str(expected), [])
    if op == "$elemMatch":
        return isinstance(actual, list) and any(value_matches(v, expected, groups) for v in actual)
    order = _compare(actual, expected)
    if order is None:
        return False
    return {"$gt": order > 0, "$gte": order >= 0, "$lt": order < 0, "$lte": order <= 0}.get(op, False)


def value_matches(actual: Any, condition: Any, groups: dict[str, list[Any]]) -> bool:
    if isinstance(condition, dict) and condition and all(str(k).startswith("$") for k in condition):
        return all(_operator(op, actual, expected, groups) for op, expected in condition.items())
    return actual == condition


def matches(attributes: dict[str, Any], condition: dict[str, Any], groups: dict[str, list[Any]] | None = None) -> bool:
    """Whether the attributes satisfy the condition (an empty condition matches everything)."""
    groups = groups or {}
    for key, value in condition.items():
        if key == "$and":
            if not all(matches(attributes, part, groups) for part in value):
                return False
        elif not value_matches(attributes.get(key), value, groups):
            return False
    return True
