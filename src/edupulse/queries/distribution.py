"""Distribution (分布分析): persons (or groups) bucketed by how often they did an event, how much of a
numeric property it carried, or on how many days they did it, within the date range."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import (
    PERSON,
    Breakdown,
    DateRange,
    Filter,
    Model,
    PropertyName,
    PropertyRef,
    UnitName,
    local_midnight,
)
from edupulse.queries.compile import PERSONS, Context
from edupulse.queries.dialect import DAY_US
from edupulse.queries.pieces import (
    NONE,
    EventStep,
    breakdown_value,
    count_distinct,
    key_columns,
    key_names,
    number,
    with_top,
)
from edupulse.queries.results import BreakdownValues, Number, Part, Provenance, Result, Table, label

MAX_BUCKETS = 60
# 1, 2, 3-4, 5-9, 10-19, 20-49, 50-99, 100-199, ...: readable edges for counts of events or days
LADDER = [1, 2, 3, 5] + [m * 10 ** k for k in range(1, 10) for m in (1, 2, 5)]


class Measure(StrEnum):
    frequency = "count"  # events (named so: `count` is a method of str)
    sum = "sum"  # of a numeric property
    days = "days"  # distinct days with the event, in the project's time zone


class BucketMode(StrEnum):
    auto = "auto"  # counts and days: the LADDER; sums: equal width
    equal = "equal"  # `bucket_count` buckets of one round width from the smallest to the largest value


class Population(Model):
    """The units counted, with 0 for those without the measured event: units with this event (None: any
    event) and filters in the date range, or the members of a saved segment (persons only)."""

    event: str | None = Field(None, min_length=1, max_length=100)
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    segment: str | int | None = Field(None, description="every member, active in the range or not")

    @model_validator(mode="after")
    def _one_kind(self) -> Population:
        if self.segment is not None and (self.event is not None or self.filters):
            raise ValueError("a population is either a segment or an event with filters, not both")
        return self

    def step(self) -> EventStep:
        return EventStep(event=self.event, filters=self.filters)


class DistributionQuery(Model):
    kind: Literal["distribution"]
    event: str | None = Field(None, min_length=1, max_length=100, description="None: any event")
    measure: Measure = Measure.frequency
    property: PropertyName | None = None
    date_range: DateRange = DateRange()
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    population: Population | None = None
    buckets: list[float] | None = Field(None, min_length=1, max_length=MAX_BUCKETS,
                                        description="lower edges, ascending: [1, 3, 5, 10] gives 1-2, 3-4, 5-9, 10+")
    bucket_mode: BucketMode = BucketMode.auto
    bucket_count: int = Field(10, ge=1, le=MAX_BUCKETS)
    breakdown: Breakdown | None = None
    unit: UnitName = PERSON

    @field_validator("buckets")
    @classmethod
    def _ascending(cls, values: list[float] | None) -> list[float] | None:
        if values is not None:
            if any(not math.isfinite(v) for v in values):
                raise ValueError("bucket edges must be finite numbers")
            if any(b <= a for a, b in itertools.pairwise(values)):
                raise ValueError("bucket edges must be strictly ascending, e.g. [1, 3, 5, 10]")
        return values

    @model_validator(mode="after")
    def _fits(self) -> DistributionQuery:
        if self.measure is Measure.sum and self.property is None:
            raise ValueError("measure sum needs a numeric property")
        if self.measure is not Measure.sum and self.property is not None:
            raise ValueError(f"property is only used by measure sum, not {self.measure.value}")
        if self.population is not None and self.population.segment is not None and self.unit != PERSON:
            raise ValueError(f"population.segment: a segment holds persons; it cannot count unit {self.unit!r}")
        if self.population is not None and self.breakdown is not None:
            for prop in self.breakdown.properties:
                if PropertyRef.parse(prop).source != "person":
                    raise ValueError(f"breakdown.properties: with a population, break down by person properties "
                                     f"only (person.NAME), not {prop!r}: units without the event have no event "
                                     "properties")
        return self


class Bucket(Part):
    label: str
    low: Number | None  # None: no lower end
    high: Number | None


class DistributionSeries(Part):
    breakdown: BreakdownValues
    counts: list[int]
    shares: list[Number]
    persons: int
    min: Number | None
    max: Number | None
    mean: Number | None
    median: Number | None
    p90: Number | None


class DistributionResponse(Result):
    date_from: str
    date_to: str
    measure: str
    unit: str
    buckets: list[Bucket]
    series: list[DistributionSeries]

    def to_table(self) -> Table:
        columns = ["breakdown", "bucket", "count", "share"]
        rows: list[list[Any]] = []
        for series in self.series:
            name = label(series.breakdown)
            for bucket, count, share in zip(self.buckets, series.counts, series.shares, strict=True):
                rows.append([name, bucket.label, count, share])
        return columns, rows


class DistributionRunner(QueryRunner[DistributionQuery, DistributionResponse]):
    kind = "distribution"
    query_model = DistributionQuery
    response_model = DistributionResponse

    def _bounds(self) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
        tz = self.ctx.timezone
        start, end = self.query.date_range.days(tz, self.now)
        return start, end, local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)

    def _edges_known(self) -> bool:
        q = self.query
        return q.buckets is not None or (q.bucket_mode is BucketMode.auto and q.measure is not Measure.sum)

    def to_queries(self) -> dict[str, exp.Expr]:
        """Edges known before the data: the summary and the histogram in one statement; otherwise the summary
        first (its range of values gives the equal-width edges of the histogram, a second statement)."""
        _, _, low, high = self._bounds()
        width = len(key_names(self.query.breakdown))
        if self._edges_known():
            return {"histogram": _together(self._values(low, high), width, self._edges(0, 0), self.ctx)}
        return {"summary": _summary(self._values(low, high), width, self.ctx)}

    def calculate(self) -> DistributionResponse:
        q = self.query
        start, end, low, high = self._bounds()
        width = len(key_names(q.breakdown))
        counts: dict[tuple[Any, ...], list[int]] = {}
        statements = self.to_queries()
        if self._edges_known():
            edges = self._edges(0, 0)
            summary = []
            for row in self.run(statements["histogram"]):
                keys, bucket, whole = tuple(row[:width]), row[width], row[width + 1]
                if whole:
                    summary.append((*keys, *row[width + 2:]))
                else:
                    counts.setdefault(keys, [0] * (len(edges) + 1))[int(bucket)] = int(row[width + 2])
        else:
            summary = self.run(statements["summary"])
            low_value = min((row[width + 2] for row in summary if row[width + 2] is not None), default=0)
            high_value = max((row[width + 3] for row in summary if row[width + 3] is not None), default=0)
            edges = self._edges(float(low_value), float(high_value))
            for row in self.run(_histogram(self._values(low, high), width, edges)):
                counts.setdefault(tuple(row[:width]), [0] * (len(edges) + 1))[int(row[width])] = int(row[width + 1])
        keep_below = any(c[0] for c in counts.values())
        last = max((i for c in counts.values() for i, n in enumerate(c) if n), default=0)
        stop = len(edges) + 1 if q.buckets is not None else max(last + 1, 2)
        series = []
        for row in sorted(summary, key=lambda r: (-int(r[width]), [str(v) for v in r[:width]])):
            keys = tuple(row[:width])
            persons = int(row[width])
            if not persons:  # no GROUP BY: one row even when nobody did it
                continue
            found = counts.get(keys, [0] * (len(edges) + 1))[0 if keep_below else 1:stop]
            series.append(DistributionSeries(
                breakdown=[breakdown_value(k) for k in keys] if q.breakdown else None,
                counts=found, shares=[round(n / persons, 6) if persons else 0 for n in found],
                persons=persons, min=number(row[width + 2]), max=number(row[width + 3]),
                mean=number(row[width + 1]), median=number(row[width + 4]), p90=number(row[width + 5])))
        equal = q.buckets is None and (q.bucket_mode is BucketMode.equal or q.measure is Measure.sum)
        # equal-width edges stop at the largest value, so the last bucket has the same width as the others
        cap = edges[-1] + (edges[1] - edges[0] if len(edges) > 1 else 1.0) if equal else math.inf
        bounds = [(-math.inf, edges[0]), *zip(edges, [*edges[1:], cap], strict=True)]
        bounds = bounds[0 if keep_below else 1:stop]
        integral = q.measure is not Measure.sum and all(float(e).is_integer() for e in edges)
        response = DistributionResponse(
            date_from=start.isoformat(), date_to=end.isoformat(), measure=q.measure.value, unit=q.unit,
            buckets=[Bucket(label=_label(a, b, integral), low=number(a) if math.isfinite(a) else None,
                            high=number(b) if math.isfinite(b) else None) for a, b in bounds],
            series=series)
        return response.from_data(Provenance(breakdown=tuple(q.breakdown.properties) if q.breakdown else ()))

    def _edges(self, smallest: float, largest: float) -> list[float]:
        q = self.query
        if q.buckets is not None:
            return list(q.buckets)
        if q.bucket_mode is BucketMode.auto and q.measure is not Measure.sum:
            return [float(e) for e in LADDER]
        return equal_edges(smallest, largest, q.bucket_count, q.measure is not Measure.sum)

    def _values(self, low: dt.datetime, high: dt.datetime) -> exp.Select:
        """WITH ... per: one row per unit (and breakdown labels) with its value `v`."""
        q, ctx = self.query, self.ctx
        unit = ctx.unit(q.unit)
        keys = key_names(q.breakdown)
        conditions = [*ctx.in_time(low, high), exp.Not(this=exp.Is(this=unit, expression=exp.null()))]
        if q.event is not None:
            conditions.append(exp.column("event", "e").eq(exp.Literal.string(q.event)))
        conditions += ctx.conditions(q.filters)
        if q.measure is Measure.sum:
            assert q.property is not None
            value: exp.Expr = ctx.number(q.property)
        elif q.measure is Measure.days:
            value = ctx.dialect.int_div(ctx.local_us(low, high), exp.Literal.number(DAY_US))
        else:
            value = exp.Literal.number(1)
        measured = key_columns(ctx, q.breakdown) if q.population is None else []
        tree = exp.select().with_("base", as_=ctx.scan([unit.as_("u"), *measured, value.as_("x")], conditions))
        aggregate = _aggregate(q.measure)
        if q.population is None:
            tree, labels = with_top(tree, "base", q.breakdown, count_distinct(exp.column("u")))
            per = (exp.select(exp.column("u"), *[lab.as_(f"k{i}") for i, lab in enumerate(labels)],
                              aggregate.as_("v")).from_("base")
                   .group_by(exp.column("u"), *labels))
            return tree.with_("per", as_=per)
        if q.population.segment is not None:
            pop = self._members(q.population.segment)
        else:
            pop_conditions = [*ctx.in_time(low, high), exp.Not(this=exp.Is(this=unit, expression=exp.null())),
                              *q.population.step().conditions(ctx)]
            pop = ctx.scan([unit.as_("u"), *key_columns(ctx, q.breakdown)], pop_conditions)
            pop = pop.group_by(exp.column("u"), *[exp.column(k) for k in keys])
        did = exp.select(exp.column("u"), aggregate.as_("v")).from_("base").group_by(exp.column("u"))
        tree = tree.with_("pop", as_=pop).with_("did", as_=did)
        tree, labels = with_top(tree, "pop", q.breakdown, count_distinct(exp.column("u")))
        per = (exp.select(exp.column("u", "pop").as_("u"), *[lab.as_(f"k{i}") for i, lab in enumerate(labels)],
                          exp.func("coalesce", exp.column("v", "did"), exp.Literal.number(0)).as_("v"))
               .from_("pop").join("did", on=exp.column("u", "pop").eq(exp.column("u", "did")), join_type="left"))
        return tree.with_("per", as_=per)


    def _members(self, segment: str | int) -> exp.Select:
        """The segment's persons (u) with their breakdown keys (person properties)."""
        q, ctx = self.query, self.ctx
        members = exp.Subquery(this=ctx.segments(segment, ctx), alias=exp.TableAlias(this=exp.to_identifier("m")))
        person = exp.column("person_id", "m")
        keys = [exp.func("coalesce", ctx.text(prop), exp.Literal.string(NONE)).as_(key)
                for key, prop in zip(key_names(q.breakdown), q.breakdown.properties if q.breakdown else [],
                                     strict=True)]
        tree = exp.select(person.as_("u"), *keys).from_(members)
        if keys:  # person properties are read from p (see Context.property)
            tree = tree.join(exp.table_("persons").as_(PERSONS), join_type="left", on=exp.and_(
                exp.column("project_id", PERSONS).eq(exp.Literal.number(ctx.project_id)),
                exp.column("person_id", PERSONS).eq(person)))
        return tree


