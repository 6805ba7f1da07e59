"""Metrics by name in analyses: a trends series `{"metric": "attendance_rate"}` is replaced by the metric's
current definition from the catalogue (one series, or a numerator and a denominator whose ratio is taken
per bucket and over the whole range), so a change of definition shows in every report that names it.

A metric is a `MetricDefinition`: a numerator term and an optional denominator term, each an event with a
math (as a trends series) or the ad spend of the project (`{"spend": true}`), times a `scale`.

`expand` is a typed rewrite: the query with metric series becomes a plain trends query plus an `Expansion`
that folds the plain response back into one series per metric (`Expansion.fold`); nothing here runs SQL.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError, model_validator
from sqlglot import exp

from edupulse.queries.common import Filter, Granularity, Model, PropertyName
from edupulse.queries.dialect import wall_clock
from edupulse.queries.errors import QueryError
from edupulse.queries.metric_cohorts import ChannelAttribution, Cohort, Outcome, Ratio, check
from edupulse.queries.results import Part
from edupulse.queries.trends import (
    PROPERTY_MATH,
    EventSeries,
    Math,
    MetricSeries,
    MetricValues,
    SeriesResult,
    TrendsPeriod,
    TrendsQuery,
    TrendsResponse,
    bucket_label,
)

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
PLACEHOLDER = "$metric_placeholder"  # the series of a query of spend terms only (it still needs the buckets)


class Term(Model):
    """What is counted: an event with a math (as in a trends series), or the project's ad spend."""

    event: str | None = Field(None, min_length=1, max_length=100)
    math: Math = Math.total
    property: PropertyName | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    spend: bool = Field(False, description="the ad spend (cost) of the project instead of events")

    @model_validator(mode="after")
    def _consistent(self) -> Term:
        if self.spend and (self.event or self.property or self.filters or self.math is not Math.total):
            raise ValueError("a spend term has no event, math, property or filters")
        if not self.spend and self.event is None:
            raise ValueError("a term needs an event (or spend: true)")
        if self.math in PROPERTY_MATH and self.property is None:
            raise ValueError(f"math {self.math.value} needs a numeric property")
        return self

    def series(self, extra_filters: list[Any]) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"spend"}, exclude_none=True)
        data["filters"] = [*data.get("filters", []), *extra_filters]
        return data


class MetricDefinition(Model):
    """A catalogue metric, × scale: a numerator term (÷ a denominator term), or units of a cohort meeting an
    outcome in a window, as a rate or against ad spend (metric_cohorts.py)."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    unit: str = Field(min_length=1, max_length=64, description="what is counted: lessons, persons, CNY, %...")
    numerator: Term | None = None
    denominator: Term | None = None
    cohort: Cohort | None = None
    outcome: Outcome | None = None
    ratio: Ratio | None = None
    channel: ChannelAttribution | None = Field(None, description="how a unit's channel is known (CAC, ROI)")
    scale: float = Field(1.0, description="e.g. 100 for a percentage")

    @model_validator(mode="after")
    def _one_form(self) -> MetricDefinition:
        if self.cohort is None:
            if self.numerator is None:
                raise ValueError("a metric has a numerator (÷ a denominator) or a cohort with a ratio")
            if self.outcome is not None or self.ratio is not None or self.channel is not None:
                raise ValueError("outcome, ratio and channel belong to a metric with a cohort")
            return self
        if self.numerator is not None or self.denominator is not None:
            raise ValueError("a metric has either numerator / denominator or a cohort, not both")
        if self.ratio is None:
            raise ValueError("a metric with a cohort needs a ratio: rate, spend_per_unit or value_per_spend")
        check(self.cohort, self.outcome, self.ratio)
        return self

    @property
    def spend_only(self) -> bool:
        """Every term is ad spend (which is kept by channel), so one channel's share can be asked for."""
        terms = [t for t in (self.numerator, self.denominator) if t is not None]
        return self.cohort is None and all(t.spend for t in terms)

    @property
    def uses_spend(self) -> bool:
        if self.cohort is not None:
            return self.ratio is not Ratio.rate
        assert self.numerator is not None
        return self.numerator.spend or bool(self.denominator and self.denominator.spend)


