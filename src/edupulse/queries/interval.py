"""Interval (间隔分析): per person (or group), the time from an event A to the next event B; their count,
spread and a histogram in human units, optionally broken down by a property of A.

One pass: A and B events of the range are sorted once per unit by a window function that finds each A's
next B (no self-join of events with events)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field
from sqlglot import exp

from edupulse.queries.base import QueryRunner, Table, register
from edupulse.queries.common import PERSON, Breakdown, DateRange, Filter, Model, UnitName, local_midnight
from edupulse.queries.dialect import SECOND_US
from edupulse.queries.pieces import EventStep, breakdown_value, key_columns, key_names, number, with_top

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


@register
class IntervalRunner(QueryRunner):
    kind = "interval"
    model = IntervalQuery
    query: IntervalQuery

    @classmethod
    def table(cls, result: dict[str, Any]) -> Table:
        columns = ["breakdown", *STATS, *[b["label"] for b in result["buckets"]]]
        rows = [[" / ".join("" if v is None else str(v) for v in s["breakdown"] or []),
                 *[s[name] for name in STATS], *s["histogram"]] for s in result["series"]]
        return columns, rows

    def calculate(self) -> dict[str, Any]:
        q, ctx = self.query, self.ctx
        start, end = q.date_range.days(ctx.timezone, self.now)
        low, high = local_midnight(start, ctx.timezone), local_midnight(end + dt.timedelta(days=1), ctx.timezone)
        width = len(key_names(q.breakdown))
        stats = self.run(self._stats(low, high))
        histogram: dict[tuple[Any, ...], list[int]] = {}
        for row in self.run(self._histogram(low, high)):
            histogram.setdefault(tuple(row[:width]), [0] * len(EDGES))[int(row[width]) - 1] = int(row[width + 1])
        used = [i for counts in histogram.values() for i, n in enumerate(counts) if n]
        first, last = (min(used), max(used)) if used else (0, 0)
        series = []
        for row in sorted(stats, key=lambda r: (-int(r[width]), [str(v) for v in r[:width]])):
            if not row[width]:  # no GROUP BY: one row even without intervals
                continue
            keys = tuple(row[:width])
            values = dict(zip(STATS, [int(row[width]), *[number(v) for v in row[width + 1:]]], strict=True))
            series.append({"breakdown": [breakdown_value(k) for k in keys] if q.breakdown else None, **values,
                           "display": {name: human(values[name]) for name in STATS[1:]},
                           "histogram": histogram.get(keys, [0] * len(EDGES))[first:last + 1]})
        bounds = list(zip(EDGES, [*EDGES[1:], None], strict=True))[first:last + 1]
        return {"date_from": start.isoformat(), "date_to": end.isoformat(), "unit": q.unit,
                "window_days": q.window_days, "mode": q.mode.value,
                "buckets": [{"label": _label(a, b), "low": a, "high": b} for a, b in bounds], "series": series}

    # the SQL ----------------------------------------------------------------------------------------

    def _pairs(self, low: dt.datetime, high: dt.datetime) -> exp.Select:
        """WITH ev (the A and B events), nxt (each with its next B), pairs (u, keys, d: seconds from A to
        its B), labelled (keys in the top or $other, d)."""
        q, ctx = self.query, self.ctx
        c, n = exp.column, exp.Literal.number
        unit = ctx.unit(q.unit)
        is_a = exp.and_(*q.start.conditions(ctx), exp.LT(this=c("time", "e"), expression=ctx.dialect.timestamp(high)))
        is_b = exp.and_(*q.end.conditions(ctx)) if q.end.event is not None or q.end.filters else exp.true()
        flag = lambda cond: exp.Case().when(cond, n(1)).else_(n(0))  # noqa: E731
        horizon = high + dt.timedelta(days=q.window_days)
        conditions = [
            exp.GTE(this=c("time", "e"), expression=ctx.dialect.timestamp(low)),
            exp.LT(this=c("time", "e"), expression=ctx.dialect.timestamp(horizon)),
            exp.Not(this=exp.Is(this=unit, expression=exp.null())),
            *ctx.conditions(q.filters),
            exp.or_(exp.Paren(this=is_a), exp.Paren(this=is_b)),
        ]
        ev = ctx.scan([unit.as_("u"), ctx.dialect.epoch_us(c("time", "e")).as_("t"), flag(is_a).as_("is_a"),
                       flag(is_b).as_("is_b"), *key_columns(ctx, q.breakdown)], conditions)
        keys = [c(k) for k in key_names(q.breakdown)]
        by_unit = [c("u")]
        following = exp.WindowSpec(kind="RANGE", start="1", start_side="FOLLOWING", end="UNBOUNDED",
                                   end_side="FOLLOWING")
        next_b = exp.Window(this=exp.Min(this=exp.Case().when(c("is_b").eq(n(1)), c("t"))), partition_by=by_unit,
                            order=exp.Order(expressions=[exp.Ordered(this=c("t"))]), spec=following)
        columns: list[exp.Expr] = [c("u"), c("t"), c("is_a"), c("is_b"), *keys, next_b.as_("next_b")]
        if q.same_time:
            peers = exp.WindowSpec(kind="RANGE", start="CURRENT ROW", end="CURRENT ROW")
            columns.append(exp.Window(this=exp.Sum(this=c("is_b")), partition_by=by_unit,
                                      order=exp.Order(expressions=[exp.Ordered(this=c("t"))]), spec=peers).as_("peers"))
        if q.mode is IntervalMode.first:
            columns.append(exp.Window(this=exp.RowNumber(), partition_by=[c("u"), c("is_a")],
                                      order=exp.Order(expressions=[exp.Ordered(this=c("t"))])).as_("nth"))
        gap: exp.Expr = exp.Sub(this=c("next_b"), expression=c("t"))
        if q.same_time:  # another B at the same instant (not A's own event) ends it at once
            other_peers = exp.Sub(this=c("peers"), expression=c("is_b"))
            gap = exp.Case().when(exp.GT(this=exp.Paren(this=other_peers), expression=n(0)), n(0)).else_(gap)
        where = [c("is_a").eq(n(1)), exp.Not(this=exp.Is(this=exp.Paren(this=gap), expression=exp.null())),
                 exp.LTE(this=exp.Paren(this=gap), expression=n(q.window_days * 86400 * SECOND_US))]
        if q.mode is IntervalMode.first:
            where.append(c("nth").eq(n(1)))
        seconds = exp.Div(this=exp.cast(exp.Paren(this=gap), exp.DataType.build("DOUBLE")), expression=n(SECOND_US))
        pairs = exp.select(c("u"), *keys, seconds.as_("d")).from_("nxt").where(exp.and_(*where))
        tree = exp.select().with_("ev", as_=ev).with_("nxt", as_=exp.select(*columns).from_("ev"))
        tree = tree.with_("pairs", as_=pairs)
        tree, labels = with_top(tree, "pairs", q.breakdown, exp.Count(this=exp.Star()))
        labelled = exp.select(*[lab.as_(f"k{i}") for i, lab in enumerate(labels)], c("d")).from_("pairs")
        return tree.with_("labelled", as_=labelled)

    def _stats(self, low: dt.datetime, high: dt.datetime) -> exp.Expr:
        d, quantile = exp.column("d"), self.ctx.dialect.quantile
        keys = [exp.column(f"k{i}") for i in range(len(key_names(self.query.breakdown)))]
        tree = self._pairs(low, high).select(
            *keys, exp.Count(this=exp.Star()), exp.Min(this=d), exp.Max(this=d), exp.Avg(this=d),
            quantile(d, 0.25), quantile(d, 0.5), quantile(d, 0.75), quantile(d, 0.9)).from_("labelled")
        return tree.group_by(*keys) if keys else tree

    def _histogram(self, low: dt.datetime, high: dt.datetime) -> exp.Expr:
        d, n = exp.column("d"), exp.Literal.number
        keys = [exp.column(f"k{i}") for i in range(len(key_names(self.query.breakdown)))]
        index: exp.Expr = n(0)
        for edge in EDGES:  # 1 + the number of edges above 0 at or below d
            index = exp.Add(this=index, expression=exp.Case().when(exp.GTE(this=d, expression=n(edge)), n(1)).else_(
                n(0)))
        tree = self._pairs(low, high).select(*keys, exp.Paren(this=index).as_("bucket"),
                                             exp.Count(this=exp.Star())).from_("labelled")
        return tree.group_by(*keys, exp.column("bucket"))


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
