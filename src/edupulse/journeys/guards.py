"""Guard rails checked when a step claims a message: quiet hours (in the recipient's time zone: the message is
held until they end, not dropped), frequency caps per person across every journey of the project (per local
day and week), and a do-not-disturb tag. The project's settings apply to every journey; a journey's own caps
and quiet hours are stricter or add to them. All are off unless a project or journey sets them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edupulse.journeys.conditions import Membership
from edupulse.journeys.engine import Claim
from edupulse.journeys.model import QuietHours
from edupulse.journeys.person import Person
from edupulse.meta.journey_models import JourneyDelivery
from edupulse.meta.journeys import Journey

MESSAGES = ("webhook", "email", "dingtalk", "wecom")  # what reaches the person; tasks and properties do not
COUNTED = ("pending", "sending", "sent", "failed", "held")
SETTINGS_TTL = 5.0


def recipient_zone(person: Person, fallback: ZoneInfo) -> ZoneInfo:
    name = person.properties.get("timezone")
    if not name:
        return fallback
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def _time(text: str) -> dt.time:
    hour, minute = text.split(":")
    return dt.time(int(hour), int(minute))


def quiet_until(quiet: QuietHours, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """The end of the quiet hours `now` falls in (None: not quiet). Hours may wrap midnight (21:00 to 08:00)."""
    local = now.astimezone(zone)
    start, end = _time(quiet.start), _time(quiet.end)
    clock = local.time().replace(second=0, microsecond=0)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside or start == end:
        return None
    day = local.date() if clock < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, end, zone).astimezone(dt.UTC)


class Guard:
    """The `guard` of the engine: may hold or skip a claimed delivery (status and reason say why)."""

    def __init__(self, settings_of: Callable[[int], object], zone_of: Callable[[int], ZoneInfo],
                 membership: Membership) -> None:
        self.settings_of, self.zone_of, self.membership = settings_of, zone_of, membership
        self._settings: dict[int, tuple[float, object]] = {}

    def project(self, project_id: int) -> object:
        """The project's settings, read again after a few seconds (an admin may change them)."""
        stamp, found = self._settings.get(project_id, (0.0, None))
        if time.monotonic() - stamp > SETTINGS_TTL:
            found = self.settings_of(project_id)
            self._settings[project_id] = (time.monotonic(), found)
        return found

    def counts(self, journey: Journey) -> bool:
        """Whether frequency caps apply to this journey's messages (they count the deliveries claimed before)."""
        return any(getattr(caps, "per_day", None) is not None or getattr(caps, "per_week", None) is not None
                   for caps in (journey.spec.caps, getattr(self.project(journey.project_id), "caps", None)))

    def __call__(self, s: Session, claim: Claim, person: Person, journey: Journey, now: dt.datetime) -> None:
        if claim.action not in MESSAGES:
            return
        project = self.project(journey.project_id)
        zone = self.zone_of(journey.project_id)
        dnd = getattr(project, "do_not_disturb_tag", None)
        if dnd and self.membership.has_tag(journey.project_id, person, dnd, None):
            claim.status, claim.reason, claim.next_attempt_at = "skipped", "do not disturb", None
            return
        cap = self._capped(s, journey, person, getattr(project, "caps", None), zone, now)
        if cap:
            claim.status, claim.reason, claim.next_attempt_at = "skipped", cap, None
            return
        for quiet in (journey.spec.quiet_hours, getattr(project, "quiet_hours", None)):
            if quiet is None:
                continue
            until = quiet_until(quiet, now, recipient_zone(person, zone))
            if until is not None:
                claim.status, claim.reason, claim.next_attempt_at = "held", "quiet hours", until
                return

    @staticmethod
    def _capped(s: Session, journey: Journey, person: Person, project_caps: object, zone: ZoneInfo,
                now: dt.datetime) -> str:
        local = now.astimezone(zone)
        day = dt.datetime.combine(local.date(), dt.time(), zone)
        week = day - dt.timedelta(days=local.weekday())
        for caps in (journey.spec.caps, project_caps):
            if caps is None:
                continue
            for limit, since, name in ((getattr(caps, "per_day", None), day, "day"),
                                       (getattr(caps, "per_week", None), week, "week")):
                if limit is None:
                    continue
                count = s.scalar(select(func.count()).select_from(JourneyDelivery).where(
                    JourneyDelivery.project_id == journey.project_id, JourneyDelivery.person_key == person.key,
                    JourneyDelivery.action.in_(MESSAGES), JourneyDelivery.status.in_(COUNTED),
                    JourneyDelivery.created_at >= since.astimezone(dt.UTC)))
                if int(count or 0) >= limit:
                    return f"frequency cap: {limit} per {name}"
        return ""
