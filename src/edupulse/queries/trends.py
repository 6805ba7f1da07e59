"""Trends (事件分析): how many events, persons, or how much of a numeric property, per time bucket."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import (
    OTHER,
    PERSON,
    Breakdown,
    DateRange,
    Filter,
    Granularity,
    Model,
    PropertyName,
    UnitName,
    buckets,
    local_midnight,
    previous_days,
)
from edupulse.queries.compile import EVENTS
from edupulse.queries.dialect import DAY_US, Dialect, paren, wall_clock
from edupulse.queries.errors import QueryError
from edupulse.queries.formula import FormulaError, evaluate
from edupulse.queries.formula import parse as parse_formula
from edupulse.queries.results import (
    BreakdownValues,
    Number,
    Part,
    Provenance,
    Result,
    Table,
    absent_when_none,
    label,
)

NONE = "$none"
LETTERS = "ABCDEFGHIJ"


class Math(StrEnum):
    total = "total"  # events
    unique = "unique"  # distinct units (persons, or the query's group type) who did it
    unique_persons = "unique_persons"  # the same as unique (kept for its name)
    dau = "dau"  # units active on the day (day granularity)
    wau = "wau"  # units active in the 7 days ending on the day
    mau = "mau"  # units active in the 30 days ending on the day
    avg_per_person = "avg_per_person"  # events per unit who did it
    min_per_person = "min_per_person"
    max_per_person = "max_per_person"
    median_per_person = "median_per_person"
    p75_per_person = "p75_per_person"
    p90_per_person = "p90_per_person"
    p95_per_person = "p95_per_person"
    p99_per_person = "p99_per_person"
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
QUANTILES = {"median": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
PER_PERSON = {m for m in Math if m.value.endswith("_per_person")}
ROLLING = {Math.dau: 1, Math.wau: 7, Math.mau: 30}
UNIQUE = {Math.unique, Math.unique_persons}
ADDITIVE = {Math.total, Math.sum, Math.min, Math.max, Math.avg}


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
        if self.math not in PROPERTY_MATH and self.property is not None:
            raise ValueError(f"math {self.math.value} takes no property; sum, avg, min, max, median and p75-p99 do")
        return self

    def title(self) -> str:
        if self.name:
            return self.name
        what = self.event or "all events"
        return what if self.math is Math.total else f"{what} · {self.math.value}" + (
            f"({self.property})" if self.property else "")


SERIES_KEYS = frozenset({"metric", "name", "filters"})


class MetricSeries(Model):
    """A series naming a metric of the project's catalogue: the query service replaces it by the metric's
    current definition (metrics.py) before the query runs."""

    metric: str = Field(min_length=1, max_length=64)
    name: str | None = Field(None, max_length=200)
    filters: list[Filter] = Field(default_factory=list, max_length=50)

    @model_validator(mode="before")
    @classmethod
    def _only_its_keys(cls, data: Any) -> Any:
        extra = sorted(set(data) - SERIES_KEYS) if isinstance(data, dict) else []
        if extra:  # a custom error: the message as it is, without "Value error, "
            raise PydanticCustomError("metric_series", "a metric series takes only metric, name and filters, not "
                                      "{extra} (the metric's definition fixes them)", {"extra": ", ".join(extra)})
        return data


def _series_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "#metric" if "metric" in value else "#events"
    return "#metric" if isinstance(value, MetricSeries) else "#events"


# Tags starting with # are left out of error locations (registry.problems): `series.0: ...`, as a user wrote it.
AnySeries = Annotated[Annotated[Series, Tag("#events")] | Annotated[MetricSeries, Tag("#metric")],
                      Discriminator(_series_kind)]


class TrendsQuery(Model):
    kind: Literal["trends"]
    series: list[AnySeries] = Field(min_length=1, max_length=10)
    date_range: DateRange = DateRange()
    granularity: Granularity = Granularity.day
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    breakdown: Breakdown | None = None
    unit: UnitName = PERSON
    formula: str | None = Field(None, max_length=500, description="e.g. A / B * 100 over the series in order")
    formula_name: str | None = Field(None, max_length=200)
    compare_previous: bool = False

    @model_validator(mode="after")
    def _checks(self) -> TrendsQuery:
        if self.formula is not None and not self.names_metrics():
            try:
                parse_formula(self.formula, len(self.series))
            except FormulaError as exc:
                raise ValueError(str(exc)) from None
        rolling = [s.math.value for s in self.series if isinstance(s, Series) and s.math in ROLLING]
        if rolling and self.granularity is not Granularity.day:
            raise ValueError(f"math {rolling[0]} is a daily figure: use granularity day")
        return self

    def names_metrics(self) -> bool:
        return any(isinstance(s, MetricSeries) for s in self.series)

    def event_series(self) -> list[Series]:
        """The series, once metrics are replaced by their definitions (the runner only runs such queries)."""
        if self.names_metrics():
            raise QueryError("series name metrics: replace them by their definitions first (metrics.expand)")
        return [s for s in self.series if isinstance(s, Series)]


# the response -------------------------------------------------------------------------------------


class Line(Part):
    """A formula's values for one breakdown value."""

    breakdown: BreakdownValues
    data: list[Number | None]
    aggregated_value: Number | None


