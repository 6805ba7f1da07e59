"""GrowthBook targeting conditions, for the operators EduPulse serves (targeting.gb_condition): $and, $eq,
$ne, $in, $nin, $gt, $gte, $lt, $lte, $exists, $inGroup (saved groups) and $elemMatch with $eq (tags).
Values compare as GrowthBook's Python SDK compares them: equality is JavaScript's === (1 is not true, "5" is
not 5), and only two numbers or two strings are ordered ("70" is not below 90). Standard library only, like
hashing.py, so that our Python client can use both."""

from __future__ import annotations

from typing import Any


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _same(actual: Any, expected: Any) -> bool:
    """JavaScript's ===: values of one primitive type that are equal (1 is not true, "5" is not 5)."""
    kind = _kind(actual)
    return kind == _kind(expected) and kind not in ("array", "object") and actual == expected


def _compare(actual: Any, expected: Any) -> int | None:
    """-1, 0 or 1 for two numbers, or two strings (in UTF-16 code unit order); None otherwise."""
    kinds = (_kind(actual), _kind(expected))
    if kinds == ("number", "number"):
        return (actual > expected) - (actual < expected)
    if kinds == ("string", "string"):
        a, b = actual.encode("utf-16-be", "surrogatepass"), expected.encode("utf-16-be", "surrogatepass")
        return (a > b) - (a < b)
    return None


def _operator(op: str, actual: Any, expected: Any, groups: dict[str, list[Any]]) -> bool:
    if op == "$eq":
        return _same(actual, expected)
    if op == "$ne":
        return not _same(actual, expected)
    if op in ("$in", "$nin"):
        if not isinstance(expected, list):
            return False
        values = actual if isinstance(actual, list) else [actual]
        inside = any(_same(v, e) for v in values for e in expected)
        return inside if op == "$in" else not inside
    if op == "$exists":
        return (actual is not None) == bool(expected)
    if op == "$inGroup":
        return actual is not None and any(_same(actual, member) for member in groups.get(str(expected), []))
    if op == "$elemMatch":
        return isinstance(actual, list) and any(value_matches(v, expected, groups) for v in actual)
    order = _compare(actual, expected)
    if order is None:
        return False
    return {"$gt": order > 0, "$gte": order >= 0, "$lt": order < 0, "$lte": order <= 0}.get(op, False)


def value_matches(actual: Any, condition: Any, groups: dict[str, list[Any]]) -> bool:
    if isinstance(condition, dict) and condition and all(str(k).startswith("$") for k in condition):
        return all(_operator(op, actual, expected, groups) for op, expected in condition.items())
    return _same(actual, condition)


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
