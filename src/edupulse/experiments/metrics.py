"""An experiment metric as the SQL needs it: per unit a numerator value m (and, for ratios, a denominator
value d), each the sum of one term over the unit's events after exposure, optionally capped at 1 (converted
or not). Catalogue metrics are turned into the same form in `from_catalogue`, the one place that reads the
catalogue's definitions.

    conversion   m = 1 if the unit did the event (unique)                        Proportion
    mean         m = events (total) or Σ property (sum) per unit, zeros included  SampleMean
    ratio        m / d per unit: avg (Σ property / events), avg_per_person (events / units that did it),
                 an explicit denominator, or a catalogue metric's numerator ÷ denominator   Ratio (delta)
                 or a catalogue rate over a cohort: the unit's entries that met the outcome / its entries
                 after exposure (lessons attended / scheduled, course ends renewed / ended)
    quantile     the ν-quantile of m over the units that did the event: events (pXX_per_person) or
                 Σ property (median, pXX)                                          Quantile
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edupulse.experiments.model import QUANTILE_LEVEL, Metric, MetricTerm, SpecError
from edupulse.queries.common import Filter
from edupulse.queries.metric_cohorts import Cohort, Outcome, Ratio
from edupulse.queries.metrics import MetricRef, Term
from edupulse.queries.trends import Math

UNIQUE = (Math.unique, Math.unique_persons)


@dataclass(frozen=True)
class Part:
    """One term summed per unit: 1 per event, or the property's value; `cap` keeps min(value, 1)."""

    event: str
    property: str | None
    filters: tuple[Filter, ...]
    cap: bool = False


@dataclass(frozen=True)
class MetricPlan:
    label: str
    kind: str  # conversion | mean | ratio | quantile
    numerator: Part
    denominator: Part | None = None
    level: float | None = None  # quantiles
    window_us: int | None = None
    lower_is_better: bool = False
    guardrail: bool = False
    source: str | None = None  # the catalogue metric and version it came from
    cohort: tuple[Cohort, Outcome] | None = None  # a rate over a cohort: per unit, entries met / entries


def _part(event: str, math: Math, prop: str | None, filters: list[Filter]) -> Part:
    return Part(event, prop if math is Math.sum else None, tuple(filters), cap=math in UNIQUE)


def plan(metric: Metric, lookup: object = None, *, guardrail: bool = False, where: str = "metrics.0") -> MetricPlan:
    """The plan of one metric; `lookup(name)` gives a catalogue MetricRef or None."""
    window = int(metric.window_hours * 3_600_000_000) if metric.window_hours else None
    common: dict[str, Any] = {"window_us": window, "lower_is_better": metric.lower_is_better, "guardrail": guardrail}
    if metric.metric is not None:
        ref = lookup(metric.metric) if callable(lookup) else None
        if ref is None:
            raise SpecError(f"{where}.metric", f"no metric named {metric.metric!r} in the catalogue "
                                               "(GET /api/v1/metrics)")
        return from_catalogue(ref, metric.name, where, **common)
    assert metric.event is not None
    math, prop, filters = metric.math, metric.property, list(metric.filters)
    label = metric.label()
    if metric.denominator is not None:
        den: MetricTerm = metric.denominator
        return MetricPlan(label, "ratio", _part(metric.event, math, prop, filters),
                          _part(den.event, den.math, den.property, list(den.filters)), **common)
    if math in UNIQUE:
        return MetricPlan(label, "conversion", _part(metric.event, math, None, filters), **common)
    if math in (Math.total, Math.sum):
        return MetricPlan(label, "mean", _part(metric.event, math, prop, filters), **common)
    if math is Math.avg:
        return MetricPlan(label, "ratio", Part(metric.event, prop, tuple(filters)),
                          Part(metric.event, None, tuple(filters)), **common)
    if math is Math.avg_per_person:
        return MetricPlan(label, "ratio", Part(metric.event, None, tuple(filters)),
                          Part(metric.event, None, tuple(filters), cap=True), **common)
    name = math.value.removesuffix("_per_person")
    return MetricPlan(label, "quantile", Part(metric.event, prop, tuple(filters)), level=QUANTILE_LEVEL[name],
                      **common)


def _term(term: Term, where: str) -> Part:
    if term.spend or term.event is None:
        raise SpecError(where, "ad spend is not measured per unit, so it cannot judge an experiment")
    if term.math not in (Math.total, Math.sum, *UNIQUE):
        raise SpecError(where, f"the catalogue metric counts with math {term.math.value}; an experiment can use "
                               "catalogue metrics whose terms are total, unique or sum")
    return _part(term.event, term.math, term.property, list(term.filters))


def from_catalogue(ref: MetricRef, name: str | None, where: str, **common: Any) -> MetricPlan:
    """A catalogue metric (numerator ÷ denominator, each an event with a math; or a rate over a cohort) as a
    per-unit plan."""
    definition = ref.definition
    label = name or definition.title
    source = f"{ref.name} v{ref.version}"
    if definition.cohort is not None:
        if definition.ratio is not Ratio.rate or definition.outcome is None:
            raise SpecError(f"{where}.metric", f"{ref.name} divides by ad spend or by spend per unit (CAC, ROI), "
                                              "which is not measured per unit, so it cannot judge an experiment; "
                                              "use a rate or name the event and math instead")
        # per unit: the entries after exposure (denominator) and those that met the outcome (numerator); the
        # events named here only label the parts, the SQL reads the cohort's entries
        return MetricPlan(label, "ratio", Part(definition.outcome.event, None, ()),
                          Part(definition.cohort.event, None, ()), source=source,
                          cohort=(definition.cohort, definition.outcome), **common)
    assert definition.numerator is not None
    numerator = _term(definition.numerator, f"{where}.metric")
    if definition.denominator is None:
        kind = "conversion" if numerator.cap else "mean"
        return MetricPlan(label, kind, numerator, source=source, **common)
    return MetricPlan(label, "ratio", numerator, _term(definition.denominator, f"{where}.metric"), source=source,
                      **common)