class EventSeries(Part):
    index: int
    label: str
    event: str | None
    math: str
    breakdown: BreakdownValues
    data: list[Number | None]
    aggregated_value: Number | None


class FormulaSeries(Part):
    index: int
    label: str
    formula: str
    event: None = None
    math: Literal["formula"] = "formula"
    breakdown: BreakdownValues
    data: list[Number | None]
    aggregated_value: Number | None
    by_breakdown: list[Line] | None = absent_when_none()


class MetricValues(Part):
    """A catalogue metric's series: its value per bucket and over the range (None where undefined)."""

    index: int
    label: str
    event: None = None
    math: Literal["metric"] = "metric"
    metric: str
    metric_version: int
    unit: str
    breakdown: BreakdownValues
    data: list[Number | None]
    aggregated_value: Number | None


SeriesResult = EventSeries | FormulaSeries | MetricValues


class TrendsPeriod(Part):
    date_from: str
    date_to: str
    buckets: list[str]
    series: list[SeriesResult]


class TrendsResponse(Result):
    date_from: str
    date_to: str
    granularity: str
    buckets: list[str]
    series: list[SeriesResult]
    previous: TrendsPeriod | None = absent_when_none()

    def to_table(self) -> Table:
        """One row per series (and breakdown value): its value per bucket, then over the whole range."""
        columns = ["series", "breakdown", *self.buckets, "total"]
        rows: list[list[Any]] = []
        for item in self.series:
            lines: list[Any] = (item.by_breakdown if isinstance(item, FormulaSeries) else None) or [item]
            for line in lines:
                rows.append([item.label, label(line.breakdown), *line.data, line.aggregated_value])
        return columns, rows


# the runner -----------------------------------------------------------------------------------------

Rows = dict[tuple[Any, ...], list[Any]]
Totals = dict[tuple[Any, ...], Any]


