"""The running platform: settings -> metadata, event store, log, identity graph, loader."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import socket
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edupulse.conf import Settings
from edupulse.identity.graph import IdentityGraph
from edupulse.ingest.batch import BatchBuilder
from edupulse.ingest.pipeline import Ingestor, Loader, ProjectCatalog
from edupulse.ingest.recent_ids import RecentIds
from edupulse.ingest.records import to_micros
from edupulse.ingest.wal import Position, WriteAheadLog
from edupulse.meta.analysis import AnalysisMetadata
from edupulse.meta.db import MetadataStore
from edupulse.queries.service import QueryService, ResultCache
from edupulse.store.base import EventStore, QueryControl
from edupulse.store.duckdb import DuckDBStore

if TYPE_CHECKING:
    from edupulse.cluster.coordinator import Coordinator

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """Ingestion allocates millions of short-lived dicts; the default collector thresholds make the cyclic
    collector run constantly and cost about a third of the write path. Collect young objects less often."""
    gen0, _, _ = gc.get_threshold()
    if gen0 < 100_000:
        gc.set_threshold(100_000, 50, 1000)


def make_store(settings: Settings) -> EventStore:
    """The event store the settings name: a ClickHouse server (events_url) or DuckDB in the data directory."""
    if settings.events_url:
        from edupulse.store.clickhouse_http import ClickHouseServerStore

        ch = settings.clickhouse
        return ClickHouseServerStore(settings.events_url, ch.cluster, ch.timeout_seconds, ch.verify_tls)
    return DuckDBStore(settings.data_dir)


class Platform:
    """Owns every long-lived part; `open()` replays the log so the store is current before use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.meta = MetadataStore(settings.resolved_metadata_url,
                                  busy_timeout_seconds=settings.metadata_busy_timeout_seconds,
                                  pool_size=settings.metadata_pool_size)
        self.store = make_store(settings)
        self.wal = WriteAheadLog(settings.data_dir / "wal", settings.ingest.wal_segment_bytes)
        self.graph = IdentityGraph()
        self.catalog = ProjectCatalog(self.meta)
        self.ingestor = Ingestor(self.catalog, self.store, self.wal, settings.ingest)
        self.builder: BatchBuilder | None = None
        self.loader: Loader | None = None
        self.query_cache = ResultCache(settings.query.cache_entries)
        self.running_queries: dict[str, QueryControl] = {}

    def query_service(self) -> QueryService:
        """Where analyses run: this platform's store, metadata, result cache and limits."""
        return QueryService(self.store, AnalysisMetadata(self.meta), self.query_cache, self.settings.query)

    @property
    def shared(self) -> bool:
        """Several API processes may share this platform's data: a ClickHouse server and PostgreSQL."""
        return bool(self.settings.events_url) and self.meta.engine.dialect.name == "postgresql"

    def node_name(self) -> str:
        """This process's name among several: the setting, else the host name and the data directory's id."""
        if self.settings.node.name:
            return self.settings.node.name
        marker = self.settings.data_dir / "node-id"
        if not marker.exists():
            marker.write_text(uuid.uuid4().hex[:12])
        return f"{socket.gethostname()}-{marker.read_text().strip()}"

    def scheduler_lease(self) -> Callable[[dt.datetime], bool] | None:
        """With several processes, the lease deciding which one runs the scheduled jobs."""
        if not self.shared:
            return None
        from edupulse.cluster.lease import LeaseKeeper

        return LeaseKeeper(self.meta, "scheduler", self.node_name(), self.settings.node.scheduler_lease_seconds)

    def open(self, background_loader: bool = True) -> Platform:
        tune_gc()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.meta.migrate()
        self.store.open()
        coordinator = None
        source = Loader.SOURCE
        if self.shared:
            coordinator = self._coordinate(source := f"wal:{self.node_name()}")
            max_seq = 0
        else:
            self.graph.load(self.store.identity_rows())
            max_person, max_seq = self.store.max_ids()
            self.graph.next_person_id = max(self.graph.next_person_id, max_person + 1)
        recent = RecentIds(self.settings.ingest.retry_window_days * 86_400_000_000)
        if recent.window_us:
            now_us = to_micros(dt.datetime.now(dt.UTC))
            recent.load(self.store.recent_insert_ids(now_us - recent.window_us), now_us)
        self.builder = BatchBuilder(self.store, self.graph, self.catalog.group_slots, next_seq=max_seq, recent=recent)
        if coordinator is not None:
            self.builder.allocate_seq = coordinator.seqs.take
        self.wal.open()
        self.loader = Loader(self.store, self.wal, self.graph, self.builder, self.catalog, self.settings.ingest,
                             source)
        self.loader.coordinator = coordinator
        self.loader.catch_up()
        if background_loader:
            self.loader.start()
        return self

    def _coordinate(self, source: str) -> Coordinator:
        """Share identities, counters and the data version through the metadata database; write what this
        process logged but had not stored when it last stopped."""
        from edupulse.cluster.coordinator import Coordinator, DataVersion

        coordinator = Coordinator(self.meta, self.store, self.graph, source, self.settings.node.lock_timeout_seconds)
        coordinator.start()
        checkpoint = Position.parse(self.store.checkpoint(source))
        coordinator.repair(str(checkpoint), lambda position: Position.parse(position) > checkpoint)
        shared_store: Any = self.store
        shared_store.shared = DataVersion(coordinator.counters)
        return coordinator

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until everything durable in the log is in the store."""
        assert self.loader is not None
        if not self.loader.wait_for(self.wal.durable, timeout):
            raise TimeoutError("the loader did not catch up in time")

    def close(self) -> None:
        if self.loader is not None:
            self.loader.stop()
            self.loader.catch_up()
        self.wal.close()
        self.store.close()
        self.meta.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
