"""Funnels (漏斗分析): how many persons (or groups) went through steps in order within a conversion window.

The default order follows ClickHouse's `windowFunnel(window)(time, step1, step2, ...)` exactly (see
docs/queries.md). The SQL is our own: the step events are read once, and for each step k a running
maximum over the person's events, ordered by time, gives the latest chain start that reaches step k
("the freshest attempt"); a step-(k+1) event continues that attempt when it is within the window of its
start. The trees are in funnel_sql.py.
"""

from __future__ import annotations

import datetime as dt
import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import (
    PERSON,
    Breakdown,
    DateRange,
    Filter,
    Granularity,
    Model,
    UnitName,
    buckets,
    local_midnight,
    previous_days,
)
from edupulse.queries.dialect import DAY_US, HOUR_US, MINUTE_US, wall_clock
from edupulse.queries.errors import QueryError
from edupulse.queries.funnel_sql import NONE, FunnelPlan
from edupulse.queries.results import BreakdownValues, Part, Provenance, Result, Table, absent_when_none, label

MAX_STEPS = 20
MAX_WINDOW_DAYS = 3650


class Order(StrEnum):
    ordered = "ordered"  # steps in order, other events in between allowed (windowFunnel's default)
    strict = "strict"  # steps in order with no other event in between (windowFunnel's 'strict_order')
    any = "any"  # every step within the window, in any order


class WindowUnit(StrEnum):
    minute = "minute"
    hour = "hour"
    day = "day"
    week = "week"


UNIT_US = {WindowUnit.minute: MINUTE_US, WindowUnit.hour: HOUR_US, WindowUnit.day: DAY_US,
           WindowUnit.week: 7 * DAY_US}


class Window(Model):
    """The conversion window: every step must be at most this long after the first step."""

    value: int = Field(14, ge=1)
    unit: WindowUnit = WindowUnit.day

    @model_validator(mode="after")
    def _at_most(self) -> Window:
        if self.microseconds() > MAX_WINDOW_DAYS * DAY_US:
            raise ValueError(f"the window is at most {MAX_WINDOW_DAYS} days")
        return self

    def microseconds(self) -> int:
        return self.value * UNIT_US[self.unit]


class Step(Model):
    event: str = Field(min_length=1, max_length=100)
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    name: str | None = Field(None, max_length=200)


class Exclusion(Model):
    """An event that disqualifies an attempt when it happens between step `from_step` and step `to_step`
    (1-based) of that attempt."""

    event: str = Field(min_length=1, max_length=100)
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    from_step: int = Field(1, ge=1)
    to_step: int = Field(2, ge=2)


class Attribution(StrEnum):
    first_step = "first_step"  # the value on the attempt's first step event
    step = "step"  # the value on the attempt's event of `attribution_step`


class FunnelQuery(Model):
    kind: Literal["funnel"]
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    order: Order = Order.ordered
    window: Window = Window()
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=10)
    date_range: DateRange = DateRange()
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    breakdown: Breakdown | None = None
    breakdown_attribution: Attribution = Attribution.first_step
    attribution_step: int | None = Field(None, ge=1)
    unit: UnitName = PERSON
    trend: Granularity | None = None
    compare_previous: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> FunnelQuery:
        n = len(self.steps)
        for i, exclusion in enumerate(self.exclusions):
            if not exclusion.from_step < exclusion.to_step <= n:
                raise ValueError(f"exclusions.{i}: from_step {exclusion.from_step} and to_step {exclusion.to_step} "
                                 f"must satisfy 1 <= from_step < to_step <= {n} (the number of steps)")
        if self.order is Order.any and self.exclusions:
            raise ValueError("exclusions need an order between steps: use order ordered or strict")
        if self.breakdown_attribution is Attribution.step:
            if self.attribution_step is None:
                raise ValueError("breakdown_attribution step needs attribution_step (1-based)")
            if self.attribution_step > n:
                raise ValueError(f"attribution_step {self.attribution_step} is past the last step ({n})")
        elif self.attribution_step is not None:
            raise ValueError("attribution_step goes with breakdown_attribution step")
        return self


TIME_STATS = ("average", "median", "p25", "p75", "p90")


# the response -------------------------------------------------------------------------------------


class TimeToConvert(Part):
    """Seconds from the previous step (percentiles interpolated linearly)."""

    average_seconds: float | None
    median_seconds: float | None
    p25_seconds: float | None
    p75_seconds: float | None
    p90_seconds: float | None


class FunnelStep(Part):
    index: int
    event: str
    name: str  # the query's own label of the step: never masked
    count: int
    conversion_rate: float
    step_conversion_rate: float
    dropped: int
    time_to_convert: TimeToConvert | None


class FunnelBreakdown(Part):
    breakdown: BreakdownValues
    steps: list[FunnelStep]


class FunnelTrend(Part):
    granularity: str
    buckets: list[str]
    entered: list[int]
    converted: list[int]
    conversion_rate: list[float]
    steps: int


class FunnelPeriod(Part):
    date_from: str
    date_to: str
    results: list[FunnelBreakdown]


class FunnelResponse(Result):
    date_from: str
    date_to: str
    order: str
    window_seconds: int
    unit: str
    results: list[FunnelBreakdown]
    trend: FunnelTrend | None = absent_when_none()
    previous: FunnelPeriod | None = absent_when_none()

    def to_table(self) -> Table:
        columns = ["breakdown", "step", "event", "count", "conversion_rate", "step_conversion_rate",
                   "average_seconds", "median_seconds"]
        rows: list[list[Any]] = []
        for entry in self.results:
            for step in entry.steps:
                times = step.time_to_convert
                rows.append([label(entry.breakdown), step.index, step.event, step.count, step.conversion_rate,
                             step.step_conversion_rate, times.average_seconds if times else None,
                             times.median_seconds if times else None])
        return columns, rows