class TrendsRunner(QueryRunner[TrendsQuery, TrendsResponse]):
    kind = "trends"
    query_model = TrendsQuery
    response_model = TrendsResponse

    def _range(self) -> tuple[dt.date, dt.date]:
        q = self.query
        start, end = q.date_range.days(self.ctx.timezone, self.now)
        if q.granularity in ("minute", "hour") and (end - start).days > (2 if q.granularity == "minute" else 62):
            raise QueryError(f"granularity {q.granularity.value} covers at most "
                             f"{2 if q.granularity == 'minute' else 62} days; choose a coarser one")
        return start, end

    def _periods(self) -> list[tuple[str, dt.date, dt.date]]:
        start, end = self._range()
        periods = [("", start, end)]
        if self.query.compare_previous:
            periods.append(("previous ", *previous_days(start, end)))
        return periods

    def to_queries(self) -> dict[str, exp.Expr]:
        out: dict[str, exp.Expr] = {}
        for prefix, start, end in self._periods():
            out.update({f"{prefix}{name}": tree for name, tree in self._statements(start, end).items()})
        return out

    def calculate(self) -> TrendsResponse:
        periods = []
        for _, start, end in self._periods():
            labels, series = self._period(start, end)
            periods.append(TrendsPeriod(date_from=start.isoformat(), date_to=end.isoformat(), buckets=labels,
                                        series=series))
        main = periods[0]
        response = TrendsResponse(date_from=main.date_from, date_to=main.date_to,
                                  granularity=self.query.granularity.value, buckets=main.buckets,
                                  series=main.series, previous=periods[1] if len(periods) > 1 else None)
        breakdown = self.query.breakdown
        return response.from_data(Provenance(breakdown=tuple(breakdown.properties) if breakdown else ()))

    def _bounds(self, start: dt.date, end: dt.date) -> tuple[list[dt.datetime], dt.datetime, dt.datetime]:
        tz = self.ctx.timezone
        walls = buckets(start, end, self.query.granularity, tz)
        return walls, local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)

    def _statements(self, start: dt.date, end: dt.date) -> dict[str, exp.Expr]:
        """Per series: one statement, or two for per-unit maths (per bucket, then over the range)."""
        _, low, high = self._bounds(start, end)
        out: dict[str, exp.Expr] = {}
        for number, series in enumerate(self.query.event_series()):
            name = f"series {number}"
            if series.math in ROLLING:
                n = ROLLING[series.math]
                since = local_midnight(start - dt.timedelta(days=n - 1), self.ctx.timezone)
                out[name] = self._rolling_tree(series, since, high, n)
            elif series.math in ADDITIVE:
                out[name] = self._additive_tree(series, low, high)
            elif series.math not in PER_PERSON:
                out[name] = self._grouped_tree(series, low, high)
            else:
                out[f"{name} per bucket"] = self._tree(series, low, high, per_bucket=True)
                out[f"{name} over the range"] = self._tree(series, low, high, per_bucket=False)
        return out

    def _period(self, start: dt.date, end: dt.date) -> tuple[list[str], list[SeriesResult]]:
        q = self.query
        walls, _, _ = self._bounds(start, end)
        labels = [_label(w, q.granularity) for w in walls]
        statements = self._statements(start, end)
        out: list[SeriesResult] = []
        for number, series in enumerate(q.event_series()):
            name = f"series {number}"
            if series.math in ROLLING:
                rows, aggregate = self._rolling(self.run(statements[name]), start, walls)
            elif series.math in ADDITIVE:
                rows, aggregate = self._additive(series, self.run(statements[name]), walls)
            elif series.math not in PER_PERSON:
                rows, aggregate = self._grouped(self.run(statements[name]), walls)
            else:
                rows, aggregate = self._per_unit(self.run(statements[f"{name} per bucket"]),
                                                 self.run(statements[f"{name} over the range"]), walls)
            for keys in sorted(set(rows) | set(aggregate), key=lambda k: (-(aggregate.get(k) or 0), k)):
                out.append(EventSeries(
                    index=number, label=series.title(), event=series.event, math=series.math.value,
                    breakdown=[_breakdown_value(k) for k in keys] if q.breakdown else None,
                    data=rows.get(keys, [0] * len(walls)), aggregated_value=aggregate.get(keys, 0)))
        if q.formula is not None:
            out.append(self._formula(out, len(walls)))
        return labels, out

    def _per_unit(self, per_bucket: list[tuple[Any, ...]], totals: list[tuple[Any, ...]],
                  walls: list[dt.datetime]) -> tuple[Rows, Totals]:
        index = {w: i for i, w in enumerate(walls)}
        width = self._width()
        rows: Rows = {}
        for row in per_bucket:
            bucket, keys, value = row[0], tuple(row[1:1 + width]), row[1 + width]
            data = rows.setdefault(keys, [0] * len(walls))
            position = index.get(wall_clock(bucket))
            if position is not None:
                data[position] = _number(value)
        return rows, {tuple(row[:width]): _number(row[width]) for row in totals}

    def _width(self) -> int:
        return len(self.query.breakdown.properties) if self.query.breakdown else 0

    def _formula(self, series: list[SeriesResult], width: int) -> FormulaSeries:
        """The formula per bucket and over the range, per breakdown value (a value missing in a series is 0)."""
        q = self.query
        assert q.formula is not None
        tree = parse_formula(q.formula, len(q.series))
        by_key: dict[tuple[Any, ...], dict[str, SeriesResult]] = {}
        for item in series:
            key = tuple(item.breakdown or ())
            by_key.setdefault(key, {})[LETTERS[item.index]] = item
        lines = []
        for key, items in by_key.items():
            data = [evaluate(tree, {letter: it.data[i] or 0 for letter, it in items.items()}) for i in range(width)]
            total = evaluate(tree, {letter: it.aggregated_value or 0 for letter, it in items.items()})
            lines.append(Line(breakdown=list(key) if q.breakdown else None, data=data, aggregated_value=total))
        title = q.formula_name or q.formula
        if not q.breakdown:
            return FormulaSeries(index=len(q.series), label=title, formula=q.formula, breakdown=None,
                                 data=lines[0].data if lines else [None] * width,
                                 aggregated_value=lines[0].aggregated_value if lines else None)
        return FormulaSeries(index=len(q.series), label=title, formula=q.formula, breakdown=None,
                             data=[None] * width, aggregated_value=None, by_breakdown=lines)

    def _additive(self, series: Series, result: list[tuple[Any, ...]], walls: list[dt.datetime]) -> tuple[Rows,
                                                                                                         Totals]:
        """Maths whose bucket values add up to the range's (counts, sums, minimums, maximums, means): one
        statement aggregates per bucket first, the top breakdown values are chosen from those partial
        aggregates, and the range's value is combined here, so the events are read once."""
        index = {w: i for i, w in enumerate(walls)}
        width = self._width()
        math = series.math
        rows: Rows = {}
        parts: dict[tuple[Any, ...], list[tuple[Any, Any, Any]]] = {}
        for row in result:
            bucket, keys, (value, total, count) = row[0], tuple(row[1:1 + width]), row[1 + width:4 + width]
            data = rows.setdefault(keys, [0] * len(walls))
            position = index.get(wall_clock(bucket))
            if position is not None:
                data[position] = _number(value)
                parts.setdefault(keys, []).append((value, total, count))
        aggregate: dict[tuple[Any, ...], Any] = {}
        if not width:  # a series without breakdown has its line even when nothing happened
            rows.setdefault((), [0] * len(walls))
            aggregate[()] = 0
        for keys, values in parts.items():
            present = [v for v, _, _ in values if v is not None]
            if math is Math.avg:
                count = sum(c or 0 for _, _, c in values)
                aggregate[keys] = _number(sum(t or 0 for _, t, _ in values) / count) if count else 0
            elif math is Math.min:
                aggregate[keys] = _number(min(present)) if present else 0
            elif math is Math.max:
                aggregate[keys] = _number(max(present)) if present else 0
            else:
                aggregate[keys] = _number(sum(present))
        return rows, aggregate

    def _additive_tree(self, series: Series, low: dt.datetime, high: dt.datetime) -> exp.Expr:
        e = exp.column
        source, keys = self._base(series, low, high, self.query.granularity)
        v = e("v")
        partials = [exp.Count(this=exp.Star()).as_("cnt")]
        if series.property is not None:
            partials += [exp.Sum(this=v).as_("s"), exp.Count(this=v).as_("cv"), exp.Min(this=v).as_("mn"),
                         exp.Max(this=v).as_("mx")]
        agg = exp.select(e("bucket"), *[e(k) for k in keys], *partials).from_("base").group_by(
            e("bucket"), *[e(k) for k in keys])
        tree = exp.select().with_("base", as_=source).with_("agg", as_=agg)
        folded: list[exp.Expr] = []
        if keys:
            assert self.query.breakdown is not None
            top = (exp.select(*[e(k) for k in keys]).from_("agg").group_by(*[e(k) for k in keys])
                   .order_by(exp.Ordered(this=exp.Sum(this=e("cnt")), desc=True), *[e(k) for k in keys])
                   .limit(self.query.breakdown.limit))
            tree = tree.with_("top", as_=top)
            inside = exp.In(this=exp.Tuple(expressions=[e(k) for k in keys]),
                            query=exp.select(*[e(k) for k in keys]).from_("top").subquery())
            folded = [exp.If(this=inside, true=e(k), false=exp.Literal.string(OTHER)) for k in keys]
        math = series.math
        value: exp.Expr
        if math is Math.total:
            value, total, count = exp.Sum(this=e("cnt")), exp.Sum(this=e("cnt")), exp.Sum(this=e("cnt"))
        else:
            total, count = exp.Sum(this=e("s")), exp.Sum(this=e("cv"))
            value = {Math.sum: total.copy(), Math.min: exp.Min(this=e("mn")), Math.max: exp.Max(this=e("mx")),
                     Math.avg: exp.Div(this=exp.Sum(this=e("s")), expression=exp.func("nullif", exp.Sum(this=e("cv")),
                                                                                     exp.Literal.number(0)))}[math]
        names = [f"out_{k}" for k in keys]
        tree = tree.select(e("bucket"), *[f.as_(n) for f, n in zip(folded, names, strict=True)], value.as_("value"),
                           total.as_("total"), count.as_("count")).from_("agg")
        return tree.group_by(e("bucket"), *folded)

    def _grouped_tree(self, series: Series, low: dt.datetime, high: dt.datetime) -> exp.Expr:
        """Maths that do not add up over buckets (distinct units, percentiles): per bucket and over the range
        in one statement, with grouping sets."""
        e = exp.column
        source, keys = self._base(series, low, high, self.query.granularity)
        tree, folded = self._with_top(exp.select().with_("base", as_=source), keys)
        names = [f"out_{k}" for k in keys]
        extra = [e("v")] if series.property is not None else []
        flat = exp.select(e("bucket"), *[f.as_(n) for f, n in zip(folded, names, strict=True)], e("person"),
                          *extra).from_("base")
        tree = tree.with_("flat", as_=flat)
        sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[e("bucket"), *[e(n) for n in names]]),
                                             exp.Tuple(expressions=[e(n) for n in names])])
        tree = tree.select(e("bucket"), *[e(n) for n in names],
                           exp.func("grouping", e("bucket")).as_("whole"),
                           _aggregate(series, self.ctx.dialect).as_("value")).from_("flat")
        tree.set("group", exp.Group(expressions=[sets]))
        return tree

    def _grouped(self, result: list[tuple[Any, ...]], walls: list[dt.datetime]) -> tuple[Rows, Totals]:
        index = {w: i for i, w in enumerate(walls)}
        width = self._width()
        rows: Rows = {}
        aggregate: Totals = {}
        if not width:
            rows[()] = [0] * len(walls)
            aggregate[()] = 0
        for row in result:
            bucket, group, whole, value = row[0], tuple(row[1:1 + width]), row[1 + width], row[2 + width]
            if whole:
                aggregate[group] = _number(value)
                continue
            data = rows.setdefault(group, [0] * len(walls))
            position = index.get(wall_clock(bucket))
            if position is not None:
                data[position] = _number(value)
        return rows, aggregate

    def _rolling(self, result: list[tuple[Any, ...]], start: dt.date, walls: list[dt.datetime]) -> tuple[Rows,
                                                                                                        Totals]:
        """Units active in the N days ending on each day (DAU, WAU, MAU); over the range: the mean of the days.

        Each unit's active days are turned into intervals of days on which it counts (from an active day to
        the earlier of its next active day and N days later), so the engine sorts active days once and adds
        up +1/-1 at the interval ends, whatever N is."""
        width = self._width()
        first_day = (dt.datetime.combine(start, dt.time()) - dt.datetime(1970, 1, 1)).days
        deltas: dict[tuple[Any, ...], dict[int, int]] = {}
        for row in result:
            keys, day, delta = tuple(row[:width]), int(row[width]), int(row[width + 1])
            deltas.setdefault(keys, {})[day] = delta
        rows: dict[tuple[Any, ...], list[Any]] = {}
        aggregate: dict[tuple[Any, ...], Any] = {}
        for keys, changes in deltas.items():
            active, values = 0, []
            for day in sorted(changes):
                if day >= first_day:
                    break
                active += changes[day]
            for offset in range(len(walls)):
                active += changes.get(first_day + offset, 0)
                values.append(active)
            rows[keys] = values
            aggregate[keys] = _number(sum(values) / len(values)) if values else 0
        return rows, aggregate

    # the SQL ----------------------------------------------------------------------------------

    def _base(self, series: Series, low: dt.datetime, high: dt.datetime,
              granularity: str) -> tuple[exp.Expr, list[str]]:
        """The CTE of the series' events: bucket, unit, breakdown keys, value; and the breakdown key names."""
        q, ctx = self.query, self.ctx
        e = exp.column
        conditions: list[exp.Expr] = ctx.in_time(low, high)
        if series.event is not None:
            conditions.append(e("event", EVENTS).eq(exp.Literal.string(series.event)))
        conditions += ctx.conditions([*q.filters, *series.filters])
        unit = ctx.unit(q.unit)
        if q.unit != PERSON and series.math is not Math.total and series.math not in PROPERTY_MATH:
            conditions.append(exp.Not(this=exp.Is(this=unit, expression=exp.null())))
        columns: list[exp.Expr] = [ctx.bucket(granularity, low, high).as_("bucket")]
        if series.math not in ADDITIVE:  # reading the person costs a join with the merge overrides
            columns.append(unit.as_("person"))
        keys = [f"b{i}" for i in range(len(q.breakdown.properties))] if q.breakdown else []
        if q.breakdown:
            for key, prop in zip(keys, q.breakdown.properties, strict=True):
                columns.append(exp.func("coalesce", ctx.text(prop), exp.Literal.string(NONE)).as_(key))
        if series.property is not None:
            columns.append(ctx.number(series.property).as_("v"))
        return ctx.scan(columns, conditions), keys

    def _with_top(self, tree: exp.Select, keys: list[str]) -> tuple[exp.Select, list[exp.Expr]]:
        """The top breakdown combinations (by events) as a CTE, and the key expressions that fold the rest
        into $other."""
        e = exp.column
        if not keys:
            return tree, []
        assert self.query.breakdown is not None
        top = (exp.select(*[e(k) for k in keys]).from_("base").group_by(*[e(k) for k in keys])
               .order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True), *[e(k) for k in keys])
               .limit(self.query.breakdown.limit))
        tree = tree.with_("top", as_=top)
        inside = exp.In(this=exp.Tuple(expressions=[e(k) for k in keys]),
                        query=exp.select(*[e(k) for k in keys]).from_("top").subquery())
        return tree, [exp.If(this=inside, true=e(k), false=exp.Literal.string(OTHER)) for k in keys]

    def _tree(self, series: Series, low: dt.datetime, high: dt.datetime, per_bucket: bool) -> exp.Expr:
        e = exp.column
        source, keys = self._base(series, low, high, self.query.granularity)
        tree, folded = self._with_top(exp.select().with_("base", as_=source), keys)
        groups: list[exp.Expr] = [e("bucket")] if per_bucket else []
        groups += folded
        names = (["bucket"] if per_bucket else []) + [f"out_{k}" for k in keys]
        if series.math in PER_PERSON:
            # events per unit (per bucket and breakdown value), then the statistic over units
            inner = (exp.select(*[g.as_(n) for g, n in zip(groups, names, strict=True)],
                                exp.Count(this=exp.Star()).as_("n"))
                     .from_("base").group_by(*groups, e("person")))
            value = _per_person(series.math, self.ctx.dialect)
            outer = exp.select(*[e(n) for n in names], value.as_("value")).from_(inner.subquery("per_unit"))
            if names:
                outer = outer.group_by(*[e(n) for n in names])
            for cte in tree.args.get("with_").expressions:  # type: ignore[union-attr]
                outer = outer.with_(cte.alias, as_=cte.this)
            return outer
        tree = tree.select(*[g.as_(n) for g, n in zip(groups, names, strict=True)],
                           _aggregate(series, self.ctx.dialect).as_("value")).from_("base")
        if groups:
            tree = tree.group_by(*groups)
        return tree

    def _rolling_tree(self, series: Series, low: dt.datetime, high: dt.datetime, n: int) -> exp.Expr:
        e = exp.column
        source, keys = self._base(series, low, high, "day")
        tree, folded = self._with_top(exp.select().with_("base", as_=source), keys)
        names = [f"out_{k}" for k in keys]
        day = self.ctx.dialect.int_div(e("bucket"), exp.Literal.number(DAY_US))
        active = (exp.select(*[g.as_(name) for g, name in zip(folded, names, strict=True)], day.as_("day"),
                             e("person")).from_("base").distinct())
        partition = [*[e(name) for name in names], e("person")]
        following = exp.Window(
            this=exp.func("lead", e("day"), exp.Literal.number(1), paren(exp.Add(this=e("day"),
                                                                                 expression=exp.Literal.number(n)))),
            partition_by=partition, order=exp.Order(expressions=[exp.Ordered(this=e("day"))]))
        spans = exp.select(*[e(name) for name in names], e("day"),
                           exp.func("least", following, paren(exp.Add(this=e("day"), expression=exp.Literal.number(n))))
                           .as_("until")).from_("active")
        starts = exp.select(*[e(name) for name in names], e("day").as_("d"), exp.Literal.number(1).as_("delta"))
        stops = exp.select(*[e(name) for name in names], e("until").as_("d"), exp.Literal.number(-1).as_("delta"))
        ends = exp.union(starts.from_("spans"), stops.from_("spans"), distinct=False)
        tree = tree.with_("active", as_=active).with_("spans", as_=spans)
        return (tree.select(*[e(name) for name in names], e("d"), exp.Sum(this=e("delta")).as_("delta"))
                .from_(ends.subquery("ends")).group_by(*[e(name) for name in names], e("d")))


