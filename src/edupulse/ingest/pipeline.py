"""The write path: validate -> quarantine the bad -> log the good durably -> load into the store."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from edupulse.conf import IngestSettings
from edupulse.identity.graph import IdentityGraph
from edupulse.ingest.batch import BatchBuilder, Item
from edupulse.ingest.exposure import KnownExperiments
from edupulse.ingest.records import RecordError, from_micros
from edupulse.ingest.track_columns import TrackColumns
from edupulse.ingest.validate import IngestOutcome, Limits, PreparedBatch, ProjectRules, prepare_records
from edupulse.ingest.wal import Position, WriteAheadLog
from edupulse.meta.db import MetadataError, MetadataStore, ProjectInfo, QuarantineEntry, WarningEntry
from edupulse.meta.experiments import ExperimentStore
from edupulse.store.base import EventStore, WriteBatch

log = logging.getLogger(__name__)


EXPERIMENTS_TTL = 5.0  # seconds an API process trusts its copy of a project's experiments (others may change them)


class ProjectCatalog:
    """Cached project facts the hot path needs: keys, time zones, group-type slots, experiments."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        self._experiments: dict[int, tuple[float, KnownExperiments]] = {}
        self._by_write_key: dict[str, ProjectInfo] = {}
        self._slots: dict[int, dict[str, int]] = {}
        self._zones: dict[str, ZoneInfo] = {}
        self._lock = threading.Lock()

    def by_write_key(self, key: str) -> ProjectInfo | None:
        project = self._by_write_key.get(key)
        if project is None:
            project = self.meta.project_by_write_key(key)
            if project is not None:
                self._by_write_key[key] = project
        return project

    def zone(self, project: ProjectInfo) -> ZoneInfo:
        zone = self._zones.get(project.timezone)
        if zone is None:
            zone = self._zones[project.timezone] = ZoneInfo(project.timezone)
        return zone

    def group_slots(self, project_id: int) -> dict[str, int]:
        slots = self._slots.get(project_id)
        if slots is None:
            slots = self._slots[project_id] = self.meta.group_types(project_id)
        return slots

    def experiments(self, project_id: int) -> KnownExperiments:
        """Experiment keys of the project and their variants, for checking exposures."""
        cached = self._experiments.get(project_id)
        if cached is None or time.monotonic() - cached[0] > EXPERIMENTS_TTL:
            cached = (time.monotonic(), ExperimentStore(self.meta).known_variants(project_id))
            self._experiments[project_id] = cached
        return cached[1]

    def forget_experiments(self, project_id: int) -> None:
        """Read the project's experiments again (they changed in this process)."""
        self._experiments.pop(project_id, None)

    def ensure_group_type(self, project_id: int, name: str) -> int:
        slots = self.group_slots(project_id)
        if name in slots:
            return slots[name]
        with self._lock:
            slot = self.meta.add_group_type(project_id, name)
            self._slots[project_id] = {**self.group_slots(project_id), name: slot}
            return slot


