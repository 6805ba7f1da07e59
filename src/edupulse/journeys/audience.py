"""Who a scheduled journey reaches: the members of a saved segment (through the query service, on the event
store), or the persons with a tag value. Also the answers to segment conditions of single persons.

`TagSource` is the narrow interface journeys need from tags (members of a tag value, how many, whether a
person has one); without it, `NoTagSource` reaches nobody."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import orjson
from sqlglot import exp

from edupulse.journeys.model import Audience
from edupulse.journeys.person import Person
from edupulse.meta.db import MetadataStore, ProjectInfo
from edupulse.queries.base import Executor
from edupulse.queries.compile import Context, literal
from edupulse.queries.service import QueryService
from edupulse.store.base import QueryControl

MAX_AUDIENCE = 20_000_000


class TagSource(Protocol):
    def members(self, project_id: int, tag: str, value: str | None) -> list[Person]: ...

    def count(self, project_id: int, tag: str, value: str | None) -> int: ...

    def has_tag(self, project_id: int, person: Person, tag: str, value: str | None) -> bool: ...


class NoTagSource:
    def members(self, project_id: int, tag: str, value: str | None) -> list[Person]:
        return []

    def count(self, project_id: int, tag: str, value: str | None) -> int:
        return 0

    def has_tag(self, project_id: int, person: Person, tag: str, value: str | None) -> bool:
        return False


def resolved_person(ctx: Context) -> exp.Expr:
    """The person of an identity after merges."""
    return _resolved(ctx)


def identities_tree(ctx: Context) -> exp.Select:
    """(person, id_type, id_value, properties) of every identity of the project."""
    return _identities(ctx)


def persons_of(rows: list[tuple[Any, ...]]) -> list[Person]:
    return _persons(rows)


def _resolved(ctx: Context) -> exp.Expr:
    return ctx.dialect.resolved(exp.column("person_id", "o"), exp.column("person_id", "i"))


def _identities(ctx: Context) -> exp.Select:
    p = ctx.project_id
    return (exp.select(_resolved(ctx).as_("person_id"), exp.column("id_type", "i"), exp.column("id_value", "i"),
                       exp.column("properties", "pe"))
            .from_(exp.table_("identities").as_("i"))
            .join(exp.table_("person_overrides").as_("o"), on=exp.and_(
                exp.column("project_id", "o").eq(literal(p)),
                exp.column("old_person_id", "o").eq(exp.column("person_id", "i"))), join_type="left")
            .join(exp.table_("persons").as_("pe"), on=exp.and_(
                exp.column("project_id", "pe").eq(literal(p)),
                exp.column("person_id", "pe").eq(_resolved(ctx))), join_type="left")
            .where(exp.column("project_id", "i").eq(literal(p))))


def _persons(rows: list[tuple[Any, ...]]) -> list[Person]:
    ids: dict[int, list[tuple[str, str]]] = {}
    props: dict[int, Any] = {}
    for person_id, id_type, id_value, properties in rows:
        ids.setdefault(int(person_id), []).append((str(id_type), str(id_value)))
        if properties is not None and int(person_id) not in props:
            props[int(person_id)] = properties
    out = []
    for person_id, pairs in ids.items():
        raw = props.get(person_id)
        properties = orjson.loads(raw) if isinstance(raw, str | bytes) else dict(raw or {})
        out.append(Person.of(sorted(pairs), properties))
    return out


class QueryAudience:
    """Segment members and segment conditions through the query service; tags through a TagSource."""

    def __init__(self, meta: MetadataStore, queries: QueryService, tags: TagSource | None = None) -> None:
        self.meta, self.queries, self.tags = meta, queries, tags or NoTagSource()

    def context(self, project_id: int) -> Context:
        return self.queries.context(self._project(project_id), now=dt.datetime.now(dt.UTC))

    def project(self, project_id: int) -> ProjectInfo:
        return self._project(project_id)

    def executor(self, ctx: Context) -> Executor:
        return self._executor(ctx)

    def _executor(self, ctx: Context) -> Executor:
        return Executor(self.queries.store, ctx.dialect, QueryControl(self.queries.limits.timeout_seconds),
                        self.queries.limits)

    def _project(self, project_id: int) -> ProjectInfo:
        found = next((p for p in self.meta.projects() if p.id == project_id), None)
        if found is None:
            raise ValueError(f"no project with id {project_id}")
        return found

    def members(self, project_id: int, audience: Audience, now: dt.datetime) -> list[Person]:
        if audience.tag is not None:
            return self.tags.members(project_id, audience.tag, audience.value)
        assert audience.segment is not None
        ctx = self.queries.context(self._project(project_id), now=now)
        members = ctx.segments(audience.segment, ctx)
        tree = _identities(ctx).where(exp.In(this=_resolved(ctx), query=exp.Subquery(this=members)))
        return _persons(self._executor(ctx).run(tree, max_rows=MAX_AUDIENCE))

    def properties(self, project_id: int, ids: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The person properties of the persons with these identities, by identity."""
        if not ids:
            return {}
        ctx = self.queries.context(self._project(project_id), now=dt.datetime.now(dt.UTC))
        pairs = [exp.Tuple(expressions=[literal(t), literal(v)]) for t, v in ids]
        tree = _identities(ctx).where(exp.In(this=exp.Tuple(expressions=[
            exp.column("id_type", "i"), exp.column("id_value", "i")]), expressions=pairs))
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for _, id_type, id_value, raw in self._executor(ctx).run(tree, max_rows=len(ids) * 4 + 10):
            props = orjson.loads(raw) if isinstance(raw, str | bytes) else dict(raw or {})
            out[(str(id_type), str(id_value))] = props
        return out

    def reach(self, project_id: int, trigger: Any, now: dt.datetime) -> dict[str, Any]:
        """How many persons the trigger would reach now: a segment's members, the persons with the tag value
        in force (a tag audience, getting or losing a tag value), or the persons who did the trigger's event in
        the last 7 days."""
        project = self._project(project_id)
        ctx = self.queries.context(project, now=now)
        segment = getattr(getattr(trigger, "audience", None), "segment", None)
        segment = segment if segment is not None else getattr(trigger, "segment_entered", None) \
            if getattr(trigger, "segment_entered", None) is not None else getattr(trigger, "segment_left", None)
        if segment is not None:
            members = ctx.segments(segment, ctx)
            tree = exp.select(exp.func("count", exp.Star())).from_(exp.Subquery(
                this=members, alias=exp.TableAlias(this=exp.to_identifier("m"))))
            return {"persons": int(self._executor(ctx).run(tree, max_rows=1)[0][0]), "basis": "segment"}
        event = getattr(trigger, "event", None)
        if event is not None:
            since = now - dt.timedelta(days=7)
            tree = (exp.select(exp.func("count", exp.Distinct(expressions=[exp.column("person_id")])))
                    .from_(exp.table_("events"))
                    .where(exp.and_(exp.column("project_id").eq(literal(project_id)),
                                    exp.column("event").eq(literal(event)),
                                    exp.column("time") >= exp.cast(literal(since.isoformat()), "TIMESTAMPTZ"))))
            return {"persons": int(self._executor(ctx).run(tree, max_rows=1)[0][0]), "basis": "event_7d"}
        audience = getattr(trigger, "audience", None)
        tag = audience if getattr(audience, "tag", None) is not None else \
            getattr(trigger, "tag_entered", None) or getattr(trigger, "tag_left", None)
        if tag is not None:
            return {"persons": self.tags.count(project_id, tag.tag, tag.value), "basis": "tag"}
        return {"persons": 0, "basis": "segment"}

    def in_segment(self, project_id: int, segment: str | int, person: Person) -> bool:
        ctx = self.queries.context(self._project(project_id), now=dt.datetime.now(dt.UTC))
        members = ctx.segments(segment, ctx)
        pairs = [exp.Tuple(expressions=[literal(t), literal(v)]) for t, v in person.ids]
        tree = (exp.select(literal(1)).from_(exp.Subquery(this=_identities(ctx), alias=exp.TableAlias(
                    this=exp.to_identifier("x"))))
                .where(exp.and_(exp.In(this=exp.Tuple(expressions=[exp.column("id_type", "x"),
                                                                     exp.column("id_value", "x")]),
                                       expressions=pairs),
                                exp.In(this=exp.column("person_id", "x"), query=exp.Subquery(this=members))))
                .limit(1))
        return bool(self._executor(ctx).run(tree, max_rows=1))

    def has_tag(self, project_id: int, person: Person, tag: str, value: str | None) -> bool:
        return self.tags.has_tag(project_id, person, tag, value)
