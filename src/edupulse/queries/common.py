"""What every analysis model shares: date ranges cut in the project's time zone, granularity, property
references, filters (and/or groups), breakdowns, and the SQL pieces they compile to.

SQL is built as sqlglot trees and rendered per dialect; user values only ever become literals made by
the tree, never pasted text. Dialect differences live in the small `Dialect` tables below.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlglot import exp

from edupulse.store.schema import PropertyType, property_column

EVENTS = "e"  # alias of events_resolved in every query
PERSONS = "p"  # alias of persons


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# time ----------------------------------------------------------------------------------------------

class Granularity(StrEnum):
    minute = "minute"
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"


_RELATIVE = re.compile(r"^-(\d{1,5})([dwmy])$")


def resolve_date(value: dt.date | str, today: dt.date) -> dt.date:
    """A date, `today`, `yesterday`, or `-Nd` / `-Nw` / `-Nm` / `-Ny` before today."""
    if isinstance(value, dt.date):
        return value
    text = value.strip().lower()
    if text == "today":
        return today
    if text == "yesterday":
        return today - dt.timedelta(days=1)
    match = _RELATIVE.match(text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        if unit == "d":
            return today - dt.timedelta(days=n)
        if unit == "w":
            return today - dt.timedelta(weeks=n)
        months = n * (12 if unit == "y" else 1)
        year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
        return dt.date(year, month + 1, min(today.day, _days_in_month(year, month + 1)))
    return dt.date.fromisoformat(text)


def _days_in_month(year: int, month: int) -> int:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


class DateRange(Model):
    """Whole days in the project's time zone, both ends included. `date_from` may be relative: `-30d`,
    `-4w`, `-3m`, `-1y`, `today`, `yesterday`; `date_to` defaults to today."""

    date_from: dt.date | str = "-7d"
    date_to: dt.date | str = "today"

    @field_validator("date_from", "date_to")
    @classmethod
    def _valid(cls, value: dt.date | str) -> dt.date | str:
        try:
            resolve_date(value, dt.date(2000, 1, 1))
        except ValueError:
            raise ValueError(f"{value!r} is not a date: use YYYY-MM-DD, today, yesterday or -N followed by "
                             "d, w, m or y (e.g. -30d)") from None
        return value

    def days(self, tz: ZoneInfo, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
        today = (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
        start, end = resolve_date(self.date_from, today), resolve_date(self.date_to, today)
        if start > end:
            raise ValueError(f"date_from {start} is after date_to {end}")
        return start, end


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def buckets(start: dt.date, end: dt.date, granularity: Granularity, tz: ZoneInfo) -> list[dt.datetime]:
    """Every bucket start (wall-clock, naive, in the project's time zone) from `start` to `end`."""
    out: list[dt.datetime] = []
    if granularity in (Granularity.minute, Granularity.hour):
        step = dt.timedelta(minutes=1 if granularity is Granularity.minute else 60)
        moment = local_midnight(start, tz)
        stop = local_midnight(end + dt.timedelta(days=1), tz)
        seen = set()
        while moment < stop:
            wall = moment.astimezone(tz).replace(tzinfo=None)
            wall = wall.replace(second=0, microsecond=0) if granularity is Granularity.minute else wall.replace(
                minute=0, second=0, microsecond=0)
            if wall not in seen:
                seen.add(wall)
                out.append(wall)
            moment += step
        return out
    day = start
    if granularity is Granularity.week:
        day = start - dt.timedelta(days=start.weekday())
    elif granularity is Granularity.month:
        day = start.replace(day=1)
    while day <= end:
        out.append(dt.datetime.combine(day, dt.time()))
        if granularity is Granularity.day:
            day += dt.timedelta(days=1)
        elif granularity is Granularity.week:
            day += dt.timedelta(days=7)
        else:
            day = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return out


# properties and filters -----------------------------------------------------------------------------

PropertyName = Annotated[str, Field(min_length=1, max_length=300)]
_PROPERTY = re.compile(r"^(?:(event|person)\.)?(.+)$", re.S)


@dataclass(frozen=True)
class PropertyRef:
    """`amount` or `event.amount` (an event property), `person.grade` (a person property)."""

    source: Literal["event", "person"]
    name: str

    @classmethod
    def parse(cls, text: str) -> PropertyRef:
        match = _PROPERTY.match(text)
        if match is None or not match.group(2):
            raise ValueError(f"{text!r} is not a property: write NAME, event.NAME or person.NAME")
        return cls("person" if match.group(1) == "person" else "event", match.group(2))


class Op(StrEnum):
    eq = "eq"
    neq = "neq"
    contains = "contains"
    not_contains = "not_contains"
    regex = "regex"
    in_ = "in"
    not_in = "not_in"
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"
    between = "between"
    is_set = "is_set"
    is_not_set = "is_not_set"


Scalar = str | int | float | bool


class PropertyFilter(Model):
    """One condition on a property. `value` is a scalar, a list for `in` / `not_in`, [low, high] for
    `between` (both included), and absent for `is_set` / `is_not_set`."""

    property: PropertyName
    op: Op = Op.eq
    value: Scalar | list[Scalar] | None = None

    @field_validator("property")
    @classmethod
    def _property(cls, value: str) -> str:
        PropertyRef.parse(value)
        return value

    @model_validator(mode="after")
    def _value_fits(self) -> PropertyFilter:
        op, value = self.op, self.value
        if op in (Op.is_set, Op.is_not_set):
            if value is not None:
                raise ValueError(f"{op.value} takes no value")
        elif op in (Op.in_, Op.not_in):
            if not isinstance(value, list) or not value:
                raise ValueError(f"{op.value} needs a non-empty list of values")
        elif op is Op.between:
            if not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value):
                raise ValueError("between needs [low, high], two numbers")
        elif value is None or isinstance(value, list):
            raise ValueError(f"{op.value} needs one value")
        elif op in (Op.gt, Op.gte, Op.lt, Op.lte) and not _is_number(value):
            raise ValueError(f"{op.value} needs a number")
        elif op is Op.regex:
            try:
                re.compile(str(value))
            except re.error as exc:
                raise ValueError(f"regex {value!r} is not valid: {exc}") from None
        return self


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class FilterGroup(Model):
    """All (`and`) or any (`or`) of its conditions, which may be groups themselves."""

    all: list[PropertyFilter | FilterGroup] | None = Field(None, alias="and")
    any: list[PropertyFilter | FilterGroup] | None = Field(None, alias="or")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_of(self) -> FilterGroup:
        if (self.all is None) == (self.any is None):
            raise ValueError('a filter group has either "and" or "or", not both')
        return self


