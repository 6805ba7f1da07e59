"""What a project's event store has seen: events with volumes and first/last seen, event properties with
their types, volumes and the events they occur on, and person properties. Feeds the data catalogue and
the pickers of the analysis builder. Built as sqlglot trees and rendered for the store's dialect."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from sqlglot import exp

from edupulse.store.base import EventStore, QueryControl
from edupulse.store.schema import property_column

# Where the dialects differ: the keys of a JSON object as an array, and an array as rows.
JSON_KEYS = {"duckdb": "json_keys", "clickhouse": "JSONExtractKeys"}
ARRAY_ROWS = {"duckdb": "unnest", "clickhouse": "arrayJoin"}
SAMPLE_ROWS = 200_000  # events read to find the keys of JSON properties


@dataclass
class Catalogue:
    events: list[dict[str, Any]]
    properties: list[dict[str, Any]]
    person_properties: list[dict[str, Any]]
    groups: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "properties": self.properties, "person_properties": self.person_properties,
                "groups": self.groups}


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else (str(value) if value is not None else None)


def _project(project_id: int) -> exp.Expr:
    return exp.column("project_id").eq(exp.Literal.number(project_id))


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _when_set(column: str, value: exp.Expr) -> exp.Expr:
    return exp.Case(ifs=[exp.If(this=exp.column(column).is_(exp.null()).not_(), true=value)])


def _typed(store: EventStore, project_id: int, control: QueryControl | None
           ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Per event: volume, first/last seen and how many carry each typed property; per typed property: totals."""
    typed = sorted(store.typed_properties().items())
    columns = [property_column(name) for name, _ in typed]
    select = exp.select(exp.column("event"), exp.Count(this=exp.Star()), exp.Min(this=exp.column("time")),
                        exp.Max(this=exp.column("time")),
                        *[exp.Count(this=exp.column(c)) for c in columns]).from_("events")
    rows = store.query(select.where(_project(project_id)).group_by(exp.column("event"))
                       .sql(store.dialect), control=control).rows
    events = []
    props: dict[str, dict[str, Any]] = {}
    for row in rows:
        counts = row[4:]
        on = [name for (name, _), n in zip(typed, counts, strict=True) if n]
        events.append({"name": row[0], "volume": int(row[1]), "first_seen": _iso(row[2]), "last_seen": _iso(row[3]),
                       "properties": on})
        for (name, kind), n in zip(typed, counts, strict=True):
            if n:
                entry = props.setdefault(name, {"name": name, "type": str(kind), "typed": True, "volume": 0,
                                                "events": []})
                entry["volume"] += int(n)
                entry["events"].append(row[0])
    if props:  # first and last seen of each property found, in one more pass
        found = sorted(props)
        aggs: list[exp.Expr] = []
        for name in found:
            col = property_column(name)
            aggs += [exp.Min(this=_when_set(col, exp.column("time"))), exp.Max(this=_when_set(col, exp.column("time")))]
        first_last = store.query(exp.select(*aggs).from_("events").where(_project(project_id))
                                 .sql(store.dialect), control=control).rows[0]
        for i, name in enumerate(found):
            props[name]["first_seen"], props[name]["last_seen"] = _iso(first_last[2 * i]), _iso(first_last[2 * i + 1])
    events.sort(key=lambda e: (-e["volume"], e["name"]))
    return events, props


def _json_keys(store: EventStore, project_id: int, table: str, with_event: bool,
               control: QueryControl | None) -> list[tuple[Any, ...]]:
    """(event,) key, count over a sample of the JSON `properties` column of `table`."""
    dialect = store.dialect
    # rows without properties read as an empty object (ClickHouse cannot make an array of a NULL)
    properties = exp.Coalesce(this=exp.column("properties"), expressions=[exp.Literal.string("{}")])
    keys = _call(ARRAY_ROWS[dialect], _call(JSON_KEYS[dialect], properties)).as_("key")
    inner = exp.select(*([exp.column("event")] if with_event else []), keys).from_(table) \
        .where(_project(project_id)).limit(SAMPLE_ROWS)
    group = [exp.column("event"), exp.column("key")] if with_event else [exp.column("key")]
    outer = exp.select(*group, exp.Count(this=exp.Star())).from_(inner.subquery("s")).group_by(*group)
    return store.query(outer.sql(dialect), control=control).rows


