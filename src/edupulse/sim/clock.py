"""Simulated time: day numbers of the period, local wall-clock times -> milliseconds since the epoch."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
# Classes run past the end of the period (their timetables are known in advance).
DAYS_AFTER = 400


class Clock:
    """Day 0 is the first day of the period, day `days` is the end date (not simulated).

    Every time is computed from the local midnight of its day in the project's time zone, so
    days, weeks and lesson hours are right in that zone (daylight saving included).
    """

    def __init__(self, end: dt.date, days: int, tz: ZoneInfo) -> None:
        self.tz = tz
        self.days = days
        self.start_date = end - dt.timedelta(days=days)
        self.end_date = end
        self._midnights = [self._midnight(self.start_date + dt.timedelta(days=d)) for d in range(days + DAYS_AFTER)]
        self.start_ms = self._midnights[0]
        self.end_ms = self._midnights[days]
        self._weekday0 = self.start_date.weekday()

    def _midnight(self, day: dt.date) -> int:
        return int(dt.datetime.combine(day, dt.time(0), tzinfo=self.tz).timestamp()) * 1000

    def midnight(self, day: int) -> int:
        return self._midnights[day]

    def at(self, day: int, hour: float) -> int:
        """Milliseconds of a local hour (fractions allowed) on a day of the period."""
        return self._midnights[day] + int(hour * HOUR)

    def day_of(self, ms: int) -> int:
        """The period day a time falls on (approximate by at most the zone's offset change)."""
        day = max(0, (ms - self.start_ms) // DAY)
        while day + 1 < len(self._midnights) and self._midnights[day + 1] <= ms:
            day += 1
        while day > 0 and self._midnights[day] > ms:
            day -= 1
        return int(day)

    def weekday(self, day: int) -> int:
        return (self._weekday0 + day) % 7

    def date(self, day: int) -> dt.date:
        return self.start_date + dt.timedelta(days=day)

    def iso(self, ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, self.tz).isoformat(timespec="seconds")
