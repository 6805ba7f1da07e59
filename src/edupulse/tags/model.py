"""What a tag is: a name, what it tags (persons or a group type), a value type and a definition of one of the
families the leading tag platforms offer. Definitions are pydantic models (`extra="forbid"`), told apart by
`type`; tiers and ranges are checked when the tag is saved."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edupulse.queries.common import Filter, Model
from edupulse.queries.segments import Condition, Window

MAX_TIERS = 24
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
Event = Annotated[str, Field(min_length=1, max_length=100)]
Property = Annotated[str, Field(min_length=1, max_length=300)]


class ValueType(StrEnum):
    string = "string"
    number = "number"
    boolean = "boolean"
    time = "time"


class Tier(Model):
    """A named value and the condition (as in segment definitions) a unit meets to get it."""

    name: str = Field(min_length=1, max_length=100)
    condition: Condition


class CustomTiers(Model):
    """Named values, each a condition as in segment definitions; the first tier a person meets is theirs."""

    type: Literal["custom_tiers"]
    tiers: list[Tier] = Field(min_length=1, max_length=MAX_TIERS)
    otherwise: str | None = Field(None, max_length=100, description="the value of persons who meet no tier")

    @field_validator("tiers")
    @classmethod
    def _distinct(cls, tiers: list[Tier]) -> list[Tier]:
        _no_repeats([t.name for t in tiers], "tier")
        return tiers


class Aggregate(StrEnum):
    count = "count"  # type: ignore[assignment]  # (str.count: the member is the value the JSON names)
    distinct_days = "distinct_days"
    sum = "sum"
    avg = "avg"
    min = "min"
    max = "max"


class Measure(Model):
    """A per-unit metric over the unit's events of one kind: how many, on how many distinct days (in the
    project's time zone), or the sum / average / min / max of a numeric property."""

    event: Event
    aggregate: Aggregate = Aggregate.count
    property: Property | None = None
    window: Window | None = Field(None, description="default: all time")
    filters: list[Filter] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _property_when_needed(self) -> Measure:
        numeric = self.aggregate in (Aggregate.sum, Aggregate.avg, Aggregate.min, Aggregate.max)
        if numeric and self.property is None:
            raise ValueError(f"aggregate {self.aggregate.value} needs a numeric property")
        if not numeric and self.property is not None:
            raise ValueError(f"aggregate {self.aggregate.value} counts events and takes no property")
        return self


class Range(Model):
    """A named range: from `min` (included) to `max` (excluded); either end may be open."""

    name: str = Field(min_length=1, max_length=100)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"range {self.name!r}: min {self.min:g} is not below max {self.max:g}")
        return self


class MetricTiers(Model):
    """A per-unit metric cut into ranges of its value, or of its percentile rank (0 to 100, among the units
    that have a value) with `cut: percentiles`; without ranges the value is the metric itself."""

    type: Literal["metric_tiers"]
    measure: Measure
    cut: Literal["values", "percentiles"] = "values"
    ranges: list[Range] = Field(default_factory=list, max_length=MAX_TIERS)

    @model_validator(mode="after")
    def _ranges(self) -> MetricTiers:
        _no_repeats([r.name for r in self.ranges], "range")
        if self.cut == "percentiles":
            if not self.ranges:
                raise ValueError("cut percentiles needs ranges of percentile ranks (0 to 100)")
            for r in self.ranges:
                if any(v is not None and not 0 <= v <= 100 for v in (r.min, r.max)):
                    raise ValueError(f"range {r.name!r}: percentile ranks are from 0 to 100")
        return self


class FirstLast(Model):
    """The time (no `property`) or a property's value of the unit's first or last event of a kind."""

    type: Literal["first_event", "last_event"]
    event: Event
    property: Property | None = None
    window: Window | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=50)


class Preference(Model):
    """The `top` most frequent values of a property among the unit's events (ties: the smaller value first),
    joined with ", " when more than one."""

    type: Literal["preference"]
    event: Event
    property: Property
    top: int = Field(1, ge=1, le=10)
    window: Window | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=50)


