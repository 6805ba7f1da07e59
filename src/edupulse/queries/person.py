"""Persons: one person's profile, identities and event timeline across merged identities (`person`), and
person search by identity value prefix, person properties and segments (`persons`).

Two kinds because they answer different questions with different shapes: `person` is one profile with a
paged timeline; `persons` is a paged list with a count (the same list `segments` gives for its members).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import (
    DateRange,
    Filter,
    FilterGroup,
    Model,
    PropertyFilter,
    PropertyName,
    PropertyRef,
    local_midnight,
)
from edupulse.queries.compile import EVENTS, PERSON_COLUMN, PERSONS, Context
from edupulse.queries.errors import QueryError
from edupulse.queries.results import IDENTITIES, Identity, Part, Properties, Result, Table, absent_when_none
from edupulse.queries.sources import EventSource, source_of
from edupulse.queries.tagvalues import tag_alias, tag_values_tree, value_column
from edupulse.store.schema import GROUP_SLOTS, property_column

MAX_PAGE = 1000


def _n(value: int) -> exp.Expr:
    return exp.Literal.number(value)


def _s(value: str) -> exp.Expr:
    return exp.Literal.string(value)


def project_rows(ctx: Context, table: str, alias: str | None = None) -> exp.Expr:
    """`table.project_id = <project>`."""
    return exp.column("project_id", alias or table).eq(_n(ctx.project_id))


# queries ------------------------------------------------------------------------------------------


class IdentityRef(Model):
    """An identity by type and value, or by value alone (then it must belong to one person)."""

    type: str | None = Field(None, min_length=1, max_length=64)
    value: str = Field(min_length=1, max_length=255)


class PersonQuery(Model):
    kind: Literal["person"]
    person_id: int | None = Field(None, ge=1, description="a person id (one merged away leads to its survivor)")
    identity: IdentityRef | None = None
    events: list[str] | None = Field(None, min_length=1, max_length=100, description="only these event names")
    date_range: DateRange | None = Field(None, description="only events on these days (default: all)")
    limit: int = Field(50, ge=1, le=MAX_PAGE, description="events per page")
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the previous page")
    offset: int = Field(0, ge=0, le=1_000_000, description="events to skip (instead of a cursor)")

    @model_validator(mode="after")
    def _one_person(self) -> PersonQuery:
        if (self.person_id is None) == (self.identity is None):
            raise ValueError('give either "person_id" or "identity", not both')
        if self.cursor is not None and self.offset:
            raise ValueError('give either "cursor" or "offset", not both')
        if self.cursor is not None:
            decode_cursor(self.cursor)
        return self


def encode_cursor(time_us: int, skip: int) -> str:
    return base64.urlsafe_b64encode(f"{time_us}:{skip}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        time_us, skip = (int(part) for part in raw.split(":"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryError(f"cursor {text!r} is not a cursor of a timeline page: pass next_cursor unchanged") from None
    if skip < 0:
        raise QueryError(f"cursor {text!r} is not a cursor of a timeline page: pass next_cursor unchanged")
    return time_us, skip


def person_filter(value: Filter, where: str) -> Filter:
    """Person search filters are person properties and segments; an event property there is a mistake."""
    if isinstance(value, FilterGroup):
        for i, child in enumerate((value.all if value.all is not None else value.any) or []):
            person_filter(child, f"{where}.{i}")
    elif isinstance(value, PropertyFilter) and PropertyRef.parse(value.property).source != "person":
        raise ValueError(f"{where}: persons are filtered by person properties (write person.{value.property}) "
                         "and segments")
    return value


class PersonsQuery(Model):
    kind: Literal["persons"]
    search: str | None = Field(None, min_length=1, max_length=255,
                               description="persons with an identity whose value starts with this text")
    identity_type: str | None = Field(None, min_length=1, max_length=64, description="only identities of this type")
    whole_value_types: list[str] = Field(default_factory=list, max_length=100,
                                         description="identity types that `search` matches only as a whole value, "
                                                     "not by prefix (personal ones, for callers without "
                                                     "personal:view)")
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000)
    tags: list[str] = Field(default_factory=list, max_length=20,
                            description="tags whose values in force are given for each person (and CSV columns)")
    order_by: PropertyName | None = Field(None, description="a person property to sort by (numbers by value, "
                                                           "then other values as text; unset last), default: person id")
    descending: bool = False

    @field_validator("order_by")
    @classmethod
    def _person_property(cls, value: str | None) -> str | None:
        if value is not None and PropertyRef.parse(value).source != "person":
            raise ValueError(f"{value!r}: persons are sorted by a person property (person.NAME)")
        return value

    @field_validator("filters")
    @classmethod
    def _person_filters(cls, values: list[Filter]) -> list[Filter]:
        for i, value in enumerate(values):
            person_filter(value, f"filter {i}")
        return values


# the responses ------------------------------------------------------------------------------------

Identities = Annotated[list[Identity], IDENTITIES]


class PersonRow(Part):
    person_id: int
    properties: Properties
    identities: Identities
    tags: dict[str, Any] | None = absent_when_none()  # the values in force of the tags asked for


class PersonsPage(Part):
    """A page of persons with the count of all that match."""

    total: int
    persons: list[PersonRow]
    next_offset: int | None


class PersonsResponse(Result):
    total: int
    persons: list[PersonRow]
    next_offset: int | None

    def to_table(self) -> Table:
        return persons_table(self.persons)


def persons_table(persons: list[PersonRow]) -> Table:
    tags = sorted({name for p in persons for name in (p.tags or {})})
    rows: list[list[Any]] = [[p.person_id, orjson.dumps(p.properties).decode(),
                              " ".join(f"{i.type}:{i.value}" for i in p.identities),
                              *[(p.tags or {}).get(name) for name in tags]] for p in persons]
    return ["person_id", "properties", "identities", *[f"tag.{name}" for name in tags]], rows


class Profile(Part):
    person_id: int
    properties: Properties
    identities: Identities
    merged_from: list[int]


class FoundBy(Part):
    """How the person was found: by the id asked (and the person it was merged into), or by an identity."""

    person_id: int | None = absent_when_none()
    merged_into: int | None = absent_when_none()
    identity: Identity | None = absent_when_none()


class TimelineEvent(Part):
    time: str
    event: str
    distinct_id: str
    properties: Properties
    groups: dict[str, str] | None = absent_when_none()
    source: EventSource  # which system it came from and how (queries/sources.py)


class PersonResponse(Result):
    person: Profile
    found_by: FoundBy
    total_events: int
    events: list[TimelineEvent]
    next_cursor: str | None
    next_offset: int | None

    def to_table(self) -> Table:
        rows: list[list[Any]] = [[e.time, e.event, e.distinct_id, orjson.dumps(e.properties).decode()]
                                 for e in self.events]
        return ["time", "event", "distinct_id", "properties"], rows


# shared by persons and segments ---------------------------------------------------------------------


def persons_source(ctx: Context) -> exp.Expr:
    """The project's persons as `p` with `resolved_person_id`, so that Context.condition (person properties,
    segments) applies to them as it does to events."""
    inner = (exp.select(exp.column("person_id"), exp.column("person_id").as_(PERSON_COLUMN), exp.column("properties"))
             .from_("persons").where(project_rows(ctx, "persons")))
    scope = ctx.in_scope(exp.column("person_id"))
    if scope is not None:  # callers restricted to some persons (advisors) list only those
        inner = inner.where(scope)
    return inner.subquery(PERSONS)


def persons_statements(ctx: Context, conditions: list[exp.Expr], limit: int, offset: int,
                       order: list[exp.Ordered] | None = None) -> dict[str, exp.Expr]:
    """Count the persons matching the conditions (over `persons_source`), and one page of them ordered by
    `order` then person id (a row more than the page, to know whether there is a next one)."""
    where = exp.and_(*conditions) if conditions else None
    counted = exp.select(exp.Count(this=exp.Star())).from_(persons_source(ctx))
    page = (exp.select(exp.column("person_id", PERSONS), ctx.dialect.to_text(exp.column("properties", PERSONS)))
            .from_(persons_source(ctx)).order_by(*(order or []), exp.column("person_id", PERSONS))
            .limit(limit + 1).offset(offset))
    if where is not None:
        counted, page = counted.where(where), page.where(where)
    return {"count": counted, "page": page}


def persons_page(runner: QueryRunner[Any, Any], statements: dict[str, exp.Expr], limit: int,
                 offset: int) -> PersonsPage:
    """Run `persons_statements`; the page's persons with their properties and identities."""
    total = int(runner.run(statements["count"])[0][0])
    rows = runner.run(statements["page"], max_rows=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    identities = person_identities(runner, [int(r[0]) for r in rows])
    persons = [PersonRow(person_id=int(pid), properties=_json(props), identities=identities.get(int(pid), []))
               for pid, props in rows]
    return PersonsPage(total=total, persons=persons, next_offset=offset + limit if more else None)


def person_identities(runner: QueryRunner[Any, Any], person_ids: list[int]) -> dict[int, list[Identity]]:
    if not person_ids:
        return {}
    ctx = runner.ctx
    tree = (exp.select("person_id", "id_type", "id_value").from_("identities")
            .where(exp.and_(project_rows(ctx, "identities"),
                            exp.In(this=exp.column("person_id"), expressions=[_n(p) for p in person_ids])))
            .order_by("person_id", "id_type", "id_value"))
    out: dict[int, list[Identity]] = {}
    for pid, kind, value in runner.run(tree):
        out.setdefault(int(pid), []).append(Identity(type=kind, value=value))
    return out


def _json(text: Any) -> dict[str, Any]:
    if text is None or text == "":
        return {}
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def from_us(time_us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(time_us))


def local_iso(time_us: int, ctx: Context) -> str:
    return from_us(time_us).astimezone(ctx.timezone).isoformat()


# runners ----------------------------------------------------------------------------------------


class PersonRunner(QueryRunner[PersonQuery, PersonResponse]):
    """One person: profile, identities, persons merged into it, and a page of its event timeline (newest
    first)."""

    kind = "person"
    query_model = PersonQuery
    response_model = PersonResponse

    def to_queries(self) -> dict[str, exp.Expr]:
        """Finding the person; its profile and timeline are read once it is found."""
        q, ctx = self.query, self.ctx
        if q.person_id is not None:
            return {
                "survivor": exp.select("person_id").from_("person_overrides").where(exp.and_(
                    project_rows(ctx, "person_overrides"), exp.column("old_person_id").eq(_n(q.person_id)))),
                "exists": exp.select("person_id").from_("identities").where(exp.and_(
                    project_rows(ctx, "identities"),
                    exp.column("person_id").eq(_n(q.person_id)))).limit(1)}
        assert q.identity is not None
        ident = q.identity
        where = [project_rows(ctx, "identities"), exp.column("id_value").eq(_s(ident.value))]
        if ident.type is not None:
            where.append(exp.column("id_type").eq(_s(ident.type)))
        return {"identities": exp.select("id_type", "person_id").from_("identities").where(exp.and_(*where))
                .order_by("id_type", "person_id")}

    def calculate(self) -> PersonResponse:
        q = self.query
        person_id, found_by = self._resolve()
        scope = self.ctx.in_scope(_n(person_id))
        if scope is not None and not self.run(exp.select(_n(1)).where(scope)):
            # the same answer as for a person who does not exist: restricted callers learn nothing
            raise QueryError(f"{'person_id' if q.person_id is not None else 'identity'}: no such person in this "
                             "project")
        profile = self.run(exp.select(self.ctx.dialect.to_text(exp.column("properties"))).from_("persons").where(
            exp.and_(project_rows(self.ctx, "persons"), exp.column("person_id").eq(_n(person_id)))))
        merged = self.run(exp.select("old_person_id").from_("person_overrides").where(
            exp.and_(project_rows(self.ctx, "person_overrides"), exp.column("person_id").eq(_n(person_id))))
            .order_by("old_person_id"))
        merged_from = [int(r[0]) for r in merged]
        person = Profile(person_id=person_id, properties=_json(profile[0][0]) if profile else {},
                         identities=person_identities(self, [person_id]).get(person_id, []), merged_from=merged_from)
        stored_as = [person_id, *merged_from]
        return PersonResponse(person=person, found_by=found_by, **self._timeline(person_id, stored_as, q))

    def _resolve(self) -> tuple[int, FoundBy]:
        q = self.query
        statements = self.to_queries()
        if q.person_id is not None:
            survivor = self.run(statements["survivor"])
            person_id = int(survivor[0][0]) if survivor else q.person_id
            exists = self.run(statements["exists"] if person_id == q.person_id else exp.select("person_id").from_(
                "identities").where(exp.and_(project_rows(self.ctx, "identities"),
                                             exp.column("person_id").eq(_n(person_id)))).limit(1))
            if not exists:
                raise QueryError(f"person_id: no person {q.person_id} in this project")
            return person_id, FoundBy(person_id=q.person_id,
                                      merged_into=person_id if person_id != q.person_id else None)
        assert q.identity is not None
        ident = q.identity
        rows = self.run(statements["identities"])
        if not rows:
            what = f"{ident.type} {ident.value!r}" if ident.type else f"value {ident.value!r} (of any type)"
            raise QueryError(f"identity: no identity {what} in this project")
        persons = sorted({int(r[1]) for r in rows})
        if len(persons) > 1:
            listed = ", ".join(f"{kind}: person {pid}" for kind, pid in rows)
            raise QueryError(f"identity: the value {ident.value!r} belongs to {len(persons)} persons ({listed}); "
                             "give its type")
        return persons[0], FoundBy(identity=Identity(type=rows[0][0], value=ident.value))

    def _timeline(self, person_id: int, stored_as: list[int], q: PersonQuery) -> dict[str, Any]:
        """total_events, events (a page), next_cursor and next_offset."""
        ctx, d = self.ctx, self.ctx.dialect
        # The person's events are stored under its id or the ids merged into it: filtering the stored column
        # lets the engines skip other persons' rows before resolving merges.
        where: list[exp.Expr] = [exp.In(this=exp.column("person_id", EVENTS), expressions=[_n(p) for p in stored_as]),
                                 exp.column(PERSON_COLUMN, EVENTS).eq(_n(person_id))]
        if q.events:
            where.append(exp.In(this=exp.column("event", EVENTS), expressions=[_s(e) for e in q.events]))
        if q.date_range is not None:
            start, end = q.date_range.days(ctx.timezone, self.now)
            where += ctx.in_time(local_midnight(start, ctx.timezone),
                                 local_midnight(end + dt.timedelta(days=1), ctx.timezone))
        total = int(self.run(ctx.scan([exp.Count(this=exp.Star())], where))[0][0])
        page_where = list(where)
        skip = q.offset
        before_us = 0
        if q.cursor is not None:
            before_us, skip = decode_cursor(q.cursor)
            page_where.append(exp.LTE(this=exp.column("time", EVENTS), expression=d.timestamp(from_us(before_us))))
        typed = sorted(ctx.typed)
        columns: list[exp.Expr] = [
            d.epoch_us(exp.column("time", EVENTS)).as_("t"), exp.column("event", EVENTS),
            exp.column("distinct_id", EVENTS), d.to_text(exp.column("properties", EVENTS)).as_("props"),
            *[exp.column(f"group_{i}", EVENTS) for i in range(GROUP_SLOTS)],
            *[self._typed_value(name) for name in typed],
        ]
        # A total order, the same on both engines, so that pages neither repeat nor skip events: after the
        # time, every column shown (rows equal in all of them look the same in any order).
        ties = [exp.column("event", EVENTS), exp.column("insert_id", EVENTS), exp.column("distinct_id", EVENTS),
                exp.column("props"), *[exp.column(f"group_{i}", EVENTS) for i in range(GROUP_SLOTS)],
                *[exp.column(property_column(name), EVENTS) for name in typed]]
        order = [exp.Ordered(this=exp.column("t"), desc=True),
                 *[exp.Ordered(this=tie, nulls_first=True) for tie in ties]]
        tree = ctx.scan(columns, page_where).order_by(*order).limit(q.limit + 1).offset(skip)
        rows = self.run(tree, max_rows=q.limit + 1)
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        slots = {slot: name for name, slot in ctx.groups.items()}
        events = []
        for row in rows:
            properties = _json(row[3])
            for name, value in zip(typed, row[4 + GROUP_SLOTS:], strict=True):
                if value is not None:
                    properties[name] = _plain(value)
            groups = {slots.get(i, f"group_{i}"): key for i, key in enumerate(row[4:4 + GROUP_SLOTS]) if key}
            events.append(TimelineEvent(time=local_iso(row[0], ctx), event=row[1], distinct_id=row[2],
                                        properties=dict(sorted(properties.items())), groups=groups or None,
                                        source=source_of(row[1], properties)))
        result: dict[str, Any] = {"total_events": total, "events": events, "next_cursor": None, "next_offset": None}
        if more:
            last = int(rows[-1][0])
            same = sum(1 for r in rows if int(r[0]) == last)
            if q.cursor is not None:  # the rows skipped by the cursor share the last time only if it did not move
                next_skip = same + (skip if last == before_us else 0)
            elif int(rows[0][0]) == last and skip > 0:  # earlier pages may hold more events of that time
                newer = ctx.scan([exp.Count(this=exp.Star())], [*where, exp.GT(
                    this=exp.column("time", EVENTS), expression=d.timestamp(from_us(last)))])
                next_skip = skip + q.limit - int(self.run(newer)[0][0])
            else:
                next_skip = same
            result["next_cursor"] = encode_cursor(last, next_skip)
            result["next_offset"] = skip + q.limit if q.cursor is None else None
        return result

    def _typed_value(self, name: str) -> exp.Expr:
        column = exp.column(property_column(name), EVENTS)
        if self.ctx.typed[name].value == "time":
            return self.ctx.dialect.epoch_us(column)
        return column


class PersonsRunner(QueryRunner[PersonsQuery, PersonsResponse]):
    """Persons whose identity starts with a text and who match person property conditions and segments."""

    kind = "persons"
    query_model = PersonsQuery
    response_model = PersonsResponse

    def to_queries(self) -> dict[str, exp.Expr]:
        q, ctx = self.query, self.ctx
        conditions = ctx.conditions(q.filters, PERSONS)
        if q.search is not None or q.identity_type is not None:
            where = [project_rows(ctx, "identities")]
            if q.search is not None:
                prefix: exp.Expr = exp.StartsWith(this=exp.column("id_value"), expression=_s(q.search))
                if q.whole_value_types:
                    whole = exp.column("id_type").isin(*[_s(t) for t in q.whole_value_types])
                    prefix = exp.or_(exp.and_(exp.not_(whole.copy()), prefix),
                                     exp.and_(whole, exp.column("id_value").eq(_s(q.search))))
                where.append(prefix)
            if q.identity_type is not None:
                where.append(exp.column("id_type").eq(_s(q.identity_type)))
            matching = exp.select("person_id").from_("identities").where(exp.and_(*where))
            conditions.append(exp.In(this=exp.column("person_id", PERSONS), query=matching.subquery()))
        return persons_statements(ctx, conditions, q.limit, q.offset, self._order())

    def _order(self) -> list[exp.Ordered] | None:
        """Numbers by value, then other values as text, unset values last (in both directions, on both
        engines)."""
        q = self.query
        if q.order_by is None:
            return None
        value = self.ctx.property(q.order_by, PERSONS)[0]
        number = self.ctx.dialect.to_double(value.copy())
        return [exp.Ordered(this=value.copy().is_(exp.null())),
                exp.Ordered(this=number.copy().is_(exp.null())),
                exp.Ordered(this=number, desc=q.descending, nulls_first=False),
                exp.Ordered(this=value, desc=q.descending, nulls_first=False)]

    def calculate(self) -> PersonsResponse:
        page = persons_page(self, self.to_queries(), self.query.limit, self.query.offset)
        persons = page.persons
        if self.query.tags:
            values = self._tag_values([p.person_id for p in persons])
            persons = [p.model_copy(update={"tags": values.get(p.person_id, {})}) for p in persons]
        return PersonsResponse(total=page.total, persons=persons, next_offset=page.next_offset)

    def _tag_values(self, person_ids: list[int]) -> dict[int, dict[str, Any]]:
        """person -> tag -> value in force (numbers and times as numbers, seconds since 1970 for times)."""
        out: dict[int, dict[str, Any]] = {}
        if not person_ids:
            return out
        for name in self.query.tags:
            tag = self.ctx.tag(name)
            if tag.unit != "person":
                raise QueryError(f"tags: {name!r} tags {tag.unit}, not persons")
            alias = tag_alias(tag)
            tree = (exp.select(exp.column("person_id", alias), value_column(tag, alias))
                    .from_(tag_values_tree(self.ctx.project_id, tag).subquery(alias))
                    .where(exp.In(this=exp.column("person_id", alias), expressions=[_n(p) for p in person_ids])))
            for pid, value in self.run(tree):
                out.setdefault(int(pid), {})[name] = _plain(value)
        return out
