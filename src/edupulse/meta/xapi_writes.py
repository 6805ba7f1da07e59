"""Writing xAPI statements: the rules of a group of requests and the rows they add (the writer is xapi_writer.py).

Requests that arrive while a group of statements is being committed wait; the next writer stores all of them in one
transaction, so concurrent requests share one commit (one fsync). A group costs a fixed number of round trips
whatever its size: one lookup of the ids it names (its statements and the targets of its voiding statements), one of
the statements voiding them, one insert per table, one update of newly voided statements. The rules of statement
ids and voiding are then decided in memory, request by request in arrival order, as if each request had been stored
alone after the ones before it: a refused request (StatementConflict, StatementError) leaves the others of its group
untouched, and a request sees the statements of the requests before it in its group.

Everything about a statement that does not depend on the database (its row, its JSON, its filter keys) is worked
out by the request's own thread before it queues, outside the serial part.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Table, insert, select, text
from sqlalchemy.exc import IntegrityError

from edupulse.ingest.xapi import VOIDED, StatementError, ifi_key, parse_timestamp
from edupulse.meta.models import XapiStatement, XapiStatementActivity, XapiStatementAgent
from edupulse.meta.xapi_models import XapiAttachment, XapiPendingStatement

STATEMENTS = cast(Table, XapiStatement.__table__)
AGENTS = cast(Table, XapiStatementAgent.__table__)
ACTIVITIES = cast(Table, XapiStatementActivity.__table__)
ATTACHMENTS = cast(Table, XapiAttachment.__table__)
PENDING = cast(Table, XapiPendingStatement.__table__)
STATEMENT_COLUMNS = ("id", "project_id", "statement_id", "stored_us", "verb_id", "registration", "ref_id", "voids",
                     "voided", "signature", "document")
KEY_COLUMNS = {AGENTS.name: ("statement_pk", "project_id", "agent_key", "direct"),
               ACTIVITIES.name: ("statement_pk", "project_id", "activity_id", "direct")}
# The DB-API placeholder of each parameter style (SQLite's qmark, psycopg's format/pyformat).
PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
LOOKUP_CHUNK = 500  # ids per IN (...) of a lookup


def _next_ids_sqlite(conn: Connection, count: int) -> list[int]:
    # One writer per process takes the ids, and one server process owns a SQLite file; were another writer to take
    # the same ids, the insert fails on the primary key and the group is decided again, request by request.
    start = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM xapi_statements").scalar_one()
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


def _max_parameters(conn: Connection) -> int:
    """How many parameters one statement may bind: SQLite before 3.32 allows 999, later 32766; PostgreSQL 65535."""
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32):
        return 999
    return 32_000


def insert_values(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows given as tuples, straight to the driver: on PostgreSQL by COPY, elsewhere as a multi-row
    INSERT ... VALUES (...), (...).

    One statement rather than an executemany: the driver then runs one step instead of one per row, and each step
    lets go of the interpreter lock and waits to get it back from the threads validating other requests, which made
    the rows cost far more in a busy server than on their own. On PostgreSQL, COPY also spares the driver most of
    its work per parameter (a fifth of the CPU time of the same INSERT)."""
    if conn.dialect.name == "postgresql":
        _copy(conn, table, columns, rows)
        return
    mark = PLACEHOLDERS[conn.dialect.paramstyle]
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    per = max(1, _max_parameters(conn) // len(columns))
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), tuple(chain.from_iterable(chunk)))


