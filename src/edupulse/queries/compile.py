"""Compiling the shared parts of a query into sqlglot trees: properties, filters, the unit counted, the
scan of a project's events in a time range, time buckets in the project's time zone.

User values only ever become literals made by the tree, never pasted text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from edupulse.queries.common import (
    PERSON,
    Filter,
    FilterGroup,
    Granularity,
    Op,
    PropertyFilter,
    PropertyRef,
    Scalar,
    SegmentFilter,
    TagFilter,
    _is_number,
)
from edupulse.queries.dialect import DUCKDB, Dialect, local_us, truncate_us
from edupulse.queries.errors import QueryError
from edupulse.queries.tagvalues import TagRef, tag_alias, tag_key, tag_values_tree, value_column
from edupulse.store.schema import PropertyType, property_column

EVENTS = "e"  # alias of events_resolved in every query
PERSONS = "p"  # alias of persons
OVERRIDES = "o"  # alias of person_overrides
SCAN_MARK = "edupulse_scan"  # meta of a scan's SELECT: its project id
GROUP_ALIAS = "g"  # g0..g4: the entities row of the event's group in slot 0..4
PERSON_COLUMN = "resolved_person_id"

# name or id of a segment -> a query selecting `person_id` of its members
SegmentResolver = Callable[[str | int, "Context"], exp.Query]


def literal(value: Scalar) -> exp.Expr:
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def _no_segments(name: str | int, ctx: Context) -> exp.Query:
    raise QueryError(f"segment {name!r}: segments cannot be used here")


@dataclass
class Context:
    """What compiling a query needs to know: the project, its time zone, the store's typed columns, the
    project's group types (name -> slot) and how to look up segments."""

    project_id: int
    timezone: ZoneInfo
    typed: dict[str, PropertyType]
    dialect: Dialect = DUCKDB
    groups: dict[str, int] = field(default_factory=dict)
    segments: SegmentResolver = _no_segments
    # Access control: a condition on `e.resolved_person_id` that `scan` adds to every read of events, so
    # callers restricted to some persons (advisors) see only them (edupulse.queries.scope).
    person_scope: exp.Expr | None = None
    now: dt.datetime | None = None  # the query's "now", for relative windows of segments
    tags: dict[str, TagRef] = field(default_factory=dict)  # the project's tags by name
    # Read only events before this instant (a tag computed as of a moment ignores what came later)
    until: dt.datetime | None = None

    def tag(self, name: str) -> TagRef:
        found = self.tags.get(name)
        if found is None:
            known = ", ".join(sorted(self.tags)) or "none yet"
            raise QueryError(f"tag {name!r} is not a tag of this project (tags: {known})")
        return found

    def tag_members(self, f: TagFilter) -> exp.Select:
        """SELECT the unit key (person id, or group key) of the units whose tag value meets the filter."""
        tag = self.tag(f.tag)
        alias = tag_alias(tag)
        return (exp.select(exp.column(tag_key(tag), alias))
                .from_(tag_values_tree(self.project_id, tag).subquery(alias))
                .where(self._leaf(f.as_property(), alias)))

    def in_scope(self, person: exp.Expr) -> exp.Expr | None:
        """The person scope applied to another person column (persons.person_id, a literal), or None."""
        if self.person_scope is None:
            return None
        scope = self.person_scope.copy()
        if isinstance(scope, exp.In):
            scope.set("this", person.copy())
        return scope

    # properties ------------------------------------------------------------------------------------

    def property(self, text: str, table: str = EVENTS) -> tuple[exp.Expr, PropertyType | None]:
        """The expression of a property and its type (None: untyped, read from JSON as text)."""
        ref = PropertyRef.parse(text)
        if ref.source == "group":
            assert ref.group is not None
            slot = self._slot(ref.group)
            if ref.name is None:
                return exp.column(f"group_{slot}", table), None
            return self.dialect.json_text(exp.column("properties", f"{GROUP_ALIAS}{slot}"), ref.name), None
        assert ref.name is not None
        if ref.source == "tag":
            tag = self.tag(ref.name)
            kind = PropertyType.NUMBER if value_column(tag, "x").name == "number" else None
            return value_column(tag, tag_alias(tag)), kind
        if ref.source == "person":
            return self.dialect.json_text(exp.column("properties", PERSONS), ref.name), None
        kind = self.typed.get(ref.name)
        if kind is not None:
            return exp.column(property_column(ref.name), table), kind
        return self.dialect.json_text(exp.column("properties", table), ref.name), None

    def number(self, text: str, table: str = EVENTS) -> exp.Expr:
        expression, kind = self.property(text, table)
        return expression if kind is PropertyType.NUMBER else self.dialect.to_double(expression)

    def text(self, text: str, table: str = EVENTS) -> exp.Expr:
        expression, kind = self.property(text, table)
        if kind in (None, PropertyType.STRING):
            return expression
        if kind is PropertyType.BOOLEAN:  # as JSON spells it, like untyped values
            return exp.If(this=expression, true=exp.Literal.string("true"), false=exp.Literal.string("false"))
        return self.dialect.to_text(expression)

    # what is counted ----------------------------------------------------------------------------------

    def unit(self, name: str = PERSON, table: str = EVENTS) -> exp.Expr:
        """The column counted as one unit: the person after merges, or a group type's key."""
        if name == PERSON:
            return exp.column(PERSON_COLUMN, table)
        slot = self.groups.get(name)
        if slot is None:
            known = ", ".join(["person", *sorted(self.groups)])
            raise QueryError(f"unit {name!r} is not a group type of this project; use one of {known}")
        return exp.column(f"group_{slot}", table)

    def _slot(self, group_type: str) -> int:
        slot = self.groups.get(group_type)
        if slot is None:
            known = ", ".join(sorted(self.groups)) or "none yet"
            raise QueryError(f"group type {group_type!r} is not known in this project (known: {known})")
        return slot

    # filters ---------------------------------------------------------------------------------------

    def condition(self, node: Filter, table: str = EVENTS) -> exp.Expr:
        if isinstance(node, FilterGroup):
            parts = [self.condition(child, table) for child in (node.all if node.all is not None else node.any) or []]
            if not parts:
                return exp.true()
            return exp.and_(*parts) if node.all is not None else exp.or_(*parts)
        if isinstance(node, SegmentFilter):
            members = self.segments(node.segment, self)
            inside = exp.In(this=exp.column(PERSON_COLUMN, table), query=exp.Subquery(this=members))
            return inside if node.op == "in" else exp.Not(this=inside)
        if isinstance(node, TagFilter):
            tag = self.tag(node.tag)
            unit = exp.column(PERSON_COLUMN, table) if tag.unit == "person" else self.unit(tag.unit, table)
            return exp.In(this=unit, query=exp.Subquery(this=self.tag_members(node)))
        return self._leaf(node, table)

    def conditions(self, filters: Sequence[Filter], table: str = EVENTS) -> list[exp.Expr]:
        return [self.condition(f, table) for f in filters]

    def _leaf(self, f: PropertyFilter, table: str) -> exp.Expr:
        op, value = f.op, f.value
        expression, kind = self.property(f.property, table)
        if op is Op.is_set:
            return exp.Not(this=exp.Is(this=expression, expression=exp.null()))
        if op is Op.is_not_set:
            return exp.Is(this=expression, expression=exp.null())
        if op in (Op.gt, Op.gte, Op.lt, Op.lte, Op.between):
            number = expression if kind is PropertyType.NUMBER else self.dialect.to_double(expression)
            if op is Op.between:
                assert isinstance(value, list)
                return exp.Between(this=number, low=literal(value[0]), high=literal(value[1]))
            cls = {Op.gt: exp.GT, Op.gte: exp.GTE, Op.lt: exp.LT, Op.lte: exp.LTE}[op]
            assert isinstance(value, int | float)
            return cls(this=number, expression=literal(value))
        if op in (Op.contains, Op.not_contains, Op.regex):
            text = self.text(f.property, table)
            if op is Op.regex:
                return exp.RegexpLike(this=text, expression=exp.Literal.string(str(value)))
            found = self.dialect.strpos(text, exp.Literal.string(str(value))) > 0
            if op is Op.contains:
                return found
            return exp.or_(exp.Not(this=found), exp.Is(this=text, expression=exp.null()))
        values = value if isinstance(value, list) else [value]
        left, items = self._comparable(expression, kind, values)
        inside = exp.In(this=left, expressions=items) if len(items) > 1 else exp.EQ(this=left, expression=items[0])
        if op in (Op.eq, Op.in_):
            return inside
        return exp.or_(exp.Not(this=inside), exp.Is(this=left, expression=exp.null()))

    def _comparable(
        self, expression: exp.Expr, kind: PropertyType | None, values: list[Any]
    ) -> tuple[exp.Expr, list[exp.Expr]]:
        if kind is PropertyType.NUMBER:
            return expression, [literal(float(v)) if _is_number(v) else self.dialect.to_double(literal(str(v)))
                                for v in values]
        if kind is PropertyType.BOOLEAN:
            return expression, [literal(v if isinstance(v, bool) else str(v).lower() == "true") for v in values]
        if kind is PropertyType.TIME:
            return self.dialect.to_text(expression), [literal(str(v)) for v in values]
        # text: JSON numbers and booleans read as their JSON text (1, 2.5, true)
        return expression, [literal(json_scalar_text(v)) for v in values]

    # time ------------------------------------------------------------------------------------------

    def moment(self, name: str, where: str) -> exp.Expr:
        """An event's instant read from its time property `name` (a lesson's starts_at), the event's own time where
        it has none; a QueryError naming `where` when `name` is not a time property of the project."""
        expression, kind = self.property(name)
        if kind is not PropertyType.TIME:
            raise QueryError(f"{where}: property {name!r} is not a time property of this project (such as "
                             "starts_at); declare it with type time")
        return exp.func("coalesce", expression, exp.column("time", EVENTS))

    def in_time(self, low: dt.datetime, high: dt.datetime, table: str = EVENTS) -> list[exp.Expr]:
        """low <= time < high."""
        d = self.dialect
        return [exp.GTE(this=exp.column("time", table), expression=d.timestamp(low)),
                exp.LT(this=exp.column("time", table), expression=d.timestamp(high))]

    def local_us(self, low: dt.datetime, high: dt.datetime, table: str = EVENTS) -> exp.Expr:
        """Wall-clock microseconds of `time` in the project's zone (see dialect.py)."""
        return local_us(self.dialect, exp.column("time", table), self.timezone, low, high)

    def bucket(self, granularity: Granularity | str, low: dt.datetime, high: dt.datetime,
               table: str = EVENTS) -> exp.Expr:
        """Wall-clock microseconds of the start of the event's bucket (as an integer)."""
        return truncate_us(self.dialect, self.local_us(low, high, table), str(granularity))

    # the scan --------------------------------------------------------------------------------------

    def scan(self, columns: Sequence[exp.Expr], conditions: Sequence[exp.Expr]) -> exp.Select:
        """SELECT columns FROM the project's events AS e WHERE conditions; persons and group entities are
        joined when a person or group property is read. The select may be extended (group by, order by...)
        and may read `e.resolved_person_id` anywhere: `resolve_persons` (run before rendering) joins the
        merge overrides only where that column is read, since the engine cannot drop that LEFT JOIN itself."""
        if self.person_scope is not None:  # access control: see the field
            conditions = [*conditions, self.person_scope.copy()]
        if self.until is not None:
            conditions = [*conditions, exp.LT(this=exp.column("time", EVENTS),
                                              expression=self.dialect.timestamp(self.until))]
        nodes = [*columns, *conditions]
        where = [exp.column("project_id", EVENTS).eq(exp.Literal.number(self.project_id)), *conditions]
        select = exp.select(*columns).from_(exp.table_("events").as_(EVENTS)).where(exp.and_(*where))
        if any(uses_table(node, PERSONS) for node in nodes):
            select = select.join(
                exp.table_("persons").as_(PERSONS),
                on=exp.and_(exp.column("project_id", PERSONS).eq(exp.Literal.number(self.project_id)),
                            exp.column("person_id", PERSONS).eq(exp.column(PERSON_COLUMN, EVENTS))),
                join_type="left",
            )
        for group_type, slot in sorted(self.groups.items(), key=lambda item: item[1]):
            alias = f"{GROUP_ALIAS}{slot}"
            if any(uses_table(node, alias) for node in nodes):
                select = select.join(
                    exp.table_("entities").as_(alias),
                    on=exp.and_(exp.column("project_id", alias).eq(exp.Literal.number(self.project_id)),
                                exp.column("kind", alias).eq(exp.Literal.string("group")),
                                exp.column("entity_type", alias).eq(exp.Literal.string(group_type)),
                                exp.column("entity_key", alias).eq(exp.column(f"group_{slot}", EVENTS))),
                    join_type="left",
                )
        for tag in sorted(self.tags.values(), key=lambda t: t.id):
            alias = tag_alias(tag)
            if any(uses_table(node, alias) for node in nodes):
                unit = exp.column(PERSON_COLUMN, EVENTS) if tag.unit == "person" else self.unit(tag.unit)
                select = select.join(tag_values_tree(self.project_id, tag).subquery(alias),
                                     on=exp.column(tag_key(tag), alias).eq(unit), join_type="left")
        select.meta[SCAN_MARK] = self.project_id
        return select