# the runner -----------------------------------------------------------------------------------------


class FunnelRunner(QueryRunner[FunnelQuery, FunnelResponse]):
    kind = "funnel"
    query_model = FunnelQuery
    response_model = FunnelResponse

    def _range(self) -> tuple[dt.date, dt.date]:
        q = self.query
        start, end = q.date_range.days(self.ctx.timezone, self.now)
        self.ctx.unit(q.unit)  # a clear error for an unknown unit before any SQL
        if q.trend is not None:
            limit = {Granularity.minute: 2, Granularity.hour: 62}.get(q.trend)
            if limit is not None and (end - start).days > limit:
                raise QueryError(f"trend {q.trend.value} covers at most {limit} days; choose a coarser one")
        return start, end

    def to_queries(self) -> dict[str, exp.Expr]:
        q = self.query
        start, end = self._range()
        out: dict[str, exp.Expr] = {"steps": self._plan(start, end).steps_tree()}
        if q.trend is not None:
            out["trend"] = self._plan(start, end).trend_tree(q.trend)
        if q.compare_previous:
            out["previous steps"] = self._plan(*previous_days(start, end)).steps_tree()
        return out

    def calculate(self) -> FunnelResponse:
        q = self.query
        start, end = self._range()
        statements = self.to_queries()
        results = self._results(self.run(statements["steps"]))
        trend = None
        if q.trend is not None:
            trend = self._trend(self.run(statements["trend"]), start, end, q.trend)
        previous = None
        if q.compare_previous:
            previous_start, previous_end = previous_days(start, end)
            previous = FunnelPeriod(date_from=previous_start.isoformat(), date_to=previous_end.isoformat(),
                                    results=self._results(self.run(statements["previous steps"])))
        response = FunnelResponse(
            date_from=start.isoformat(), date_to=end.isoformat(), order=q.order.value,
            window_seconds=q.window.microseconds() // 1_000_000, unit=q.unit,
            results=results, trend=trend, previous=previous)
        return response.from_data(Provenance(breakdown=tuple(q.breakdown.properties) if q.breakdown else ()))

    def _plan(self, start: dt.date, end: dt.date) -> FunnelPlan:
        tz = self.ctx.timezone
        return FunnelPlan(self.ctx, self.query, local_midnight(start, tz),
                          local_midnight(end + dt.timedelta(days=1), tz))

    def _results(self, rows: list[tuple[Any, ...]]) -> list[FunnelBreakdown]:
        q = self.query
        n = len(q.steps)
        width = len(q.breakdown.properties) if q.breakdown else 0
        stats = len(TIME_STATS)
        out: list[FunnelBreakdown] = []
        for row in rows:
            keys = row[:width]
            counts = [int(c or 0) for c in row[width:width + n]]
            times = row[width + n:]
            steps = []
            for k, step in enumerate(q.steps):
                to_convert = None
                if k and q.order is not Order.any and counts[k]:
                    values = times[(k - 1) * stats:k * stats]
                    to_convert = TimeToConvert(**{f"{name}_seconds": _seconds(v) for name, v in
                                                  zip(TIME_STATS, values, strict=True)})
                steps.append(FunnelStep(
                    index=k + 1, event=step.event, name=step.name or step.event, count=counts[k],
                    conversion_rate=_rate(counts[k], counts[0]),
                    step_conversion_rate=_rate(counts[k], counts[k - 1] if k else counts[0]),
                    dropped=(counts[k - 1] - counts[k]) if k else 0, time_to_convert=to_convert))
            out.append(FunnelBreakdown(breakdown=[None if v == NONE else v for v in keys] if q.breakdown else None,
                                       steps=steps))
        if not out and not q.breakdown:
            out.append(FunnelBreakdown(breakdown=None, steps=[
                FunnelStep(index=k + 1, event=s.event, name=s.name or s.event, count=0, conversion_rate=0.0,
                           step_conversion_rate=0.0, dropped=0, time_to_convert=None)
                for k, s in enumerate(q.steps)]))
        out.sort(key=lambda r: (r.breakdown == [OTHER_LABEL] * width if width else False,
                                -r.steps[0].count, _sort_key(r.breakdown)))
        return out

    def _trend(self, rows: list[tuple[Any, ...]], start: dt.date, end: dt.date,
               granularity: Granularity) -> FunnelTrend:
        walls = buckets(start, end, granularity, self.ctx.timezone)
        index = {w: i for i, w in enumerate(walls)}
        entered, converted = [0] * len(walls), [0] * len(walls)
        for bucket, first, last in rows:
            position = index.get(wall_clock(bucket))
            if position is not None:
                entered[position], converted[position] = int(first), int(last)
        labels = [w.strftime("%Y-%m-%dT%H:%M") if granularity in ("minute", "hour") else w.date().isoformat()
                  for w in walls]
        return FunnelTrend(granularity=granularity.value, buckets=labels, entered=entered, converted=converted,
                           conversion_rate=[_rate(c, e) for c, e in zip(converted, entered, strict=True)],
                           steps=len(self.query.steps))


OTHER_LABEL = "$other"


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if math.isnan(number):  # no conversions
        return None
    return round(number, 3)


def _sort_key(values: list[Any] | None) -> tuple[Any, ...]:
    return tuple((v is None, str(v)) for v in values or [])
