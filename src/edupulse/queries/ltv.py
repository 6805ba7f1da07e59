"""LTV: cumulative revenue per person by cohort for day N. A cohort is the persons (or groups) whose first
start event falls in a day, week or month of the project's time zone; day N counts the revenue (minus
refunds) from the start event to the end of the Nth local day after it."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import (
    PERSON,
    Breakdown,
    DateRange,
    Filter,
    Model,
    PropertyName,
    UnitName,
    local_midnight,
)
from edupulse.queries.dialect import DAY_US, local_us, truncate_us, wall_clock
from edupulse.queries.pieces import EventStep, breakdown_value, key_columns, key_names, number, with_top
from edupulse.queries.results import BreakdownValues, Number, Part, Provenance, Result, Table, label

CohortPeriod = Literal["day", "week", "month"]  # the granularities a cohort may have


class Revenue(Model):
    """Revenue: a numeric property of an event, less the same (or another) property of a refund event."""

    event: str = Field("order_paid", min_length=1, max_length=100)
    property: PropertyName = "amount"
    refund_event: str | None = Field(None, min_length=1, max_length=100, description="e.g. order_refunded")
    refund_property: PropertyName | None = Field(None, description="default: property")
    filters: list[Filter] = Field(default_factory=list, max_length=50, description="on revenue and refund events")


class LtvQuery(Model):
    kind: Literal["ltv"]
    start: EventStep = EventStep(event="lead_created")
    revenue: Revenue = Revenue()
    days: list[int] = Field([0, 1, 7, 14, 30, 60, 90], min_length=1, max_length=40)
    cohort: CohortPeriod = "week"
    date_range: DateRange = DateRange(date_from="-90d")
    filters: list[Filter] = Field(default_factory=list, max_length=50, description="on start events")
    breakdown: Breakdown | None = Field(None, description="by properties of each unit's first start event")
    unit: UnitName = PERSON

    @field_validator("days")
    @classmethod
    def _days(cls, values: list[int]) -> list[int]:
        if any(v < 0 or v > 3650 for v in values):
            raise ValueError("each day N is from 0 to 3650")
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ValueError("days must be ascending without repeats, e.g. [0, 1, 7, 30]")
        return values


class LtvCohort(Part):
    cohort: str
    size: int
    revenue: list[Number | None]  # None: day N not reached yet
    per_person: list[Number | None]


class LtvSeries(Part):
    breakdown: BreakdownValues
    size: int
    revenue: list[Number | None]
    per_person: list[Number | None]
    cohorts: list[LtvCohort]


class LtvResponse(Result):
    date_from: str
    date_to: str
    cohort: str
    unit: str
    days: list[int]
    series: list[LtvSeries]

    def to_table(self) -> Table:
        columns = ["breakdown", "cohort", "size", *[f"revenue_day_{n}" for n in self.days],
                   *[f"per_person_day_{n}" for n in self.days]]
        rows = []
        for series in self.series:
            name = label(series.breakdown)
            for cohort in [*series.cohorts, LtvCohort(cohort="all", size=series.size, revenue=series.revenue,
                                                       per_person=series.per_person)]:
                rows.append([name, cohort.cohort, cohort.size, *cohort.revenue, *cohort.per_person])
        return columns, rows


class LtvRunner(QueryRunner[LtvQuery, LtvResponse]):
    kind = "ltv"
    query_model = LtvQuery
    response_model = LtvResponse

    def to_queries(self) -> dict[str, exp.Expr]:
        start, end = self.query.date_range.days(self.ctx.timezone, self.now)
        return {"cohorts": self._tree(start, end)}

    def calculate(self) -> LtvResponse:
        q, tz = self.query, self.ctx.timezone
        start, end = q.date_range.days(tz, self.now)
        today = self.now.astimezone(tz).date()
        width = len(key_names(q.breakdown))
        grouped: dict[tuple[Any, ...], list[LtvCohort]] = {}
        for row in self.run(self.to_queries()["cohorts"]):
            period = wall_clock(row[0]).date()
            keys = tuple(row[1:1 + width])
            size = int(row[1 + width])
            last_day = min(_period_end(period, q.cohort), end)
            sums = [number(v) or 0 if last_day + dt.timedelta(days=n) <= today else None
                    for n, v in zip(q.days, row[2 + width:], strict=True)]
            grouped.setdefault(keys, []).append(LtvCohort(
                cohort=period.isoformat(), size=size, revenue=sums,
                per_person=[None if s is None else s / size for s in sums]))
        series = []
        for keys, cohorts in sorted(grouped.items(), key=lambda kv: (-sum(c.size for c in kv[1]),
                                                                     [str(k) for k in kv[0]])):
            cohorts.sort(key=lambda c: c.cohort)
            revenue: list[Number | None] = []
            per_person: list[Number | None] = []
            for i in range(len(q.days)):  # over the cohorts that have reached day N
                reached = [c for c in cohorts if c.revenue[i] is not None]
                persons = sum(c.size for c in reached)
                total = sum(v for c in reached if (v := c.revenue[i]) is not None)
                revenue.append(number(total) if reached else None)
                per_person.append(total / persons if reached else None)
            series.append(LtvSeries(breakdown=[breakdown_value(k) for k in keys] if q.breakdown else None,
                                    size=sum(c.size for c in cohorts), revenue=revenue, per_person=per_person,
                                    cohorts=cohorts))
        response = LtvResponse(date_from=start.isoformat(), date_to=end.isoformat(), cohort=q.cohort, unit=q.unit,
                               days=list(q.days), series=series)
        return response.from_data(Provenance(breakdown=tuple(q.breakdown.properties) if q.breakdown else ()))

    # the SQL ----------------------------------------------------------------------------------------

    def _tree(self, start: dt.date, end: dt.date) -> exp.Expr:
        q, ctx = self.query, self.ctx
        d, c, n = ctx.dialect, exp.column, exp.Literal.number
        tz = ctx.timezone
        low, high = local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)
        horizon = local_midnight(end + dt.timedelta(days=q.days[-1] + 1), tz)
        unit = ctx.unit(q.unit)
        keys = key_names(q.breakdown)
        not_null = exp.Not(this=exp.Is(this=unit, expression=exp.null()))
        # the first start event ever (before the range's end): only units whose first one is in the range
        # of several start events at the first instant, one gives every value: the one whose values are smallest
        columns = key_columns(ctx, q.breakdown)
        first = exp.Tuple(expressions=[c("time", "e"), *[key.this.copy() for key in columns]])
        first_keys = [d.arg_min(key.this, first.copy()).as_(key.alias) for key in columns]
        firsts = ctx.scan([unit.as_("u"), exp.Min(this=c("time", "e")).as_("t0"), *first_keys],
                          [exp.LT(this=c("time", "e"), expression=d.timestamp(high)), not_null,
                           *q.start.conditions(ctx), *ctx.conditions(q.filters)])
        firsts = firsts.group_by(c("u")).having(exp.GTE(this=exp.Min(this=c("time", "e")),
                                                         expression=d.timestamp(low)))
        tree = exp.select().with_("firsts", as_=firsts)
        tree, labels = with_top(tree, "firsts", q.breakdown, exp.Count(this=exp.Star()))
        local_t0 = local_us(d, c("t0"), tz, low, high)
        cohorts = exp.select(c("u"), c("t0"), truncate_us(d, local_t0, q.cohort).as_("period"),
                             d.int_div(local_t0, n(DAY_US)).as_("day0"),
                             *[lab.as_(f"k{i}") for i, lab in enumerate(labels)]).from_("firsts")
        rev = self._revenue(low, horizon)
        tree = tree.with_("cohorts", as_=cohorts).with_("rev", as_=rev)
        after = exp.column("day", "r") - exp.column("day0", "x")
        sums = []
        for i, day in enumerate(q.days):
            counted = exp.and_(exp.GTE(this=c("t", "r"), expression=c("t0", "x")),
                               exp.LTE(this=exp.Paren(this=after), expression=n(day)))
            sums.append(exp.Sum(this=exp.Case().when(counted, c("amount", "r")).else_(n(0))).as_(f"n{i}"))
        groups = [c("period", "x"), *[c(f"k{i}", "x") for i in range(len(keys))]]
        return (tree.select(*groups, exp.Count(this=exp.Distinct(expressions=[c("u", "x")])), *sums)
                .from_(exp.table_("cohorts").as_("x"))
                .join(exp.table_("rev").as_("r"), on=c("u", "x").eq(c("u", "r")), join_type="left")
                .group_by(*groups))

    def _revenue(self, low: dt.datetime, horizon: dt.datetime) -> exp.Select:
        """Revenue and refund events (refunds negative) from the range's start to day N of its last cohort."""
        q, ctx = self.query, self.ctx
        d, c, n = ctx.dialect, exp.column, exp.Literal.number
        r = q.revenue
        paid = c("event", "e").eq(exp.Literal.string(r.event))
        amount: exp.Expr = exp.func("coalesce", ctx.number(r.property), n(0))
        kinds: exp.Expr = paid
        if r.refund_event is not None:
            refunded = c("event", "e").eq(exp.Literal.string(r.refund_event))
            back = exp.func("coalesce", ctx.number(r.refund_property or r.property), n(0))
            amount = exp.Case().when(refunded, exp.Neg(this=back)).else_(amount)
            kinds = exp.or_(paid, refunded)
        local = local_us(d, c("time", "e"), ctx.timezone, low, horizon)
        return ctx.scan([ctx.unit(q.unit).as_("u"), c("time", "e").as_("t"), d.int_div(local, n(DAY_US)).as_("day"),
                         exp.cast(amount, exp.DataType.build("DOUBLE")).as_("amount")],
                        [*ctx.in_time(low, horizon), exp.Paren(this=kinds), *ctx.conditions(r.filters)])


def _period_end(first: dt.date, period: str) -> dt.date:
    """The last day of the day, week or month starting on `first`."""
    if period == "day":
        return first
    if period == "week":
        return first + dt.timedelta(days=6)
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - dt.timedelta(days=1)

