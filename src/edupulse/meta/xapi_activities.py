"""Canonical Activity definitions (the Activities resource, and statements read with format=canonical).

Every Activity a stored statement names with a definition adds to the Activity's canonical definition: language
maps (name, description) gain the languages they did not have and take the newest text of the ones they had,
extensions are merged by key, and every other property (type, moreInfo, the interaction properties) takes the
newest value. So two statements describing one Activity in two languages give a definition with both
(Communication 2.5, XAPI-00254).

The merge runs in the transaction that stores the statements. Most statements repeat definitions already known,
so a process keeps the canonical definitions it wrote or read lately and skips the database when a statement
adds nothing to them.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Table, insert, select, update

from edupulse.meta.db import MetadataStore
from edupulse.meta.xapi_models import XapiActivity

MERGED_MAPS = ("name", "description", "extensions")
CACHE_SIZE = 20_000
ACTIVITIES = cast(Table, XapiActivity.__table__)


def activity_key(activity_id: str) -> str:
    return hashlib.sha256(activity_id.encode()).hexdigest()


def merge_definition(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`old` with what `new` says: maps merged by key, other properties replaced."""
    out = dict(old)
    for key, value in new.items():
        if key in MERGED_MAPS and isinstance(value, dict) and isinstance(old.get(key), dict):
            out[key] = {**old[key], **value}
        else:
            out[key] = value
    return out


def defined_activities(statement: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, definition) of every Activity with a definition in a stored statement: its object, its context
    activities, and those of a sub-statement."""
    obj = statement.get("object", {})
    kind = obj.get("objectType", "Activity")
    if kind == "Activity" and obj.get("definition"):
        yield obj["id"], obj["definition"]
    for items in statement.get("context", {}).get("contextActivities", {}).values():
        for item in items:
            if item.get("definition"):
                yield item["id"], item["definition"]
    if kind == "SubStatement":
        yield from defined_activities(obj)


class ActivityCatalogue:
    """Merges statements' definitions into the canonical ones and reads them back."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        self.before_read: Callable[[], None] | None = None  # called before each read (the statements' writer)
        self._known: OrderedDict[tuple[int, str], dict[str, Any]] = OrderedDict()

    def _remember(self, project_id: int, activity_id: str, definition: dict[str, Any]) -> None:
        self._known[(project_id, activity_id)] = definition
        self._known.move_to_end((project_id, activity_id))
        while len(self._known) > CACHE_SIZE:
            self._known.popitem(last=False)

    def forget(self) -> None:
        """Drop what this process remembers (after a transaction that wrote it was rolled back)."""
        self._known.clear()

    def record(self, conn: Connection, project_id: int, statements: Iterable[dict[str, Any]], now_us: int) -> None:
        """Merge the definitions of `statements` into the canonical ones, in the caller's transaction."""
        incoming: dict[str, dict[str, Any]] = {}
        for statement in statements:
            for activity_id, definition in defined_activities(statement):
                incoming[activity_id] = merge_definition(incoming.get(activity_id, {}), definition)
        news = {}
        for activity_id, definition in incoming.items():
            known = self._known.get((project_id, activity_id))
            if known is None or merge_definition(known, definition) != known:
                news[activity_id] = definition
        if not news:
            return
        keys = {activity_key(a): a for a in news}
        table = ACTIVITIES
        stored = {row.activity_key: orjson.loads(row.definition) for row in conn.execute(
            select(table.c.activity_key, table.c.definition).where(
                table.c.project_id == project_id, table.c.activity_key.in_(list(keys))))}
        inserts = []
        for key, activity_id in keys.items():
            old = stored.get(key)
            merged = merge_definition(old or {}, news[activity_id])
            if old is None:
                inserts.append({"project_id": project_id, "activity_key": key, "activity_id": activity_id,
                                "definition": orjson.dumps(merged).decode(), "updated_us": now_us})
            elif merged != old:
                conn.execute(update(table).where(table.c.project_id == project_id, table.c.activity_key == key)
                             .values(definition=orjson.dumps(merged).decode(), updated_us=now_us))
            self._remember(project_id, activity_id, merged)
        if inserts:
            conn.execute(insert(table), inserts)

    def get(self, project_id: int, activity_id: str) -> dict[str, Any] | None:
        """The canonical definition of an Activity; None when no statement defined it."""
        if self.before_read is not None:
            self.before_read()
        table = ACTIVITIES
        with self.meta.engine.connect() as conn:
            text = conn.execute(select(table.c.definition).where(
                table.c.project_id == project_id, table.c.activity_key == activity_key(activity_id))).scalar()
        return None if text is None else orjson.loads(text)

    def get_many(self, project_id: int, activity_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Canonical definitions of several Activities (those that have one)."""
        if self.before_read is not None:
            self.before_read()
        keys = {activity_key(a): a for a in activity_ids}
        if not keys:
            return {}
        table = ACTIVITIES
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(table.c.activity_key, table.c.definition).where(
                table.c.project_id == project_id, table.c.activity_key.in_(list(keys))))
            return {keys[row.activity_key]: orjson.loads(row.definition) for row in rows}
