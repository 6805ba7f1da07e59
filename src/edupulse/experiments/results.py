"""An experiment's results: sufficient statistics from SQL (sql.py), the tests of the pure stats package,
corrections across metrics and variants, the SRM check and the verdicts. The one place that reaches the
query machinery (context, runner guard rails) is `Runner`."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from edupulse import stats
from edupulse.experiments.metrics import MetricPlan, plan
from edupulse.experiments.model import ExperimentSpec, Status
from edupulse.experiments.results_model import (
    ArmResult,
    DailyPoint,
    Engine,
    ExperimentResults,
    MetricResult,
    Verdict,
)
from edupulse.experiments.sql import ExperimentSQL, Window, counts, day_of
from edupulse.meta.db import ProjectInfo
from edupulse.meta.experiments import Experiment
from edupulse.queries.base import Executor
from edupulse.queries.service import QueryService
from edupulse.store.base import QueryControl

Test = Callable[..., stats.Effect]
TESTS: dict[Engine, Test] = {Engine.frequentist: stats.welch, Engine.sequential: stats.sequential,
                             Engine.bayesian: stats.bayesian}


@dataclass(frozen=True)
class Options:
    engine: Engine = Engine.frequentist
    cuped: bool = False
    relative: bool = False
    alpha: float = 0.05
    correction: stats.Correction = stats.Correction.holm


class Runner:
    """Runs our trees with the query service's context and guard rails (time limit, row limits, clear errors):
    the one place experiments reach the query machinery."""

    def __init__(self, service: QueryService, project: ProjectInfo, now: dt.datetime) -> None:
        self.ctx = service.context(project, now=now)
        self.executor = Executor(service.store, self.ctx.dialect, QueryControl(service.limits.timeout_seconds),
                                 service.limits)

    def rows(self, tree: Any) -> list[tuple[Any, ...]]:
        return self.executor.run(tree, max_rows=1_000_000)

    @property
    def statements(self) -> list[str]:
        return self.executor.statements


def plans(spec: ExperimentSpec, lookup: Any) -> list[MetricPlan]:
    """Every metric and guardrail of an experiment as a plan (SpecError for an unknown catalogue metric)."""
    out = [plan(m, lookup, where=f"metrics.{i}") for i, m in enumerate(spec.metrics)]
    out += [plan(m, lookup, guardrail=True, where=f"guardrails.{i}") for i, m in enumerate(spec.guardrails)]
    return out


def analyze(service: QueryService, project: ProjectInfo, experiment: Experiment, options: Options, lookup: Any = None,
            now: dt.datetime | None = None) -> ExperimentResults:
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    spec = experiment.spec
    keys = [v.key for v in spec.variants]
    metric_plans = plans(spec, lookup)
    runner = Runner(service, project, now)
    if experiment.status is Status.draft or experiment.started_at is None:
        empty = _empty_metrics(metric_plans, keys)
        return _frame(experiment, options, {}, 0, None, empty, runner, started, None, None)
    end = min(experiment.stopped_at or now, now)
    window = Window(experiment.started_at, max(end, experiment.started_at), dt.timedelta(days=spec.pre_period_days))
    sql = ExperimentSQL(runner.ctx, spec.key, keys, spec.unit, window)
    use_cuped = options.cuped and not sql.clustered
    daily_plans = [p for p in metric_plans if p.kind != "quantile"] if not sql.clustered else []
    series, units = _daily(runner, sql, daily_plans, keys, use_cuped) if daily_plans else ({}, {})
    clusters: dict[str, int] = dict.fromkeys(keys, 0)
    if not daily_plans:
        for variant, n, g in runner.rows(counts(sql)):
            units[variant], clusters[variant] = int(n), int(g)
    units = {k: units.get(k, 0) for k in keys}
    mixed = int(runner.rows(sql.mixed())[0][0])
    assigned = clusters if sql.clustered else units
    srm = stats.srm_p_value([assigned[k] for k in keys], spec.weights)
    results = []
    for p in metric_plans:
        plan_series = series.get(daily_plans.index(p)) if p in daily_plans else None
        results.append(_metric(runner, sql, p, keys, options, units, clusters, plan_series))
    _correct(results, options)
    return _frame(experiment, options, units, mixed, srm, results, runner, started, window.start, window.end)


def _frame(experiment: Experiment, options: Options, units: dict[str, int], mixed: int, srm: float | None,
           metrics: list[MetricResult], runner: Runner, started: float, start: dt.datetime | None,
           end: dt.datetime | None) -> ExperimentResults:
    primary = [m for m in metrics if not m.guardrail]
    verdicts = [a.verdict for a in primary[0].variants[1:]] if primary else []
    verdict = (Verdict.better if Verdict.better in verdicts else Verdict.worse if Verdict.worse in verdicts
               else Verdict.no_data if not verdicts or all(v is Verdict.no_data for v in verdicts)
               else Verdict.inconclusive)
    hurt = [f"{m.label} ({a.variant})" for m in metrics if m.guardrail for a in m.variants[1:]
            if a.verdict is Verdict.worse]
    return ExperimentResults(
        key=experiment.key, version=experiment.version, status=experiment.status.value, unit=experiment.spec.unit,
        engine=options.engine, relative=options.relative, cuped=options.cuped, alpha=options.alpha,
        correction=options.correction.value if options.engine is not Engine.bayesian else "none",
        start=start.isoformat() if start else None, end=end.isoformat() if end else None, units=units,
        mixed_units=mixed, srm_p_value=srm, srm_warning=srm is not None and srm < stats.SRM_THRESHOLD,
        verdict=verdict, guardrail_hurt=hurt, metrics=metrics, sql=runner.statements,
        seconds=round(time.perf_counter() - started, 4))


def _empty_metrics(metric_plans: list[MetricPlan], keys: list[str]) -> list[MetricResult]:
    return [MetricResult(label=p.label, kind=p.kind, guardrail=p.guardrail, lower_is_better=p.lower_is_better,
                         source=p.source, cuped=False, variants=[ArmResult(variant=k, units=0, mean=None,
                                                                           verdict=None if i == 0 else Verdict.no_data)
                                                                  for i, k in enumerate(keys)], daily=[])
            for p in metric_plans]


# one metric ------------------------------------------------------------------------------------------------


def _metric(runner: Runner, sql: ExperimentSQL, p: MetricPlan, keys: list[str], options: Options,
            units: dict[str, int], clusters: dict[str, int], series: Series | None) -> MetricResult:
    daily: list[DailyPoint] = []
    use_cuped = options.cuped and p.kind in ("conversion", "mean") and not sql.clustered
    if p.kind == "quantile":
        arms = _quantiles(runner, sql, p, keys)
    elif sql.clustered or series is None:
        arms = _clustered(runner, sql, p, keys)
    else:
        if not use_cuped:  # the series carries the pre-period; without CUPED it is the plain statistic
            series = {k: [(d, s.post if isinstance(s, stats.Adjusted) else s) for d, s in v] for k, v in series.items()}
        arms = {k: series[k][-1][1] for k in keys if series.get(k)}
        daily = _daily_effects(series, keys, options, use_cuped)
    if use_cuped:
        adjusted = stats.cuped([arms[k] for k in keys if k in arms])  # type: ignore[misc]
        arms = dict(zip([k for k in keys if k in arms], adjusted, strict=True))
    control = arms.get(keys[0])
    test = TESTS[options.engine]
    out = []
    for i, key in enumerate(keys):
        arm = arms.get(key)
        row = ArmResult(variant=key, units=units.get(key, 0), clusters=clusters.get(key) if sql.clustered else None,
                        mean=arm.unadjusted_mean if arm is not None and arm.n else None)
        if i > 0:
            row = _compare(row, control, arm, test, options, p)
        out.append(row)
    return MetricResult(label=p.label, kind=p.kind, guardrail=p.guardrail, lower_is_better=p.lower_is_better,
                        source=p.source, cuped=use_cuped, variants=out, daily=daily)


def _compare(row: ArmResult, control: Any, arm: Any, test: Test, options: Options, p: MetricPlan) -> ArmResult:
    if control is None or arm is None:
        return row.model_copy(update={"verdict": Verdict.no_data, "error": stats.Problem.no_units.value,
                                      "message": "an arm has no units yet"})
    extra = {"lower_is_better": p.lower_is_better} if test is stats.bayesian else {}
    effect = test(control, arm, relative=options.relative, alpha=options.alpha, **extra)
    return row.model_copy(update={
        "effect_absolute": effect.absolute, "effect_relative": effect.relative, "ci": effect.ci,
        "p_value": effect.p_value, "chance_to_win": effect.chance_to_win, "risk": effect.risk,
        "error": effect.error.value if effect.error else None, "message": effect.message})


def _stat(kind: str, n: int, s: float, ss: float, ds: float, dss: float, sp: float) -> stats.Statistic:
    if kind == "conversion":
        return stats.Proportion(n, s)
    if kind == "mean":
        return stats.SampleMean(n, s, ss)
    return stats.Ratio(n, s, ss, ds, dss, sp)


Series = dict[str, list[tuple[dt.date, stats.Statistic]]]
WIDTH = 8  # columns per metric in ExperimentSQL.daily: s, ss, ds, dss, sp, sq, qs, qss


def _daily(runner: Runner, sql: ExperimentSQL, metric_plans: list[MetricPlan], keys: list[str],
           use_cuped: bool) -> tuple[dict[int, Series], dict[str, int]]:
    """Per metric and variant, the statistic as of the end of each day (cumulative, with the pre-period for
    CUPED where the metric takes it), and the units per variant; one statement for every metric."""
    deltas: dict[tuple[str, int], list[float]] = {}
    # several rows of one variant and day are summed
    for row in runner.rows(sql.daily(metric_plans, pre_period=use_cuped)):
        values = [float(v or 0) for v in row[2:]]
        known = deltas.get((row[0], int(row[1])))
        deltas[(row[0], int(row[1]))] = values if known is None else [a + b for a, b in zip(known, values,
                                                                                              strict=True)]
    days = sorted({d for _, d in deltas})
    width = 1 + WIDTH * len(metric_plans)
    units: dict[str, int] = {}
    out: dict[int, Series] = {i: {} for i in range(len(metric_plans))}
    for key in keys:
        rows = [deltas.get((key, d), [0.0] * width) for d in days]
        totals = list(accumulate(rows, lambda a, b: [x + y for x, y in zip(a, b, strict=True)]))
        units[key] = int(totals[-1][0]) if totals else 0
        for i, p in enumerate(metric_plans):
            cuped = use_cuped and p.kind in ("conversion", "mean")
            series = []
            for d, t in zip(days, totals, strict=True):
                n = int(t[0])
                s, ss, ds, dss, sp, sq, qs, qss = t[1 + WIDTH * i: 1 + WIDTH * (i + 1)]
                post = _stat(p.kind, n, s, ss, ds, dss, sp)
                if cuped:
                    pre: stats.Proportion | stats.SampleMean = (stats.Proportion(n, qs) if p.kind == "conversion"
                                                                else stats.SampleMean(n, qs, qss))
                    post = stats.Adjusted(post, pre, sq)  # type: ignore[arg-type]
                series.append((day_of(d), post))
            if series:
                out[i][key] = series
    return out, units


def _daily_effects(series: Series, keys: list[str], options: Options,
                   use_cuped: bool) -> list[DailyPoint]:
    control = dict(series.get(keys[0], []))
    test = TESTS[options.engine]
    points = []
    for key in keys[1:]:
        for day, arm in series.get(key, []):
            base = control.get(day)
            if base is None:
                continue
            pair = stats.cuped([base, arm]) if use_cuped else [base, arm]  # type: ignore[list-item]
            effect = test(pair[0], pair[1], relative=options.relative, alpha=options.alpha)
            points.append(DailyPoint(day=day.isoformat(), variant=key, units=arm.n, effect=effect.estimate,
                                     ci=effect.ci))
    return points


def _clustered(runner: Runner, sql: ExperimentSQL, p: MetricPlan, keys: list[str]) -> dict[str, stats.Statistic]:
    out: dict[str, stats.Statistic] = {}
    for v, g, ys, yss, ns, nss, yn, es, ess, ye in runner.rows(sql.clusters(p)):
        if p.kind == "ratio":
            out[v] = stats.Ratio(int(g), float(ys), float(yss), float(es), float(ess), float(ye))
        else:
            out[v] = stats.cluster_mean(int(g), float(ys), float(yss), float(ns), float(nss), float(yn))
    return out


def _quantiles(runner: Runner, sql: ExperimentSQL, p: MetricPlan, keys: list[str]) -> dict[str, stats.Statistic]:
    assert p.level is not None
    return {v: stats.Quantile(int(n), p.level, float(q), float(lower), float(upper))
            for v, n, q, lower, upper in runner.rows(sql.quantiles(p))}


# across metrics ---------------------------------------------------------------------------------------------


def _correct(metrics: list[MetricResult], options: Options) -> None:
    """Adjust p-values across every metric and treatment, then give each comparison its verdict."""
    cells = [(m, a) for m in metrics for a in m.variants[1:]]
    adjusted = stats.adjust([a.p_value for _, a in cells], options.correction)
    for (metric, arm), p_adjusted in zip(cells, adjusted, strict=True):
        arm.p_value_adjusted = p_adjusted
        arm.verdict = _verdict(arm, metric.lower_is_better, options)


def _verdict(arm: ArmResult, lower_is_better: bool, options: Options) -> Verdict:
    if arm.error is not None or arm.ci is None:
        return Verdict.no_data if arm.error in (None, stats.Problem.no_units.value,
                                                 stats.Problem.one_unit.value) else Verdict.inconclusive
    if options.engine is Engine.bayesian:
        win = arm.chance_to_win or 0.0
        return Verdict.better if win >= 0.95 else Verdict.worse if win <= 0.05 else Verdict.inconclusive
    if arm.p_value_adjusted is None or arm.p_value_adjusted >= options.alpha:
        return Verdict.inconclusive
    up = (arm.effect_absolute or 0) > 0
    return Verdict.better if up != lower_is_better else Verdict.worse
