"""The xAPI document resources (Communication 2.2-2.7): State, Agent Profile and Activity Profile documents in
the metadata database, with the concurrency rules of Communication 3.1.

A document is found by its scope (the resource, the Activity and/or the Agent, and for State the registration)
and its id. Its content is kept exactly as sent, with its content type; its ETag is the SHA-1 of the content.
Every change checks the request's preconditions and writes in one transaction, so two clients changing one
document cannot both win: the one whose If-Match no longer holds gets 412.

- If-Match (a list of ETags, or *) holds when the document exists with one of those ETags;
- If-None-Match (a list, or *) holds when the document does not exist, or has none of those ETags;
- a PUT to an Agent or Activity Profile document that exists needs one of the two (else 409), as the State
  resource does not (Communication 3.1.s3);
- POST merges a JSON object into a stored JSON object (top-level properties replaced); anything else
  posted onto an existing document is refused (400), a POST of a new document stores it as PUT does.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from edupulse.meta.db import MetadataStore
from edupulse.meta.xapi_models import XapiDocument

DOCUMENTS = cast(Table, XapiDocument.__table__)
STATE, AGENT_PROFILE, ACTIVITY_PROFILE = "state", "agent_profile", "activity_profile"
JSON_TYPE = "application/json"
T = TypeVar("T")


class DocumentError(Exception):
    """A document request refused by the rules of the resource: `status` (400, 409 or 412) and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class DocumentScope:
    """Where documents live: State is per Activity, Agent (and registration); profiles per Activity or Agent."""

    resource: str
    activity_id: str = ""
    agent_key: str = ""
    registration: str = ""

    @property
    def scope_key(self) -> str:
        return _digest(self.resource, self.activity_id, self.agent_key)

    def document_key(self, document_id: str) -> str:
        return _digest(self.scope_key, self.registration, document_id)


@dataclass(frozen=True)
class Document:
    document_id: str
    content_type: str
    content: bytes
    etag: str
    updated_us: int


@dataclass(frozen=True)
class Preconditions:
    """The If-Match and If-None-Match headers of a request, parsed (None when absent)."""

    if_match: frozenset[str] | None = None
    if_none_match: frozenset[str] | None = None

    @classmethod
    def parse(cls, if_match: str | None, if_none_match: str | None) -> Preconditions:
        return cls(_etags(if_match), _etags(if_none_match))

    @property
    def given(self) -> bool:
        return self.if_match is not None or self.if_none_match is not None

    def check(self, current: str | None) -> None:
        """Raise 412 unless the document's current ETag (None when it does not exist) satisfies the headers."""
        if self.if_match is not None and (current is None or ("*" not in self.if_match and
                                                               current not in self.if_match)):
            what = "does not exist" if current is None else f"has changed (its ETag is now \"{current}\")"
            raise DocumentError(412, f"If-Match does not hold: the document {what}; GET it again and retry with "
                                     "its current ETag")
        if self.if_none_match is not None and current is not None and (
                "*" in self.if_none_match or current in self.if_none_match):
            raise DocumentError(412, "If-None-Match does not hold: the document exists already; GET it and send its "
                                     "ETag in If-Match to change it")


def _etags(header: str | None) -> frozenset[str] | None:
    if header is None:
        return None
    tags = set()
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.add(tag.strip('"').lower())
    return frozenset(t for t in tags if t)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def etag_of(content: bytes) -> str:
    """The ETag of a document: the hexadecimal SHA-1 of its content (Communication 3.1.s4.b2)."""
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()


def is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == JSON_TYPE