class Rfm(Model):
    """Recency (days since the last purchase), frequency (purchases) and monetary (their amount) scored 1..5
    by quintile among buyers, and the classic eight segments by whether each score is high (4 or 5)."""

    type: Literal["rfm"]
    event: Event = "order_paid"
    amount: Property = "amount"
    window: Window | None = None


class SqlTag(Model):
    """A read-only query (the `sql` analysis kind's rules and views) returning columns `unit` (the person id,
    or the group key of a group tag) and `value`."""

    type: Literal["sql"]
    sql: str = Field(min_length=1, max_length=100_000)


class Uploaded(Model):
    """Values uploaded as CSV (identity, value): `incremental` keeps units the file does not name,
    `overwrite` removes them."""

    type: Literal["uploaded"]
    id_type: str = Field("login_id", min_length=1, max_length=64,
                         description="the identity type of the first column (ignored for group tags)")
    mode: Literal["incremental", "overwrite"] = "incremental"


class MissedStreak(Model):
    """Students who missed `streak` scheduled lessons of one class in a row (ordered by `starts_at`; a lesson
    is missed once it has started without a live or replay attendance); the value is the class, ever within
    the data, so a student who came back keeps it."""

    type: Literal["missed_streak"]
    streak: int = Field(3, ge=2, le=50)
    group: str = Field("class", min_length=1, max_length=64, description="the group type of classes")


class ReferralKol(Model):
    """Referrers by the referees they brought (`referral_signup` naming them in `referrer_id`), then by the
    size of their referral tree; the `top` first are `kol`, other referrers `referrer`."""

    type: Literal["referral_kol"]
    top: int = Field(10, ge=1, le=10_000)


class InstitutionHealth(Model):
    """The B2B health score (0 to 100) of a group: staff login days in 7 and 30 days and enrolment growth,
    tiered points per factor, missing factors re-weighted; `warning` below `warning_below`, `watch` below
    `watch_below`, else `healthy`."""

    type: Literal["institution_health"]
    login_event: Event = "staff_login"
    enrol_event: Event = "student_enrolled"
    warning_below: float = Field(50, ge=0, le=100)
    watch_below: float = Field(70, ge=0, le=100)


class ModelScore(Model):
    """A score from a model trained on the project's own history (tags/learn): `lead_propensity`,
    `dropout_risk` or `renewal_propensity`, with tiers at score cut-offs (high first)."""

    type: Literal["model"]
    model: Literal["lead_propensity", "dropout_risk", "renewal_propensity"]
    tiers: list[Range] = Field(default_factory=lambda: [Range(name="high", min=0.7), Range(name="medium", min=0.4,
                                                                                          max=0.7),
                                                        Range(name="low", max=0.4)])


Definition = Annotated[
    CustomTiers | MetricTiers | FirstLast | Preference | Rfm | SqlTag | Uploaded | MissedStreak | ReferralKol
    | InstitutionHealth | ModelScore,
    Field(discriminator="type"),
]
TYPES = ("custom_tiers", "metric_tiers", "first_event", "last_event", "preference", "rfm", "sql", "uploaded",
         "missed_streak", "referral_kol", "institution_health", "model")


class TagSpec(Model):
    """A tag as saved: what it tags, the type of its values and how they are computed."""

    name: str = Field(min_length=1, max_length=63)
    description: str = Field("", max_length=2000)
    owner: str = Field("", max_length=300)
    unit: str = Field("person", min_length=1, max_length=64, description="person, or a group type")
    value_type: ValueType = ValueType.string
    definition: Definition
    schedule: Literal["daily", "manual"] = "daily"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("a tag name is lower-case letters, digits and _, starting with a letter")
        return value

    @model_validator(mode="after")
    def _fits(self) -> TagSpec:
        d = self.definition
        person_only = (CustomTiers, Rfm, MissedStreak, ReferralKol, ModelScore)
        if self.unit != "person" and isinstance(d, person_only):
            raise ValueError(f"a {d.type} tag tags persons (unit person)")
        if self.unit == "person" and isinstance(d, InstitutionHealth):
            raise ValueError("an institution_health tag tags a group type (e.g. unit institution)")
        return self


def _no_repeats(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"two {what}s are named {name!r}")
        seen.add(name)