Filter = PropertyFilter | FilterGroup


class Breakdown(Model):
    """Split by up to 3 properties; the `limit` most frequent combinations are kept, the rest is `$other`."""

    properties: list[PropertyName] = Field(min_length=1, max_length=3)
    limit: int = Field(10, ge=1, le=100)

    @field_validator("properties")
    @classmethod
    def _properties(cls, values: list[str]) -> list[str]:
        for value in values:
            PropertyRef.parse(value)
        return values


OTHER = "$other"


# compiling ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """What differs between engines, as functions from trees to trees."""

    name: str

    def local_time(self, column: exp.Expr, tz: str) -> exp.Expr:
        if self.name == "clickhouse":
            return exp.func("toTimeZone", column, exp.Literal.string(tz))
        return exp.func("timezone", exp.Literal.string(tz), column)

    def truncate(self, local: exp.Expr, granularity: Granularity) -> exp.Expr:
        if self.name == "clickhouse":
            name = {"minute": "toStartOfMinute", "hour": "toStartOfHour", "day": "toStartOfDay",
                    "month": "toStartOfMonth"}.get(granularity.value)
            if granularity is Granularity.week:
                return exp.func("toDateTime", exp.func("toMonday", local))
            if granularity is Granularity.month:
                return exp.func("toDateTime", exp.func(str(name), local))
            return exp.func(str(name), local)
        return exp.func("date_trunc", exp.Literal.string(granularity.value), local)

    def timestamp(self, moment: dt.datetime) -> exp.Expr:
        text = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if self.name == "clickhouse":
            return exp.func("toDateTime64", exp.Literal.string(text), exp.Literal.number(6), exp.Literal.string("UTC"))
        return exp.cast(exp.Literal.string(text + "+00"), exp.DataType.build("TIMESTAMPTZ"))

    def to_double(self, value: exp.Expr) -> exp.Expr:
        if self.name == "clickhouse":
            return exp.func("toFloat64OrNull", exp.func("toString", value))
        return exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"))


