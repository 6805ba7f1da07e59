"""The xAPI statement store, in the metadata database.

Statements live beside the projects and keys rather than in the event store: the statements resource needs
read-your-writes at once (a conflict check on every id, GET right after POST), lookups by id and filters on a
few indexed keys, which a transactional row store does well; the event store is loaded asynchronously from the
log and is built for scans. SQLite (WAL, synchronous=FULL) and PostgreSQL both make a commit durable before it
returns, which gives statements the same promise as ingested events.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Connection, Table, and_, exists, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from edupulse.ingest.xapi import VOIDED, StatementError, ifi_key, parse_timestamp
from edupulse.meta.db import MetadataStore
from edupulse.meta.models import XapiStatement, XapiStatementActivity, XapiStatementAgent
from edupulse.meta.xapi_activities import ActivityCatalogue
from edupulse.meta.xapi_models import XapiAttachment

STATEMENTS = cast(Table, XapiStatement.__table__)
AGENTS = cast(Table, XapiStatementAgent.__table__)
ACTIVITIES = cast(Table, XapiStatementActivity.__table__)
ATTACHMENTS = cast(Table, XapiAttachment.__table__)


def _next_ids_sqlite(conn: Connection, count: int) -> list[int]:
    # One writer per process holds the store's lock, and one server process owns a SQLite file; were another
    # writer to take the same ids, the insert fails on the primary key and the request is decided again.
    start = conn.execute(select(func.coalesce(func.max(STATEMENTS.c.id), 0))).scalar_one()
    return list(range(start + 1, start + count + 1))


def _next_ids_postgresql(conn: Connection, count: int) -> list[int]:
    # The id column's own sequence, so several API processes never hand out one id twice.
    query = text("SELECT nextval(pg_get_serial_sequence('xapi_statements', 'id')) FROM generate_series(1, :n)")
    return list(conn.execute(query, {"n": count}).scalars())


# How each database hands out the row ids of new statements.
NEXT_IDS: dict[str, Callable[[Connection, int], list[int]]] = {
    "sqlite": _next_ids_sqlite,
    "postgresql": _next_ids_postgresql,
}


STATEMENT_COLUMNS = ("id", "project_id", "statement_id", "stored_us", "verb_id", "registration", "ref_id", "voids",
                     "voided", "signature", "document")
# The DB-API placeholder of each parameter style (SQLite's qmark, psycopg's format/pyformat).
PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _max_parameters(conn: Connection) -> int:
    """How many parameters one statement may bind: SQLite before 3.32 allows 999, later 32766; PostgreSQL 65535."""
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32):
        return 999
    return 32_000


def _insert_values(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """A plain multi-row INSERT ... VALUES (...), (...) of rows given as tuples, straight to the driver.

    One statement per table rather than an executemany: the driver then runs one step instead of one per row, and
    each step lets go of the interpreter lock and waits to get it back from the threads validating other requests,
    which made the rows cost far more in a busy server than on their own."""
    mark = PLACEHOLDERS[conn.dialect.paramstyle]
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    per = max(1, _max_parameters(conn) // len(columns))
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), tuple(chain.from_iterable(chunk)))


def _distinct(pairs: Iterable[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Each key once, direct when any of its places is direct."""
    found: dict[str, bool] = {}
    for key, direct in pairs:
        found[key] = found.get(key, False) or direct
    return list(found.items())


class StatementConflict(Exception):
    """A statement id is stored already with a different statement (HTTP 409)."""

    def __init__(self, statement_id: str) -> None:
        super().__init__(f"statement {statement_id} is stored already with different content; ids are never reused")
        self.statement_id = statement_id


@dataclass(frozen=True)
class Attachment:
    """The content of an attachment sent as a part of a multipart/mixed request, found by its SHA-2."""

    content_type: str
    content: bytes


@dataclass(frozen=True)
class NewStatement:
    """A completed statement (see ingest.xapi.complete) and what the store indexes of it."""

    document: dict[str, Any]
    signature: str
    stored_us: int
    sent_timestamp: str | None = None  # the timestamp as sent, if the statement had one


def _same_time(sent: str | None, stored: dict[str, Any]) -> bool:
    if sent is None:
        return True
    return parse_timestamp(sent, "timestamp") == parse_timestamp(stored["timestamp"], "timestamp")