@dataclass(frozen=True)
class MetricRef:
    """A metric's current version, as the catalogue hands it to the query service."""

    name: str
    version: int
    definition: MetricDefinition


MetricLookup = Callable[[str], MetricRef | None]


class MetricUsed(Part):
    """A metric a result used, listed under `metrics` in the response."""

    version: int
    title: str
    unit: str


@dataclass(frozen=True)
class _Plan:
    components: tuple[int | None, ...]  # index in the expanded query per term; None: spend
    ref: MetricRef | None = None  # None: a plain series, kept as it is
    name: str | None = None
    series: MetricSeries | None = None  # the metric series as asked (its filters and channel)


@dataclass(frozen=True)
class CohortCounts:
    """A cohort metric's counts per bucket of a period and over the whole period (metric_cohorts.py)."""

    entries: list[float]
    hits: list[float]
    values: list[float]
    total: tuple[float, float, float]  # entries, hits, values over the whole period


Spend = Callable[[TrendsPeriod, str | None], tuple[list[float], float]]  # per bucket and in total, of a channel
Counts = Callable[[_Plan, TrendsPeriod], CohortCounts]


@dataclass(frozen=True)
class Expansion:
    """A trends query whose metric series were replaced by their definitions, and how to fold it back."""

    query: TrendsQuery
    plans: tuple[_Plan, ...]

    @property
    def refs(self) -> list[MetricRef]:
        return [p.ref for p in self.plans if p.ref is not None]

    @property
    def uses_spend(self) -> bool:
        return any(None in p.components for p in self.plans)

    def metrics_used(self) -> dict[str, MetricUsed]:
        return {r.name: MetricUsed(version=r.version, title=r.definition.title, unit=r.definition.unit)
                for r in self.refs}

    def fold(self, response: TrendsResponse, spend: Spend, counts: Counts) -> TrendsResponse:
        """One series per metric (and breakdown value), plain series renumbered in the query's order."""
        main = TrendsPeriod(date_from=response.date_from, date_to=response.date_to, buckets=response.buckets,
                            series=response.series)
        previous = response.previous
        return response.model_copy(update={
            "series": _fold(main, self.plans, spend, counts),
            "previous": previous.model_copy(update={"series": _fold(previous, self.plans, spend, counts)})
            if previous is not None else None})


def expand(query: TrendsQuery, lookup: MetricLookup | None) -> Expansion:
    """The query with every metric series replaced by its terms; QueryError names a series that cannot be."""
    if lookup is None:
        raise QueryError("series name metrics, but this caller has no metric catalogue; send the query to "
                         "POST /api/v1/query")
    if query.formula is not None:
        raise QueryError("formula: a query with a formula cannot name metrics yet; a ratio metric is a formula "
                         "of its own (numerator / denominator)")
    expanded: list[dict[str, Any]] = []
    plans: list[_Plan] = []
    for i, series in enumerate(query.series):
        if not isinstance(series, MetricSeries):
            plans.append(_Plan((len(expanded),)))
            expanded.append(series.model_dump(mode="json", by_alias=True))
            continue
        ref = lookup(series.metric)
        if ref is None:
            raise QueryError(f"series.{i}.metric: no metric named {series.metric!r} in the catalogue "
                             "(GET /api/v1/metrics)")
        definition = ref.definition
        if definition.uses_spend and query.breakdown:
            raise QueryError(f"series.{i}: metric {series.metric!r} uses ad spend, which cannot be broken down by "
                             "event or person properties; remove the breakdown (one channel: "
                             '{"metric": ..., "channel": NAME})')
        if definition.cohort is not None and query.breakdown:
            raise QueryError(f"series.{i}: metric {series.metric!r} counts the units of a cohort, which cannot be "
                             "broken down yet; remove the breakdown")
        if series.channel is not None and definition.channel is None and not definition.spend_only:
            raise QueryError(f"series.{i}.channel: metric {series.metric!r} does not know the units' channels; "
                             "only metrics with a channel attribution (such as cac and roi) or of ad spend only "
                             "take one")
        if ref.definition.uses_spend and query.granularity in (Granularity.minute, Granularity.hour):
            raise QueryError(f"series.{i}: metric {series.metric!r} uses ad spend, which is kept by day; use day, "
                             "week or month granularity")
        if definition.cohort is not None:
            plans.append(_Plan((), ref, series.name, series))
            continue
        filters = [f.model_dump(mode="json", by_alias=True, exclude_none=True) for f in series.filters]
        components: list[int | None] = []
        for term in (definition.numerator, definition.denominator):
            if term is None:
                continue
            if term.spend:
                components.append(None)
            else:
                components.append(len(expanded))
                expanded.append(term.series(filters))
        plans.append(_Plan(tuple(components), ref, series.name, series))
    if not expanded:
        expanded = [{"event": PLACEHOLDER}]
    data = {**query.model_dump(mode="json", by_alias=True), "series": expanded}
    try:
        plain = TrendsQuery.model_validate(data)
    except ValidationError as exc:
        raise QueryError("; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}"
                                   for e in exc.errors())) from None
    return Expansion(plain, tuple(plans))