DUCKDB = Dialect("duckdb")
CLICKHOUSE = Dialect("clickhouse")


def literal(value: Scalar) -> exp.Expr:
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


@dataclass
class Context:
    """What compiling a query needs to know: the project, its time zone, the store's typed columns."""

    project_id: int
    timezone: ZoneInfo
    typed: dict[str, PropertyType]
    dialect: Dialect = DUCKDB
    needs_persons: bool = False
    # Access control: when set, every runner ANDs this condition (on events_resolved) into what it reads, so
    # callers restricted to some persons (advisors) see only them. See edupulse.auth.scope.
    person_scope: exp.Expr | None = None

    def property(self, text: str) -> tuple[exp.Expr, PropertyType | None]:
        """The expression of a property and its type (None: untyped, read from JSON as text)."""
        ref = PropertyRef.parse(text)
        if ref.source == "person":
            self.needs_persons = True
            return _json_text(exp.column("properties", PERSONS), ref.name), None
        kind = self.typed.get(ref.name)
        if kind is not None:
            return exp.column(property_column(ref.name), EVENTS), kind
        return _json_text(exp.column("properties", EVENTS), ref.name), None

    def number(self, text: str) -> exp.Expr:
        expression, kind = self.property(text)
        return expression if kind is PropertyType.NUMBER else self.dialect.to_double(expression)

    def text(self, text: str) -> exp.Expr:
        expression, kind = self.property(text)
        return expression if kind in (None, PropertyType.STRING) else exp.cast(expression, exp.DataType.build("TEXT"))

    def condition(self, node: Filter) -> exp.Expr:
        if isinstance(node, FilterGroup):
            parts = [self.condition(child) for child in (node.all if node.all is not None else node.any) or []]
            if not parts:
                return exp.true()
            return exp.and_(*parts) if node.all is not None else exp.or_(*parts)
        return self._leaf(node)

    def _leaf(self, f: PropertyFilter) -> exp.Expr:
        op, value = f.op, f.value
        expression, kind = self.property(f.property)
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
            text = self.text(f.property)
            if op is Op.regex:
                return exp.RegexpLike(this=text, expression=exp.Literal.string(str(value)))
            found = exp.func("strpos" if self.dialect.name == "duckdb" else "position", text,
                             exp.Literal.string(str(value))) > 0
            if op is Op.contains:
                return found
            return exp.or_(exp.Not(this=found), exp.Is(this=text, expression=exp.null()))
        values = value if isinstance(value, list) else [value]
        left, items = self._comparable(expression, kind, values)
        if op in (Op.eq, Op.in_):
            return exp.In(this=left, expressions=items) if len(items) > 1 else exp.EQ(this=left, expression=items[0])
        inside = exp.In(this=left, expressions=items) if len(items) > 1 else exp.EQ(this=left, expression=items[0])
        return exp.or_(exp.Not(this=inside), exp.Is(this=left, expression=exp.null()))

    def _comparable(
        self, expression: exp.Expr, kind: PropertyType | None, values: list[Any]
    ) -> tuple[exp.Expr, list[exp.Expr]]:
        if kind is PropertyType.NUMBER:
            return expression, [literal(float(v)) if _is_number(v) else self.dialect.to_double(literal(str(v)))
                                for v in values]
        if kind is PropertyType.BOOLEAN:
            return expression, [literal(v if isinstance(v, bool) else str(v).lower() == "true") for v in values]
        # text: JSON numbers and booleans read as their JSON text (1, 2.5, true)
        return expression, [literal(_json_scalar_text(v)) for v in values]


def _json_scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_text(column: exp.Expr, name: str) -> exp.Expr:
    path = exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathKey(this=name)])
    return exp.JSONExtractScalar(this=column, expression=path)
