"""What every analysis model's JSON shares: date ranges cut in the project's time zone, granularity,
property references, filters (and/or groups, segments), breakdowns, the unit counted (persons or groups).

Compiling these to SQL trees is in compile.py; engine differences in dialect.py.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edupulse.queries.errors import QueryError

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
            raise QueryError(f"date_from {start} is after date_to {end}")
        return start, end


def previous_days(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The same number of days just before `start` (for comparing with the previous period)."""
    previous_end = start - dt.timedelta(days=1)
    return previous_end - (end - start), previous_end


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
_PROPERTY = re.compile(r"^(?:(event|person|tag)\.)?(.+)$", re.S)
_GROUP_PROPERTY = re.compile(r"^group\.([^.]+)(?:\.(.+))?$", re.S)


@dataclass(frozen=True)
class PropertyRef:
    """`amount` or `event.amount` (an event property), `person.grade` (a person property),
    `group.school` (the key of the event's school), `group.school.tier` (a property of that school),
    `tag.lead_tier` (the value in force of a tag of the person, or of the event's group for a group tag)."""

    source: Literal["event", "person", "group", "tag"]
    name: str | None  # None: the group's key
    group: str | None = None

    @classmethod
    def parse(cls, text: str) -> PropertyRef:
        grouped = _GROUP_PROPERTY.match(text)
        if grouped is not None:
            return cls("group", grouped.group(2), grouped.group(1))
        match = _PROPERTY.match(text)
        if match is None or not match.group(2):
            raise ValueError(f"{text!r} is not a property: write NAME, event.NAME, person.NAME, group.TYPE or "
                             "group.TYPE.NAME")
        source = match.group(1) or "event"
        return cls(source if source in ("person", "tag") else "event", match.group(2))  # type: ignore[arg-type]


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


class SegmentFilter(Model):
    """Persons in (or, with `op` "not_in", not in) a saved segment, by name or id."""

    segment: str | int
    op: Literal["in", "not_in"] = "in"


class TagFilter(Model):
    """Units whose value in force of a tag meets the condition: `{"tag": "lead_tier", "op": "in", "value":
    ["A"]}`; without `op`: `eq` with a value, else `is_set` (units that have a value)."""

    tag: str = Field(min_length=1, max_length=63)
    op: Op | None = None
    value: Scalar | list[Scalar] | None = None

    def as_property(self) -> PropertyFilter:
        op = self.op or (Op.is_set if self.value is None else Op.eq)
        return PropertyFilter(property=f"tag.{self.tag}", op=op, value=self.value)

    @model_validator(mode="after")
    def _value_fits(self) -> TagFilter:
        self.as_property()
        return self


class FilterGroup(Model):
    """All (`and`) or any (`or`) of its conditions, which may be groups themselves."""

    all: list[PropertyFilter | SegmentFilter | TagFilter | FilterGroup] | None = Field(None, alias="and")
    any: list[PropertyFilter | SegmentFilter | TagFilter | FilterGroup] | None = Field(None, alias="or")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_of(self) -> FilterGroup:
        if (self.all is None) == (self.any is None):
            raise ValueError('a filter group has either "and" or "or", not both')
        return self


Filter = PropertyFilter | SegmentFilter | TagFilter | FilterGroup

PERSON = "person"
UnitName = Annotated[str, Field(min_length=1, max_length=64,
                                description="what is counted: person (default) or a group type (school, class...)")]


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
