"""Scheduled journeys: a job of the built-in scheduler (ops/scheduler.py) that, at each check, lets the
audience of every running scheduled journey in once per occurrence of its schedule (once, daily or weekly,
at a local time of the project's time zone). The occurrence is the entry key, so a run repeated after a crash
enters nobody twice; the last occurrence run is remembered per journey in journey_cursors."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from edupulse.journeys.engine import Engine, Entrant
from edupulse.journeys.model import Audience, Schedule, ScheduleTrigger, Status
from edupulse.journeys.person import Person
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyCursor
from edupulse.meta.journeys import JourneyStore

log = logging.getLogger(__name__)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class AudienceSource(Protocol):
    def members(self, project_id: int, audience: Audience, now: dt.datetime) -> list[Person]: ...


def occurrence(schedule: Schedule, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """The latest moment at or before `now` the schedule was due (None: not yet)."""
    local = now.astimezone(zone)
    hour, minute = (int(x) for x in schedule.at.split(":"))

    def at(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), zone)

    if schedule.every == "once":
        assert schedule.date is not None
        moment = at(schedule.date)
        return moment if moment <= local else None
    day = local.date()
    if schedule.every == "week":
        assert schedule.weekday is not None
        day -= dt.timedelta(days=(day.weekday() - WEEKDAYS.index(schedule.weekday)) % 7)
        step = dt.timedelta(days=7)
    else:
        step = dt.timedelta(days=1)
    moment = at(day)
    return moment if moment <= local else at(day - step)


@dataclass
class ScheduleJob:
    """The scheduler job (`name`, `due_key`, `run`) that runs every scheduled journey's due occurrence."""

    meta: MetadataStore
    engine: Engine
    audience: AudienceSource
    name: str = "journey_schedules"

    def due_key(self, now: dt.datetime) -> str | None:
        return now.strftime("%Y-%m-%dT%H:%M")  # every minute: each journey keeps its own record of what it ran

    def run(self, now: dt.datetime) -> dict[int, int]:
        """Entrants per journey run now."""
        entered: dict[int, int] = {}
        for journey in JourneyStore(self.meta).all(status=Status.running):
            trigger = journey.spec.trigger
            if not isinstance(trigger, ScheduleTrigger):
                continue
            when = occurrence(trigger.schedule, now, self.engine.zone(journey.project_id))
            started = journey.started_at or now
            if when is None or when < started - dt.timedelta(minutes=1):
                continue  # occurrences before the journey started are not made up
            key = f"schedule:{when.isoformat()}"
            cursor = f"schedule:{journey.id}"
            if self._position(cursor) == key:
                continue
            persons = self.audience.members(journey.project_id, trigger.audience, now)
            entered[journey.id] = self.engine.enter(journey, [Entrant(p, key) for p in persons], now)
            self._remember(cursor, key, now)
            log.info("journey %s: %d persons entered for %s", journey.id, entered[journey.id], key)
        return entered

    def _position(self, name: str) -> str | None:
        with self.meta.session() as s:
            row = s.get(JourneyCursor, name)
            return row.position if row else None

    def _remember(self, name: str, position: str, now: dt.datetime) -> None:
        with self.meta.session() as s, s.begin():
            row = s.get(JourneyCursor, name)
            if row is None:
                s.add(JourneyCursor(name=name, position=position, updated_at=now))
            else:
                row.position, row.updated_at = position, now
