"""Interval (间隔分析): per person (or group), the time from an event A to the next event B; their count,
spread and a histogram in human units, optionally broken down by a property of A.

Each A finds its next B by an ASOF join on the unit and the time (both engines sort or index B by time once
per unit): no join of every A with every B, no window frame that grows quadratic in a unit's events."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import PERSON, Breakdown, DateRange, Filter, Model, UnitName, local_midnight
from edupulse.queries.dialect import SECOND_US, paren
from edupulse.queries.pieces import EventStep, breakdown_value, key_columns, key_names, number, with_top
from edupulse.queries.results import BreakdownValues, Number, Part, Provenance, Result, Table, label

MINUTE, HOUR, DAY = 60, 3600, 86400
# histogram edges in seconds: readable steps from a minute to two years
EDGES = [0, MINUTE, 5 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY,
         3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 60 * DAY, 90 * DAY, 180 * DAY, 365 * DAY, 730 * DAY]
STATS = ["count", "min", "max", "mean", "p25", "median", "p75", "p90"]


class IntervalMode(StrEnum):
    every = "every"  # every A to its next B
    first = "first"  # only each unit's first A in the date range


class IntervalQuery(Model):
    kind: Literal["interval"]
    start: EventStep = Field(description="event A; None: any event")
    end: EventStep = Field(description="event B; None: any event")
    date_range: DateRange = DateRange()
    window_days: int = Field(30, ge=1, le=3650, description="the longest interval counted")
    mode: IntervalMode = IntervalMode.every
    same_time: bool = Field(False, description="a B at the same instant as A ends the interval (0 s)")
    filters: list[Filter] = Field(default_factory=list, max_length=50, description="on both A and B events")
    breakdown: Breakdown | None = Field(None, description="by properties of A")
    unit: UnitName = PERSON


class Display(Part):
    """The statistics in words (2h 5m)."""

    min: str | None
    max: str | None
    mean: str | None
    p25: str | None
    median: str | None
    p75: str | None
    p90: str | None


class IntervalSeries(Part):
    breakdown: BreakdownValues
    count: int
    min: Number | None
    max: Number | None
    mean: Number | None
    p25: Number | None
    median: Number | None
    p75: Number | None
    p90: Number | None
    display: Display
    histogram: list[int]


class IntervalBucket(Part):
    label: str
    low: int
    high: int | None


class IntervalResponse(Result):
    date_from: str
    date_to: str
    unit: str
    window_days: int
    mode: str
    buckets: list[IntervalBucket]
    series: list[IntervalSeries]

    def to_table(self) -> Table:
        columns = ["breakdown", *STATS, *[b.label for b in self.buckets]]
        rows = [[label(s.breakdown), *[getattr(s, name) for name in STATS], *s.histogram] for s in self.series]
        return columns, rows


class IntervalRunner(QueryRunner[IntervalQuery, IntervalResponse]):
    kind = "interval"
    query_model = IntervalQuery
    response_model = IntervalResponse

    def _bounds(self) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
        tz = self.ctx.timezone
        start, end = self.query.date_range.days(tz, self.now)
        return start, end, local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)

    def to_queries(self) -> dict[str, exp.Expr]:
        _, _, low, high = self._bounds()
        return {"intervals": self._tree(low, high)}

    def calculate(self) -> IntervalResponse:
        q = self.query
        start, end, _, _ = self._bounds()
        width = len(key_names(q.breakdown))
        stats: list[tuple[Any, ...]] = []
        histogram: dict[tuple[Any, ...], list[int]] = {}
        for row in self.run(self.to_queries()["intervals"]):
            keys, bucket, whole = tuple(row[:width]), row[width], row[width + 1]
            if whole:
                stats.append((*keys, *row[width + 2:]))
            else:
                histogram.setdefault(keys, [0] * len(EDGES))[int(bucket) - 1] = int(row[width + 2])
        used = [i for counts in histogram.values() for i, n in enumerate(counts) if n]
        first, last = (min(used), max(used)) if used else (0, 0)
        series = []
        for row in sorted(stats, key=lambda r: (-int(r[width]), [str(v) for v in r[:width]])):
            if not row[width]:  # no GROUP BY: one row even without intervals
                continue
            keys = tuple(row[:width])
            values = dict(zip(STATS, [int(row[width]), *[number(v) for v in row[width + 1:]]], strict=True))
            series.append(IntervalSeries(
                breakdown=[breakdown_value(k) for k in keys] if q.breakdown else None, **values,
                display=Display(**{name: human(values[name]) for name in STATS[1:]}),
                histogram=histogram.get(keys, [0] * len(EDGES))[first:last + 1]))
        bounds = list(zip(EDGES, [*EDGES[1:], None], strict=True))[first:last + 1]
        response = IntervalResponse(date_from=start.isoformat(), date_to=end.isoformat(), unit=q.unit,
                                    window_days=q.window_days, mode=q.mode.value,
                                    buckets=[IntervalBucket(label=_label(a, b), low=a, high=b) for a, b in bounds],
                                    series=series)
        return response.from_data(Provenance(breakdown=tuple(q.breakdown.properties) if q.breakdown else ()))

    # the SQL ----------------------------------------------------------------------------------------

    def _pairs(self, low: dt.datetime, high: dt.datetime) -> exp.Select:
        """WITH a (A events, or each unit's first), b (B events), pairs (each A with its next B: an ASOF join
        on the unit and the time; d in seconds), labelled (keys in the top or $other, d)."""
        q, ctx = self.query, self.ctx
        c, n, d = exp.column, exp.Literal.number, ctx.dialect
        unit = ctx.unit(q.unit)
        t = d.epoch_us(c("time", "e"))
        common = [exp.Not(this=exp.Is(this=unit, expression=exp.null())), *ctx.conditions(q.filters)]
        horizon = high + dt.timedelta(days=q.window_days)
        b_conditions = q.end.conditions(ctx)
        if q.same_time:
            # ASOF on 2t (A) <= 2t + 1 (B) takes B at the same instant; an A that is itself a B gets 2t + 2:
            # its next B is strictly later, so an event never ends its own interval
            also_b = exp.and_(*b_conditions) if b_conditions else exp.true()
            a_key: exp.Expr = exp.Add(this=exp.Mul(this=paren(t), expression=n(2)), expression=exp.Paren(
                this=exp.Case().when(also_b, n(2)).else_(n(0))))
            b_key: exp.Expr = exp.Add(this=exp.Mul(this=paren(t), expression=n(2)), expression=n(1))
        else:
            a_key = b_key = t
        first = q.mode is IntervalMode.first
        # (ClickHouse resolves aliases everywhere: the first A's columns get new names, not min(t) AS t)
        a = ctx.scan([unit.as_("u"), t.as_("t_" if first else "t"), a_key.as_("k_" if first else "k"),
                      *[column.as_(f"{column.alias}_" if first else column.alias)
                        for column in key_columns(ctx, q.breakdown)]],
                     [*ctx.in_time(low, high), *common, *q.start.conditions(ctx)])
        keys = key_names(q.breakdown)
        if first:  # each unit's first A in the range (with its own key and properties)
            # of several A at the first instant, one gives every column: one that is not itself a B when there
            # is one (its k is smaller), then the one with the smallest breakdown values
            first_a = exp.Tuple(expressions=[c("t_"), c("k_"), *[c(f"{name}_") for name in keys]])
            firsts = [d.arg_min(c(f"{name}_"), first_a.copy()).as_(name) for name in ["k", *keys]]
            a = exp.select(c("u"), exp.Min(this=c("t_")).as_("t"), *firsts).from_(a.subquery("a_all")).group_by(
                c("u"))
        b = ctx.scan([unit.as_("u"), t.as_("t"), b_key.as_("k")], [*ctx.in_time(low, horizon), *common, *b_conditions])
        after = (exp.GTE if q.same_time else exp.GT)(this=c("k", "b"), expression=c("k", "a"))
        gap = exp.Sub(this=c("t", "b"), expression=c("t", "a"))
        seconds = exp.Div(this=exp.cast(exp.Paren(this=gap), exp.DataType.build("DOUBLE")), expression=n(SECOND_US))
        pairs = (exp.select(c("u", "a").as_("u"), *[c(k, "a").as_(k) for k in keys], seconds.as_("d"))
                 .from_(exp.table_("a").as_("a"))
                 .join(exp.table_("b").as_("b"), on=exp.and_(c("u", "a").eq(c("u", "b")), after), join_type="ASOF")
                 .where(exp.LTE(this=exp.Paren(this=gap), expression=n(q.window_days * 86400 * SECOND_US))))
        tree = exp.select().with_("a", as_=a).with_("b", as_=b).with_("pairs", as_=pairs)
        tree, labels = with_top(tree, "pairs", q.breakdown, exp.Count(this=exp.Star()))
        labelled = exp.select(*[lab.as_(f"k{i}") for i, lab in enumerate(labels)], c("d")).from_("pairs")
        return tree.with_("labelled", as_=labelled)

    def _tree(self, low: dt.datetime, high: dt.datetime) -> exp.Expr:
        """The statistics per breakdown value and the histogram per value and bucket, in one statement
        (grouping sets; `whole` is 1 on the statistics rows)."""
        c, n, quantile = exp.column, exp.Literal.number, self.ctx.dialect.quantile
        d = c("d")
        keys = [c(f"k{i}") for i in range(len(key_names(self.query.breakdown)))]
        index: exp.Expr = n(0)
        for edge in EDGES:  # 1 + the number of edges above 0 at or below d
            index = exp.Add(this=index, expression=exp.Case().when(exp.GTE(this=d, expression=n(edge)), n(1)).else_(
                n(0)))
        tree = self._pairs(low, high)
        tree = tree.with_("binned", as_=exp.select(*keys, exp.Paren(this=index).as_("bucket"), d).from_("labelled"))
        tree = tree.select(*keys, c("bucket"), exp.func("grouping", c("bucket")).as_("whole"),
                           exp.Count(this=exp.Star()), exp.Min(this=d), exp.Max(this=d), exp.Avg(this=d),
                           quantile(d, 0.25), quantile(d, 0.5), quantile(d, 0.75), quantile(d, 0.9)).from_("binned")
        sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[*keys, c("bucket")]), exp.Tuple(expressions=keys)])
        tree.set("group", exp.Group(expressions=[sets]))
        return tree


def human(seconds: float | int | None) -> str | None:
    """A duration in its two largest units: 45s, 5m 30s, 2h 5m, 3d 4h."""
    if seconds is None:
        return None
    total = round(float(seconds))
    parts: list[str] = []
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size}{unit}")
            total %= size
    return " ".join(parts[:2])


def _label(low: int, high: int | None) -> str:
    def short(seconds: int) -> str:
        for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
            if seconds >= size and seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"

    return f"{short(low)}+" if high is None else f"{short(low)}-{short(high)}"