class Ingestor:
    """Validates records of one request and prepares the durable log frame."""

    def __init__(
        self, catalog: ProjectCatalog, store: EventStore, wal: WriteAheadLog, settings: IngestSettings
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.wal = wal
        self.settings = settings

    def rules(self, project: ProjectInfo) -> ProjectRules:
        """The project's validation rules as they are now (typed properties, known group types, limits)."""
        limits = self.settings
        return ProjectRules(
            project_id=project.id, timezone=project.timezone, typed_properties=self.store.typed_properties(),
            group_types=frozenset(self.catalog.group_slots(project.id)),
            experiments=self.catalog.experiments(project.id),
            limits=Limits(limits.max_record_bytes, limits.max_batch_records, limits.max_future_seconds,
                          limits.max_past_days),
        )

    def prepare(
        self,
        project: ProjectInfo,
        records: Sequence[Any],
        source: str = "native",
        request_id: str | None = None,
        body_bytes: int | None = None,
    ) -> PreparedBatch:
        """Validate records in this process; new group types get their slots here."""

        def group_type(name: str) -> None:
            try:
                self.catalog.ensure_group_type(project.id, name)
            except MetadataError as exc:
                raise RecordError(f"groups.{name}", str(exc)) from None

        return prepare_records(self.rules(project), records, group_type, source, request_id, body_bytes)

    def quarantine_body(self, project: ProjectInfo, source: str, reason: str, body: bytes) -> None:
        """Keep an unparseable request body where an admin can see it."""
        now = dt.datetime.now(dt.UTC)
        text = body[:65536].decode("utf-8", errors="replace")
        self.catalog.meta.add_quarantine(
            [
                QuarantineEntry(
                    project_id=project.id,
                    received_at=now,
                    source=source,
                    location="request body",
                    reason=reason,
                    record=text,
                    dedupe_key=f"body:{uuid.uuid4().hex}",
                )
            ]
        )

    def quarantine(self, project: ProjectInfo, prepared: PreparedBatch, source: str = "native") -> None:
        """Keep the refused records of a prepared batch where an admin looks (once per request and record)."""
        if prepared.rejections:
            self.catalog.meta.add_quarantine(
                QuarantineEntry(project_id=project.id, received_at=prepared.received_at, source=source,
                                location=r.location, reason=r.reason, record=r.record, dedupe_key=r.dedupe_key)
                for r in prepared.rejections
            )
            prepared.rejections = []

    def commit(self, project: ProjectInfo, prepared: PreparedBatch, source: str = "native") -> Future[Position] | None:
        """Store refused records, then queue the good ones; the future resolves when they are durable."""
        self.quarantine(project, prepared, source)
        if prepared.payload is None:
            return None
        return self.wal.submit(prepared.payload)

    def ingest(self, project: ProjectInfo, records: Sequence[Any], source: str = "native") -> IngestOutcome:
        """Validate and durably log records, blocking until they are on disk."""
        prepared = self.prepare(project, records, source)
        future = self.commit(project, prepared, source)
        if future is not None:
            future.result()
        return prepared.outcome


class Loader:
    """Moves durable log frames into the event store, exactly once, in a background thread."""

    SOURCE = "wal"

    def __init__(
        self,
        store: EventStore,
        wal: WriteAheadLog,
        graph: IdentityGraph,
        builder: BatchBuilder,
        catalog: ProjectCatalog,
        settings: IngestSettings,
        source: str | None = None,
    ) -> None:
        self.store = store
        self.wal = wal
        self.graph = graph
        self.builder = builder
        self.catalog = catalog
        self.settings = settings
        self.source = source or self.SOURCE
        # several processes sharing the store: identity decisions under their lock (cluster/coordinator.py)
        self.coordinator: Any = None
        self.applied = Position.parse(store.checkpoint(self.source))
        self.applied_changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded_records = 0
        self.last_error: str | None = None
        # readers of the log other than this loader (journey event triggers): segments they still need are kept
        self.readers: list[Callable[[], Position]] = []

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.wal.durable_changed:
            self.wal.durable_changed.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        interval = self.settings.load_interval_ms / 1000
        while not self._stop.is_set():
            durable = self.wal.durable
            try:
                moved = self.step()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("loading from the log failed; will retry")
                self._recover()
                self._stop.wait(1.0)
                continue
            if not moved:
                # Nothing to load: wait for the log to grow. Compared with the durable mark seen before the step, not
                # with `applied`: a fresh log is durable at the start of its first segment while nothing is applied,
                # and the loader would otherwise spin (a core busy) until the first frame arrives.
                with self.wal.durable_changed:
                    if self.wal.durable == durable and not self._stop.is_set():
                        self.wal.durable_changed.wait(interval)

    def _recover(self) -> None:
        """After a failed write the in-memory graph may be ahead of the store: rebuild it."""
        if self.coordinator is not None:
            self.coordinator.reload()  # from the identity log, where decisions are committed
            return
        fresh = IdentityGraph()
        fresh.load(self.store.identity_rows())
        max_person, max_seq = self.store.max_ids()
        fresh.next_person_id = max(fresh.next_person_id, max_person + 1)
        self.graph.__dict__.update(fresh.__dict__)
        self.builder.seq = max_seq

    def step(self) -> int:
        """Load the next batch of durable frames; return how many records were moved."""
        items: list[Item] = []
        columns: list[TrackColumns] = []
        count = 0
        last: Position | None = None
        for position, payload in self.wal.read(self.applied):
            frame = orjson.loads(payload)
            project_id, received_us = frame["p"], frame["r"]
            items.extend((project_id, received_us, rec) for rec in frame["recs"])
            count += len(frame["recs"])
            tracks = frame.get("tc")
            if tracks:
                columns.append((project_id, received_us, tracks))
                count += len(tracks["e"])
            last = position
            if count >= self.settings.load_batch_records:
                break
        if last is None:
            return 0
        if self.coordinator is None:
            built = self.builder.build(items, checkpoint=(self.source, str(last)), columns=columns)
            self.store.write(built.batch)
        else:
            projects = {p for p, _, _ in items} | {c[0] for c in columns}
            with self.coordinator.hold(projects):
                built = self.builder.build(items, checkpoint=(self.source, str(last)), columns=columns)
                self.coordinator.record(built.batch, str(last))
                self._write_logged(built.batch)
        self.builder.stored(built, int(time.time() * 1_000_000))
        if built.warnings:
            self.catalog.meta.add_warnings(
                WarningEntry(
                    project_id=p,
                    kind=w.kind,
                    message=w.message,
                    detail=w.detail,
                    dedupe_key=f"{last}:{i}",
                    event_time=from_micros(t),
                )
                for i, (p, t, w) in enumerate(built.warnings)
            )
        with self.applied_changed:
            self.applied = last
            self.loaded_records += built.records
            self.applied_changed.notify_all()
        segments = self.wal.segments()
        # A log segment is deleted only once the store has checkpointed what came from it and every other
        # reader has read it.
        keep = min([last, *(reader() for reader in self.readers)])
        if segments and segments[0] < keep.segment and self.store.sync():
            self.wal.release(keep)
        return count

    def _write_logged(self, batch: WriteBatch) -> None:
        """Write a batch whose identity decisions are logged: retried until it is stored (the project locks
        are held meanwhile, so no other process loads these projects past a batch missing in the store)."""
        delay = 0.5
        while True:
            try:
                self.store.write(batch)
                return
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self._stop.is_set():
                    raise  # the next start writes its logged identities again, then loads it from the log
                log.exception("writing a batch to the store failed; trying again")
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def catch_up(self) -> None:
        """Load everything durable now, in the calling thread (used on start and by batch tools)."""
        while self.step():
            pass

    def wait_for(self, position: Position, timeout: float = 60.0) -> bool:
        """Block until the loader has applied `position` (for tools and tests that read what they wrote)."""
        deadline = time.monotonic() + timeout
        with self.applied_changed:
            while self.applied < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.applied_changed.wait(remaining)
        return True
