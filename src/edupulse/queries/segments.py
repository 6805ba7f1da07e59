"""Segments (分群): person definitions built from conditions (did an event at least / at most / exactly n times
in a window, person properties, membership of other segments) combined with and / or / not; compiled to a
query selecting the `person_id` of the members. Saved segments are used as filters in every model (through
Context.segments) and listed by the `segments` kind.

A definition compiles to one pass over the project's events that counts, per person, the events of every
event condition (count_if per condition), joined to the project's persons, so that "at most" and "did not"
also hold for persons who never did the event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import (
    DateRange,
    Filter,
    Model,
    PropertyFilter,
    PropertyName,
    PropertyRef,
    TagFilter,
    local_midnight,
)
from edupulse.queries.compile import EVENTS, PERSON_COLUMN, PERSONS, Context, SegmentResolver
from edupulse.queries.errors import QueryError
from edupulse.queries.metadata import SavedSegment
from edupulse.queries.person import (
    MAX_PAGE,
    PersonRow,
    persons_page,
    persons_source,
    persons_statements,
    persons_table,
)
from edupulse.queries.results import Result, Table

AGGREGATE = "a"


# the definition -------------------------------------------------------------------------------------


class Window(Model):
    """Whole days in the project's time zone: `last_days` N is today and the N - 1 days before it (relative to
    the time the query runs); or `date_from` / `date_to` as in every date range (absolute or relative)."""

    last_days: int | None = Field(None, ge=1, le=36500)
    date_from: dt.date | str | None = None
    date_to: dt.date | str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Window:
        if self.last_days is not None and (self.date_from is not None or self.date_to is not None):
            raise ValueError('a window has either "last_days" or "date_from" / "date_to", not both')
        if self.last_days is None and self.date_from is None:
            raise ValueError('a window needs "last_days" or "date_from"')
        if self.date_from is not None:
            DateRange(date_from=self.date_from, date_to=self.date_to or "today")
        return self

    def bounds(self, ctx: Context) -> tuple[dt.datetime, dt.datetime]:
        """UTC instants: from the first day's local midnight to the midnight after the last day."""
        now = ctx.now or dt.datetime.now(dt.UTC)
        if self.last_days is not None:
            today = now.astimezone(ctx.timezone).date()
            start, end = today - dt.timedelta(days=self.last_days - 1), today
        else:
            assert self.date_from is not None
            start, end = DateRange(date_from=self.date_from, date_to=self.date_to or "today").days(ctx.timezone, now)
        return local_midnight(start, ctx.timezone), local_midnight(end + dt.timedelta(days=1), ctx.timezone)


class EventCondition(Model):
    """Did `event` (with these event property filters, in the window) at least / at most / exactly n times.
    Without a count: at least once. `at_most: 0` (or `exactly: 0`) is "did not"."""

    event: str = Field(min_length=1, max_length=100)
    at_least: int | None = Field(None, ge=0, le=1_000_000_000)
    at_most: int | None = Field(None, ge=0, le=1_000_000_000)
    exactly: int | None = Field(None, ge=0, le=1_000_000_000)
    window: Window | None = Field(None, description="default: all time")
    time: PropertyName | None = Field(None, description="the window applies to this time property of the event "
                                                        "(a lesson's starts_at; where missing, when the event was "
                                                        "sent), and only events whose time so read has come count")
    filters: list[Filter] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _counts(self) -> EventCondition:
        if self.exactly is not None and (self.at_least is not None or self.at_most is not None):
            raise ValueError('"exactly" cannot be combined with "at_least" or "at_most"')
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least {self.at_least} is more than at_most {self.at_most}: nobody matches")
        return self


class PropertyCondition(PropertyFilter):
    """A person property condition: `grade` or `person.grade` (event properties belong in an event condition)."""

    @model_validator(mode="after")
    def _person(self) -> PropertyCondition:
        if self.property.startswith("event."):
            raise ValueError(f"{self.property!r}: a segment's property conditions are person properties; filter "
                             "event properties inside an event condition")
        return self

    def person_property(self) -> PropertyFilter:
        name = PropertyRef.parse(self.property).name
        return PropertyFilter(property=f"person.{name}", op=self.op, value=self.value)