@dataclass
class StatementFilter:
    """The filters of GET /xapi/statements (xAPI Communication 2.1.3), already validated."""

    agent: str | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_activities: bool = False
    related_agents: bool = False
    since_us: int | None = None
    until_us: int | None = None
    ascending: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _agents(statement: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    """(IFI key, direct) of the Agents and identified Groups a statement concerns; a Group's members match as
    the Group does (Communication 2.1.3, the agent parameter)."""

    def of(value: Any, direct: bool) -> Iterator[tuple[str, bool]]:
        if isinstance(value, dict) and value.get("objectType", "Agent") in ("Agent", "Group"):
            key = ifi_key(value)
            if key is not None:
                yield key, direct
            for member in value.get("member", ()) if value.get("objectType") == "Group" else ():
                member_key = ifi_key(member)
                if member_key is not None:
                    yield member_key, direct

    yield from of(statement.get("actor"), True)
    obj = statement.get("object", {})
    if obj.get("objectType") in ("Agent", "Group"):
        yield from of(obj, True)
    yield from of(statement.get("authority"), False)
    context = statement.get("context", {})
    yield from of(context.get("instructor"), False)
    yield from of(context.get("team"), False)
    if obj.get("objectType") == "SubStatement":
        for key, _ in _agents({k: v for k, v in obj.items() if k != "authority"}):
            yield key, False


def _activities(statement: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    obj = statement.get("object", {})
    if obj.get("objectType", "Activity") == "Activity":
        yield obj["id"], True
    for items in statement.get("context", {}).get("contextActivities", {}).values():
        for item in items:
            yield item["id"], False
    if obj.get("objectType") == "SubStatement":
        for activity_id, _ in _activities(obj):
            yield activity_id, False


@dataclass(frozen=True, slots=True)
class _Keys:
    """What the store writes of a new statement, worked out before the writer takes it (outside the serial part):
    the columns of its row but the row id and `voided`, and its Agent and Activity filter keys."""

    statement_id: str
    verb_id: str
    registration: str | None
    ref_id: str | None
    voids: str | None
    document: str
    agents: list[tuple[str, bool]]
    activities: list[tuple[str, bool]]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> _Keys:
        obj, verb_id = doc["object"], doc["verb"]["id"]
        ref = obj["id"] if obj.get("objectType") == "StatementRef" else None
        return cls(doc["id"], verb_id, doc.get("context", {}).get("registration"), ref,
                   ref if verb_id == VOIDED else None, orjson.dumps(doc).decode(), _distinct(_agents(doc)),
                   _distinct(_activities(doc)))


@dataclass
class _Job:
    """The statements of one request waiting for the writer, and where their outcome goes. `turn` is set when the
    outcome is there, or when the request's own thread is to write next."""

    project_id: int
    statements: Sequence[NewStatement]
    attachments: Mapping[str, Attachment]
    keys: list[_Keys] = field(default_factory=list)
    future: Future[list[dict[str, Any]]] = field(default_factory=Future)
    turn: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.future.add_done_callback(lambda _: self.turn.set())


class StatementStore:
    """Statements of every project: save (with conflict and voiding rules), get by id, filter, page.

    Saving is a group commit: requests that arrive while statements are being committed wait, and the next writer
    stores all of them in one transaction, so concurrent requests share one commit (one fsync) instead of queueing
    for the database's write lock one by one. Each request's checks run before its writes, so a refused request
    leaves the others of its group untouched. A request whose statements were written by another returns as soon
    as they are committed; the writer of a group hands the next group to the oldest request waiting."""

    def __init__(self, meta: MetadataStore, activities: ActivityCatalogue | None = None) -> None:
        self.meta = meta
        self.activities = activities or ActivityCatalogue(meta)
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._writing = False

    def save(self, project_id: int, statements: Sequence[NewStatement],
             attachments: Mapping[str, Attachment] | None = None) -> list[dict[str, Any]]:
        """Store the new statements of a request (and the contents of their attachments, by SHA-2) and return every
        statement as stored (a statement sent again returns the first one stored). Raises StatementConflict or
        StatementError, and then nothing of the request is stored."""
        job = _Job(project_id, statements, attachments or {}, [_Keys.of(new.document) for new in statements])
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
            self._write(jobs)
        finally:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(RuntimeError("the statements could not be written"))
            with self._queue_lock:
                if self._queue:
                    self._queue[0].turn.set()  # its thread writes the next group
                else:
                    self._writing = False

    def _write(self, jobs: list[_Job]) -> None:
        outcomes: list[list[dict[str, Any]] | Exception] = []
        try:
            with self.meta.engine.begin() as conn:
                for job in jobs:
                    try:
                        outcomes.append(self._save(conn, job))
                    except (StatementConflict, StatementError) as exc:  # raised before the job wrote anything
                        outcomes.append(exc)
        except IntegrityError:  # another process stored one of these ids first: decide again, request by request
            self.activities.forget()
            outcomes = [self._save_alone(job) for job in jobs]
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

    def _save_alone(self, job: _Job) -> list[dict[str, Any]] | Exception:
        for attempt in range(2):
            try:
                with self.meta.engine.begin() as conn:
                    return self._save(conn, job)
            except (StatementConflict, StatementError) as exc:
                return exc
            except IntegrityError as exc:
                self.activities.forget()
                if attempt:
                    return exc
        raise AssertionError("unreachable")

    def _save(self, conn: Connection, job: _Job) -> list[dict[str, Any]]:
        project_id, statements = job.project_id, job.statements
        ids = [n.document["id"] for n in statements]
        mine = STATEMENTS.c.project_id == project_id
        existing = {row.statement_id: row for row in conn.execute(
            select(STATEMENTS.c.statement_id, STATEMENTS.c.signature, STATEMENTS.c.document)
            .where(mine, STATEMENTS.c.statement_id.in_(ids)))}
        # Targets of voiding statements in this request, and new statements voided earlier (a voiding statement may
        # arrive before its target).
        targets = {n.document["object"]["id"]: i for i, n in enumerate(statements)
                   if n.document["verb"]["id"] == VOIDED and n.document["id"] not in existing}
        self._check_void_targets(conn, project_id, targets, statements)
        voided = set(targets)
        # Filtered on the project here: with project_id in the query, SQLite scans the project's statements instead
        # of using the index on voids.
        voided.update(row.voids for row in conn.execute(select(STATEMENTS.c.voids, STATEMENTS.c.project_id).where(
            STATEMENTS.c.voids.in_(ids))) if row.project_id == project_id)
        out: list[dict[str, Any]] = []
        rows: list[tuple[_Keys, NewStatement]] = []
        for new, keys in zip(statements, job.keys, strict=True):
            doc = new.document
            old = existing.get(doc["id"])
            if old is not None:
                stored = orjson.loads(old.document)
                if old.signature != new.signature or not _same_time(new.sent_timestamp, stored):
                    raise StatementConflict(doc["id"])
                out.append(stored)
                continue
            rows.append((keys, new))
            out.append(doc)
        if rows:
            self._insert(conn, project_id, rows, voided)
            self.activities.record(conn, project_id, [new.document for _, new in rows], rows[0][1].stored_us)
        if targets:
            conn.execute(update(STATEMENTS).where(mine, STATEMENTS.c.statement_id.in_(list(targets)))
                         .values(voided=True))
        if job.attachments:
            self._insert_attachments(conn, project_id, job.attachments)
        return out

    @staticmethod
    def _insert_attachments(conn: Connection, project_id: int, attachments: Mapping[str, Attachment]) -> None:
        known = set(conn.execute(select(ATTACHMENTS.c.sha2).where(
            ATTACHMENTS.c.project_id == project_id, ATTACHMENTS.c.sha2.in_(list(attachments)))).scalars())
        rows = [{"project_id": project_id, "sha2": sha2, "content_type": a.content_type[:255], "content": a.content}
                for sha2, a in attachments.items() if sha2 not in known]
        if rows:
            conn.execute(insert(ATTACHMENTS), rows)

    def agent_names(self, project_id: int, agent_key: str, most: int = 100) -> list[str]:
        """Names the project's latest statements gave an Agent (as actor or object), newest first."""
        query = (select(STATEMENTS.c.document).join(AGENTS, AGENTS.c.statement_pk == STATEMENTS.c.id)
                 .where(AGENTS.c.project_id == project_id, AGENTS.c.agent_key == agent_key,
                        AGENTS.c.direct.is_(True)).order_by(STATEMENTS.c.id.desc()).limit(most))
        names: list[str] = []
        with self.meta.engine.connect() as conn:
            for document in conn.execute(query).scalars():
                statement = orjson.loads(document)
                for found in (statement.get("actor"), statement.get("object")):
                    if isinstance(found, dict) and ifi_key(found) == agent_key and "name" in found:
                        names.append(found["name"])
        return list(dict.fromkeys(names))

    def attachments(self, project_id: int, digests: Iterable[str]) -> dict[str, Attachment]:
        """The stored contents of attachments, by SHA-2 (those that were sent as parts)."""
        wanted = sorted({d.lower() for d in digests})
        if not wanted:
            return {}
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(ATTACHMENTS.c.sha2, ATTACHMENTS.c.content_type, ATTACHMENTS.c.content).where(
                ATTACHMENTS.c.project_id == project_id, ATTACHMENTS.c.sha2.in_(wanted)))
            return {row.sha2: Attachment(row.content_type, bytes(row.content)) for row in rows}

    @staticmethod
    def _insert(conn: Connection, project_id: int, rows: list[tuple[_Keys, NewStatement]], voided: set[str]) -> None:
        """The statements and their filter keys, in one multi-row insert per table of plain tuples, with the
        statements' row ids chosen here (an INSERT ... RETURNING of the ids, the ORM's bulk path, or SQLAlchemy's
        per-row parameter handling cost more than the rest of a request)."""
        pks = NEXT_IDS[conn.dialect.name](conn, len(rows))
        statements: list[tuple[Any, ...]] = []
        agents: list[tuple[Any, ...]] = []
        activities: list[tuple[Any, ...]] = []
        for pk, (k, new) in zip(pks, rows, strict=True):
            statements.append((pk, project_id, k.statement_id, new.stored_us, k.verb_id, k.registration, k.ref_id,
                               k.voids, k.statement_id in voided, new.signature, k.document))
            agents.extend((pk, project_id, key, direct) for key, direct in k.agents)
            activities.extend((pk, project_id, key, direct) for key, direct in k.activities)
        _insert_values(conn, STATEMENTS, STATEMENT_COLUMNS, statements)
        if agents:
            _insert_values(conn, AGENTS, ("statement_pk", "project_id", "agent_key", "direct"), agents)
        if activities:
            _insert_values(conn, ACTIVITIES, ("statement_pk", "project_id", "activity_id", "direct"), activities)

    @staticmethod
    def _check_void_targets(conn: Connection, project_id: int, targets: dict[str, int],
                            statements: Sequence[NewStatement]) -> None:
        """A voiding statement cannot be voided (Data 2.3.2)."""
        if not targets:
            return
        voiding = set(conn.execute(select(STATEMENTS.c.statement_id).where(
            STATEMENTS.c.project_id == project_id, STATEMENTS.c.statement_id.in_(list(targets)),
            STATEMENTS.c.voids.is_not(None))).scalars())
        voiding |= {n.document["id"] for n in statements if n.document["verb"]["id"] == VOIDED}
        for target, index in targets.items():
            if target in voiding:
                raise StatementError(f"statement[{index}].object.id",
                                     f"statement {target} is itself a voiding statement, which cannot be voided")

    def get(self, project_id: int, statement_id: str, voided: bool) -> tuple[str, int] | None:
        """The stored JSON and stored time of a statement; `voided` asks for a voided one (voidedStatementId)."""
        with self.meta.session() as s:
            row = s.execute(select(XapiStatement.document, XapiStatement.stored_us, XapiStatement.voided).where(
                XapiStatement.project_id == project_id, XapiStatement.statement_id == statement_id.lower())).first()
        if row is None or bool(row.voided) != voided:
            return None
        return row.document, row.stored_us

    @staticmethod
    def _matches(project_id: int, f: StatementFilter, t: Any) -> list[ColumnElement[bool]]:
        """Conditions of the non-time filters on the statements table `t` (the table or an alias of it)."""
        conditions: list[ColumnElement[bool]] = []
        if f.verb is not None:
            conditions.append(t.verb_id == f.verb)
        if f.registration is not None:
            conditions.append(t.registration == f.registration)
        if f.agent is not None:
            agent = [XapiStatementAgent.statement_pk == t.id, XapiStatementAgent.project_id == project_id,
                     XapiStatementAgent.agent_key == f.agent]
            if not f.related_agents:
                agent.append(XapiStatementAgent.direct.is_(True))
            conditions.append(exists().where(*agent))
        if f.activity is not None:
            act = [XapiStatementActivity.statement_pk == t.id,
                   XapiStatementActivity.project_id == project_id, XapiStatementActivity.activity_id == f.activity]
            if not f.related_activities:
                act.append(XapiStatementActivity.direct.is_(True))
            conditions.append(exists().where(*act))
        return conditions

    def query(self, project_id: int, f: StatementFilter, after: int | None, limit: int) -> list[tuple[int, str]]:
        """(row id, JSON) of matching statements, not voided, in stored order, after the row `after` (paging).
        A statement that refers to a matching statement (StatementRef) matches too, and so on along chains of
        references (Communication 2.1.3)."""
        conditions = self._matches(project_id, f, XapiStatement)
        where: list[ColumnElement[bool]] = [XapiStatement.project_id == project_id, XapiStatement.voided.is_(False)]
        if conditions:
            inner, referring = aliased(XapiStatement), aliased(XapiStatement)
            matched = select(inner.statement_id).where(inner.project_id == project_id,
                                                       *self._matches(project_id, f, inner)).cte(recursive=True)
            matched = matched.union(select(referring.statement_id).where(
                referring.project_id == project_id, referring.ref_id == matched.c.statement_id))
            where.append(or_(and_(*conditions), XapiStatement.ref_id.in_(select(matched.c.statement_id))))
        if f.since_us is not None:
            where.append(XapiStatement.stored_us > f.since_us)
        if f.until_us is not None:
            where.append(XapiStatement.stored_us <= f.until_us)
        if after is not None:
            where.append(XapiStatement.id > after if f.ascending else XapiStatement.id < after)
        order = XapiStatement.id.asc() if f.ascending else XapiStatement.id.desc()
        with self.meta.session() as s:
            query = select(XapiStatement.id, XapiStatement.document).where(*where).order_by(order).limit(limit)
            rows = s.execute(query)
            return [(row.id, row.document) for row in rows]
