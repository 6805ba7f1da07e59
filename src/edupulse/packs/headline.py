"""What a pack's headline is computed with: the period (the last 30 days by default, a given period, or every
day of the data), the events the project has, and the query service, whose metric look-ups fall back to the
pack's own metric definitions where the project's catalogue has none (so a headline needs no install, and an
installed metric the user changed is what both the dashboard and the headline use)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from edupulse.journeys.service import JourneyService
from edupulse.meta.db import MetadataStore
from edupulse.queries.common import local_midnight
from edupulse.queries.dialect import DIALECTS
from edupulse.queries.metadata import ProjectRef, QueryMetadata, SavedSegment, TagRef
from edupulse.queries.metrics import MetricDefinition, MetricRef
from edupulse.queries.results import Masker
from edupulse.queries.service import PersonScope, QueryResult, QueryService
from edupulse.queries.trends import TrendsResponse
from edupulse.store.base import EventStore
from edupulse.tags.run import TagService

DEFAULT_DAYS = 30


class PackError(ValueError):
    """A request about packs that cannot be carried out; `status` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Card(BaseModel):
    """The number on a problem's card of the Scenarios page: `label` is a message key."""

    model_config = ConfigDict(extra="forbid")
    value: float | None
    unit: str = Field(description="%, CNY, ratio or count")
    label: str


class Headline(BaseModel):
    """What every pack's headline has; each pack adds its own typed numbers."""

    model_config = ConfigDict(extra="forbid")
    pack: str
    date_from: str
    date_to: str
    empty: bool = Field(description="the project lacks an event the pack needs (see missing_events)")
    missing_events: list[str]
    card: Card

    def masked(self, masker: Masker) -> Self:
        """The headline with personal values (a student's name) in their shown-safe form, for callers without
        personal:view; a pack whose headline shows such values says how (this one shows none)."""
        return self


def whole_number(value: Any) -> int | None:
    """A count sent as a group property (a school's students, an institution's staff) as an int; None when it
    is missing or not a number ("about 400", "inf"), so it reads as unknown rather than failing the headline."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(str(value)))
    except (ValueError, OverflowError):
        return None


def masked_identities(identities: Mapping[str, list[str]], masker: Masker) -> dict[str, list[str]]:
    """A person's identities with the personal ones (a mobile number, an email) in their shown-safe form."""
    return {kind: [masker.value(kind, v) for v in values] if masker.personal(kind) else list(values)
            for kind, values in identities.items()}


def masked_people(items: list[Any], masker: Masker) -> list[Any]:
    """Rows that carry a person's `identities`, with the personal ones masked."""
    return [item.model_copy(update={"identities": masked_identities(item.identities, masker)}) for item in items]


class MetricFallback:
    """A QueryMetadata whose metrics fall back to definitions given here (a pack's) when the catalogue lacks
    them; everything else is the wrapped metadata's."""

    def __init__(self, base: QueryMetadata, metrics: Mapping[str, dict[str, Any]]) -> None:
        self.base = base
        self.metrics = {name: MetricDefinition.model_validate(d) for name, d in metrics.items()}

    def group_types(self, project_id: int) -> Mapping[str, int]:
        return self.base.group_types(project_id)

    def segment(self, project_id: int, name_or_id: str | int) -> SavedSegment | None:
        return self.base.segment(project_id, name_or_id)

    def metric(self, project_id: int, name: str) -> MetricRef | None:
        found = self.base.metric(project_id, name)
        if found is None and name in self.metrics:
            return MetricRef(name, 0, self.metrics[name])  # version 0: the pack's, not in the catalogue
        return found

    def tags(self, project_id: int) -> Mapping[str, TagRef]:
        return self.base.tags(project_id)

    def cache_stamp(self, project_id: int) -> Any:
        return self.base.cache_stamp(project_id)


def event_volumes(store: EventStore, project_id: int, names: tuple[str, ...]) -> dict[str, int]:
    """How many of each of these events the project has stored (0 for those it has none of)."""
    if not names:
        return {}
    marks = ", ".join("?" for _ in names)
    rows = store.query(f"SELECT event, count(*) FROM events WHERE project_id = ? AND event IN ({marks}) "
                       "GROUP BY event", [project_id, *names]).rows
    found = {str(name): int(count) for name, count in rows}
    return {name: found.get(name, 0) for name in names}


def data_days(store: EventStore, project_id: int, tz: ZoneInfo) -> tuple[dt.date, dt.date] | None:
    """The first and last day (in the project's time zone) with an event of the project; None without any."""
    rows = store.query("SELECT min(time), max(time) FROM events WHERE project_id = ?", [project_id]).rows
    if not rows or rows[0][0] is None:
        return None
    first, last = (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC) for moment in rows[0])
    return first.astimezone(tz).date(), last.astimezone(tz).date()