class SegmentCondition(Model):
    """Membership of another saved segment (by name or id)."""

    segment: str | int


class TagCondition(TagFilter):
    """The person's value in force of a person tag: `{"tag": "lead_tier", "op": "in", "value": ["A", "B"]}`."""


class AndCondition(Model):
    all: list[Condition] = Field(alias="and", min_length=1, max_length=100)
    model_config = {**Model.model_config, "populate_by_name": True}


class OrCondition(Model):
    any: list[Condition] = Field(alias="or", min_length=1, max_length=100)
    model_config = {**Model.model_config, "populate_by_name": True}


class NotCondition(Model):
    negated: Condition = Field(alias="not")
    model_config = {**Model.model_config, "populate_by_name": True}


_TAGS = {"and": "and", "all": "and", "or": "or", "any": "or", "not": "not", "negated": "not", "event": "event",
         "property": "property", "segment": "segment", "tag": "tag"}
_TYPES: dict[type, str] = {}


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((_TAGS[key] for key in value if key in _TAGS), None)
    return _TYPES.get(type(value))


Condition = Annotated[
    Annotated[AndCondition, Tag("and")] | Annotated[OrCondition, Tag("or")] | Annotated[NotCondition, Tag("not")]
    | Annotated[EventCondition, Tag("event")] | Annotated[PropertyCondition, Tag("property")]
    | Annotated[SegmentCondition, Tag("segment")] | Annotated[TagCondition, Tag("tag")],
    Discriminator(_tag, custom_error_type="condition",
                  custom_error_message="a condition has one of the keys and, or, not, event, property, segment, tag"),
]

_TYPES.update({AndCondition: "and", OrCondition: "or", NotCondition: "not", EventCondition: "event",
               PropertyCondition: "property", SegmentCondition: "segment", TagCondition: "tag"})
for _model in (AndCondition, OrCondition, NotCondition):
    _model.model_rebuild()


class SegmentDefinition(Model):
    """The persons who meet `condition`."""

    condition: Condition


def walk(node: Any) -> Iterator[Any]:
    """Every condition in a definition, depth first."""
    if isinstance(node, SegmentDefinition):
        yield from walk(node.condition)
        return
    yield node
    children = (node.all if isinstance(node, AndCondition) else node.any if isinstance(node, OrCondition)
                else [node.negated] if isinstance(node, NotCondition) else [])
    for child in children:
        yield from walk(child)


def references(definition: SegmentDefinition) -> list[str | int]:
    """The segments a definition refers to directly (membership conditions)."""
    return [node.segment for node in walk(definition) if isinstance(node, SegmentCondition)]


# compiling ------------------------------------------------------------------------------------------


def compile_definition(definition: SegmentDefinition, ctx: Context) -> exp.Select:
    """SELECT person_id of the project's persons who meet the definition."""
    leaves = [node for node in walk(definition) if isinstance(node, EventCondition)]
    counts = {id(node): f"c{i}" for i, node in enumerate(leaves)}
    tests = [_event_test(node, ctx) for node in leaves]
    tree = exp.select(exp.column("person_id", PERSONS)).from_(persons_source(ctx))
    if leaves:
        columns = [exp.column(PERSON_COLUMN, EVENTS).as_("pid"),
                   *[ctx.dialect.count_if(test).as_(counts[id(node)])
                     for node, test in zip(leaves, tests, strict=True)]]
        aggregate = ctx.scan(columns, [exp.or_(*tests) if len(tests) > 1 else tests[0]]).group_by(
            exp.column(PERSON_COLUMN, EVENTS))
        tree = tree.join(aggregate.subquery(AGGREGATE), on=exp.column("pid", AGGREGATE).eq(
            exp.column("person_id", PERSONS)), join_type="left")
    return tree.where(_boolean(definition.condition, ctx, counts))


