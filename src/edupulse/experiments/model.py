"""What an experiment is: its key, hypothesis, variants with weights, the unit assigned (a person, or a class
or school for cluster experiments), targeting, traffic coverage, a namespace that keeps experiments apart,
and the metrics that judge it. Validation errors name the field and the reason."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from edupulse.queries.common import PERSON, Filter, Model, PropertyFilter, PropertyName, UnitName
from edupulse.queries.trends import Math

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
VARIANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
WEIGHT_TOLERANCE = 1e-6


class Status(StrEnum):
    draft = "draft"
    running = "running"
    stopped = "stopped"


class Variant(Model):
    key: str = Field(pattern=VARIANT_PATTERN, description="e.g. control, treatment")
    name: str = Field("", max_length=200)
    weight: float = Field(ge=0, le=1, description="share of the covered units; the weights sum to 1")


class Namespace(Model):
    """Experiments in one namespace with disjoint ranges never share a unit (a layer)."""

    name: str = Field(min_length=1, max_length=100)
    range: tuple[float, float] = (0.0, 1.0)

    @field_validator("range")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] < value[1] <= 1:
            raise ValueError("range is [start, end) with 0 <= start < end <= 1")
        return value


TARGET_OPS = ("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "is_set", "is_not_set")


class Targeting(Model):
    """Who may enter: all person-property conditions hold (the SDKs check them on the attributes the app
    passes, named as the properties), the person is in the segment, and has every tag."""

    properties: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    segment: str | int | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("properties")
    @classmethod
    def _simple(cls, values: list[PropertyFilter]) -> list[PropertyFilter]:
        for f in values:
            if f.op.value not in TARGET_OPS:
                raise ValueError(f"targeting by {f.property}: use one of {', '.join(TARGET_OPS)}")
            if "." in f.property and not f.property.startswith("person."):
                raise ValueError(f"targeting by {f.property}: name a person property (grade or person.grade)")
        return values


# Maths of a trends series an experiment metric may use, and what each measures per unit.
METRIC_MATHS = {
    Math.unique: "conversion", Math.unique_persons: "conversion",
    Math.total: "mean", Math.sum: "mean",
    Math.avg: "ratio", Math.avg_per_person: "ratio",
    Math.median: "quantile", Math.p75: "quantile", Math.p90: "quantile", Math.p95: "quantile",
    Math.p99: "quantile", Math.median_per_person: "quantile", Math.p75_per_person: "quantile",
    Math.p90_per_person: "quantile", Math.p95_per_person: "quantile", Math.p99_per_person: "quantile",
}
QUANTILE_LEVEL = {"median": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
PROPERTY_MATHS = {Math.sum, Math.avg, Math.median, Math.p75, Math.p90, Math.p95, Math.p99}


class MetricTerm(Model):
    """An event with a math, as a trends series: total (events per unit), unique (converted or not), sum
    (of a numeric property per unit)."""

    event: str = Field(min_length=1, max_length=100)
    math: Math = Math.total
    property: PropertyName | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _term(self) -> MetricTerm:
        if self.math not in (Math.total, Math.unique, Math.unique_persons, Math.sum):
            raise ValueError(f"math {self.math.value}: a ratio's part is total, unique or sum")
        if (self.math is Math.sum) != (self.property is not None):
            raise ValueError("sum needs a numeric property; total and unique take none")
        return self


class Metric(Model):
    """An experiment metric: an event with a math (as a trends series; `denominator` makes it a ratio), or a
    catalogue metric by name. `window_hours` counts only events within that long after the unit's first
    exposure; `lower_is_better` for metrics such as refunds or load time."""

    name: str | None = Field(None, max_length=200)
    event: str | None = Field(None, min_length=1, max_length=100)
    math: Math = Math.unique
    property: PropertyName | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    denominator: MetricTerm | None = None
    metric: str | None = Field(None, max_length=64, description="a metric of the catalogue, by name")
    window_hours: float | None = Field(None, gt=0, le=24 * 365)
    lower_is_better: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Metric:
        if (self.event is None) == (self.metric is None):
            raise ValueError("a metric names an event (with a math) or a catalogue metric, not both")
        if self.metric is not None:
            if self.property or self.filters or self.denominator or self.math is not Math.unique:
                raise ValueError("a catalogue metric takes no math, property, filters or denominator: its "
                                 "definition fixes them")
            return self
        kind = METRIC_MATHS.get(self.math)
        if kind is None:
            usable = ", ".join(sorted(m.value for m in METRIC_MATHS))
            raise ValueError(f"math {self.math.value} cannot judge an experiment; use one of {usable}")
        if (self.math in PROPERTY_MATHS) != (self.property is not None):
            raise ValueError(f"math {self.math.value} " + ("needs a numeric property" if self.math in PROPERTY_MATHS
                                                           else "takes no property"))
        if self.denominator is not None and kind not in ("mean", "conversion"):
            raise ValueError("a denominator makes a ratio of two totals, uniques or sums; use total, unique or "
                             "sum in the numerator")
        return self

    def label(self) -> str:
        if self.name:
            return self.name
        if self.metric:
            return self.metric
        what = f"{self.event} · {self.math.value}" + (f"({self.property})" if self.property else "")
        return what + (f" / {self.denominator.event}" if self.denominator else "")


class ExperimentSpec(Model):
    """An experiment as created (POST) or changed (PUT)."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field("", max_length=200)
    hypothesis: str = Field("", max_length=4000)
    owner: str | None = Field(None, max_length=254, description="e-mail of the person responsible")
    variants: list[Variant] = Field(min_length=2, max_length=10)
    seed: str | None = Field(None, max_length=200, description="hash seed; defaults to the key")
    coverage: float = Field(1.0, ge=0, le=1, description="share of the eligible units that enter")
    unit: UnitName = PERSON
    targeting: Targeting = Targeting()
    namespace: Namespace | None = None
    metrics: list[Metric] = Field(min_length=1, max_length=20)
    guardrails: list[Metric] = Field(default_factory=list, max_length=20)
    pre_period_days: int = Field(14, ge=1, le=90, description="days before exposure used by CUPED")

    @model_validator(mode="after")
    def _variants(self) -> ExperimentSpec:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError(f"variants: keys repeat ({', '.join(keys)}); each variant needs its own key")
        total = math.fsum(v.weight for v in self.variants)
        if abs(total - 1) > WEIGHT_TOLERANCE:
            raise ValueError(f"variants: the weights sum to {total:g}; they must sum to 1")
        return self

    @property
    def hash_seed(self) -> str:
        return self.seed or self.key

    @property
    def weights(self) -> list[float]:
        return [v.weight for v in self.variants]

    def assignment(self) -> dict[str, Any]:
        """What decides who gets which variant: fixed while the experiment runs."""
        return self.model_dump(mode="json", include={"variants", "seed", "coverage", "unit", "targeting",
                                                     "namespace", "key"})


class SpecError(ValueError):
    """An experiment definition that cannot be taken: `field` says where, the message what is wrong."""

    def __init__(self, field: str, reason: str, status: int = 400) -> None:
        super().__init__(reason if reason.startswith(f"{field}:") else f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


def parse_spec(data: Any) -> ExperimentSpec:
    """An ExperimentSpec from JSON; SpecError names the first problem's field (all problems in the message)."""
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        where = [".".join(str(p) for p in e["loc"]) or "experiment" for e in errors]
        problems = "; ".join(f"{w}: {e['msg'].removeprefix('Value error, ')}" for w, e in zip(where, errors,
                                                                                               strict=True))
        first = errors[0]["msg"].removeprefix("Value error, ")
        if where[0] == "experiment" and ":" in first:
            where[0] = first.split(":", 1)[0]
        raise SpecError(where[0], problems) from None
