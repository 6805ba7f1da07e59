"""The typed answer of GET /api/v1/experiments/{key}/results."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Engine(StrEnum):
    frequentist = "frequentist"
    bayesian = "bayesian"
    sequential = "sequential"


class Verdict(StrEnum):
    better = "better"  # the treatment beats the control on this metric
    worse = "worse"
    inconclusive = "inconclusive"
    no_data = "no_data"


class ArmResult(BaseModel):
    variant: str
    units: int
    clusters: int | None = None
    mean: float | None
    effect_absolute: float | None = None
    effect_relative: float | None = None
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    chance_to_win: float | None = None
    risk: tuple[float, float] | None = None
    verdict: Verdict | None = None
    error: str | None = None
    message: str | None = None


class DailyPoint(BaseModel):
    day: str
    variant: str
    units: int
    effect: float | None
    ci: tuple[float, float] | None


class MetricResult(BaseModel):
    label: str
    kind: str
    guardrail: bool
    lower_is_better: bool
    source: str | None
    cuped: bool
    variants: list[ArmResult]
    daily: list[DailyPoint]


class ExperimentResults(BaseModel):
    key: str
    version: int
    status: str
    unit: str
    engine: Engine
    relative: bool
    cuped: bool
    alpha: float
    correction: str
    start: str | None
    end: str | None
    units: dict[str, int]
    mixed_units: int
    srm_p_value: float | None
    srm_warning: bool
    verdict: Verdict
    guardrail_hurt: list[str]
    metrics: list[MetricResult]
    sql: list[str]
    seconds: float