def resolve_persons(tree: exp.Expr, dialect: Dialect) -> exp.Expr:
    """Give every scan that reads `e.resolved_person_id` the join with the merge overrides, and read the
    person after merges from it; scans that do not read the person stay a plain read of the events."""
    tree = tree.copy()
    for select in list(tree.find_all(exp.Select)):
        project = select.meta.get(SCAN_MARK)
        if project is None:
            continue
        own = [c for c in select.find_all(exp.Column)
               if c.table == EVENTS and c.name == PERSON_COLUMN and c.find_ancestor(exp.Select) is select]
        if not own:
            continue
        resolved = dialect.resolved(exp.column("person_id", OVERRIDES), exp.column("person_id", EVENTS))
        for column in own:
            column.replace(resolved.copy())
        join = exp.Join(this=exp.table_("person_overrides").as_(OVERRIDES), side="LEFT", on=exp.and_(
            exp.column("project_id", OVERRIDES).eq(exp.Literal.number(project)),
            exp.column("old_person_id", OVERRIDES).eq(exp.column("person_id", EVENTS))))
        select.set("joins", [join, *(select.args.get("joins") or [])])
    return tree


def _own_columns(node: exp.Expr) -> list[exp.Column]:
    """The columns of an expression outside the subqueries it contains (which bring their own tables)."""
    own = []
    for column in node.find_all(exp.Column):
        ancestor = column.find_ancestor(exp.Subquery)
        if ancestor is None or node.find_ancestor(exp.Subquery) is ancestor:
            own.append(column)
    return own


def uses_table(node: exp.Expr, alias: str) -> bool:
    """Whether the expression reads the table of this alias (outside subqueries, which bring their own)."""
    return any(c.table == alias for c in _own_columns(node))


def json_scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
