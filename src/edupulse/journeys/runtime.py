"""The journey parts of a running server, built from its settings: sealed secrets, channels, the engine, the
outbox with its senders, the worker thread and the scheduled-journey job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from edupulse.conf import Settings
from edupulse.journeys.audience import QueryAudience, TagSource
from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.engine import Engine
from edupulse.journeys.outbox import Outbox
from edupulse.journeys.schedule import ScheduleJob
from edupulse.journeys.senders import Senders
from edupulse.journeys.service import JourneyService
from edupulse.journeys.vault import SecretBox
from edupulse.journeys.worker import JourneyWorker
from edupulse.meta.db import MetadataStore
from edupulse.queries.service import QueryService


class JourneyRuntime:
    def __init__(self, meta: MetadataStore, queries: QueryService, settings: Settings, tags: TagSource | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        conf = settings.journeys
        self.meta = meta
        self.channels = ChannelStore(meta, SecretBox.open(conf.secret_key, settings.data_dir))
        self.audience = QueryAudience(meta, queries, tags)
        self.engine = Engine(meta, self.audience)
        self.senders = Senders(self.channels, conf)
        self.outbox = Outbox(meta, self.senders, conf)
        self.worker = JourneyWorker(self.engine, self.outbox, conf.tick_ms / 1000, clock)
        self.service = JourneyService(meta, self.channels, conf.allowed_hosts)
        self.running = False

    def schedule_job(self) -> ScheduleJob:
        return ScheduleJob(self.meta, self.engine, self.audience)

    def start(self) -> None:
        self.worker.start()
        self.running = True

    def close(self) -> None:
        if self.running:
            self.worker.stop()
            self.running = False
        self.outbox.close()
        self.senders.close()
