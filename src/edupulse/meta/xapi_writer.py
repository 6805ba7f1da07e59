"""The writer of the statement store: one group of requests at a time (the rules are in xapi_writes.py).

Requests queue; the thread of the first one writes everything queued in one transaction, then hands the turn to the
thread of the next request that queued meanwhile, so concurrent requests share one commit.

**Deferred indexing (SQLite).** One server process owns a SQLite file. There the writer commits each group as rows
appended to xapi_pending_statements, durable before the requests are answered, and moves them into xapi_statements
and its two key tables later, in large batches: one transaction per request wrote most index pages again for every
request (statement ids are random, so each lands on its own page of the unique index, and so do the Agents), which
cost more than the rest of a request. The rules of ids and voiding see the accepted statements not yet indexed
through `Pending`, in memory; a read of statements first indexes everything accepted before it (`flush`), so a GET
answered after a POST sees it, as before. A thread indexes about once a second, sooner when many wait; a server
stopped in between (even by kill -9) leaves the accepted rows in the pending table, and the next writer indexes
them before anything else.

PostgreSQL, which several server processes share, indexes each group in its own transaction (a process cannot see
another's pending statements in memory).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy.exc import IntegrityError

from edupulse.ingest.xapi import StatementError
from edupulse.meta.db import MetadataStore
from edupulse.meta.xapi_activities import ActivityCatalogue
from edupulse.meta.xapi_writes import (
    LOOKUP_CHUNK,
    NEXT_IDS,
    PENDING,
    STATEMENT_COLUMNS,
    STATEMENTS,
    Attachment,
    Job,
    NewStatement,
    Pending,
    ProjectRules,
    Row,
    StatementConflict,
    insert_attachments,
    insert_indexed,
    insert_values,
)

log = logging.getLogger(__name__)
INDEX_ROWS = 20_000  # accepted statements that make it index at once (and bound what waits in memory)


class GroupCommit:
    """`save` queues a request's statements and returns when they are committed (with every statement as stored),
    or raises why the request was refused; `flush` returns when every statement accepted before it is indexed."""

    def __init__(self, meta: MetadataStore, activities: ActivityCatalogue, deferred: bool = False,
                 index_seconds: float = 1.0) -> None:
        self.meta = meta
        self.activities = activities
        self._queue: list[Job] = []
        self._queue_lock = threading.Lock()
        self._writing = False
        self.pending: Pending | None = Pending() if deferred and meta.engine.dialect.name == "sqlite" else None
        self._recovered = False  # the pending rows of an earlier process are indexed
        self._next_pk: int | None = None
        self._wake = threading.Event()
        self.index_seconds = index_seconds  # how often the indexing thread moves accepted statements
        self._indexer: threading.Thread | None = None

    def save(self, project_id: int, statements: Sequence[NewStatement],
             attachments: Mapping[str, Attachment] | None = None) -> list[dict[str, Any]]:
        if self.pending is not None and self._indexer is None:
            self._start_indexer()
        return self._submit(Job(project_id, [Row.of(new) for new in statements], attachments or {}))

    def flush(self) -> None:
        """Index every statement accepted so far (on PostgreSQL they are indexed when accepted)."""
        if self.pending is None or (self._recovered and not self.pending):
            return
        self._submit(Job(0, [], {}, flush=True))

    def _submit(self, job: Job) -> list[dict[str, Any]]:
        with self._queue_lock:
            self._queue.append(job)
            lead, self._writing = not self._writing, True
        if not lead:
            job.turn.wait()
        if not job.future.done():  # this thread writes everything queued, its own request's statements included
            self._lead()
        return job.future.result()

    def _lead(self) -> None:
        with self._queue_lock:
            jobs, self._queue = self._queue, []
        try:
            saves = [job for job in jobs if not job.flush]
            flushes = [job for job in jobs if job.flush]
            if self.pending is not None and not self._recovered:
                self._index(recover=True)
            if saves:
                self._write(saves)
            if self.pending is not None and (flushes or len(self.pending) >= INDEX_ROWS):
                self._index()
            for job in flushes:
                job.future.set_result([])
        except Exception as exc:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(RuntimeError("the statements could not be written"))
            with self._queue_lock:
                if self._queue:
                    self._queue[0].turn.set()  # its thread writes the next group
                else:
                    self._writing = False

    def _write(self, jobs: list[Job]) -> None:
        try:
            outcomes = self._commit(jobs)
        except IntegrityError:  # another process stored one of these ids first: decide again, request by request
            self.activities.forget()
            outcomes = [self._alone(job) for job in jobs]
        except Exception as exc:
            self.activities.forget()
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _alone(self, job: Job) -> list[dict[str, Any]] | Exception:
        for attempt in range(2):
            try:
                return self._commit([job])[0]
            except IntegrityError as exc:
                self.activities.forget()
                if attempt:
                    return exc
        raise AssertionError("unreachable")

    def _commit(self, jobs: list[Job]) -> list[list[dict[str, Any]] | Exception]:
        """Decide and write a group in one transaction; the outcome of each request, in order."""
        outcomes: list[list[dict[str, Any]] | Exception] = []
        try:
            with self.meta.engine.begin() as conn:
                projects: dict[int, ProjectRules] = {}
                for project_id in dict.fromkeys(job.project_id for job in jobs):
                    mine = [j for j in jobs if j.project_id == project_id]
                    projects[project_id] = ProjectRules(conn, project_id, mine, self.pending)
                for job in jobs:
                    try:
                        outcomes.append(projects[job.project_id].decide(job))
                    except (StatementConflict, StatementError) as exc:
                        outcomes.append(exc)
                self._store(conn, [p for p in projects.values() if p.rows])
                for project in projects.values():
                    self._void(conn, project)
                for job, outcome in zip(jobs, outcomes, strict=True):
                    if job.attachments and not isinstance(outcome, Exception):
                        insert_attachments(conn, job.project_id, job.attachments)
        except BaseException:
            self._next_pk = None
            raise
        if self.pending is not None:  # committed: the rules of the next groups see them
            for project in projects.values():
                for row in project.deferred_targets:
                    row.voided = True
                self.pending.add(project.project_id, project.rows)
            if len(self.pending) >= INDEX_ROWS:
                self._wake.set()
        return outcomes

    def _store(self, conn: Connection, projects: list[ProjectRules]) -> None:
        """The group's new statements: indexed at once, or (deferred) appended to the pending table."""
        count = sum(len(p.rows) for p in projects)
        if not count:
            return
        pks = iter(self._take_ids(conn, count))
        rows = [(project.project_id, row) for project in projects for row in project.rows]
        for _, row in rows:
            row.pk = next(pks)
        if self.pending is not None:
            insert_values(conn, PENDING, STATEMENT_COLUMNS, [row.values(project_id) for project_id, row in rows])
            return
        insert_indexed(conn, rows)
        for project in projects:
            self.activities.record(conn, project.project_id, [row.new.document for row in project.rows],
                                   max(row.new.stored_us for row in project.rows))

    def _take_ids(self, conn: Connection, count: int) -> list[int]:
        if self.pending is None:
            return NEXT_IDS[conn.dialect.name](conn, count)
        if self._next_pk is None:
            self._next_pk = 1 + conn.exec_driver_sql(
                "SELECT max(coalesce((SELECT max(id) FROM xapi_statements), 0), "
                "coalesce((SELECT max(id) FROM xapi_pending_statements), 0))").scalar_one()
        start, self._next_pk = self._next_pk, self._next_pk + count
        return list(range(start, start + count))

    @staticmethod
    def _void(conn: Connection, project: ProjectRules) -> None:
        targets = sorted(project.stored_targets)
        for start in range(0, len(targets), LOOKUP_CHUNK):
            conn.execute(update(STATEMENTS).where(
                STATEMENTS.c.project_id == project.project_id,
                STATEMENTS.c.statement_id.in_(targets[start:start + LOOKUP_CHUNK])).values(voided=True))
        pks = sorted(row.pk for row in project.deferred_targets)
        for start in range(0, len(pks), LOOKUP_CHUNK):
            conn.execute(update(PENDING).where(PENDING.c.id.in_(pks[start:start + LOOKUP_CHUNK])).values(voided=True))

    def _index(self, recover: bool = False) -> None:
        """Move the accepted statements into the indexed tables in one transaction (with `recover`, those an
        earlier process left in the pending table: after it, only this process adds to it)."""
        assert self.pending is not None
        try:
            with self.meta.engine.begin() as conn:
                if recover:
                    self.pending.clear()
                    for project_id, pk, signature, stored_us, voided, document in conn.exec_driver_sql(
                            "SELECT project_id, id, signature, stored_us, voided, document "
                            "FROM xapi_pending_statements ORDER BY id"):
                        self.pending.add(project_id, [Row.pending(pk, signature, stored_us, bool(voided), document)])
                if not self.pending:
                    self._recovered = True
                    return
                groups = self.pending.by_project()
                insert_indexed(conn, [(project_id, row) for project_id, rows in groups.items() for row in rows])
                for project_id, rows in groups.items():
                    self.activities.record(conn, project_id, [row.new.document for row in rows],
                                           max(row.new.stored_us for row in rows))
                last = max(row.pk for rows in groups.values() for row in rows)
                conn.execute(PENDING.delete().where(PENDING.c.id <= last))
        except BaseException:
            self.activities.forget()
            if recover:
                self.pending.clear()
            raise
        self.pending.clear()
        self._recovered = True

    def _start_indexer(self) -> None:
        with self._queue_lock:
            if self._indexer is not None:
                return
            args = (weakref.ref(self), self._wake, self.index_seconds)
            self._indexer = threading.Thread(target=_index_now_and_then, args=args, name="xapi-indexer", daemon=True)
        self._indexer.start()


def _index_now_and_then(writer: weakref.ref[GroupCommit], wake: threading.Event, seconds: float) -> None:
    """The indexing thread: it ends when its writer is gone (the server's statement store closed)."""
    while True:
        wake.wait(seconds)
        wake.clear()
        found = writer()
        if found is None:
            return
        try:
            found.flush()
        except Exception:  # the next round, or the next read, tries again
            log.exception("indexing accepted xAPI statements failed")
        del found
