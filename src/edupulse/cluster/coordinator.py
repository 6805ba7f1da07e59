"""One-ID across API processes: identity decisions are made under a per-project lock in PostgreSQL and kept
in the identity log there.

Each process keeps its own write-ahead log and loads its own batches. To load a batch, its loader:
1. takes the PostgreSQL advisory lock of every project in the batch (sorted, so two loaders never wait on
   each other in a circle; other projects load in parallel);
2. applies to its in-memory identity graph the log entries other processes added for those projects since
   it last looked (links, merges);
3. builds the batch: drops records whose event id is stored (the store holds everything loaded under the
   lock before), resolves identities, allocates person ids and sequence numbers from shared counters (in
   blocks, so a lower person id is older only among persons one process created);
4. appends the batch's new links and merges to the log and commits;
5. writes the batch to ClickHouse, retrying while it fails, still holding the locks; then releases them.

A process that dies between 4 and 5 has logged decisions whose rows may be missing in ClickHouse: when it
starts again it writes the identities and merges of its logged batches past its checkpoint with the same
deduplication tokens as the first attempt (ClickHouse drops what it holds already), then loads its log from
the checkpoint as usual.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import func, insert, select, text, update

from edupulse.identity.graph import IdentityGraph
from edupulse.meta.cluster import IdentityLogEntry, SharedCounter
from edupulse.meta.db import MetadataStore, wait_for_locks
from edupulse.store.base import EventStore, WriteBatch

log = logging.getLogger(__name__)
LOCK_SPACE = 20931  # first key of EduPulse's advisory locks; the second is the project id
SEED_LOCK = -1
BLOCK = 1000


class LockTimeout(RuntimeError):
    """Another process held a project's lock longer than the configured wait."""


class Counters:
    """Named counters in the metadata database: blocks of numbers for one process, or bumps."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def ensure(self, name: str, at_least: int = 0) -> None:
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(SharedCounter.value).where(SharedCounter.name == name)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(SharedCounter).values(name=name, value=at_least))
                    return
                except Exception:  # another process inserted it meanwhile
                    pass
            conn.execute(update(SharedCounter).where(SharedCounter.name == name, SharedCounter.value < at_least)
                         .values(value=at_least))

    def take(self, name: str, count: int) -> int:
        """Reserve `count` numbers; returns the last one (the block is last - count + 1 .. last)."""
        with self.meta.engine.begin() as conn:
            value = conn.execute(update(SharedCounter).where(SharedCounter.name == name)
                                 .values(value=SharedCounter.value + count).returning(SharedCounter.value)).scalar()
        if value is None:
            self.ensure(name)
            return self.take(name, count)
        return int(value)

    def current(self, name: str) -> int:
        with self.meta.engine.connect() as conn:
            value = conn.execute(select(SharedCounter.value).where(SharedCounter.name == name)).scalar()
        return int(value or 0)


class Pool:
    """Numbers handed out one by one from blocks reserved in a shared counter."""

    def __init__(self, counters: Counters, name: str, block: int = BLOCK) -> None:
        self.counters, self.name, self.block = counters, name, block
        self._next = self._end = 0
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            if self._next >= self._end:
                last = self.counters.take(self.name, self.block)
                self._next, self._end = last - self.block + 1, last + 1
            value = self._next
            self._next += 1
            return value


class DataVersion:
    """The data version every process sees: bumped on each write to the shared store."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def bump(self) -> int:
        return self.counters.take("data_version", 1)

    def current(self) -> int:
        return self.counters.current("data_version")


