"""A pack as data: the parts it installs and the facts the Scenarios page shows about it. Nothing here runs a
query or touches a database; the installer (install.py) and the headlines (one module per pack) do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edupulse.packs.headline import Headline, PackRun


class Stage(StrEnum):
    """The four stages of seed 002, and what lies beyond the ten problems (B2B health, school accounts)."""

    acquisition = "acquisition"
    conversion = "conversion"
    learning = "learning"
    repurchase = "repurchase"
    beyond = "beyond"


@dataclass(frozen=True)
class MetricPart:
    """A catalogue metric the pack needs: created when the project has none of that name, never overwritten."""

    name: str
    definition: dict[str, Any]


@dataclass(frozen=True)
class ReportPart:
    """A saved report. `name` is stored as the report's name (both languages, as the catalogue's titles are);
    with `per_channel`, one series per channel of the project's leads is added for each metric named there
    (the channels are read from the data when the pack is installed or upgraded; a query holds at most
    MAX_SERIES series)."""

    key: str
    name: str
    query: dict[str, Any]
    view: dict[str, Any] | None = None
    width: int = 6
    per_channel: str | None = None


@dataclass(frozen=True)
class DashboardPart:
    key: str
    name: str
    reports: tuple[str, ...]
    refresh_seconds: int | None = 60
    date_from: str | None = "-29d"  # the last 30 days with today, as the headlines and the "Last 30 days" preset
    date_to: str | None = None


@dataclass(frozen=True)
class SegmentPart:
    key: str
    name: str
    definition: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class AlertPart:
    """An alert (edupulse.ops.alerts.AlertSpec as JSON), installed without a webhook unless it names one: its
    state changes are recorded and shown until a user adds where to deliver them."""

    key: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class JourneyPart:
    """A journey (edupulse.journeys JSON), installed as a draft through the journeys' service: a user reads it,
    changes it if they like and switches it on (start). `spec` is checked against the project when installed."""

    key: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class TagPart:
    """A tag of the pack's own (a tag definition as POST /api/v1/tags takes it), created when the project has
    none of that name; computed when the pack is installed, then by the scheduler."""

    key: str
    definition: dict[str, Any]


MAX_SERIES = 10  # of a trends query
HeadlineFn = Callable[["PackRun"], "Headline"]


@dataclass(frozen=True)
class Pack:
    """One scenario pack. `needs` are the events without which it has nothing to show (its empty state names
    them); `version` goes up whenever its parts change, so installed copies are upgraded."""

    name: str
    version: int
    stage: Stage
    problem: str  # "1".."10" (seed 002), or "b2b", "schools"
    needs: tuple[str, ...]
    headline: HeadlineFn
    metrics: tuple[MetricPart, ...] = ()
    reports: tuple[ReportPart, ...] = ()
    dashboards: tuple[DashboardPart, ...] = ()
    segments: tuple[SegmentPart, ...] = ()
    alerts: tuple[AlertPart, ...] = ()
    journeys: tuple[JourneyPart, ...] = ()
    tags: tuple[str, ...] = ()  # built-in tags the pack reads: computed when it is installed
    own_tags: tuple[TagPart, ...] = ()  # computed after `tags` (they may read them)
    uses_spend: bool = False
    templates: dict[str, str] = field(default_factory=dict)  # file name -> content (import guides)

    @property
    def main_dashboard(self) -> str | None:
        return self.dashboards[0].key if self.dashboards else None