def _fold(period: TrendsPeriod, plans: tuple[_Plan, ...], spend: Spend, counts: Counts) -> list[SeriesResult]:
    by_index: dict[int, list[SeriesResult]] = defaultdict(list)
    for entry in period.series:
        by_index[entry.index].append(entry)
    out: list[SeriesResult] = []
    for number, plan in enumerate(plans):
        if plan.ref is None:
            index = plan.components[0]
            assert index is not None
            out += [e.model_copy(update={"index": number}) for e in by_index[index]]
            continue
        definition = plan.ref.definition
        channel = plan.series.channel if plan.series is not None else None
        if definition.cohort is not None:
            keyed: list[tuple[Any, tuple[list[Any], Any]]] = [(None, _cohort_values(plan, period, spend, counts))]
        else:
            parts = [_keyed(by_index[c]) if c is not None else {None: spend(period, channel)}
                     for c in plan.components]
            keys = sorted({k for part in parts for k in part if k is not None}, key=repr) or [None]
            keyed = []
            for key in keys:
                values: list[tuple[list[Any], Any]] = [part.get(key) or part.get(None) or ([], 0) for part in parts]
                keyed.append((key, _combine(values, definition.scale)))
        for key, (data, total) in keyed:
            out.append(MetricValues(index=number, label=plan.name or definition.title, metric=plan.ref.name,
                                    metric_version=plan.ref.version, unit=definition.unit,
                                    breakdown=list(key) if key is not None else None, data=data,
                                    aggregated_value=total))
    return out


def _cohort_values(plan: _Plan, period: TrendsPeriod, spend: Spend, counts: Counts) -> tuple[list[Any], Any]:
    """A cohort metric per bucket and over the period: its ratio of entries, outcomes, values and spend."""
    assert plan.ref is not None
    definition = plan.ref.definition
    found = counts(plan, period)
    units = found.hits if definition.outcome is not None else found.entries
    units_total = found.total[1] if definition.outcome is not None else found.total[0]
    scale = definition.scale
    pairs: tuple[list[tuple[float | None, float]], tuple[float | None, float]]
    if definition.ratio is Ratio.rate:
        pairs = list(zip(found.hits, found.entries, strict=True)), (found.total[1], found.total[0])
    else:
        cost, cost_total = spend(period, plan.series.channel if plan.series is not None else None)
        if definition.ratio is Ratio.spend_per_unit:  # no spend recorded: no CAC (rather than 0)
            pairs = ([(c or None, u) for c, u in zip(cost, units, strict=True)],
                     (cost_total or None, units_total))
        else:
            pairs = list(zip(found.values, cost, strict=True)), (found.total[2], cost_total)
    return [_ratio(n, d, scale) for n, d in pairs[0]], _ratio(*pairs[1], scale)