def _aggregate(measure: Measure) -> exp.Expr:
    x = exp.column("x")
    if measure is Measure.sum:
        return exp.func("coalesce", exp.Sum(this=x), exp.Literal.number(0))
    if measure is Measure.days:
        return count_distinct(x)
    return exp.Count(this=exp.Star())


def _statistics(v: exp.Expr, ctx: Context) -> list[exp.Expr]:
    double = exp.cast(v, exp.DataType.build("DOUBLE"))
    return [exp.Count(this=exp.Star()), exp.Avg(this=double), exp.Min(this=v), exp.Max(this=v),
            ctx.dialect.quantile(double, 0.5), ctx.dialect.quantile(double, 0.9)]


def _summary(values: exp.Select, width: int, ctx: Context) -> exp.Expr:
    keys = [exp.column(f"k{i}") for i in range(width)]  # labelled: in the top or $other
    tree = values.select(*keys, *_statistics(exp.column("v"), ctx)).from_("per")
    return tree.group_by(*keys) if keys else tree


def _index(v: exp.Expr, edges: list[float]) -> exp.Expr:
    """The number of edges at or below the value: 0 is below the first edge."""
    index: exp.Expr = exp.Literal.number(0)
    for edge in edges:
        step = exp.Case().when(exp.GTE(this=v, expression=exp.Literal.number(edge)), exp.Literal.number(1)).else_(
            exp.Literal.number(0))
        index = exp.Add(this=index, expression=step)
    return exp.Paren(this=index)


