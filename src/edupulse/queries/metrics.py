"""Metrics by name in analyses: a trends series `{"metric": "attendance_rate"}` is replaced by the metric's
current definition from the catalogue (one series, or a numerator and a denominator whose ratio is taken
per bucket and over the whole range), so a change of definition shows in every report that names it.

A metric is a `MetricDefinition`: a numerator term and an optional denominator term, each an event with a
math (as a trends series) or the ad spend of the project (`{"spend": true}`), times a `scale`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, model_validator
from sqlglot import exp

from edupulse.meta.db import ProjectInfo
from edupulse.queries.common import Filter, Granularity, Model, PropertyName
from edupulse.queries.trends import PROPERTY_MATH, Math

if TYPE_CHECKING:
    from edupulse.queries.base import QueryEnv
    from edupulse.store.base import QueryControl

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SERIES_KEYS = frozenset({"metric", "name", "filters"})


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
    """A metric's current version, as the catalogue hands it to the query runner."""

    name: str
    version: int
    definition: MetricDefinition


def references_metrics(data: Any) -> bool:
    series = data.get("series") if isinstance(data, dict) else None
    return isinstance(series, list) and any(isinstance(s, dict) and "metric" in s for s in series)


def expanded_query(data: dict[str, Any], lookup: Any) -> dict[str, Any]:
    """The query with its metric series replaced by the plain series of their definitions (to check a query
    that names metrics before it is saved); QueryError for a metric that does not exist."""
    expanded, _ = _expand(data, lookup)
    return {**data, "series": expanded or [{"event": "$metric_placeholder"}]}


@dataclass
class _Plan:
    kind: str  # plain | metric
    components: list[int | None]  # index in the expanded query per term; None: spend
    ref: MetricRef | None = None
    name: str | None = None


def run_with_metrics(env: QueryEnv, project: ProjectInfo, data: dict[str, Any], lookup: Any, *,
                     now: dt.datetime | None, control: QueryControl | None = None,
                     person_scope: exp.Expr | None = None) -> dict[str, Any]:
    """Expand metric series into plain ones, run, and fold the components back into one series per metric."""
    from edupulse.queries.base import QueryError, run_query

    if data.get("kind") != "trends":
        raise QueryError("metrics by name can be used in trends series")
    if lookup is None:
        raise QueryError("series name metrics, but this caller has no metric catalogue; send the query to "
                         "POST /api/v1/query")
    if data.get("formula") is not None:
        raise QueryError("formula: a query with a formula cannot name metrics yet; a ratio metric is a formula "
                         "of its own (numerator / denominator)")
    expanded, plans = _expand(data, lookup)
    if not expanded:
        expanded = [{"event": "$metric_placeholder"}]  # a query of spend terms only still needs the buckets
    result = run_query(env, project, {**data, "series": expanded}, now, control, person_scope=person_scope)
    store = env.store
    tz = ZoneInfo(project.timezone)
    granularity = Granularity(data.get("granularity", "day"))
    result["series"] = _fold(result["series"], plans, _spender(store, project, result, granularity, tz))
    if "previous" in result:
        previous = result["previous"]
        previous["series"] = _fold(previous["series"], plans, _spender(store, project, previous, granularity, tz))
    result["metrics"] = {p.ref.name: {"version": p.ref.version, "title": p.ref.definition.title,
                                      "unit": p.ref.definition.unit}
                         for p in plans if p.ref is not None}
    return result


def _expand(data: dict[str, Any], lookup: Any) -> tuple[list[dict[str, Any]], list[_Plan]]:
    from edupulse.queries.base import QueryError

    expanded: list[dict[str, Any]] = []
    plans: list[_Plan] = []
    for i, series in enumerate(data["series"]):
        if not (isinstance(series, dict) and "metric" in series):
            plans.append(_Plan("plain", [len(expanded)]))
            expanded.append(series)
            continue
        extra = sorted(set(series) - SERIES_KEYS)
        if extra:
            raise QueryError(f"series.{i}: a metric series takes only metric, name and filters, not "
                             f"{', '.join(extra)} (the metric's definition fixes them)")
        name = series["metric"]
        ref = lookup(name) if isinstance(name, str) else None
        if ref is None:
            raise QueryError(f"series.{i}.metric: no metric named {name!r} in the catalogue (GET /api/v1/metrics)")
        if ref.definition.uses_spend and data.get("breakdown"):
            raise QueryError(f"series.{i}: metric {name!r} uses ad spend, which cannot be broken down by "
                             "event or person properties; remove the breakdown")
        if ref.definition.uses_spend and data.get("granularity") in ("minute", "hour"):
            raise QueryError(f"series.{i}: metric {name!r} uses ad spend, which is kept by day; use day, week "
                             "or month granularity")
        filters = series.get("filters") or []
        components: list[int | None] = []
        for term in (ref.definition.numerator, ref.definition.denominator):
            if term is None:
                continue
            if term.spend:
                components.append(None)
            else:
                components.append(len(expanded))
                expanded.append(term.series(filters))
        plans.append(_Plan("metric", components, ref, series.get("name")))
    return expanded, plans


Spender = Any  # () -> (data per bucket, total)


def _fold(entries: list[dict[str, Any]], plans: list[_Plan], spend: Any) -> list[dict[str, Any]]:
    by_index: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_index[entry["index"]].append(entry)
    out: list[dict[str, Any]] = []
    for number, plan in enumerate(plans):
        if plan.kind == "plain":
            index = plan.components[0]
            assert index is not None
            out += [{**e, "index": number} for e in by_index[index]]
            continue
        assert plan.ref is not None
        parts = [_keyed(by_index[c]) if c is not None else {None: spend()} for c in plan.components]
        keys = sorted({k for part in parts for k in part if k is not None}, key=repr) or [None]
        definition = plan.ref.definition
        for key in keys:
            values = [part.get(key) or part.get(None) or ([], 0) for part in parts]
            data, total = _combine(values, definition.scale)
            out.append({"index": number, "label": plan.name or definition.title, "event": None, "math": "metric",
                        "metric": plan.ref.name, "metric_version": plan.ref.version, "unit": definition.unit,
                        "breakdown": list(key) if key is not None else None, "data": data,
                        "aggregated_value": total})
    return out


def _keyed(entries: list[dict[str, Any]]) -> dict[Any, tuple[list[Any], Any]]:
    return {(tuple(e["breakdown"]) if e.get("breakdown") is not None else None): (e["data"], e["aggregated_value"])
            for e in entries}


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


def _spender(store: Any, project: ProjectInfo, frame: dict[str, Any], granularity: Granularity,
             tz: ZoneInfo) -> Any:
    """Ad spend per bucket of a result frame, computed only when a metric asks for it."""

    def spend() -> tuple[list[float], float]:
        start, end = dt.date.fromisoformat(frame["date_from"]), dt.date.fromisoformat(frame["date_to"])
        tree = (exp.select(exp.column("date"), exp.Sum(this=exp.column("cost")))
                .from_("spend")
                .where(exp.and_(exp.column("project_id").eq(exp.Literal.number(project.id)),
                                exp.Between(this=exp.column("date"), low=_date(start), high=_date(end))))
                .group_by(exp.column("date")))
        labels = frame["buckets"]
        position = {label: i for i, label in enumerate(labels)}
        data = [0.0] * len(labels)
        for day, cost in store.query(tree.sql(store.dialect)).rows:
            label = _bucket_label(day, granularity)
            if label in position:
                data[position[label]] += float(cost)
        return data, float(sum(data))

    return spend


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