def _keyed(entries: list[SeriesResult]) -> dict[Any, tuple[list[Any], Any]]:
    return {(tuple(e.breakdown) if e.breakdown is not None else None): (e.data, e.aggregated_value) for e in entries
            if isinstance(e, EventSeries)}


def _combine(values: list[tuple[list[Any], Any]], scale: float) -> tuple[list[Any], Any]:
    if len(values) == 1:
        data, total = values[0]
        return [_scaled(v, scale) for v in data], _scaled(total, scale)
    (num, num_total), (den, den_total) = values
    width = max(len(num), len(den))
    num = num or [0] * width
    den = den or [0] * width
    return ([_ratio(n, d, scale) for n, d in zip(num, den, strict=True)], _ratio(num_total, den_total, scale))


def _scaled(value: Any, scale: float) -> Any:
    return value if scale == 1 else round(float(value) * scale, 10)


def _ratio(numerator: Any, denominator: Any, scale: float) -> float | None:
    if numerator is None or not denominator:
        return None  # no denominator: the rate is undefined, not 0
    return round(float(numerator) * scale / float(denominator), 10)


# ad spend -------------------------------------------------------------------------------------------


def spend_tree(project_id: int, start: dt.date, end: dt.date, channel: str | None = None) -> exp.Select:
    """Ad spend per day of the project (of one channel) from `start` to `end` (both included)."""
    where = [exp.column("project_id").eq(exp.Literal.number(project_id)),
             exp.Between(this=exp.column("date"), low=_date(start), high=_date(end))]
    if channel is not None:
        where.append(exp.column("channel").eq(exp.Literal.string(channel)))
    return exp.select(exp.column("date"), exp.Sum(this=exp.column("cost"))).from_("spend").where(
        exp.and_(*where)).group_by(exp.column("date"))


def spend_by_bucket(rows: list[tuple[Any, ...]], period: TrendsPeriod,
                    granularity: Granularity) -> tuple[list[float], float]:
    """The rows of `spend_tree` added up per bucket of a period."""
    # (a day's spend goes to the bucket of its date: spend is kept by day)
    position = {label: i for i, label in enumerate(period.buckets)}
    data = [0.0] * len(period.buckets)
    for day, cost in rows:
        found = position.get(_bucket_label(day, granularity))
        if found is not None:
            data[found] += float(cost)
    return data, float(sum(data))


def cohort_counts(rows: list[tuple[Any, ...]], period: TrendsPeriod, granularity: Granularity) -> CohortCounts:
    """The rows of metric_cohorts.cohort_tree per bucket of a period (a bucket without entries: 0)."""
    position = {label: i for i, label in enumerate(period.buckets)}
    width = len(period.buckets)
    entries, hits, values = [0.0] * width, [0.0] * width, [0.0] * width
    total = (0.0, 0.0, 0.0)
    for bucket, whole, n, hit, value in rows:
        numbers = (float(n or 0), float(hit or 0), float(value or 0))
        if whole:
            total = numbers
            continue
        found = position.get(bucket_label(wall_clock(bucket), granularity))
        if found is not None:
            entries[found], hits[found], values[found] = numbers
    return CohortCounts(entries, hits, values, total)


def _date(day: dt.date) -> exp.Expr:
    return exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.build("DATE"))


def _bucket_label(day: dt.date, granularity: Granularity) -> str:
    if granularity is Granularity.week:
        day = day - dt.timedelta(days=day.weekday())
    elif granularity is Granularity.month:
        day = day.replace(day=1)
    return day.isoformat()


def validate_definition(data: Any) -> MetricDefinition:
    """A metric definition from JSON; ValueError names each problem and where."""
    try:
        return MetricDefinition.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'definition'}: {e['msg']}" for e in exc.errors()]
        raise ValueError("; ".join(problems)) from None