def _histogram(values: exp.Select, width: int, edges: list[float]) -> exp.Expr:
    keys = [exp.column(f"k{i}") for i in range(width)]  # labelled: in the top or $other
    tree = values.select(*keys, _index(exp.column("v"), edges).as_("bucket"), exp.Count(this=exp.Star())).from_("per")
    return tree.group_by(*keys, exp.column("bucket"))


def _together(values: exp.Select, width: int, edges: list[float], ctx: Context) -> exp.Expr:
    """Counts per breakdown value and bucket, and the summary per value (`whole` = 1), by grouping sets."""
    c = exp.column
    keys = [c(f"k{i}") for i in range(width)]
    binned = exp.select(*keys, _index(c("v"), edges).as_("bucket"), c("v")).from_("per")
    tree = values.with_("binned", as_=binned).select(*keys, c("bucket"), exp.func("grouping", c("bucket")).as_("whole"),
                                                     *_statistics(c("v"), ctx)).from_("binned")
    sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[*keys, c("bucket")]), exp.Tuple(expressions=keys)])
    tree.set("group", exp.Group(expressions=[sets]))
    return tree


def equal_edges(smallest: float, largest: float, count: int, whole: bool) -> list[float]:
    """Lower edges of at most `count` buckets of one width from `smallest` to `largest`: for whole numbers
    the width that covers every value, from the smallest; otherwise a round width (1, 2 or 5 times a
    power of ten) with edges on its multiples."""
    if whole:
        first = math.floor(smallest)
        step = max(1, math.ceil((math.floor(largest) - first + 1) / count))
        return [float(first + i * step) for i in range(count) if first + i * step <= largest]
    span = max(largest - smallest, 0.0)
    width: float = 10.0 ** math.floor(math.log10(span / count)) if span > 0 else 1.0
    for factor in (1, 2, 5, 10):
        if width * factor * count >= span:
            width *= factor
            break
    base = math.floor(smallest / width) * width
    return [float(round(base + i * width, 12)) for i in range(count + 1) if base + i * width <= largest or i == 0]


def _label(low: float, high: float, integral: bool) -> str:
    def text(value: float) -> str:
        return f"{number(value)}"

    if not math.isfinite(low):
        return "0" if integral and high == 1 else f"< {text(high)}"
    if not math.isfinite(high):
        return f"{text(low)}+" if integral else f"≥ {text(low)}"
    if integral:
        return text(low) if high - low == 1 else f"{text(low)}-{text(high - 1)}"
    return f"{text(low)} to < {text(high)}"