def period(store: EventStore, project: ProjectRef, *, date_range: str | None = None, date_from: str | None = None,
           date_to: str | None = None, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The days a headline covers: `date_range=all` every day of the data, else `date_from`..`date_to` (ISO
    dates; date_to defaults to today), else the last 30 days up to today."""
    tz = ZoneInfo(project.timezone)
    today = (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
    if date_range is not None:
        if date_range != "all":
            raise PackError(f"date_range {date_range!r}: use all (every day of the data), or date_from and date_to")
        return data_days(store, project.id, tz) or (today - dt.timedelta(days=DEFAULT_DAYS - 1), today)
    if date_from is None and date_to is None:
        return today - dt.timedelta(days=DEFAULT_DAYS - 1), today
    try:
        end = dt.date.fromisoformat(date_to) if date_to else today
        start = dt.date.fromisoformat(date_from) if date_from else end - dt.timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise PackError(f"date_from {date_from!r} / date_to {date_to!r}: use YYYY-MM-DD") from None
    if start > end:
        raise PackError(f"date_from {start} is after date_to {end}")
    return start, end


@dataclass
class PackRun:
    """One headline's computation: the query service, the project, the period and the events it has."""

    service: QueryService
    project: ProjectRef
    start: dt.date
    end: dt.date
    volumes: dict[str, int]
    now: dt.datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    scope: PersonScope | None = None  # an advisor's persons
    alerts: list[dict[str, Any]] = field(default_factory=list)  # the project's alerts (meta.alerts rows)
    tags: TagService | None = None  # the tags' service (values with scores and reasons)
    journeys: JourneyService | None = None  # the journeys' service (a pack's journeys and their results)
    parts: dict[str, Any] = field(default_factory=dict)  # what the pack installed in the project, by part key
    meta: MetadataStore | None = None  # for packs that keep decisions of their own (school owners and targets)

    @property
    def date_range(self) -> dict[str, str]:
        return {"date_from": self.start.isoformat(), "date_to": self.end.isoformat()}

    def instant(self, moment: dt.datetime) -> str:
        """A UTC instant as a literal of the store's SQL (a pack's `sql` report is read in the store's dialect:
        ClickHouse does not compare its times with an ISO 8601 text)."""
        dialect = DIALECTS[self.service.store.dialect]
        return dialect.timestamp(moment).sql(dialect.name)

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """The period as UTC instants: from its first day's local midnight to the midnight after its last."""
        tz = ZoneInfo(self.project.timezone)
        return local_midnight(self.start, tz), local_midnight(self.end + dt.timedelta(days=1), tz)

    @property
    def missing(self) -> list[str]:
        return [name for name, count in self.volumes.items() if count == 0]

    def frame(self, pack: str) -> dict[str, Any]:
        """The fields every headline has except its card."""
        return {"pack": pack, "date_from": self.start.isoformat(), "date_to": self.end.isoformat(),
                "empty": bool(self.missing), "missing_events": self.missing}

    def run(self, query: dict[str, Any], days: tuple[dt.date, dt.date] | None = None) -> QueryResult[Any]:
        """A query of the period (its date range set to the headline's, or to `days`)."""
        dates = self.date_range if days is None else {"date_from": days[0].isoformat(),
                                                      "date_to": days[1].isoformat()}
        return self.service.run(self.project, {**query, "date_range": dates}, now=self.now, scope=self.scope)

    def trends(self, query: dict[str, Any], days: tuple[dt.date, dt.date] | None = None) -> TrendsResponse:
        result = self.run(query, days).result
        assert isinstance(result, TrendsResponse)
        return result


def ratio(numerator: float | None, denominator: float | None, digits: int = 6) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return round(float(numerator) / float(denominator), digits)


def by_key(result: TrendsResponse, names: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, float]]:
    """The aggregated value of each series (named by `names`, in the query's order) per breakdown values;
    rows without a value are left out."""
    out: dict[tuple[str, ...], dict[str, float]] = {}
    for series in result.series:
        key = tuple(str(v) for v in series.breakdown or [] if v is not None)
        if len(key) != len(series.breakdown or []) or "$other" in key:
            continue
        out.setdefault(key, {})[names[series.index]] = float(series.aggregated_value or 0)
    return out


def period_condition(run: PackRun, keyword: str = " WHERE") -> str:
    """The headline's period as a condition on `time` of the `events` view (for a pack's `sql` report), from
    local midnight of its first day to local midnight after its last, in the project's time zone."""
    tz = ZoneInfo(run.project.timezone)
    low, high = local_midnight(run.start, tz), local_midnight(run.end + dt.timedelta(days=1), tz)
    return f"{keyword} time >= {run.instant(low)} AND time < {run.instant(high)}"
