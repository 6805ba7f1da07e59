"""The SQL of an experiment's results: sufficient statistics per variant (and per day, cumulated in Python)
from one scan of the exposures and one of the metric's events.

Layers (u the unit, v its variant, t0 the microsecond of its first exposure, d local days):
  x     exposed units: the first exposure, a single variant (units exposed to several are left out and counted)
  ev    the metric's events from `pre_period` before the start to the end, with the numerator (m) and
        denominator (dd) contribution of each; a rate over a cohort adds its entries as rows (at the entry's
        time, m the outcome met, dd 1)
  j     ev joined to x: post-exposure contributions (within the conversion window) and pre-exposure ones (CUPED)
  days  post contributions per unit and day
  run   each unit's running value per day; capped (converted or not) where the metric counts uniques
Each unit's value changes on the days it has events, from a0 to a1: summing a1 − a0, a1² − a0², … per variant
and day and cumulating over days gives Σy, Σy², … of every unit's value as of each day, exactly (the daily
cumulative effect), and the last day gives the totals. Units enter n on the day of their first exposure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

from edupulse.experiments.metrics import MetricPlan, Part
from edupulse.ingest.exposure import EXPOSURE_EVENT
from edupulse.queries.compile import EVENTS, Context, literal
from edupulse.queries.dialect import DAY_US
from edupulse.queries.metric_cohorts import entry_rows
from edupulse.stats.statistics import Z95

DUCK = "duckdb"


def _parse(text: str) -> exp.Expr:
    """A fixed fragment of our own SQL (names and operators only: no user value is ever in it)."""
    return exp.maybe_parse(text, dialect=DUCK)


def _n(value: int | float) -> exp.Expr:
    return exp.Literal.number(value)


def _cap(column: str, cap: bool) -> str:
    # DuckDB's LEAST skips NULLs (LEAST(NULL, 1) is 1): a missing value is 0 before it is capped
    return f"LEAST(COALESCE({column}, 0), 1)" if cap else column


def _value(column: str, cap: bool) -> str:
    """A value that may be missing (no row on a LEFT JOIN): 0, capped at 1 where the metric counts uniques."""
    return _cap(column, True) if cap else f"COALESCE({column}, 0)"


@dataclass(frozen=True)
class Window:
    """The analysed run: exposures in [start, end); events from start − pre_period to end."""

    start: dt.datetime
    end: dt.datetime
    pre_period: dt.timedelta


class ExperimentSQL:
    def __init__(self, ctx: Context, key: str, variants: list[str], unit: str, window: Window) -> None:
        self.ctx, self.key, self.variants, self.unit, self.window = ctx, key, variants, unit, window
        self.low = window.start - window.pre_period
        self.clustered = unit != "person"

    # exposures ----------------------------------------------------------------------------------------

    def _exposure_scan(self) -> exp.Select:
        ctx = self.ctx
        person = ctx.unit("person")
        columns = [person.as_("u"), ctx.text("variant").as_("var"), ctx.dialect.epoch_us(exp.column("time", EVENTS))
                   .as_("tu"), ctx.bucket("day", self.low, self.window.end).as_("d")]
        conditions = [exp.column("event", EVENTS).eq(literal(EXPOSURE_EVENT)),
                      ctx.text("experiment").eq(literal(self.key)),
                      *ctx.in_time(self.window.start, self.window.end),
                      exp.In(this=ctx.text("variant"), expressions=[literal(v) for v in self.variants])]
        if self.clustered:
            cluster = ctx.unit(self.unit)
            columns.append(cluster.as_("c"))
            conditions.append(exp.Not(this=exp.Is(this=cluster.copy(), expression=exp.null())))
        return ctx.scan(columns, conditions)

    def exposed(self) -> exp.Select:
        """x: one row per unit exposed to exactly one variant."""
        extra = ["MIN(c) AS c"] if self.clustered else []
        return (exp.select("u", "MIN(var) AS v", "MIN(tu) AS t0", "MIN(d) AS d0", *extra, dialect=DUCK)
                .from_(self._exposure_scan().subquery("s"))
                .group_by("u").having(_parse("COUNT(DISTINCT var) = 1")))

    def mixed(self) -> exp.Select:
        """The number of units exposed to more than one variant (left out of the analysis)."""
        inner = (exp.select("u").from_(self._exposure_scan().subquery("s")).group_by("u")
                 .having(_parse("COUNT(DISTINCT var) > 1")))
        return exp.select("COUNT(*) AS mixed").from_(inner.subquery("m"))

    # metric events -----------------------------------------------------------------------------------

    def _contribution(self, part: Part) -> tuple[exp.Expr, exp.Expr]:
        ctx = self.ctx
        condition = exp.and_(exp.column("event", EVENTS).eq(literal(part.event)), *ctx.conditions(list(part.filters)))
        value = exp.func("COALESCE", ctx.number(part.property), _n(0)) if part.property else _n(1)
        return condition, exp.Case().when(condition, value).else_(_n(0))

    def _events(self, metrics: list[MetricPlan], pre_period: bool) -> exp.Query:
        """One scan of every metric's events: m_i and dd_i, metric i's numerator and denominator contribution;
        the entries of each rate over a cohort as more rows."""
        ctx = self.ctx
        columns = [ctx.unit("person").as_("u"), ctx.dialect.epoch_us(exp.column("time", EVENTS)).as_("tu"),
                   ctx.bucket("day", self.low, self.window.end).as_("d")]
        conditions = []
        for i, metric in enumerate(metrics):
            if metric.cohort is not None:
                columns += [_n(0).as_(f"m_{i}"), _n(0).as_(f"dd_{i}")]
                continue
            m_cond, m_value = self._contribution(metric.numerator)
            conditions.append(m_cond)
            columns.append(m_value.as_(f"m_{i}"))
            if metric.denominator is not None:
                d_cond, d_value = self._contribution(metric.denominator)
                conditions.append(d_cond)
                columns.append(d_value.as_(f"dd_{i}"))
            else:
                columns.append(_n(0).as_(f"dd_{i}"))
        low = self.low if pre_period else self.window.start
        parts: list[exp.Query] = [ctx.scan(columns, [exp.or_(*conditions), *ctx.in_time(low, self.window.end)])
                                  ] if conditions else []
        for i, metric in enumerate(metrics):
            if metric.cohort is None:
                continue
            cohort, outcome = metric.cohort
            values = [v for j in range(len(metrics))
                      for v in ((f"hit AS m_{j}", f"1 AS dd_{j}") if j == i else (f"0 AS m_{j}", f"0 AS dd_{j}"))]
            entries = entry_rows(ctx, cohort, outcome, "person", low, self.window.end)
            parts.append(exp.select("u", "t AS tu", "d", *values, dialect=DUCK).from_(entries.subquery(f"ce_{i}")))
        union = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=False)
        return union

    def _joined(self, metrics: list[MetricPlan], pre_period: bool = False) -> exp.Select:
        """j: the metric events of exposed units from the exposure (or, with `pre_period`, the pre-period) on,
        each with its post-exposure (within the window) and pre-exposure contributions per metric."""
        pre_us = int(self.window.pre_period.total_seconds()) * 1_000_000 if pre_period else 0
        pre = f"ev.tu < x.t0 AND ev.tu >= x.t0 - {pre_us}"
        columns = ["x.v AS v", "x.u AS u", "x.d0 AS d0", "ev.d AS d", *(["x.c AS c"] if self.clustered else []),
                   "CASE WHEN ev.tu >= x.t0 THEN 1 ELSE 0 END AS post"]
        for i, metric in enumerate(metrics):
            post = "ev.tu >= x.t0" + (f" AND ev.tu < x.t0 + {int(metric.window_us)}" if metric.window_us else "")
            columns += [f"CASE WHEN {post} THEN 1 ELSE 0 END AS w_{i}",
                        f"CASE WHEN {post} THEN ev.m_{i} ELSE 0 END AS pm_{i}",
                        f"CASE WHEN {post} THEN ev.dd_{i} ELSE 0 END AS pd_{i}",
                        f"CASE WHEN {pre} THEN ev.m_{i} ELSE 0 END AS qm_{i}"]
        return (exp.select(*columns, dialect=DUCK).from_("x")
                .join(self._events(metrics, pre_period).subquery("ev"), on="ev.u = x.u")
                .where(_parse(f"ev.tu >= x.t0 - {pre_us}")))

    def _with(self, select: exp.Select, metrics: list[MetricPlan], pre_period: bool = False) -> exp.Select:
        return select.with_("x", as_=self.exposed()).with_("j", as_=self._joined(metrics, pre_period))

    # per-day deltas (units, not clusters) --------------------------------------------------------------

    def daily(self, metrics: list[MetricPlan], pre_period: bool = False) -> exp.Select:
        """Rows (v, d, n, then per metric i: s_i, ss_i, ds_i, dss_i, sp_i, sq_i, qs_i, qss_i) to be summed per
        variant and day: n the units first exposed that day; the changes of Σy, Σy², Σd, Σd², Σy·d and Σy·x
        (x: the unit's pre-period value, with `pre_period` for CUPED) on that day; Σx, Σx² of the units
        entering. One statement for every metric: one grouping of the events by unit and day, one window pass
        (running sums only where they are needed: a denominator, the pre-period)."""
        indexes = range(len(metrics))
        ratio = [m.denominator is not None for m in metrics]
        grouped = [f"SUM(pm_{i}) AS dm_{i}" for i in indexes]
        grouped += [f"SUM(pd_{i}) AS dd_{i}" for i in indexes if ratio[i]]
        grouped += [f"SUM(qm_{i}) AS dq_{i}" for i in indexes] if pre_period else []
        # (not "AS post": ClickHouse would read the aggregate in the WHERE on j's own post)
        days = exp.select("v", "u", "d", "MIN(d0) AS d0", "MAX(post) AS seen", *grouped).from_("j")
        days = days.group_by("v", "u", "d") if pre_period else days.where("post = 1").group_by("v", "u", "d")
        order = "OVER (PARTITION BY u ORDER BY d)"
        windows = [f"dm_{i}" for i in indexes] + [f"SUM(dm_{i}) {order} AS m1_{i}" for i in indexes]
        windows += [c for i in indexes if ratio[i] for c in (f"dd_{i}", f"SUM(dd_{i}) {order} AS d1_{i}")]
        if pre_period:
            windows += [f"ROW_NUMBER() {order} AS rn", *[f"SUM(dq_{i}) OVER (PARTITION BY u) AS q_{i}"
                                                         for i in indexes]]
        running = exp.select("v", "u", "d", "d0", "seen", *windows, dialect=DUCK).from_("days")
        values = ["v", "d", "d0", "seen", *(["rn"] if pre_period else [])]
        changes, entering = ["v", "d", "0 AS n"], ["v", "d0 AS d", "0 AS n"]
        for i, metric in enumerate(metrics):
            m_cap, d_cap = metric.numerator.cap, bool(metric.denominator and metric.denominator.cap)
            values += [f"{_cap(f'm1_{i}', m_cap)} AS a1_{i}", f"{_cap(f'm1_{i} - dm_{i}', m_cap)} AS a0_{i}"]
            values += ([f"{_cap(f'd1_{i}', d_cap)} AS b1_{i}", f"{_cap(f'd1_{i} - dd_{i}', d_cap)} AS b0_{i}"]
                       if ratio[i] else [f"0 AS b1_{i}", f"0 AS b0_{i}"])
            values += [f"{_value(f'q_{i}', m_cap)} AS q_{i}" if pre_period else f"0 AS q_{i}"]
            changes += [f"SUM(a1_{i} - a0_{i}) AS s_{i}", f"SUM(a1_{i} * a1_{i} - a0_{i} * a0_{i}) AS ss_{i}",
                        f"SUM(b1_{i} - b0_{i}) AS ds_{i}", f"SUM(b1_{i} * b1_{i} - b0_{i} * b0_{i}) AS dss_{i}",
                        f"SUM(a1_{i} * b1_{i} - a0_{i} * b0_{i}) AS sp_{i}",
                        f"SUM((a1_{i} - a0_{i}) * q_{i}) AS sq_{i}", f"0 AS qs_{i}", f"0 AS qss_{i}"]
            entering += [*(f"0 AS {name}_{i}" for name in ("s", "ss", "ds", "dss", "sp", "sq")),
                         f"SUM(q_{i}) AS qs_{i}", f"SUM(q_{i} * q_{i}) AS qss_{i}"]
        zeros = [f"0 AS {name}_{i}" for i in indexes for name in ("s", "ss", "ds", "dss", "sp", "sq", "qs", "qss")]
        arrivals = exp.select("v", "d0 AS d", "COUNT(*) AS n", *zeros).from_("x").group_by("v", "d0")
        by_day = exp.select(*changes, dialect=DUCK).from_("vals").where("seen = 1").group_by("v", "d")
        union = exp.union(arrivals, by_day, distinct=False)
        if pre_period:  # the pre-period value of each unit with events, once (on its first row)
            by_entry = exp.select(*entering, dialect=DUCK).from_("vals").where("rn = 1").group_by("v", "d0")
            union = exp.union(union, by_entry, distinct=False)
        select = exp.select("*").from_(union.subquery("r"))
        return (self._with(select, metrics, pre_period).with_("days", as_=days).with_("run", as_=running)
                .with_("vals", as_=exp.select(*values, dialect=DUCK).from_("run")))

    # per-unit values (clusters, quantiles) ---------------------------------------------------------------

    def _units(self, metric: MetricPlan) -> exp.Select:
        m_cap = metric.numerator.cap
        d_cap = bool(metric.denominator and metric.denominator.cap)
        extra = ["x.c AS c"] if self.clustered else []
        return (exp.select("x.v AS v", "x.u AS u", *extra, f"{_value('t.m', m_cap)} AS m",
                           f"{_value('t.dd', d_cap)} AS dd", "COALESCE(t.k, 0) AS k",
                           dialect=DUCK)
                .from_("x")
                .join(exp.select("u", "SUM(pm_0) AS m", "SUM(pd_0) AS dd", "SUM(w_0) AS k").from_("j")
                      .group_by("u").subquery("t"), on="t.u = x.u", join_type="left"))

    def clusters(self, metric: MetricPlan) -> exp.Select:
        """Per variant: clusters G, Σy, Σy², Σsize, Σsize², Σy·size, Σdd, Σdd², Σy·dd over the clusters."""
        per_cluster = (exp.select("v", "c", "SUM(m) AS y", "COUNT(*) AS size", "SUM(dd) AS e").from_("units")
                       .group_by("v", "c"))
        select = (exp.select("v", "COUNT(*) AS g", "SUM(y) AS ys", "SUM(y * y) AS yss", "SUM(size) AS ns",
                             "SUM(size * size) AS nss", "SUM(y * size) AS yn", "SUM(e) AS es", "SUM(e * e) AS ess",
                             "SUM(y * e) AS ye", dialect=DUCK)
                  .from_(per_cluster.subquery("pc")).group_by("v"))
        return self._with(select, [metric]).with_("units", as_=self._units(metric))

    def quantiles(self, metric: MetricPlan) -> exp.Select:
        """Per variant: n (units that did the event), the order statistics at ranks ⌈n·ν⌉ and ⌈n·(ν ∓ 1.96
        √(ν(1 − ν)/n))⌉ (the quantile and the bounds of its 95% interval, as gbstats takes them)."""
        assert metric.level is not None
        nu = float(metric.level)
        half = f"{Z95} * SQRT({nu} * (1 - {nu}) / n)"
        ranked = exp.select("v", "m", "ROW_NUMBER() OVER (PARTITION BY v ORDER BY m) AS rn",
                            "COUNT(*) OVER (PARTITION BY v) AS n", dialect=DUCK).from_("units").where("k > 0")
        # ClickHouse's LEAST and GREATEST take one type: every operand is a double
        ranks = (exp.select("v", "m", "rn", "n", f"GREATEST(CEIL(n * {nu}), 1.0) AS r0",
                            f"GREATEST(CEIL(n * ({nu} - {half})), 1.0) AS r1",
                            f"LEAST(GREATEST(CEIL(n * ({nu} + {half})), 1.0), n * 1.0) AS r2", dialect=DUCK)
                 .from_(ranked.subquery("o")))
        select = (exp.select("v", "MIN(n) AS n", "MAX(CASE WHEN rn = r0 THEN m END) AS q",
                             "MAX(CASE WHEN rn = r1 THEN m END) AS lower", "MAX(CASE WHEN rn = r2 THEN m END) AS upper",
                             dialect=DUCK).from_(ranks.subquery("k")).group_by("v"))
        return self._with(select, [metric]).with_("units", as_=self._units(metric))


def day_of(local_microseconds: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(local_microseconds) // DAY_US)


def counts(plan: ExperimentSQL) -> exp.Select:
    """Units (and clusters) per variant."""
    extra = ["COUNT(DISTINCT c) AS g"] if plan.clustered else ["0 AS g"]
    return exp.select("v", "COUNT(*) AS n", *extra, dialect=DUCK).from_("x").group_by("v").with_(
        "x", as_=plan.exposed())