def _per_person(math: Math, d: Dialect) -> exp.Expr:
    n = exp.column("n")
    stat = math.value.removesuffix("_per_person")
    if stat in QUANTILES:
        return d.quantile(n, QUANTILES[stat])
    if stat == "avg":
        return exp.Avg(this=n)
    return {"min": exp.Min, "max": exp.Max}[stat](this=n)


def _aggregate(series: Series, d: Dialect) -> exp.Expr:
    v = exp.column("v")
    math = series.math
    if math is Math.total:
        return exp.Count(this=exp.Star())
    if math in UNIQUE:
        return exp.Count(this=exp.Distinct(expressions=[exp.column("person")]))
    if math.value in QUANTILES:
        return d.quantile(v, QUANTILES[math.value])
    return {Math.sum: exp.Sum, Math.avg: exp.Avg, Math.min: exp.Min, Math.max: exp.Max}[math](this=v)


def _label(wall: dt.datetime, granularity: Granularity) -> str:
    if granularity in (Granularity.minute, Granularity.hour):
        return wall.strftime("%Y-%m-%dT%H:%M")
    return wall.date().isoformat()


def _number(value: Any) -> float | int:
    if value is None:
        return 0.0
    number = float(value)
    return int(number) if number.is_integer() else number


def _breakdown_value(value: Any) -> Any:
    return None if value == NONE else value
