"""The xAPI statement store, in the metadata database.

Statements live beside the projects and keys rather than in the event store: the statements resource needs
read-your-writes at once (a conflict check on every id, GET right after POST), lookups by id and filters on a
few indexed keys, which a transactional row store does well; the event store is loaded asynchronously from the
log and is built for scans. SQLite (WAL, synchronous=FULL) and PostgreSQL both make a commit durable before it
returns, which gives statements the same promise as ingested events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from edupulse.ingest.xapi import VOIDED, StatementError, ifi_key, parse_timestamp
from edupulse.meta.db import MetadataStore
from edupulse.meta.models import XapiStatement, XapiStatementActivity, XapiStatementAgent


class StatementConflict(Exception):
    """A statement id is stored already with a different statement (HTTP 409)."""

    def __init__(self, statement_id: str) -> None:
        super().__init__(f"statement {statement_id} is stored already with different content; ids are never reused")
        self.statement_id = statement_id


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
    """(IFI key, direct) of the Agents and identified Groups a statement concerns."""

    def of(value: Any, direct: bool) -> Iterator[tuple[str, bool]]:
        if isinstance(value, dict) and value.get("objectType", "Agent") in ("Agent", "Group"):
            key = ifi_key(value)
            if key is not None:
                yield key, direct

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


class StatementStore:
    """Statements of every project: save (with conflict and voiding rules), get by id, filter, page."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def save(self, project_id: int, statements: Sequence[NewStatement]) -> list[dict[str, Any]]:
        """Store the new statements of a request in one transaction and return every statement as stored (a
        statement sent again returns the first one stored). Raises StatementConflict or StatementError, and then
        nothing of the request is stored."""
        try:
            return self._save(project_id, statements)
        except IntegrityError:  # a concurrent request stored one of these ids first: decide again
            return self._save(project_id, statements)

    def _save(self, project_id: int, statements: Sequence[NewStatement]) -> list[dict[str, Any]]:
        ids = [n.document["id"] for n in statements]
        mine = XapiStatement.project_id == project_id
        with self.meta.session() as s, s.begin():
            existing = {row.statement_id: row for row in s.scalars(
                select(XapiStatement).where(mine, XapiStatement.statement_id.in_(ids)))}
            # Targets of voiding statements in this request, and new statements voided earlier (a voiding statement
            # may arrive before its target).
            targets = {n.document["object"]["id"]: i for i, n in enumerate(statements)
                       if n.document["verb"]["id"] == VOIDED and n.document["id"] not in existing}
            self._check_void_targets(s, project_id, targets, statements)
            voided = set(targets)
            voided.update(s.scalars(select(XapiStatement.voids).where(mine, XapiStatement.voids.in_(ids))))
            out: list[dict[str, Any]] = []
            rows: list[dict[str, Any]] = []
            added: list[dict[str, Any]] = []
            for new in statements:
                doc = new.document
                old = existing.get(doc["id"])
                if old is not None:
                    stored = orjson.loads(old.document)
                    if old.signature != new.signature or not _same_time(new.sent_timestamp, stored):
                        raise StatementConflict(doc["id"])
                    out.append(stored)
                    continue
                ref = doc["object"]["id"] if doc["object"].get("objectType") == "StatementRef" else None
                rows.append({"project_id": project_id, "statement_id": doc["id"], "stored_us": new.stored_us,
                             "verb_id": doc["verb"]["id"], "registration": doc.get("context", {}).get("registration"),
                             "ref_id": ref, "voids": ref if doc["verb"]["id"] == VOIDED else None,
                             "voided": doc["id"] in voided, "signature": new.signature,
                             "document": orjson.dumps(doc).decode()})
                added.append(doc)
                out.append(doc)
            if rows:  # bulk inserts: the ORM's unit of work costs more than the rest of a request
                pks = s.scalars(insert(XapiStatement).returning(XapiStatement.id, sort_by_parameter_order=True), rows)
                agents: list[dict[str, Any]] = []
                activities: list[dict[str, Any]] = []
                for pk, doc in zip(pks, added, strict=True):
                    agents.extend({"statement_pk": pk, "project_id": project_id, "agent_key": key, "direct": direct}
                                  for key, direct in set(_agents(doc)))
                    activities.extend({"statement_pk": pk, "project_id": project_id, "activity_id": key,
                                       "direct": direct} for key, direct in set(_activities(doc)))
                if agents:
                    s.execute(insert(XapiStatementAgent), agents)
                if activities:
                    s.execute(insert(XapiStatementActivity), activities)
            if targets:
                s.execute(update(XapiStatement).where(mine, XapiStatement.statement_id.in_(list(targets)))
                          .values(voided=True))
        return out

    @staticmethod
    def _check_void_targets(s: Session, project_id: int, targets: dict[str, int],
                            statements: Sequence[NewStatement]) -> None:
        """A voiding statement cannot be voided (Data 2.3.2)."""
        if not targets:
            return
        voiding = set(s.scalars(select(XapiStatement.statement_id).where(
            XapiStatement.project_id == project_id, XapiStatement.statement_id.in_(list(targets)),
            XapiStatement.voids.is_not(None))))
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
        A statement that refers to a matching statement (StatementRef) matches too (Communication 2.1.3)."""
        conditions = self._matches(project_id, f, XapiStatement)
        where: list[ColumnElement[bool]] = [XapiStatement.project_id == project_id, XapiStatement.voided.is_(False)]
        if conditions:
            inner = aliased(XapiStatement)
            matched = select(inner.statement_id).where(inner.project_id == project_id,
                                                       *self._matches(project_id, f, inner))
            where.append(or_(and_(*conditions), XapiStatement.ref_id.in_(matched.scalar_subquery())))
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
