"""Trends (事件分析): how many events, persons, or how much of a numeric property, per time bucket."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner, register
from edupulse.queries.common import (
    EVENTS,
    OTHER,
    PERSONS,
    Breakdown,
    DateRange,
    Filter,
    Granularity,
    Model,
    PropertyName,
    buckets,
    local_midnight,
)

NONE = "$none"


class Math(StrEnum):
    total = "total"  # events
    unique_persons = "unique_persons"  # persons who did it (DAU at day granularity)
    avg_per_person = "avg_per_person"  # events per person who did it
    sum = "sum"
    avg = "avg"
    min = "min"
    max = "max"
    median = "median"
    p75 = "p75"
    p90 = "p90"
    p95 = "p95"
    p99 = "p99"


PROPERTY_MATH = {Math.sum, Math.avg, Math.min, Math.max, Math.median, Math.p75, Math.p90, Math.p95, Math.p99}
QUANTILES = {Math.median: 0.5, Math.p75: 0.75, Math.p90: 0.9, Math.p95: 0.95, Math.p99: 0.99}


class Series(Model):
    event: str | None = Field(None, min_length=1, max_length=100, description="None: every event")
    math: Math = Math.total
    property: PropertyName | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _property_for_math(self) -> Series:
        if self.math in PROPERTY_MATH and self.property is None:
            raise ValueError(f"math {self.math.value} needs a numeric property")
        return self

    def title(self) -> str:
        if self.name:
            return self.name
        what = self.event or "all events"
        return what if self.math is Math.total else f"{what} · {self.math.value}" + (
            f"({self.property})" if self.property else "")


class TrendsQuery(Model):
    kind: Literal["trends"]
    series: list[Series] = Field(min_length=1, max_length=10)
    date_range: DateRange = DateRange()
    granularity: Granularity = Granularity.day
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    breakdown: Breakdown | None = None
    compare_previous: bool = False


@register
class TrendsRunner(QueryRunner):
    kind = "trends"
    model = TrendsQuery
    query: TrendsQuery

    def calculate(self) -> dict[str, Any]:
        q = self.query
        tz = self.ctx.timezone
        start, end = q.date_range.days(tz, self.now)
        if q.granularity in ("minute", "hour") and (end - start).days > (2 if q.granularity == "minute" else 62):
            raise ValueError(f"granularity {q.granularity.value} covers at most "
                             f"{2 if q.granularity == 'minute' else 62} days; choose a coarser one")
        result: dict[str, Any] = {"date_from": start.isoformat(), "date_to": end.isoformat(),
                                  "granularity": q.granularity.value}
        labels, series = self._period(start, end)
        result["buckets"] = labels
        result["series"] = series
        if q.compare_previous:
            length = (end - start).days + 1
            previous_end = start - dt.timedelta(days=1)
            previous_start = previous_end - dt.timedelta(days=length - 1)
            previous_labels, previous = self._period(previous_start, previous_end)
            result["previous"] = {"date_from": previous_start.isoformat(), "date_to": previous_end.isoformat(),
                                  "buckets": previous_labels, "series": previous}
        return result

    def _period(self, start: dt.date, end: dt.date) -> tuple[list[str], list[dict[str, Any]]]:
        q = self.query
        tz = self.ctx.timezone
        walls = buckets(start, end, q.granularity, tz)
        labels = [_label(w, q.granularity) for w in walls]
        index = {w: i for i, w in enumerate(walls)}
        low, high = local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)
        out: list[dict[str, Any]] = []
        for number, series in enumerate(q.series):
            by_bucket = self.run(self._tree(series, low, high, per_bucket=True))
            totals = self.run(self._tree(series, low, high, per_bucket=False))
            width = len(q.breakdown.properties) if q.breakdown else 0
            rows: dict[tuple[Any, ...], list[float | int]] = {}
            for row in by_bucket:
                bucket, keys, value = row[0], tuple(row[1:1 + width]), row[1 + width]
                data = rows.setdefault(keys, [0] * len(walls))
                position = index.get(_naive(bucket))
                if position is not None:
                    data[position] = _number(value)
            aggregate = {tuple(row[:width]): _number(row[width]) for row in totals}
            for keys in sorted(set(rows) | set(aggregate), key=lambda k: (-(aggregate.get(k) or 0), k)):
                out.append({
                    "index": number, "label": series.title(), "event": series.event, "math": series.math.value,
                    "breakdown": [_breakdown_value(k) for k in keys] if q.breakdown else None,
                    "data": rows.get(keys, [0] * len(walls)), "aggregated_value": aggregate.get(keys, 0),
                })
        return labels, out

    # the SQL ----------------------------------------------------------------------------------

    def _tree(self, series: Series, low: dt.datetime, high: dt.datetime, per_bucket: bool) -> exp.Expr:
        q, ctx, d = self.query, self.ctx, self.ctx.dialect
        ctx.needs_persons = False
        e = exp.column
        conditions: list[exp.Expr] = [
            e("project_id", EVENTS).eq(exp.Literal.number(ctx.project_id)),
            exp.GTE(this=e("time", EVENTS), expression=d.timestamp(low)),
            exp.LT(this=e("time", EVENTS), expression=d.timestamp(high)),
        ]
        if series.event is not None:
            conditions.append(e("event", EVENTS).eq(exp.Literal.string(series.event)))
        if ctx.person_scope is not None:
            conditions.append(ctx.person_scope.copy())
        conditions += [ctx.condition(f) for f in [*q.filters, *series.filters]]
        columns: list[exp.Expr] = [
            d.truncate(d.local_time(e("time", EVENTS), ctx.timezone.key), q.granularity).as_("bucket"),
            e("resolved_person_id", EVENTS).as_("person"),
        ]
        keys = [f"b{i}" for i in range(len(q.breakdown.properties))] if q.breakdown else []
        if q.breakdown:
            for key, prop in zip(keys, q.breakdown.properties, strict=True):
                columns.append(exp.func("coalesce", ctx.text(prop), exp.Literal.string(NONE)).as_(key))
        if series.property is not None:
            columns.append(ctx.number(series.property).as_("v"))
        source = exp.select(*columns).from_(exp.table_("events_resolved").as_(EVENTS)).where(exp.and_(*conditions))
        if ctx.needs_persons:
            source = source.join(
                exp.table_("persons").as_(PERSONS),
                on=exp.and_(e("project_id", PERSONS).eq(e("project_id", EVENTS)),
                            e("person_id", PERSONS).eq(e("resolved_person_id", EVENTS))),
                join_type="left",
            )
        tree = exp.select().with_("base", as_=source)
        groups: list[exp.Expr] = []
        if per_bucket:
            groups.append(e("bucket"))
        if keys:
            assert q.breakdown is not None
            top = (exp.select(*[e(k) for k in keys]).from_("base").group_by(*[e(k) for k in keys])
                   .order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True), *[e(k) for k in keys])
                   .limit(q.breakdown.limit))
            tree = tree.with_("top", as_=top)
            inside = exp.In(this=exp.Tuple(expressions=[e(k) for k in keys]),
                            query=exp.select(*[e(k) for k in keys]).from_("top").subquery())
            for k in keys:
                groups.append(exp.If(this=inside, true=e(k), false=exp.Literal.string(OTHER)).as_(k))
        tree = tree.select(*groups, _aggregate(series, d.name).as_("value")).from_("base")
        if groups:
            tree = tree.group_by(*[g.this if isinstance(g, exp.Alias) else g for g in groups])
        return tree


def _aggregate(series: Series, dialect: str) -> exp.Expr:
    v = exp.column("v")
    math = series.math
    if math is Math.total:
        return exp.Count(this=exp.Star())
    if math is Math.unique_persons:
        return exp.Count(this=exp.Distinct(expressions=[exp.column("person")]))
    if math is Math.avg_per_person:
        return exp.Div(this=exp.cast(exp.Count(this=exp.Star()), exp.DataType.build("DOUBLE")),
                       expression=exp.Count(this=exp.Distinct(expressions=[exp.column("person")])))
    if math in QUANTILES:
        q = exp.Literal.number(QUANTILES[math])
        if dialect == "clickhouse":
            return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[q], params=[v])
        return exp.func("quantile_cont", v, q)
    return {Math.sum: exp.Sum, Math.avg: exp.Avg, Math.min: exp.Min, Math.max: exp.Max}[math](this=v)


def _label(wall: dt.datetime, granularity: Granularity) -> str:
    if granularity in (Granularity.minute, Granularity.hour):
        return wall.strftime("%Y-%m-%dT%H:%M")
    return wall.date().isoformat()


def _naive(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    return value


def _number(value: Any) -> float | int:
    if value is None:
        return 0.0
    number = float(value)
    return int(number) if number.is_integer() else number


def _breakdown_value(value: Any) -> Any:
    return None if value == NONE else value