def _copy(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    import psycopg  # the postgres extra, there whenever the metadata database is PostgreSQL

    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    try:
        with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
    except psycopg.IntegrityError as exc:  # as SQLAlchemy reports it for its own statements
        raise IntegrityError(sql, None, exc) from exc


def _select_in(conn: Connection, sql: str, fixed: tuple[Any, ...], values: Iterable[str]) -> Iterator[Any]:
    """Rows of a query whose `{matches}` is a list of `values` (distinct): `= ANY(array)` on PostgreSQL (one
    parameter), else `IN (...)` in chunks; its `{mark}` placeholders are the `fixed` parameters that come first."""
    mark = PLACEHOLDERS[conn.dialect.paramstyle]
    items = list(dict.fromkeys(values))
    if not items:
        return
    if conn.dialect.name == "postgresql":
        yield from conn.exec_driver_sql(sql.format(mark=mark, matches=f"= ANY({mark})"), (*fixed, items))
        return
    for start in range(0, len(items), LOOKUP_CHUNK):
        chunk = items[start:start + LOOKUP_CHUNK]
        yield from conn.exec_driver_sql(sql.format(mark=mark, matches=f"IN ({', '.join([mark] * len(chunk))})"),
                                        (*fixed, *chunk))


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


def _add(found: dict[str, bool], key: str, direct: bool) -> None:
    """Each key once, direct when any of its places is direct."""
    if direct or key not in found:
        found[key] = direct or found.get(key, False)


def _add_agent(found: dict[str, bool], value: Any, direct: bool) -> None:
    if value.__class__ is not dict:
        return
    kind = value.get("objectType", "Agent")
    if kind not in ("Agent", "Group"):
        return
    key = ifi_key(value)
    if key is not None:
        _add(found, key, direct)
    if kind == "Group":
        for member in value.get("member", ()):
            member_key = ifi_key(member)
            if member_key is not None:
                _add(found, member_key, direct)


def statement_agents(statement: dict[str, Any], found: dict[str, bool] | None = None,
                     inside: bool = False) -> dict[str, bool]:
    """{IFI key: direct} of the Agents and identified Groups a statement concerns; a Group's members match as
    the Group does (Communication 2.1.3, the agent parameter). `inside`: the statement is a sub-statement, whose
    Agents are all indirect."""
    found = {} if found is None else found
    _add_agent(found, statement.get("actor"), not inside)
    obj = statement.get("object", {})
    kind = obj.get("objectType")
    if kind in ("Agent", "Group"):
        _add_agent(found, obj, not inside)
    if not inside:
        _add_agent(found, statement.get("authority"), False)
    context = statement.get("context")
    if context:
        _add_agent(found, context.get("instructor"), False)
        _add_agent(found, context.get("team"), False)
    if kind == "SubStatement":
        statement_agents(obj, found, inside=True)
    return found


def statement_activities(statement: dict[str, Any], found: dict[str, bool] | None = None,
                         inside: bool = False) -> dict[str, bool]:
    """{Activity id: direct} of the Activities a statement concerns: its object (direct), context activities and
    those of a sub-statement."""
    found = {} if found is None else found
    obj = statement.get("object", {})
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        _add(found, obj["id"], not inside)
    context = statement.get("context")
    if context:
        for items in context.get("contextActivities", {}).values():
            for item in items:
                _add(found, item["id"], False)
    if kind == "SubStatement":
        statement_activities(obj, found, inside=True)
    return found


@dataclass(slots=True, eq=False)
class Row:
    """A new statement as the store writes it, worked out before the writer takes it: the columns of its row but
    the row id, and its Agent and Activity filter keys. `voided` is decided by the writer."""

    new: NewStatement
    statement_id: str
    verb_id: str
    registration: str | None
    ref_id: str | None
    voids: str | None
    document: str
    agents: list[tuple[str, bool]]
    activities: list[tuple[str, bool]]
    voided: bool = False
    pk: int = 0  # the row id, once the writer gives one

    @classmethod
    def of(cls, new: NewStatement) -> Row:
        doc = new.document
        obj, verb_id = doc["object"], doc["verb"]["id"]
        ref = obj["id"] if obj.get("objectType") == "StatementRef" else None
        return cls(new, doc["id"], verb_id, doc.get("context", {}).get("registration"), ref,
                   ref if verb_id == VOIDED else None, orjson.dumps(doc).decode(),
                   list(statement_agents(doc).items()), list(statement_activities(doc).items()))

    @classmethod
    def pending(cls, pk: int, signature: str, stored_us: int, voided: bool, document: str) -> Row:
        """A row of xapi_pending_statements, as read back after the server stopped."""
        row = cls.of(NewStatement(orjson.loads(document), signature, stored_us))
        row.document, row.voided, row.pk = document, voided, pk
        return row

    def values(self, project_id: int) -> tuple[Any, ...]:
        """The row's columns, in the order of STATEMENT_COLUMNS."""
        return (self.pk, project_id, self.statement_id, self.new.stored_us, self.verb_id, self.registration,
                self.ref_id, self.voids, self.voided, self.new.signature, self.document)


@dataclass
class Job:
    """The statements of one request waiting for the writer, and where their outcome goes. `turn` is set when the
    outcome is there, or when the request's own thread is to write next."""

    project_id: int
    rows: list[Row]
    attachments: Mapping[str, Attachment]
    flush: bool = False  # asks the writer to index the statements accepted so far (see xapi_writer.py)
    future: Future[list[dict[str, Any]]] = field(default_factory=Future)
    turn: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.future.add_done_callback(lambda _: self.turn.set())


@dataclass(frozen=True, slots=True)
class _Known:
    """A statement stored before the group (or by a request before in it), as far as the rules need it."""

    signature: str
    document: str
    voiding: bool  # it is a voiding statement
    pending: Row | None = None  # the row, when a request before in the group adds it
    deferred: Row | None = None  # the row, when it was accepted before the group and waits to be indexed


class Pending:
    """Statements accepted and durable in xapi_pending_statements but not yet indexed, as the rules see them:
    by project and statement id, and the targets of the voiding ones among them (see xapi_writer.py)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], Row] = {}  # in row id order
        self.voiding: dict[tuple[int, str], str] = {}  # (project, voided statement) -> the voiding statement

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, project_id: int, rows: Iterable[Row]) -> None:
        for row in rows:
            self.rows[(project_id, row.statement_id)] = row
            if row.voids is not None:
                self.voiding[(project_id, row.voids)] = row.statement_id

    def by_project(self) -> dict[int, list[Row]]:
        found: dict[int, list[Row]] = defaultdict(list)
        for (project_id, _), row in self.rows.items():
            found[project_id].append(row)
        return found

    def clear(self) -> None:
        self.rows.clear()
        self.voiding.clear()


class ProjectRules:
    """What one project's requests of a group see and add: the statements they name, stored or added before."""

    def __init__(self, conn: Connection, project_id: int, jobs: list[Job], pending: Pending | None = None) -> None:
        self.project_id = project_id
        ids = [row.statement_id for job in jobs for row in job.rows]
        targets = [row.voids for job in jobs for row in job.rows if row.voids is not None]
        self.known: dict[str, _Known] = {}
        for sid, signature, document, voids in _select_in(
                conn, "SELECT statement_id, signature, document, voids FROM xapi_statements WHERE project_id = {mark} "
                      "AND statement_id {matches}", (project_id,), chain(ids, targets)):
            self.known[sid] = _Known(signature, document, voids is not None)
        # Statements voided before they arrive (a voiding statement may come first). Filtered on the project here:
        # with project_id in the query, SQLite scans the project's statements instead of using the index on voids.
        self.voided: set[str] = {voids for voids, project in _select_in(
            conn, "SELECT voids, project_id FROM xapi_statements WHERE voids {matches}", (), ids)
            if project == project_id}
        if pending:  # accepted before the group, not yet indexed
            for sid in chain(ids, targets):
                row = pending.rows.get((project_id, sid))
                if row is not None:
                    self.known[sid] = _Known(row.new.signature, row.document, row.voids is not None, deferred=row)
            self.voided.update(sid for sid in ids if (project_id, sid) in pending.voiding)
        self.stored_targets: set[str] = set()  # statements stored before the group that become voided
        self.deferred_targets: list[Row] = []  # statements accepted before the group, not yet indexed, now voided
        self.rows: list[Row] = []

    def decide(self, job: Job) -> list[dict[str, Any]]:
        """The rules of one request against what is known; raises before changing anything when it is refused."""
        out: list[dict[str, Any]] = []
        new_rows: list[Row] = []
        targets: dict[str, int] = {}  # targets of this request's new voiding statements
        for index, row in enumerate(job.rows):
            old = self.known.get(row.statement_id)
            if old is not None:
                stored = orjson.loads(old.document)
                if old.signature != row.new.signature or not _same_time(row.new.sent_timestamp, stored):
                    raise StatementConflict(row.statement_id)
                out.append(stored)
                continue
            new_rows.append(row)
            out.append(row.new.document)
            if row.voids is not None:
                targets[row.voids] = index
        # A voiding statement cannot be voided (Data 2.3.2).
        voiding = {row.statement_id for row in job.rows if row.voids is not None}
        for target, index in targets.items():
            found = self.known.get(target)
            if target in voiding or (found is not None and found.voiding):
                raise StatementError(f"statement[{index}].object.id",
                                     f"statement {target} is itself a voiding statement, which cannot be voided")
        # Accepted: what it adds is known to the requests after it.
        for row in new_rows:
            row.voided = row.statement_id in targets or row.statement_id in self.voided
            self.known[row.statement_id] = _Known(row.new.signature, row.document, row.voids is not None, row)
            if row.voids is not None:
                self.voided.add(row.voids)
        for target in targets:
            found = self.known.get(target)
            if found is not None and found.pending is not None:
                found.pending.voided = True
            elif found is not None and found.deferred is not None:
                self.deferred_targets.append(found.deferred)
            elif found is not None:
                self.stored_targets.add(target)
        self.rows.extend(new_rows)
        return out


def insert_indexed(conn: Connection, rows: list[tuple[int, Row]]) -> None:
    """Rows (project id, row with its row id) into xapi_statements and their filter keys, in one multi-row insert
    per table of plain tuples (an INSERT ... RETURNING of the ids, the ORM's bulk path, or SQLAlchemy's per-row
    parameter handling cost more than the rest of a request). The keys go in the order of their table's primary
    key, so each insert walks its B-tree forward."""
    statements: list[tuple[Any, ...]] = []
    agents: list[tuple[Any, ...]] = []
    activities: list[tuple[Any, ...]] = []
    for project_id, r in rows:
        statements.append(r.values(project_id))
        agents.extend((r.pk, project_id, key, direct) for key, direct in r.agents)
        activities.extend((r.pk, project_id, key, direct) for key, direct in r.activities)
    if not statements:
        return
    insert_values(conn, STATEMENTS, STATEMENT_COLUMNS, statements)
    for table, keys in ((AGENTS, agents), (ACTIVITIES, activities)):
        if keys:
            keys.sort(key=lambda k: (k[1], k[2], k[0]))
            insert_values(conn, table, KEY_COLUMNS[table.name], keys)


def insert_attachments(conn: Connection, project_id: int, attachments: Mapping[str, Attachment]) -> None:
    known = set(conn.execute(select(ATTACHMENTS.c.sha2).where(
        ATTACHMENTS.c.project_id == project_id, ATTACHMENTS.c.sha2.in_(list(attachments)))).scalars())
    rows = [{"project_id": project_id, "sha2": sha2, "content_type": a.content_type[:255], "content": a.content}
            for sha2, a in attachments.items() if sha2 not in known]
    if rows:
        conn.execute(insert(ATTACHMENTS), rows)