def compile_first_match(conditions: list[Any], values: list[exp.Expr], ctx: Context) -> exp.Select:
    """SELECT person_id, value: for each of the project's persons, the value of the first condition they meet
    (NULL: none). Every event condition of every condition is counted in the same one pass over the events."""
    leaves = [node for condition in conditions for node in walk(condition) if isinstance(node, EventCondition)]
    counts = {id(node): f"c{i}" for i, node in enumerate(leaves)}
    case = exp.Case()
    for condition, value in zip(conditions, values, strict=True):
        case = case.when(_boolean(condition, ctx, counts), value)
    tree = exp.select(exp.column("person_id", PERSONS), case.as_("value")).from_(persons_source(ctx))
    if leaves:
        tests = [_event_test(node, ctx) for node in leaves]
        columns = [exp.column(PERSON_COLUMN, EVENTS).as_("pid"),
                   *[ctx.dialect.count_if(test).as_(counts[id(node)])
                     for node, test in zip(leaves, tests, strict=True)]]
        aggregate = ctx.scan(columns, [exp.or_(*tests) if len(tests) > 1 else tests[0]]).group_by(
            exp.column(PERSON_COLUMN, EVENTS))
        tree = tree.join(aggregate.subquery(AGGREGATE), on=exp.column("pid", AGGREGATE).eq(
            exp.column("person_id", PERSONS)), join_type="left")
    return tree


def _event_test(node: EventCondition, ctx: Context) -> exp.Expr:
    parts: list[exp.Expr] = [exp.column("event", EVENTS).eq(exp.Literal.string(node.event))]
    if node.time is not None:
        parts += _moment_test(node, ctx)
    elif node.window is not None:
        parts += ctx.in_time(*node.window.bounds(ctx))
    parts += ctx.conditions(node.filters)
    return exp.and_(*parts) if len(parts) > 1 else parts[0]


def _moment_test(node: EventCondition, ctx: Context) -> list[exp.Expr]:
    """The window on the event's `time` property (the event's own time where it has none), up to now: a lesson
    counts once it has started."""
    assert node.time is not None
    moment = ctx.moment(node.time, "time")
    now = ctx.now or dt.datetime.now(dt.UTC)
    low, high = node.window.bounds(ctx) if node.window is not None else (None, None)
    d = ctx.dialect
    tests: list[exp.Expr] = [exp.LT(this=moment, expression=d.timestamp(high)) if high is not None and high <= now
                             else exp.LTE(this=moment, expression=d.timestamp(now))]
    if low is not None:
        tests.append(exp.GTE(this=moment.copy(), expression=d.timestamp(low)))
    return tests


def _boolean(node: Any, ctx: Context, counts: dict[int, str]) -> exp.Expr:
    if isinstance(node, AndCondition):
        return exp.and_(*[exp.Paren(this=_boolean(c, ctx, counts)) for c in node.all])
    if isinstance(node, OrCondition):
        return exp.or_(*[exp.Paren(this=_boolean(c, ctx, counts)) for c in node.any])
    if isinstance(node, NotCondition):
        return exp.Not(this=exp.Paren(this=_boolean(node.negated, ctx, counts)))
    if isinstance(node, PropertyCondition):
        # NOT over a property test must hold for persons without the property too: compare to false, not NULL
        return exp.func("coalesce", ctx.condition(node.person_property(), PERSONS), exp.false())
    if isinstance(node, SegmentCondition):
        return exp.In(this=exp.column("person_id", PERSONS), query=exp.Subquery(this=ctx.segments(node.segment, ctx)))
    if isinstance(node, TagCondition):
        if ctx.tag(node.tag).unit != "person":
            raise QueryError(f"tag {node.tag!r} tags {ctx.tag(node.tag).unit}, not persons: a segment holds persons")
        return exp.In(this=exp.column("person_id", PERSONS), query=exp.Subquery(this=ctx.tag_members(node)))
    assert isinstance(node, EventCondition)
    n = exp.func("coalesce", exp.column(counts[id(node)], AGGREGATE), exp.Literal.number(0))
    if node.exactly is not None:
        return n.eq(exp.Literal.number(node.exactly))
    tests: list[exp.Expr] = []
    if node.at_least is not None or node.at_most is None:
        tests.append(exp.GTE(this=n, expression=exp.Literal.number(1 if node.at_least is None else node.at_least)))
    if node.at_most is not None:
        tests.append(exp.LTE(this=n.copy(), expression=exp.Literal.number(node.at_most)))
    return exp.and_(*tests) if len(tests) > 1 else tests[0]


