"""The SQL of an experiment's results: sufficient statistics per variant (and per day, cumulated in Python)
from one scan of the exposures and one of the metric's events.

Layers (u the unit, v its variant, t0 the microsecond of its first exposure, d local days):
  x     exposed units: the first exposure, a single variant (units exposed to several are left out and counted)
  ev    the metric's events from `pre_period` before the start to the end, with the numerator (m) and
        denominator (dd) contribution of each
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

DUCK = "duckdb"


def _parse(text: str) -> exp.Expr:
    """A fixed fragment of our own SQL (names and operators only: no user value is ever in it)."""
    return exp.maybe_parse(text, dialect=DUCK)


def _n(value: int | float) -> exp.Expr:
    return exp.Literal.number(value)


def _cap(column: str, cap: bool) -> str:
    # DuckDB's LEAST skips NULLs (LEAST(NULL, 1) is 1): a missing value is 0 before it is capped
    return f"LEAST(COALESCE({column}, 0), 1)" if cap else column


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

    def _events(self, metric: MetricPlan) -> exp.Select:
        ctx = self.ctx
        m_cond, m_value = self._contribution(metric.numerator)
        conditions = [m_cond]
        columns = [ctx.unit("person").as_("u"), ctx.dialect.epoch_us(exp.column("time", EVENTS)).as_("tu"),
                   ctx.bucket("day", self.low, self.window.end).as_("d"), m_value.as_("m")]
        if metric.denominator is not None:
            d_cond, d_value = self._contribution(metric.denominator)
            conditions.append(d_cond)
            columns.append(d_value.as_("dd"))
        else:
            columns.append(_n(0).as_("dd"))
        return ctx.scan(columns, [exp.or_(*conditions), *ctx.in_time(self.low, self.window.end)])

    def _joined(self, metric: MetricPlan) -> exp.Select:
        post = "ev.tu >= x.t0" + (f" AND ev.tu < x.t0 + {int(metric.window_us)}" if metric.window_us else "")
        pre_us = int(self.window.pre_period.total_seconds()) * 1_000_000
        pre = f"ev.tu < x.t0 AND ev.tu >= x.t0 - {pre_us}"
        extra = ["x.c AS c"] if self.clustered else []
        return (exp.select("x.v AS v", "x.u AS u", "ev.d AS d", *extra,
                           f"CASE WHEN {post} THEN 1 ELSE 0 END AS post",
                           f"CASE WHEN {post} THEN ev.m ELSE 0 END AS pm",
                           f"CASE WHEN {post} THEN ev.dd ELSE 0 END AS pd",
                           f"CASE WHEN {pre} THEN ev.m ELSE 0 END AS qm", dialect=DUCK)
                .from_("x").join(self._events(metric).subquery("ev"), on="ev.u = x.u"))

    def _with(self, select: exp.Select, metric: MetricPlan) -> exp.Select:
        return (select.with_("x", as_=self.exposed()).with_("j", as_=self._joined(metric))
                .with_("pre", as_=exp.select("u", "SUM(qm) AS q").from_("j").group_by("u")))

    # per-day deltas (units, not clusters) --------------------------------------------------------------

    def daily(self, metric: MetricPlan) -> exp.Select:
        """(v, d, Δsum m, Δsum m², Δsum dd, Δsum dd², Δsum m·dd, Δsum m·pre) per variant and day."""
        m_cap = metric.numerator.cap
        d_cap = bool(metric.denominator and metric.denominator.cap)
        days = (exp.select("v", "u", "d", "SUM(pm) AS dm", "SUM(pd) AS dd").from_("j").where("post = 1")
                .group_by("v", "u", "d"))
        running = exp.select("v", "u", "d", "dm", "dd",
                             "SUM(dm) OVER (PARTITION BY u ORDER BY d) AS m1",
                             "SUM(dd) OVER (PARTITION BY u ORDER BY d) AS d1", dialect=DUCK).from_("days")
        values = (exp.select("r.v AS v", "r.d AS d", f"{_cap('r.m1', m_cap)} AS a1",
                             f"{_cap('r.m1 - r.dm', m_cap)} AS a0", f"{_cap('r.d1', d_cap)} AS b1",
                             f"{_cap('r.d1 - r.dd', d_cap)} AS b0",
                             f"COALESCE({_cap('pre.q', m_cap)}, 0) AS q", dialect=DUCK)
                  .from_("run AS r").join("pre", on="pre.u = r.u", join_type="left"))
        select = (exp.select("v", "d", "SUM(a1 - a0) AS s", "SUM(a1 * a1 - a0 * a0) AS ss", "SUM(b1 - b0) AS ds",
                             "SUM(b1 * b1 - b0 * b0) AS dss", "SUM(a1 * b1 - a0 * b0) AS sp",
                             "SUM((a1 - a0) * q) AS sq", dialect=DUCK)
                  .from_("vals").group_by("v", "d"))
        select = self._with(select, metric)
        return (select.with_("days", as_=days).with_("run", as_=running).with_("vals", as_=values))

    def entries(self, metric: MetricPlan) -> exp.Select:
        """(v, d0, units, Σ pre, Σ pre²) per variant and day of first exposure."""
        q = f"COALESCE({_cap('pre.q', metric.numerator.cap)}, 0)"
        select = (exp.select("x.v AS v", "x.d0 AS d", "COUNT(*) AS n", f"SUM({q}) AS qs", f"SUM({q} * {q}) AS qss",
                             dialect=DUCK)
                  .from_("x").join("pre", on="pre.u = x.u", join_type="left").group_by("x.v", "x.d0"))
        return self._with(select, metric)

    # per-unit values (clusters, quantiles) ---------------------------------------------------------------

    def _units(self, metric: MetricPlan) -> exp.Select:
        m_cap = metric.numerator.cap
        d_cap = bool(metric.denominator and metric.denominator.cap)
        extra = ["x.c AS c"] if self.clustered else []
        return (exp.select("x.v AS v", "x.u AS u", *extra, f"{_cap('COALESCE(t.m, 0)', m_cap)} AS m",
                           f"{_cap('COALESCE(t.dd, 0)', d_cap)} AS dd", "COALESCE(t.k, 0) AS k", dialect=DUCK)
                .from_("x")
                .join(exp.select("u", "SUM(pm) AS m", "SUM(pd) AS dd", "SUM(post) AS k").from_("j")
                      .group_by("u").subquery("t"), on="t.u = x.u", join_type="left"))

    def clusters(self, metric: MetricPlan) -> exp.Select:
        """Per variant: clusters G, Σy, Σy², Σsize, Σsize², Σy·size, Σdd, Σdd², Σy·dd over the clusters."""
        per_cluster = (exp.select("v", "c", "SUM(m) AS y", "COUNT(*) AS size", "SUM(dd) AS e").from_("units")
                       .group_by("v", "c"))
        select = (exp.select("v", "COUNT(*) AS g", "SUM(y) AS ys", "SUM(y * y) AS yss", "SUM(size) AS ns",
                             "SUM(size * size) AS nss", "SUM(y * size) AS yn", "SUM(e) AS es", "SUM(e * e) AS ess",
                             "SUM(y * e) AS ye", dialect=DUCK)
                  .from_(per_cluster.subquery("pc")).group_by("v"))
        return self._with(select, metric).with_("units", as_=self._units(metric))

    def quantile_counts(self, metric: MetricPlan) -> exp.Select:
        select = exp.select("v", "COUNT(*) AS n").from_("units").where("k > 0").group_by("v")
        return self._with(select, metric).with_("units", as_=self._units(metric))

    def quantiles(self, metric: MetricPlan, variant: str, levels: list[float]) -> exp.Select:
        value = exp.column("m")
        select = (exp.select(*[self.ctx.dialect.quantile(value.copy(), q).as_(f"q{i}") for i, q in enumerate(levels)])
                  .from_("units").where(exp.and_(_parse("k > 0"), exp.column("v").eq(literal(variant)))))
        return self._with(select, metric).with_("units", as_=self._units(metric))


def day_of(local_microseconds: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(local_microseconds) // DAY_US)


def counts(plan: ExperimentSQL) -> exp.Select:
    """Units (and clusters) per variant."""
    extra = ["COUNT(DISTINCT c) AS g"] if plan.clustered else ["0 AS g"]
    return exp.select("v", "COUNT(*) AS n", *extra, dialect=DUCK).from_("x").group_by("v").with_(
        "x", as_=plan.exposed())