def _json_object(content: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise DocumentError(400, f"{what} is not a JSON object, so the two cannot be merged; PUT the whole "
                                 "document instead")
    return value


def merged(stored: Document, content_type: str, content: bytes) -> bytes:
    """A POSTed JSON object merged into the stored one (Communication 2.2.s7): top-level properties replaced."""
    if not is_json(stored.content_type) or not is_json(content_type):
        raise DocumentError(400, f"a POST merges JSON objects: the stored document is {stored.content_type!r} and "
                                 f"the posted one {content_type!r}; both must be application/json (or PUT instead)")
    old = _json_object(stored.content, "the stored document")
    new = _json_object(content, "the posted document")
    return orjson.dumps({**old, **new})


class DocumentStore:
    """Documents of every project: get one, list ids, put (replace or merge), delete one or all of a scope."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        # SQLite has one writer: a read-then-write transaction that lost the race would fail to upgrade its lock,
        # so this process's writes take turns (a data directory has one server process).
        self._sqlite_writes = threading.Lock() if meta.engine.dialect.name == "sqlite" else None

    def _where(self, project_id: int, scope: DocumentScope) -> list[Any]:
        where = [DOCUMENTS.c.project_id == project_id, DOCUMENTS.c.scope_key == scope.scope_key]
        if scope.registration:
            where.append(DOCUMENTS.c.registration == scope.registration)
        return where

    def get(self, project_id: int, scope: DocumentScope, document_id: str) -> Document | None:
        with self.meta.engine.connect() as conn:
            return self._current(conn, project_id, scope, document_id, lock=False)

    def ids(self, project_id: int, scope: DocumentScope, since_us: int | None) -> tuple[list[str], int | None]:
        """Ids of the scope's documents (of every registration unless the scope names one), changed after
        `since_us` when given, and when the latest of them changed."""
        where = self._where(project_id, scope)
        if since_us is not None:
            where.append(DOCUMENTS.c.updated_us > since_us)
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(DOCUMENTS.c.document_id, DOCUMENTS.c.updated_us).where(*where)
                                .order_by(DOCUMENTS.c.document_id)).all()
        ids = list(dict.fromkeys(row.document_id for row in rows))
        return ids, max((row.updated_us for row in rows), default=None)

    @staticmethod
    def _current(conn: Connection, project_id: int, scope: DocumentScope, document_id: str,
                 lock: bool) -> Document | None:
        query = select(DOCUMENTS.c.document_id, DOCUMENTS.c.content_type, DOCUMENTS.c.content, DOCUMENTS.c.etag,
                       DOCUMENTS.c.updated_us).where(DOCUMENTS.c.project_id == project_id,
                                                     DOCUMENTS.c.document_key == scope.document_key(document_id))
        row = conn.execute(query.with_for_update() if lock else query).first()
        return None if row is None else Document(row.document_id, row.content_type, bytes(row.content), row.etag,
                                                 row.updated_us)

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run a read-check-write in one transaction; a concurrent insert of the same document is decided again."""
        for attempt in range(2):
            try:
                if self._sqlite_writes is None:
                    with self.meta.engine.begin() as conn:
                        return work(conn)
                with self._sqlite_writes, self.meta.engine.begin() as conn:
                    return work(conn)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def put(self, project_id: int, scope: DocumentScope, document_id: str, content_type: str, content: bytes,
            conditions: Preconditions, now_us: int, merge: bool) -> None:
        """Store a document (PUT), or merge it into the stored one (POST)."""

        def work(conn: Connection) -> None:
            current = self._current(conn, project_id, scope, document_id, lock=True)
            conditions.check(current.etag if current else None)
            if current is not None and not merge and not conditions.given and scope.resource != STATE:
                raise DocumentError(409, "the document exists already: GET it and send its ETag in If-Match to "
                                         "replace it (or If-None-Match: * to create only when absent)")
            new_type, new_content = content_type, content
            if merge and current is not None:
                new_type, new_content = current.content_type, merged(current, content_type, content)
            values = {"content_type": new_type[:255], "content": new_content, "etag": etag_of(new_content),
                      "updated_us": now_us}
            if current is None:
                conn.execute(insert(DOCUMENTS), [{
                    "project_id": project_id, "resource": scope.resource, "scope_key": scope.scope_key,
                    "document_key": scope.document_key(document_id), "activity_id": scope.activity_id,
                    "agent_key": scope.agent_key, "registration": scope.registration, "document_id": document_id,
                    **values}])
            else:
                conn.execute(update(DOCUMENTS).where(
                    DOCUMENTS.c.project_id == project_id,
                    DOCUMENTS.c.document_key == scope.document_key(document_id)).values(**values))

        self._write(work)

    def delete(self, project_id: int, scope: DocumentScope, document_id: str, conditions: Preconditions) -> None:
        """Delete one document (deleting one that does not exist is not an error, unless If-Match says it must)."""

        def work(conn: Connection) -> None:
            current = self._current(conn, project_id, scope, document_id, lock=True)
            conditions.check(current.etag if current else None)
            if current is not None:
                conn.execute(delete(DOCUMENTS).where(DOCUMENTS.c.project_id == project_id,
                                                     DOCUMENTS.c.document_key == scope.document_key(document_id)))

        self._write(work)

    def delete_all(self, project_id: int, scope: DocumentScope) -> int:
        """Delete every document of a scope (of every registration unless the scope names one)."""

        def work(conn: Connection) -> int:
            return conn.execute(delete(DOCUMENTS).where(*self._where(project_id, scope))).rowcount or 0

        return self._write(work)
