"""The journey parts of a running server, built from its settings: sealed secrets, channels, the engine, the
outbox with its senders, the worker thread and the scheduled-journey job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from edupulse.conf import Settings
from edupulse.ingest.pipeline import Ingestor, Loader
from edupulse.ingest.wal import WriteAheadLog
from edupulse.journeys.audience import QueryAudience, TagSource
from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.engine import Engine
from edupulse.journeys.events import EventFeed
from edupulse.journeys.guards import Guard
from edupulse.journeys.outbox import Outbox
from edupulse.journeys.person import Person
from edupulse.journeys.schedule import ScheduleJob
from edupulse.journeys.senders import Senders, SetProperties
from edupulse.journeys.service import JourneyService
from edupulse.journeys.tags import StoreTags
from edupulse.journeys.tasks import TaskQueue
from edupulse.journeys.vault import SecretBox
from edupulse.journeys.worker import JourneyWorker
from edupulse.meta.db import MetadataStore
from edupulse.queries.service import QueryService
from edupulse.store.base import EventStore
from edupulse.tags.run import TagService


def profile_writer(ingestor: Ingestor, meta: MetadataStore) -> SetProperties:
    """Person properties set by a journey go through ingestion like any profile_set (the delivery's key is the
    record's insert id, so a repeated try stores nothing twice)."""

    def write(project_id: int, ids: list[tuple[str, str]], properties: dict[str, Any], insert_id: str) -> str | None:
        project = next((p for p in meta.projects() if p.id == project_id), None)
        if project is None or not ids:
            return "the person or project is gone"
        id_type, value = Person.of(ids).key.split(":", 1)
        outcome = ingestor.ingest(project, [{"type": "profile_set", "distinct_id": value, "distinct_id_type": id_type,
                                             "properties": properties, "insert_id": insert_id}], source="journeys")
        return None if not outcome.rejected else str(outcome.results[0].get("reason", "refused"))

    return write


class JourneyRuntime:
    def __init__(self, meta: MetadataStore, queries: QueryService, settings: Settings, tags: TagSource | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC), wal: WriteAheadLog | None = None,
                 loader: Loader | None = None, ingestor: Ingestor | None = None, node: str = "",
                 store: EventStore | None = None) -> None:
        conf = settings.journeys
        self.meta = meta
        self.channels = ChannelStore(meta, SecretBox.open(conf.secret_key, settings.data_dir))
        self.audience = QueryAudience(meta, queries, tags)
        if tags is None and store is not None:  # the tags of the event store, read through the tag service
            tags = self.audience.tags = StoreTags(TagService(meta, store, queries), self.audience)
        self.engine = Engine(meta, self.audience)
        self.engine.guard = Guard(self.channels.settings, self.engine.zone, self.audience)
        self.tasks = TaskQueue(meta)
        self.senders = Senders(self.channels, conf, self.tasks,
                               profile_writer(ingestor, meta) if ingestor is not None else None, tags)
        self.outbox = Outbox(meta, self.senders, conf, self.engine.writes)
        self.worker = JourneyWorker(self.engine, self.outbox, conf.tick_ms / 1000, clock)
        self.service = JourneyService(meta, self.channels, conf.allowed_hosts,
                                      settable_tag=getattr(tags, "settable", None),
                                      tags_readable=tags is not None)
        self.feed: EventFeed | None = None
        if wal is not None:
            self.feed = EventFeed(wal, meta, self.engine, self.audience, self.worker.wake, clock, node,
                                  self.outbox.dispatch).open()
            if loader is not None:
                loader.readers.append(self.feed.held)
        self.running = False

    def changed(self) -> None:
        """A journey was started, paused or changed: the triggers read the running journeys again."""
        if self.feed is not None:
            self.feed.forget()
        self.worker.wake()

    def schedule_job(self) -> ScheduleJob:
        return ScheduleJob(self.meta, self.engine, self.audience)

    def start(self) -> None:
        self.worker.start()
        if self.feed is not None:
            self.feed.start()
        self.running = True

    def close(self) -> None:
        if self.running:
            if self.feed is not None:
                self.feed.stop()
            self.worker.stop()
            self.running = False
        self.outbox.close()
        self.senders.close()