# saved segments as filters --------------------------------------------------------------------------


class SegmentNotFound(QueryError):
    pass


def segment_resolver(find: Callable[[str | int], SavedSegment | None]) -> SegmentResolver:
    """How a query finds saved segments (`find`: by name or id, from the project's metadata), compiled on use.
    A segment that (through others) refers to itself is an error naming the cycle."""
    stack: list[str] = []

    def resolve(name: str | int, ctx: Context) -> exp.Query:
        saved = find(name)
        if saved is None:
            raise SegmentNotFound(f"segment {name!r}: no such segment in this project "
                                  "(list them with GET /api/v1/segments or edupulse segment list)")
        if saved.name in stack:
            cycle = " → ".join([*stack[stack.index(saved.name):], saved.name])
            raise QueryError(f"segment {saved.name!r} refers to itself: {cycle}")
        stack.append(saved.name)
        try:
            return compile_definition(SegmentDefinition.model_validate(saved.definition), ctx)
        finally:
            stack.pop()

    return resolve


# the segments kind ----------------------------------------------------------------------------------


class SegmentsQuery(Model):
    kind: Literal["segments"]
    segment: str | int | None = Field(None, description="a saved segment, by name or id")
    definition: SegmentDefinition | None = Field(None, description="an unsaved definition, to preview")
    limit: int = Field(50, ge=0, le=MAX_PAGE, description="persons per page; 0: only the count")
    offset: int = Field(0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _one_source(self) -> SegmentsQuery:
        if (self.segment is None) == (self.definition is None):
            raise ValueError('give either "segment" (a saved one) or "definition" (to preview), not both')
        return self


class SegmentsResponse(Result):
    segment: str | int | None
    total: int
    persons: list[PersonRow]
    next_offset: int | None

    def to_table(self) -> Table:
        return persons_table(self.persons)


class SegmentsRunner(QueryRunner[SegmentsQuery, SegmentsResponse]):
    """The members of a segment: how many, and a page of them with their properties and identities."""

    kind = "segments"
    query_model = SegmentsQuery
    response_model = SegmentsResponse

    def to_queries(self) -> dict[str, exp.Expr]:
        q, ctx = self.query, self.ctx
        if q.definition is not None:
            members: exp.Query = compile_definition(q.definition, ctx)
        else:
            assert q.segment is not None
            members = ctx.segments(q.segment, ctx)
        inside = exp.In(this=exp.column("person_id", PERSONS), query=exp.Subquery(this=members))
        if q.limit == 0:
            return {"count": exp.select(exp.Count(this=exp.Star())).from_(persons_source(ctx)).where(inside)}
        return persons_statements(ctx, [inside], q.limit, q.offset)

    def calculate(self) -> SegmentsResponse:
        q = self.query
        statements = self.to_queries()
        if q.limit == 0:
            total = self.run(statements["count"])
            return SegmentsResponse(segment=q.segment, total=int(total[0][0]), persons=[], next_offset=None)
        page = persons_page(self, statements, q.limit, q.offset)
        return SegmentsResponse(segment=q.segment, total=page.total, persons=page.persons,
                                next_offset=page.next_offset)
