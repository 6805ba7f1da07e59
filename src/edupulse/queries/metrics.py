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
from edupulse.queries.errors import QueryError
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
    """A catalogue metric: numerator (÷ denominator) × scale."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    unit: str = Field(min_length=1, max_length=64, description="what is counted: lessons, persons, CNY, %...")
    numerator: Term
    denominator: Term | None = None
    scale: float = Field(1.0, description="e.g. 100 for a percentage")

    @property
    def uses_spend(self) -> bool:
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


Spend = Callable[[TrendsPeriod], tuple[list[float], float]]  # ad spend per bucket of a period, and in total


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

    def fold(self, response: TrendsResponse, spend: Spend) -> TrendsResponse:
        """One series per metric (and breakdown value), plain series renumbered in the query's order."""
        main = TrendsPeriod(date_from=response.date_from, date_to=response.date_to, buckets=response.buckets,
                            series=response.series)
        previous = response.previous
        return response.model_copy(update={
            "series": _fold(response.series, self.plans, lambda: spend(main)),
            "previous": previous.model_copy(update={"series": _fold(previous.series, self.plans,
                                                                    lambda: spend(previous))})
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
        if ref.definition.uses_spend and query.breakdown:
            raise QueryError(f"series.{i}: metric {series.metric!r} uses ad spend, which cannot be broken down by "
                             "event or person properties; remove the breakdown")
        if ref.definition.uses_spend and query.granularity in (Granularity.minute, Granularity.hour):
            raise QueryError(f"series.{i}: metric {series.metric!r} uses ad spend, which is kept by day; use day, "
                             "week or month granularity")
        filters = [f.model_dump(mode="json", by_alias=True, exclude_none=True) for f in series.filters]
        components: list[int | None] = []
        for term in (ref.definition.numerator, ref.definition.denominator):
            if term is None:
                continue
            if term.spend:
                components.append(None)
            else:
                components.append(len(expanded))
                expanded.append(term.series(filters))
        plans.append(_Plan(tuple(components), ref, series.name))
    if not expanded:
        expanded = [{"event": PLACEHOLDER}]
    data = {**query.model_dump(mode="json", by_alias=True), "series": expanded}
    try:
        plain = TrendsQuery.model_validate(data)
    except ValidationError as exc:
        raise QueryError("; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}"
                                   for e in exc.errors())) from None
    return Expansion(plain, tuple(plans))


def _fold(entries: list[SeriesResult], plans: tuple[_Plan, ...],
          spend: Callable[[], tuple[list[float], float]]) -> list[SeriesResult]:
    by_index: dict[int, list[SeriesResult]] = defaultdict(list)
    for entry in entries:
        by_index[entry.index].append(entry)
    out: list[SeriesResult] = []
    for number, plan in enumerate(plans):
        if plan.ref is None:
            index = plan.components[0]
            assert index is not None
            out += [e.model_copy(update={"index": number}) for e in by_index[index]]
            continue
        parts = [_keyed(by_index[c]) if c is not None else {None: spend()} for c in plan.components]
        keys = sorted({k for part in parts for k in part if k is not None}, key=repr) or [None]
        definition = plan.ref.definition
        for key in keys:
            values: list[tuple[list[Any], Any]] = [part.get(key) or part.get(None) or ([], 0) for part in parts]
            data, total = _combine(values, definition.scale)
            out.append(MetricValues(index=number, label=plan.name or definition.title, metric=plan.ref.name,
                                    metric_version=plan.ref.version, unit=definition.unit,
                                    breakdown=list(key) if key is not None else None, data=data,
                                    aggregated_value=total))
    return out


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
    if not denominator:
        return None  # no denominator: the rate is undefined, not 0
    return round(float(numerator) * scale / float(denominator), 10)


# ad spend -------------------------------------------------------------------------------------------


def spend_tree(project_id: int, start: dt.date, end: dt.date) -> exp.Select:
    """Ad spend per day of the project from `start` to `end` (both included)."""
    return (exp.select(exp.column("date"), exp.Sum(this=exp.column("cost")))
            .from_("spend")
            .where(exp.and_(exp.column("project_id").eq(exp.Literal.number(project_id)),
                            exp.Between(this=exp.column("date"), low=_date(start), high=_date(end))))
            .group_by(exp.column("date")))


def spend_by_bucket(rows: list[tuple[Any, ...]], period: TrendsPeriod,
                    granularity: Granularity) -> tuple[list[float], float]:
    """The rows of `spend_tree` added up per bucket of a period."""
    position = {label: i for i, label in enumerate(period.buckets)}
    data = [0.0] * len(period.buckets)
    for day, cost in rows:
        found = position.get(_bucket_label(day, granularity))
        if found is not None:
            data[found] += float(cost)
    return data, float(sum(data))


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