class Coordinator:
    """The loader's side of One-ID across processes (see the module's description)."""

    def __init__(self, meta: MetadataStore, store: EventStore, graph: IdentityGraph, source: str,
                 lock_timeout: float = 60.0) -> None:
        self.meta, self.store, self.graph, self.source = meta, store, graph, source
        self.lock_timeout = lock_timeout
        self.counters = Counters(meta)
        self.persons = Pool(self.counters, "person_id")
        self.seqs = Pool(self.counters, "seq")
        self.seen: dict[int, int] = {}  # project -> last identity log id applied to the graph
        self._conn: Any = None

    # start ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Seed the log from the store if it has identities the log lacks (a store filled before it was
        shared), make the counters pass what the store holds, then load the graph from the log."""
        max_person, max_seq = self.store.max_ids()
        self.counters.ensure("person_id", max_person)
        self.counters.ensure("seq", max_seq)
        self.counters.ensure("data_version", 0)
        with self.meta.engine.connect() as conn:
            empty = conn.execute(select(IdentityLogEntry.id).limit(1)).first() is None
        if empty:
            self._seed()
        self.graph.allocate = self.persons.take
        self.reload()

    def _seed(self) -> None:
        with self.meta.engine.begin() as conn:
            if self.meta.engine.dialect.name == "postgresql":
                wait_for_locks(conn)
                conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": LOCK_SPACE, "b": SEED_LOCK})
            if conn.execute(select(IdentityLogEntry.id).limit(1)).first() is not None:
                return  # another process seeded it meanwhile
            rows = [{"project_id": p, "kind": "link", "id_type": t, "id_value": v, "person_id": person,
                     "loser_id": None, "node": "seed", "position": ""}
                    for p, t, v, person in self.store.identity_rows()]
            for start in range(0, len(rows), 10_000):
                conn.execute(insert(IdentityLogEntry), rows[start:start + 10_000])

    def reload(self) -> None:
        """Rebuild the graph from the whole log (at start, and after a batch failed before it was logged)."""
        fresh = IdentityGraph(allocate=self.persons.take)
        self.graph.projects, self.graph.changes, self.graph.allocate = fresh.projects, fresh.changes, fresh.allocate
        self.seen = {}
        self._apply(self._entries(None, 0))

    # one batch ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self, project_ids: Iterable[int]) -> Iterator[None]:
        """Lock these projects, bring the graph up to date for them; release on leaving."""
        projects = sorted(set(project_ids))
        conn = self.meta.engine.connect()
        locked: list[int] = []
        try:
            for project in projects:
                self._lock(conn, project)
                locked.append(project)
            conn.commit()  # end the implicit transaction: session locks outlive it
            for project in projects:
                self._apply(self._entries(project, self.seen.get(project, 0)))
            self._conn = conn
            yield
        finally:
            self._conn = None
            for project in reversed(locked):
                with contextlib.suppress(Exception):
                    conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": LOCK_SPACE, "b": project})
            with contextlib.suppress(Exception):
                conn.commit()
            conn.close()

    def _lock(self, conn: Any, project: int) -> None:
        deadline = time.monotonic() + self.lock_timeout
        while not conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"),
                               {"a": LOCK_SPACE, "b": project}).scalar():
            if time.monotonic() > deadline:
                raise LockTimeout(f"project {project}: another process held its identity lock for more than "
                                  f"{self.lock_timeout:g} s")
            time.sleep(0.01)

    def record(self, batch: WriteBatch, position: str, node: str | None = None) -> None:
        """Append the batch's links and merges to the log (committed before the batch is written). `node`
        names another writer than this process's loader (an import, whose batches `repair` leaves alone)."""
        node = node or self.source
        rows = [{"project_id": p, "kind": "link", "id_type": t, "id_value": v, "person_id": person,
                 "loser_id": None, "node": node, "position": position} for p, t, v, person in batch.identities]
        rows += [{"project_id": p, "kind": "merge", "id_type": None, "id_value": None, "person_id": survivor,
                  "loser_id": loser, "node": node, "position": position} for p, loser, survivor in batch.merges]
        if not rows:
            return
        # links first, then merges, as write() applies them; order within each kind kept (ids ascend in
        # the order of the rows: one multi-row insert)
        with self.meta.engine.begin() as conn:
            conn.execute(insert(IdentityLogEntry), rows)
            tops = conn.execute(select(IdentityLogEntry.project_id, func.max(IdentityLogEntry.id))
                                .where(IdentityLogEntry.node == node, IdentityLogEntry.position == position)
                                .group_by(IdentityLogEntry.project_id))
            for project, top in tops:
                self.seen[project] = max(self.seen.get(project, 0), int(top))

    # applying the log -----------------------------------------------------------------------------

    def _entries(self, project: int | None, after: int) -> list[Any]:
        query = select(IdentityLogEntry.id, IdentityLogEntry.project_id, IdentityLogEntry.kind,
                       IdentityLogEntry.id_type, IdentityLogEntry.id_value, IdentityLogEntry.person_id,
                       IdentityLogEntry.loser_id).where(IdentityLogEntry.id > after).order_by(IdentityLogEntry.id)
        if project is not None:
            query = query.where(IdentityLogEntry.project_id == project)
        with self.meta.engine.connect() as conn:
            return list(conn.execute(query))

    def _apply(self, entries: Iterable[Any]) -> None:
        for entry_id, project, kind, id_type, id_value, person, loser in entries:
            graph = self.graph.project(project)
            if kind == "link":
                if graph.person_of.get((id_type, id_value)) != person:
                    graph.add_existing(id_type, id_value, person)
            else:
                graph.apply_merge(loser, person)
            self.seen[project] = max(self.seen.get(project, 0), entry_id)

    # recovery -------------------------------------------------------------------------------------

    def repair(self, checkpoint: str | None, after: Any) -> int:
        """Write to the store the links and merges this process logged for batches past its checkpoint
        (it died before their write finished); `after(position)` says whether a position is past it.
        Returns the batches repaired."""
        with self.meta.engine.connect() as conn:
            rows = list(conn.execute(
                select(IdentityLogEntry.position, IdentityLogEntry.project_id, IdentityLogEntry.kind,
                       IdentityLogEntry.id_type, IdentityLogEntry.id_value, IdentityLogEntry.person_id,
                       IdentityLogEntry.loser_id)
                .where(IdentityLogEntry.node == self.source).order_by(IdentityLogEntry.id)))
        batches: dict[str, WriteBatch] = {}
        for position, project, kind, id_type, id_value, person, loser in rows:
            if not after(position):
                continue
            batch = batches.setdefault(position, WriteBatch(token_base=f"{self.source}@{position}"))
            if kind == "link":
                batch.identities.append((project, str(id_type), str(id_value), person))
            else:
                batch.merges.append((project, int(loser or 0), person))
        for position, batch in batches.items():
            log.warning("writing the identities of batch %s logged before this process stopped", position)
            self.store.write(batch)
        return len(batches)
