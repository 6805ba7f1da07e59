"""The built-in scheduler: daily jobs (the account review) in the server process. `tick(now)` runs what is
due, so tests drive it with a simulated clock; `start()` calls it from a background thread."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select

from edupulse.conf import Settings
from edupulse.meta.db import MetadataStore
from edupulse.meta.governance import OrgSetting
from edupulse.ops import lifecycle
from edupulse.ops.notify import Notifier

log = logging.getLogger(__name__)
STATE_KEY = "scheduler"


class Scheduler:
    def __init__(self, meta: MetadataStore, settings: Settings,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.meta = meta
        self.settings = settings
        self.clock = clock
        self.notifier = Notifier(meta, settings.smtp)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due_day(self, now: dt.datetime) -> dt.date | None:
        """The local day whose daily run is due at `now` and not done yet."""
        tz = ZoneInfo(self.settings.default_timezone)
        local = now.astimezone(tz)
        hour, minute = (int(x) for x in self.settings.scheduler.daily_at.split(":"))
        if (local.hour, local.minute) < (hour, minute):
            return None
        with self.meta.session() as s:
            row = s.scalar(select(OrgSetting).where(OrgSetting.key == STATE_KEY))
            last = (row.value or {}).get("account_review") if row else None
        return None if last == local.date().isoformat() else local.date()

    def tick(self, now: dt.datetime | None = None) -> list[lifecycle.Change] | None:
        """Run the account review if due; returns its changes (None when nothing was due)."""
        now = now or self.clock()
        day = self.due_day(now)
        if day is None:
            return None
        changes = lifecycle.run(self.meta, now, dry_run=False, actor="scheduler", notifier=self.notifier)
        with self.meta.session() as s, s.begin():
            row = s.get(OrgSetting, STATE_KEY)
            value = {**(row.value if row else {}), "account_review": day.isoformat()}
            if row is None:
                s.add(OrgSetting(key=STATE_KEY, value=value, updated_at=now))
            else:
                row.value, row.updated_at = value, now
        return changes

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="edupulse-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.scheduler.check_seconds):
            try:
                self.tick()
            except Exception:  # a failed run is retried at the next check; the server keeps serving
                log.exception("the daily account review failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