def build_catalogue(store: EventStore, project_id: int, control: QueryControl | None = None) -> Catalogue:
    """Everything the store has seen for one project (JSON property keys from a sample of recent rows);
    `control` can cancel it from another thread (the server does at shutdown)."""
    events, props = _typed(store, project_id, control)
    by_event = {e["name"]: e for e in events}
    for event, key, count in _json_keys(store, project_id, "events", True, control):
        if key in props and props[key]["typed"]:
            continue
        entry = props.setdefault(key, {"name": key, "type": "string", "typed": False, "volume": 0, "events": [],
                                       "first_seen": None, "last_seen": None, "sampled": True})
        entry["volume"] += int(count)
        entry["events"].append(event)
        if event in by_event and key not in by_event[event]["properties"]:
            by_event[event]["properties"].append(key)
    person = [{"name": key, "volume": int(count)}
              for key, count in _json_keys(store, project_id, "persons", False, control)]
    person.sort(key=lambda p: (-p["volume"], p["name"]))
    properties = sorted(props.values(), key=lambda p: (-p["volume"], p["name"]))
    for p in properties:
        p["events"].sort()
    return Catalogue(events=events, properties=properties, person_properties=person,
                     groups=group_catalogue(store, project_id, control))


def _groups_of(project_id: int) -> exp.Expr:
    return exp.and_(_project(project_id), exp.column("kind").eq(exp.Literal.string("group")))


def group_catalogue(store: EventStore, project_id: int, control: QueryControl | None = None) -> list[dict[str, Any]]:
    """Group types (school, institution, class...) with how many groups each has and their property keys."""
    dialect = store.dialect
    counted = exp.select(exp.column("entity_type"), exp.Count(this=exp.Star())).from_("entities") \
        .where(_groups_of(project_id)).group_by(exp.column("entity_type"))
    groups = {row[0]: {"type": row[0], "count": int(row[1]), "properties": []}
              for row in store.query(counted.sql(dialect), control=control).rows}
    properties = exp.Coalesce(this=exp.column("properties"), expressions=[exp.Literal.string("{}")])
    keys = _call(ARRAY_ROWS[dialect], _call(JSON_KEYS[dialect], properties)).as_("key")
    inner = exp.select(exp.column("entity_type"), keys).from_("entities").where(_groups_of(project_id)) \
        .limit(SAMPLE_ROWS)
    outer = exp.select(exp.column("entity_type"), exp.column("key"), exp.Count(this=exp.Star())) \
        .from_(inner.subquery("s")).group_by(exp.column("entity_type"), exp.column("key"))
    for group_type, key, count in store.query(outer.sql(dialect), control=control).rows:
        if group_type in groups:
            groups[group_type]["properties"].append({"name": key, "volume": int(count)})
    for g in groups.values():
        g["properties"].sort(key=lambda p: (-p["volume"], p["name"]))
    return sorted(groups.values(), key=lambda g: g["type"])


def group_names(store: EventStore, project_id: int, group_type: str, keys: list[str]) -> dict[str, str | None]:
    """The stored `name` property of groups of one type, by key (None where a group has no name)."""
    if not keys:
        return {}
    select = exp.select(exp.column("entity_key"), exp.column("properties")).from_("entities").where(exp.and_(
        _groups_of(project_id), exp.column("entity_type").eq(exp.Literal.string(group_type)),
        exp.In(this=exp.column("entity_key"), expressions=[exp.Literal.string(k) for k in keys])))
    found: dict[str, str | None] = dict.fromkeys(keys)
    for key, properties in store.query(select.sql(store.dialect)).rows:
        value = orjson.loads(properties) if isinstance(properties, str | bytes) and properties else properties
        name = value.get("name") if isinstance(value, dict) else None
        found[key] = str(name) if name not in (None, "") else None
    return found
