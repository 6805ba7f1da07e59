"""The built-in scheduler: periodic jobs (the daily account review, the hourly alerts; features add their own)
in the server process. A job says which run is due at a moment (a key such as the local day); the scheduler runs it when
that key differs from the one it ran last, and remembers the key in the metadata database, so a restart
does not run a job twice. `tick(now)` runs what is due, so tests drive it with a simulated clock; `start()`
calls it from a background thread."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select

from edupulse.conf import Settings
from edupulse.meta.db import MetadataStore
from edupulse.meta.governance import OrgSetting
from edupulse.ops import lifecycle
from edupulse.ops.alerts import AlertJob, ChannelSend
from edupulse.ops.notify import Notifier
from edupulse.queries.service import QueryService
from edupulse.store.base import EventStore
from edupulse.tags.run import TagService

if TYPE_CHECKING:
    from edupulse.runtime import Platform

log = logging.getLogger(__name__)
STATE_KEY = "scheduler"


class Job(Protocol):
    """A periodic job: `due_key(now)` names the run due at `now` (None: nothing is due yet)."""

    name: str

    def due_key(self, now: dt.datetime) -> str | None: ...

    def run(self, now: dt.datetime) -> Any: ...


@dataclass
class DailyJob:
    """Runs `action(now)` once per local day of `timezone`, at or after `at` (HH:MM)."""

    name: str
    action: Callable[[dt.datetime], Any]
    at: str = "03:00"
    timezone: str = "Asia/Shanghai"

    def due_key(self, now: dt.datetime) -> str | None:
        local = now.astimezone(ZoneInfo(self.timezone))
        hour, minute = (int(x) for x in self.at.split(":"))
        return None if (local.hour, local.minute) < (hour, minute) else local.date().isoformat()

    def run(self, now: dt.datetime) -> Any:
        return self.action(now)


def account_review_job(meta: MetadataStore, settings: Settings, notifier: Notifier) -> DailyJob:
    """The daily account review of the lifecycle policies (seed 001's clean-up rules)."""

    def review(now: dt.datetime) -> list[lifecycle.Change]:
        return lifecycle.run(meta, now, dry_run=False, actor="scheduler", notifier=notifier)

    return DailyJob("account_review", review, settings.scheduler.daily_at, settings.default_timezone)


def tags_job(meta: MetadataStore, store: EventStore, queries: Callable[[], QueryService],
             settings: Settings) -> DailyJob:
    """The daily computation of every project's tags (edupulse.tags): each tag's run is recorded, and a tag
    that fails keeps its values in force while the others still run. Then the tag history older than
    `tags.history_days` is compacted (the values in force on the first kept day stay)."""

    def compute(now: dt.datetime) -> dict[str, list[str]]:
        service = TagService(meta, store, queries())
        done: dict[str, list[str]] = {}
        for project in meta.projects():
            runs = service.run_all(project, now)
            done[project.name] = [f"{r.tag_id}:{r.status}" for r in runs]
            try:
                removed = service.compact(project, settings.tags.history_days, now)
            except Exception:  # the history stays as it was; tried again tomorrow
                log.exception("compacting the tag history of project %s failed", project.name)
            else:
                if removed:
                    log.info("tag history of project %s: %d changes older than %d days forgotten", project.name,
                             removed, settings.tags.history_days)
        return done

    return DailyJob("tags", compute, settings.scheduler.daily_at, settings.default_timezone)


def server_jobs(meta: MetadataStore, settings: Settings, notifier: Notifier,
                platform: Platform | None = None, alert_send: ChannelSend | None = None) -> list[Job]:
    """The jobs of a server: the daily account review and, with the platform (its event store), the hourly
    check of the real-time board's alerts (ops/alerts.py) and the daily computation of tags."""
    jobs: list[Job] = [account_review_job(meta, settings, notifier)]
    if platform is not None:
        jobs.append(AlertJob(platform, alert_send))
        jobs.append(tags_job(meta, platform.store, platform.query_service, settings))
    return jobs


class Scheduler:
    def __init__(self, meta: MetadataStore, settings: Settings,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 jobs: Sequence[Job] | None = None, platform: Platform | None = None,
                 lease: Callable[[dt.datetime], bool] | None = None, alert_send: ChannelSend | None = None) -> None:
        self.meta = meta
        self.lease = lease  # several API processes: only the one holding the lease runs jobs
        self.settings = settings
        self.clock = clock
        self.notifier = Notifier(meta, settings.smtp)
        self.jobs: list[Job] = list(jobs) if jobs is not None else server_jobs(meta, settings, self.notifier, platform,
                                                                                      alert_send)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _last_keys(self) -> dict[str, Any]:
        with self.meta.session() as s:
            row = s.scalar(select(OrgSetting).where(OrgSetting.key == STATE_KEY))
            return dict(row.value or {}) if row else {}

    def _remember(self, name: str, key: str, now: dt.datetime) -> None:
        with self.meta.session() as s, s.begin():
            row = s.get(OrgSetting, STATE_KEY)
            value = {**(row.value if row else {}), name: key}
            if row is None:
                s.add(OrgSetting(key=STATE_KEY, value=value, updated_at=now))
            else:
                row.value, row.updated_at = value, now

    def tick(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """Run every job that is due; returns each run job's result by job name (empty: nothing was due).
        A job that fails is logged and tried again at the next tick; the others still run."""
        now = now or self.clock()
        if self.lease is not None and not self.lease(now):
            return {}
        last = self._last_keys()
        results: dict[str, Any] = {}
        for job in self.jobs:
            key = job.due_key(now)
            if key is None or last.get(job.name) == key:
                continue
            try:
                results[job.name] = job.run(now)
            except Exception:  # retried at the next tick; the server and the other jobs keep going
                log.exception("scheduled job %s failed", job.name)
                continue
            self._remember(job.name, key, now)
        return results

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="edupulse-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.scheduler.check_seconds):
            try:
                self.tick()
            except Exception:  # e.g. the metadata database is unreachable: try again at the next check
                log.exception("the scheduler could not check its jobs")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
