"""A lead's channel on its person: a `lead_created` event that carries `channel` or `campaign` also sets them on
its person once (a `profile_set_once` at the event's time), so a person's `channel` and `campaign` are those of
their first lead (the earliest set_once wins, whatever order the records arrive in) unless the organization sets
them otherwise. The standard tracking plan puts the channel on the lead event; breakdowns and filters by
`person.channel` (the channel packs, segments, tags) then work for every organization that sends it, as the
metrics' channel attribution (the channel of a person's first lead) does."""

from __future__ import annotations

from typing import Any

LEAD_EVENT = "lead_created"
FIRST_TOUCH = ("channel", "campaign")


def first_touch(record: dict[str, Any]) -> dict[str, Any] | None:
    """The profile_set_once a normalized track record implies (None for most records)."""
    if record.get("event") != LEAD_EVENT:
        return None
    props = record.get("properties") or {}
    found = {name: props[name] for name in FIRST_TOUCH if props.get(name) not in (None, "")}
    if not found:
        return None
    return {"type": "profile_set_once", "time": record["time"], "insert_id": None, "ids": record["ids"],
            "properties": found}
