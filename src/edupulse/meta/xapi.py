"""The xAPI statement store, in the metadata database.

Statements live beside the projects and keys rather than in the event store: the statements resource needs
read-your-writes at once (a conflict check on every id, GET right after POST), lookups by id and filters on a
few indexed keys, which a transactional row store does well; the event store is loaded asynchronously from the
log and is built for scans. SQLite (WAL, synchronous=FULL) and PostgreSQL both make a commit durable before it
returns, which gives statements the same promise as ingested events. Writing is in xapi_writer.py (the writer; on
SQLite the server's store indexes accepted statements in batches, and every read here first indexes what was
accepted before it) and xapi_writes.py (the rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import aliased

from edupulse.ingest.xapi import ifi_key
from edupulse.meta.db import MetadataStore
from edupulse.meta.models import XapiStatement, XapiStatementActivity, XapiStatementAgent
from edupulse.meta.xapi_activities import ActivityCatalogue
from edupulse.meta.xapi_writer import GroupCommit
from edupulse.meta.xapi_writes import AGENTS, ATTACHMENTS, STATEMENTS, Attachment, NewStatement, StatementConflict

__all__ = ["Attachment", "NewStatement", "StatementConflict", "StatementFilter", "StatementStore"]


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


class StatementStore:
    """Statements of every project: save (with conflict and voiding rules, by group commit), get by id, filter,
    page."""

    def __init__(self, meta: MetadataStore, activities: ActivityCatalogue | None = None,
                 deferred: bool = False, index_seconds: float = 1.0) -> None:
        """`deferred`: the server's store, which on SQLite indexes accepted statements in batches, every
        `index_seconds` (one process owns a SQLite file; see xapi_writer.py)."""
        self.meta = meta
        self.activities = activities or ActivityCatalogue(meta)
        self._writer = GroupCommit(meta, self.activities, deferred, index_seconds)
        if deferred:
            self.activities.before_read = self._writer.flush

    def save(self, project_id: int, statements: Sequence[NewStatement],
             attachments: Mapping[str, Attachment] | None = None) -> list[dict[str, Any]]:
        """Store the new statements of a request (and the contents of their attachments, by SHA-2) and return every
        statement as stored (a statement sent again returns the first one stored). Raises StatementConflict or
        StatementError, and then nothing of the request is stored."""
        return self._writer.save(project_id, statements, attachments)

    def flush(self) -> None:
        """Index the statements accepted and not yet indexed (the server's store on SQLite; see xapi_writer.py)."""
        self._writer.flush()

    def agent_names(self, project_id: int, agent_key: str, most: int = 100) -> list[str]:
        """Names the project's latest statements gave an Agent (as actor or object), newest first."""
        self._writer.flush()
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

    def get(self, project_id: int, statement_id: str, voided: bool) -> tuple[str, int] | None:
        """The stored JSON and stored time of a statement; `voided` asks for a voided one (voidedStatementId)."""
        self._writer.flush()
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
        self._writer.flush()
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
