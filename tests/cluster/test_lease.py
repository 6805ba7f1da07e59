"""The scheduler's lease: of several processes, one runs the scheduled jobs; another takes over when the
holder stops renewing it (on SQLite too, where there is one process, the lease is simply always held)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from edupulse.cluster.lease import LeaseKeeper
from edupulse.conf import Settings
from edupulse.meta.db import MetadataStore
from edupulse.ops.scheduler import DailyJob, Scheduler

NOW = dt.datetime(2026, 9, 10, 4, tzinfo=dt.UTC)


def test_one_holder_at_a_time_and_a_takeover_after_expiry(meta: MetadataStore) -> None:
    a, b = LeaseKeeper(meta, "scheduler", "a", 60), LeaseKeeper(meta, "scheduler", "b", 60)
    assert a(NOW)
    assert not b(NOW)
    assert a(NOW + dt.timedelta(seconds=30))  # renewed
    assert not b(NOW + dt.timedelta(seconds=80))  # a renewed at +30: held until +90
    assert b(NOW + dt.timedelta(seconds=91))
    assert not a(NOW + dt.timedelta(seconds=92))
    assert b.holder_now() == "b"


def test_a_job_runs_once_across_two_schedulers(meta: MetadataStore) -> None:
    runs: list[str] = []

    def scheduler(name: str) -> Scheduler:
        job: Any = DailyJob("count", lambda now: runs.append(name), "03:00", "Asia/Shanghai")
        return Scheduler(meta, Settings(), jobs=[job], lease=LeaseKeeper(meta, "scheduler", name, 600))

    first, second = scheduler("a"), scheduler("b")
    for minute in range(3):
        first.tick(NOW + dt.timedelta(minutes=minute))
        second.tick(NOW + dt.timedelta(minutes=minute))
    assert runs == ["a"]
    later = NOW + dt.timedelta(days=1)  # a stopped renewing: b takes over the next day's run
    second.tick(later)
    assert runs == ["a", "b"]
