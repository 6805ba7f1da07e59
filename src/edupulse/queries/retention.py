"""Retention (留存分析): of the persons (or groups) who did a start event in a period, how many did a return
event N periods later. Periods are days, weeks (from Monday) or months in the project's time zone.

Per unit, the start events give cohorts (the period of the first start in the range, or every period with a
start), the return events give the set of periods with a return; a join of those two small per-unit sets
(never of events with events) gives, per cohort, the units returning k periods later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import (
    OTHER,
    PERSON,
    Breakdown,
    DateRange,
    Filter,
    Model,
    UnitName,
    local_midnight,
)
from edupulse.queries.compile import EVENTS
from edupulse.queries.dialect import DAY_US, Dialect
from edupulse.queries.errors import QueryError
from edupulse.queries.results import BreakdownValues, Part, Provenance, Result, Table, label

NONE = "$none"
Period = Literal["day", "week", "month"]


class RetentionEvent(Model):
    event: str = Field(min_length=1, max_length=100)
    filters: list[Filter] = Field(default_factory=list, max_length=50)


class RetentionQuery(Model):
    kind: Literal["retention"]
    start_event: RetentionEvent
    return_event: RetentionEvent
    cohort: Literal["first_time", "recurring"] = "first_time"
    period: Period = "day"
    periods: int = Field(7, ge=1, le=120)
    mode: Literal["on", "on_or_after"] = "on"
    date_range: DateRange = DateRange()
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    breakdown: Breakdown | None = None
    unit: UnitName = PERSON


def period_index(d: Dialect, local_us: exp.Expr, period: str) -> exp.Expr:
    """The period's number: days since 1970-01-01, weeks (from Monday) since 1969-12-29, or months since
    January 1970, of local microseconds."""
    if period == "month":
        return d.month_number(local_us)
    day = d.int_div(local_us, exp.Literal.number(DAY_US))
    if period == "day":
        return day
    return d.int_div(exp.Add(this=day, expression=exp.Literal.number(3)), exp.Literal.number(7))


def period_start(index: int, period: str) -> dt.date:
    """The first day of period number `index` (see period_index)."""
    if period == "day":
        return dt.date(1970, 1, 1) + dt.timedelta(days=index)
    if period == "week":
        return dt.date(1970, 1, 1) + dt.timedelta(days=7 * index - 3)
    return dt.date(1970 + index // 12, index % 12 + 1, 1)


def index_of(day: dt.date, period: str) -> int:
    days = (day - dt.date(1970, 1, 1)).days
    if period == "day":
        return days
    if period == "week":
        return (days + 3) // 7
    return (day.year - 1970) * 12 + day.month - 1


class Cohort(Part):
    cohort: str
    size: int
    values: list[int | None]
    rates: list[float | None]


class Average(Part):
    values: list[int]
    rates: list[float | None]


class RetentionBreakdown(Part):
    breakdown: BreakdownValues
    cohorts: list[Cohort]
    average: Average


class RetentionResponse(Result):
    date_from: str
    date_to: str
    period: str
    periods: int
    cohort: str
    mode: str
    unit: str
    results: list[RetentionBreakdown]

    def to_table(self) -> Table:
        columns = ["breakdown", "cohort", "size", *[f"period_{k}" for k in range(self.periods + 1)]]
        rows: list[list[Any]] = []
        for entry in self.results:
            for cohort in entry.cohorts:
                rows.append([label(entry.breakdown), cohort.cohort, cohort.size, *cohort.values])
        return columns, rows


class RetentionRunner(QueryRunner[RetentionQuery, RetentionResponse]):
    kind = "retention"
    query_model = RetentionQuery
    response_model = RetentionResponse

    def _bounds(self) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime, dt.datetime]:
        q = self.query
        tz = self.ctx.timezone
        start, end = q.date_range.days(tz, self.now)
        self.ctx.unit(q.unit)
        first, last = index_of(start, q.period), index_of(end, q.period)
        if last - first >= 400:
            raise QueryError(f"date_range spans {last - first + 1} {q.period}s; at most 400 cohorts")
        return (start, end, local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz),
                local_midnight(period_start(last + q.periods + 1, q.period), tz))

    def to_queries(self) -> dict[str, exp.Expr]:
        _, _, low, starts_end, returns_end = self._bounds()
        return {"sizes": self._sizes_tree(low, starts_end, returns_end),
                "hits": self._hits_tree(low, starts_end, returns_end)}

    def calculate(self) -> RetentionResponse:
        q = self.query
        tz = self.ctx.timezone
        start, end, _, _, _ = self._bounds()
        first, last = index_of(start, q.period), index_of(end, q.period)
        today = index_of(self.now.astimezone(tz).date(), q.period)
        width = len(q.breakdown.properties) if q.breakdown else 0
        statements = self.to_queries()
        sizes: dict[tuple[Any, ...], dict[int, int]] = {}
        for row in self.run(statements["sizes"]):
            sizes.setdefault(tuple(row[1:1 + width]), {})[int(row[0])] = int(row[1 + width])
        hits: dict[tuple[Any, ...], dict[tuple[int, int], int]] = {}
        for row in self.run(statements["hits"]):
            hits.setdefault(tuple(row[2:2 + width]), {})[(int(row[0]), int(row[1]))] = int(row[2 + width])
        if q.breakdown:
            kept = sorted(sizes, key=lambda k: (-sum(sizes[k].values()), tuple((v == NONE, str(v)) for v in k)))
            kept = kept[:q.breakdown.limit]
            sizes, hits = _fold_other(sizes, hits, set(kept), width)
        results = []
        for keys in sorted(sizes, key=lambda k: (k == (OTHER,) * width if width else False,
                                                 -sum(sizes[k].values()), tuple((v == NONE, str(v)) for v in k))):
            results.append(self._shape(keys, sizes[keys], hits.get(keys, {}), first, last, today))
        response = RetentionResponse(date_from=start.isoformat(), date_to=end.isoformat(), period=q.period,
                                     periods=q.periods, cohort=q.cohort, mode=q.mode, unit=q.unit, results=results)
        return response.from_data(Provenance(breakdown=tuple(q.breakdown.properties) if q.breakdown else ()))

    def _shape(self, keys: tuple[Any, ...], sizes: dict[int, int], hits: dict[tuple[int, int], int],
               first: int, last: int, today: int) -> RetentionBreakdown:
        q = self.query
        cohorts = []
        totals = [0] * (q.periods + 1)
        bases = [0] * (q.periods + 1)
        for c in range(first, last + 1):
            size = sizes.get(c, 0)
            if not size:
                continue
            if q.mode == "on":
                returned = [hits.get((c, k), 0) for k in range(1, q.periods + 1)]
            else:  # hits hold how many units returned last in period k; on or after k: k or later
                returned = [sum(v for (cc, kk), v in hits.items() if cc == c and kk >= k)
                            for k in range(1, q.periods + 1)]
            values: list[int | None] = [size]
            for k, count in enumerate(returned, start=1):
                values.append(None if c + k > today else count)
            for k, value in enumerate(values):
                if value is not None:
                    totals[k] += value
                    bases[k] += size
            cohorts.append(Cohort(cohort=period_start(c, q.period).isoformat(), size=size, values=values,
                                  rates=[None if v is None else round(v / size, 6) for v in values]))
        return RetentionBreakdown(
            breakdown=[None if v == NONE else v for v in keys] if q.breakdown else None, cohorts=cohorts,
            average=Average(values=totals, rates=[round(t / b, 6) if b else None
                                                  for t, b in zip(totals, bases, strict=True)]))

    # the SQL --------------------------------------------------------------------------------------

    def _base(self, low: dt.datetime, starts_end: dt.datetime, returns_end: dt.datetime) -> exp.Select:
        q, ctx = self.query, self.ctx
        d = ctx.dialect
        unit = ctx.unit(q.unit)
        local = ctx.local_us(low, returns_end)
        event = exp.column("event", EVENTS)

        def matches(spec: RetentionEvent) -> exp.Expr:
            return exp.and_(event.eq(exp.Literal.string(spec.event)), *ctx.conditions(spec.filters))

        is_start = exp.and_(matches(q.start_event),
                            exp.LT(this=exp.column("time", EVENTS), expression=d.timestamp(starts_end)))
        columns: list[exp.Expr] = [
            unit.as_("u"), local.as_("t"), period_index(d, local.copy(), q.period).as_("p"),
            _flag(is_start).as_("fs"), _flag(matches(q.return_event)).as_("fr"),
        ]
        if q.breakdown:
            columns += [exp.func("coalesce", ctx.text(p), exp.Literal.string(NONE)).as_(f"b{i}")
                        for i, p in enumerate(q.breakdown.properties)]
        names = sorted({q.start_event.event, q.return_event.event})
        conditions = [*ctx.in_time(low, returns_end),
                      exp.Not(this=exp.Is(this=unit.copy(), expression=exp.null())),
                      exp.In(this=event.copy(), expressions=[exp.Literal.string(n) for n in names])
                      if len(names) > 1 else event.copy().eq(exp.Literal.string(names[0])),
                      *ctx.conditions(q.filters)]
        return ctx.scan(columns, conditions)

    def _cohorts(self, low: dt.datetime, starts_end: dt.datetime, returns_end: dt.datetime) -> exp.Select:
        """WITH base, cohorts (u, c, v0..): one row per unit and cohort period, with the breakdown values of
        the unit's earliest start event in it (ties: the one whose values, in the order of the properties, are
        smallest; one event gives every value)."""
        q = self.query
        width = len(q.breakdown.properties) if q.breakdown else 0
        key = exp.Tuple(expressions=[exp.column("t"), *[exp.column(f"b{i}") for i in range(width)]])
        values = [exp.ArgMin(this=exp.column(f"b{i}"), expression=key.copy()).as_(f"v{i}") for i in range(width)]
        starts = exp.select().from_("base").where(exp.column("fs").eq(1))
        if q.cohort == "first_time":
            cohorts = starts.select(exp.column("u"), exp.Min(this=exp.column("p")).as_("c"), *values).group_by("u")
        else:
            cohorts = starts.select(exp.column("u"), exp.column("p").as_("c"), *values).group_by("u", "p")
        return (exp.select().with_("base", as_=self._base(low, starts_end, returns_end))
                .with_("cohorts", as_=cohorts))

    def _sizes_tree(self, low: dt.datetime, starts_end: dt.datetime, returns_end: dt.datetime) -> exp.Select:
        keys = self._keys()
        return (self._cohorts(low, starts_end, returns_end)
                .select(exp.column("c"), *keys, exp.Count(this=exp.Star())).from_("cohorts")
                .group_by(exp.column("c"), *[k.copy() for k in keys]))

    def _hits_tree(self, low: dt.datetime, starts_end: dt.datetime, returns_end: dt.datetime) -> exp.Select:
        """Per cohort, k and breakdown values: units returning in period c + k ("on"), or units whose last
        return within N periods is in period c + k ("on or after", summed over later k in Python)."""
        q = self.query
        keys = self._keys()
        returns = exp.select(exp.column("u"), exp.column("p")).from_("base").where(exp.column("fr").eq(1)).distinct()
        lag = exp.Sub(this=exp.column("p", "r"), expression=exp.column("c", "h"))
        joined = (exp.select(exp.column("u", "h").as_("u"), exp.column("c", "h").as_("c"),
                             *[exp.column(k.name, "h").as_(k.name) for k in keys], lag.as_("k"))
                  .from_(exp.table_("cohorts").as_("h"))
                  .join(exp.table_("returns").as_("r"), on=exp.column("u", "r").eq(exp.column("u", "h")))
                  .where(exp.Between(this=lag.copy(), low=exp.Literal.number(1), high=exp.Literal.number(q.periods))))
        tree = self._cohorts(low, starts_end, returns_end).with_("returns", as_=returns).with_("hits", as_=joined)
        if q.mode == "on_or_after":
            last = (exp.select(exp.column("c"), *[k.copy() for k in keys], exp.Max(this=exp.column("k")).as_("k"))
                    .from_("hits").group_by(exp.column("u"), exp.column("c"), *[k.copy() for k in keys]))
            tree = tree.with_("lasts", as_=last)
            source = "lasts"
        else:
            source = "hits"
        return (tree.select(exp.column("c"), exp.column("k"), *[k.copy() for k in keys],
                            exp.Count(this=exp.Star())).from_(source)
                .group_by(exp.column("c"), exp.column("k"), *[k.copy() for k in keys]))

    def _keys(self) -> list[exp.Column]:
        width = len(self.query.breakdown.properties) if self.query.breakdown else 0
        return [exp.column(f"v{i}") for i in range(width)]


def _flag(condition: exp.Expr) -> exp.Expr:
    return exp.Case().when(condition, exp.Literal.number(1)).else_(exp.Literal.number(0))


def _fold_other(sizes: dict[tuple[Any, ...], dict[int, int]], hits: dict[tuple[Any, ...], dict[tuple[int, int], int]],
                kept: set[tuple[Any, ...]], width: int) -> tuple[dict[tuple[Any, ...], dict[int, int]],
                                                              dict[tuple[Any, ...], dict[tuple[int, int], int]]]:
    """Every breakdown combination beyond the top ones summed into $other (a unit's cohort has one value)."""
    other = (OTHER,) * width
    new_sizes: dict[tuple[Any, ...], dict[int, int]] = {}
    new_hits: dict[tuple[Any, ...], dict[tuple[int, int], int]] = {}
    for keys, per in sizes.items():
        target = new_sizes.setdefault(keys if keys in kept else other, {})
        for c, n in per.items():
            target[c] = target.get(c, 0) + n
    for keys, per_hit in hits.items():
        target_hits = new_hits.setdefault(keys if keys in kept else other, {})
        for ck, n in per_hit.items():
            target_hits[ck] = target_hits.get(ck, 0) + n
    return new_sizes, new_hits
