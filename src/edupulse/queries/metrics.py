"""Metrics by name in analyses: a trends series `{"metric": "attendance_rate"}` is replaced by the metric's
current definition from the catalogue (one series, or a numerator and a denominator whose ratio is taken
per bucket and over the whole range), so a change of definition shows in every report that names it.

A metric is a `MetricDefinition`: a numerator term and an optional denominator term, each an event with a
math (as a trends series) or the ad spend of the project (`{"spend": true}`), times a `scale`.

`expand` is a typed rewrite: the query with metric series becomes a plain trends query plus an `Expansion`
that folds the plain response back into one series per metric (`Expansion.fold`); nothing here runs SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError, model_validator

from edupulse.queries.common import Filter, Granularity, Model, PropertyName
from edupulse.queries.errors import QueryError
from edupulse.queries.metric_cohorts import ChannelAttribution, Cohort, Outcome, Ratio, check
from edupulse.queries.metric_keys import CohortCounts, Key, SpendCounts, other_key, shown, spend_columns, top_keys
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
            raise ValueError("a metric with a cohort needs a ratio: rate, entries, spend_per_unit or value_per_spend")
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
            return self.ratio not in (Ratio.rate, Ratio.entries)
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
    by: tuple[str, ...] = ()  # the query's breakdown properties (a metric's values per their values)
    spend_by: tuple[str, ...] = ()  # the spend table's columns for them, when the metric uses ad spend
    limit: int = 0  # how many breakdown values are kept (the rest is $other)


# ad spend per key, bucket and in total, of a channel and by spend columns
Spend = Callable[[TrendsPeriod, str | None, tuple[str, ...]], dict[Key, SpendCounts]]
Counts = Callable[[_Plan, TrendsPeriod], dict[Key, CohortCounts]]  # a cohort metric's counts per key


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
        by = tuple(query.breakdown.properties) if query.breakdown else ()
        spend_by: tuple[str, ...] = ()
        if by and definition.uses_spend:
            if definition.cohort is None and not definition.spend_only:
                raise QueryError(f"series.{i}: metric {series.metric!r} divides events by ad spend, which cannot "
                                 "be broken down; remove the breakdown (one channel: "
                                 '{"metric": ..., "channel": NAME})')
            spend_by = spend_columns(by, definition.channel, f"series.{i}: metric {series.metric!r}")
        if series.channel is not None and definition.channel is None and not definition.spend_only:
            raise QueryError(f"series.{i}.channel: metric {series.metric!r} does not know the units' channels; "
                             "only metrics with a channel attribution (such as cac and roi) or of ad spend only "
                             "take one")
        if ref.definition.uses_spend and query.granularity in (Granularity.minute, Granularity.hour):
            raise QueryError(f"series.{i}: metric {series.metric!r} uses ad spend, which is kept by day; use day, "
                             "week or month granularity")
        limit = query.breakdown.limit if query.breakdown else 0
        if definition.cohort is not None or (by and definition.spend_only):
            plans.append(_Plan(() if definition.cohort is not None else (None,), ref, series.name, series, by,
                               spend_by, limit))
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
        keyed: list[tuple[Any, tuple[list[Any], Any]]]
        if definition.cohort is not None:
            keyed = _cohort_values(plan, period, spend, counts)
        elif plan.by:  # ad spend only, per channel or campaign
            keyed = _spend_values(plan, spend(period, channel, plan.spend_by), len(period.buckets))
        else:
            parts = [_keyed(by_index[c]) if c is not None else {None: _plain_spend(spend(period, channel, ()))}
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


def _cohort_values(plan: _Plan, period: TrendsPeriod, spend: Spend,
                   counts: Counts) -> list[tuple[Any, tuple[list[Any], Any]]]:
    """A cohort metric per bucket and over the period (per breakdown value): its ratio of entries, outcomes,
    values and spend."""
    assert plan.ref is not None
    definition = plan.ref.definition
    found = counts(plan, period)
    width = len(period.buckets)
    cost: dict[Key, SpendCounts] = {}
    if definition.uses_spend:
        cost = spend(period, plan.series.channel if plan.series is not None else None, plan.spend_by)
    if not plan.by:
        return [(None, _cohort_ratio(definition, found.get((), CohortCounts.empty(width)),
                                     cost.get((), SpendCounts.empty(width))))]
    # keys with spend but no entries (a channel that spent and brought nobody) have their ROI of 0
    sizes = {key: found[key].total[0] if key in found else 0.0 for key in {*found, *cost}}
    kept, rest = top_keys(sizes, plan.limit)
    out = [(shown(key), _cohort_ratio(definition, found.get(key, CohortCounts.empty(width)),
                                      cost.get(key, SpendCounts.empty(width)))) for key in kept]
    if rest:
        other = sum((found.get(k, CohortCounts.empty(width)) for k in rest), CohortCounts.empty(width))
        spent = sum((cost.get(k, SpendCounts.empty(width)) for k in rest), SpendCounts.empty(width))
        out.append((list(other_key(len(plan.by))), _cohort_ratio(definition, other, spent)))
    return out


def _cohort_ratio(definition: MetricDefinition, found: CohortCounts, cost: SpendCounts) -> tuple[list[Any], Any]:
    units = found.hits if definition.outcome is not None else found.entries
    units_total = found.total[1] if definition.outcome is not None else found.total[0]
    scale = definition.scale
    pairs: tuple[list[tuple[float | None, float]], tuple[float | None, float]]
    if definition.ratio is Ratio.entries:
        return [_scaled(e, scale) for e in found.entries], _scaled(found.total[0], scale)
    if definition.ratio is Ratio.rate:
        pairs = list(zip(found.hits, found.entries, strict=True)), (found.total[1], found.total[0])
    elif definition.ratio is Ratio.spend_per_unit:  # no spend recorded: no CAC (rather than 0)
        pairs = ([(c or None, u) for c, u in zip(cost.data, units, strict=True)], (cost.total or None, units_total))
    else:
        pairs = list(zip(found.values, cost.data, strict=True)), (found.total[2], cost.total)
    return [_ratio(n, d, scale) for n, d in pairs[0]], _ratio(*pairs[1], scale)


def _spend_values(plan: _Plan, cost: dict[Key, SpendCounts], width: int) -> list[tuple[Any, tuple[list[Any], Any]]]:
    """An ad-spend metric per channel or campaign (the largest first; the rest as $other)."""
    assert plan.ref is not None
    scale = plan.ref.definition.scale
    kept, rest = top_keys({key: c.total for key, c in cost.items()}, plan.limit)
    rows = [(shown(key), cost[key]) for key in kept]
    if rest:
        rows.append((list(other_key(len(plan.by))), sum((cost[k] for k in rest), SpendCounts.empty(width))))
    return [(key, ([_scaled(v, scale) for v in c.data], _scaled(c.total, scale))) for key, c in rows]


def _plain_spend(cost: dict[Key, SpendCounts]) -> tuple[list[Any], Any]:
    found = cost.get(())
    return (found.data, found.total) if found is not None else ([], 0)


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


def validate_definition(data: Any) -> MetricDefinition:
    """A metric definition from JSON; ValueError names each problem and where."""
    try:
        return MetricDefinition.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'definition'}: {e['msg']}" for e in exc.errors()]
        raise ValueError("; ".join(problems)) from None
