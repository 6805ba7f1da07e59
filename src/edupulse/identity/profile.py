"""Person (and group / item) properties folded from their operations in event-time order.

Operations are applied sorted by (time, sequence), whatever order they arrived in:
- set: the value of the latest operation wins;
- set_once: only the earliest value is kept (a later set_once never overwrites);
- increment: numbers add up (a missing or non-numeric value counts as 0);
- append: values are added to a list in time order;
- unset: the property is removed (a later set brings it back);
- delete: every property set before it is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

OP_NAMES = {
    "profile_set": "set",
    "profile_set_once": "set_once",
    "profile_increment": "increment",
    "profile_append": "append",
    "profile_unset": "unset",
    "profile_delete": "delete",
    "group_set": "set",
    "item_set": "set",
}


def fold(ops: Iterable[tuple[int, int, str, dict[str, Any]]]) -> dict[str, Any]:
    """Fold (time, seq, op, properties) tuples into the current properties."""
    props: dict[str, Any] = {}
    for _time, _seq, op, values in sorted(ops, key=lambda o: (o[0], o[1])):
        if op == "set":
            props.update(values)
        elif op == "set_once":
            for name, value in values.items():
                props.setdefault(name, value)
        elif op == "increment":
            for name, value in values.items():
                current = props.get(name)
                base = current if isinstance(current, int | float) and not isinstance(current, bool) else 0
                props[name] = base + value
        elif op == "append":
            for name, value in values.items():
                current = props.get(name)
                items = list(current) if isinstance(current, list) else ([] if current is None else [current])
                props[name] = items + (list(value) if isinstance(value, list | tuple) else [value])
        elif op == "unset":
            for name in values:
                props.pop(name, None)
        elif op == "delete":
            props.clear()
    return props
