"""Scheduled journeys: a job of the built-in scheduler (ops/scheduler.py) that, at each check, lets the
audience of every running scheduled journey in once per occurrence of its schedule (once, daily or weekly,
at a local time of the project's time zone). The occurrence is the entry key, so a run repeated after a crash
enters nobody twice; the last occurrence run is remembered per journey in journey_cursors.

The same job checks the journeys triggered by entering or leaving a segment or a tag value: it compares who is
in now with who was in at the last check (journey_members); the first check only takes note of who is in."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from edupulse.journeys.engine import Engine, Entrant
from edupulse.journeys.model import Audience, Schedule, ScheduleTrigger, SegmentTrigger, Status, TagTrigger
from edupulse.journeys.person import Person
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyCursor, JourneyMember
from edupulse.meta.journeys import Journey, JourneyStore

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
            if isinstance(trigger, SegmentTrigger | TagTrigger):
                entered[journey.id] = self._transitions(journey, trigger, now)
                continue
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

    def _transitions(self, journey: Journey, trigger: SegmentTrigger | TagTrigger, now: dt.datetime) -> int:
        """Let in who entered (or left) the segment or tag value since the last check; returns how many."""
        if isinstance(trigger, SegmentTrigger):
            leaving = trigger.segment_left is not None
            segment = trigger.segment_left if leaving else trigger.segment_entered
            audience = Audience(segment=segment)
        else:
            leaving = trigger.tag_left is not None
            ref = trigger.tag_left or trigger.tag_entered
            assert ref is not None
            audience = Audience(tag=ref.tag, value=ref.value)
        current = {p.key: p for p in self.audience.members(journey.project_id, audience, now)}
        cursor = f"members:{journey.id}"
        first = self._position(cursor) is None
        with self.meta.session() as s, s.begin():
            before = {m.person_key: m.person for m in s.scalars(
                select(JourneyMember).where(JourneyMember.journey_id == journey.id))}
            came = [p for key, p in current.items() if key not in before]
            went = [Person.from_json(key, person) for key, person in before.items() if key not in current]
            for p in came:
                s.add(JourneyMember(journey_id=journey.id, person_key=p.key, person=p.to_json(), since=now))
            if went:
                s.execute(delete(JourneyMember).where(JourneyMember.journey_id == journey.id,
                                                      JourneyMember.person_key.in_([p.key for p in went])))
        self._remember(cursor, now.isoformat(), now)
        if first:
            return 0
        movers = went if leaving else came
        return self.engine.enter(journey, [Entrant(p, f"{'left' if leaving else 'entered'}:{now.isoformat()}")
                                           for p in movers], now)

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
