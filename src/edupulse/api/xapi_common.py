"""What every xAPI resource shares: credentials, the version header, errors in the resource's style, the request
body, and the LRS's long-lived parts (one per app, so requests share the statements' group commit)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request, Response
from pydantic import BaseModel

from edupulse.api.auth import platform
from edupulse.api.errors import refusals
from edupulse.api.ingest import read_body
from edupulse.ingest.validate import BodyError
from edupulse.ingest.xapi import XAPI_VERSION, agent, ifi_key, is_supported_version
from edupulse.ingest.xapi_types import StatementError, format_timestamp
from edupulse.meta.db import MetadataStore, ProjectInfo
from edupulse.meta.xapi import StatementStore
from edupulse.meta.xapi_activities import ActivityCatalogue
from edupulse.meta.xapi_documents import DocumentStore

VERSION_HEADER = "X-Experience-API-Version"
CONSISTENT_THROUGH = "X-Experience-API-Consistent-Through"
CHALLENGE = {"WWW-Authenticate": 'Basic realm="xAPI"'}
COLLECTION_TAG = "collection: xAPI"
_LRS_LOCK = threading.Lock()


class XapiProblem(BaseModel):
    """Why the request was refused, and where (a parameter, header or part of a statement)."""

    error: str
    location: str | None = None


# What every xAPI route may answer besides its own results (the OpenAPI description of its routers).
REFUSALS = refusals(400, 401, 403, 413, 415, 503, model=XapiProblem,
                    s403="The Basic password is not the project's secret API key")


class XapiError(Exception):
    """An error answered in the resource's style: status, message and where."""

    def __init__(self, status: int, message: str, location: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.location, self.headers = status, message, location, headers or {}

    @classmethod
    def bad(cls, exc: StatementError) -> XapiError:
        return cls(400, f"{exc.location}: {exc.reason}", exc.location)

    def response(self, extra: dict[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"error": self.message}
        if self.location:
            body["location"] = self.location
        return respond(orjson.dumps(body), self.status, headers={**self.headers, **(extra or {})})


def respond(content: bytes | None, status: int = 200, media_type: str = "application/json",
            headers: dict[str, str] | None = None) -> Response:
    return Response(content, status_code=status, media_type=media_type if content is not None else None,
                    headers={VERSION_HEADER: XAPI_VERSION, **(headers or {})})


def consistent_through() -> dict[str, str]:
    """Statements are readable as soon as they are acknowledged, so every statement stored before now is."""
    return {CONSISTENT_THROUGH: format_timestamp(dt.datetime.now(dt.UTC))}


@dataclass
class LearningRecordStore:
    """The xAPI parts of one app: statements (with their group commit), canonical Activities, documents."""

    statements: StatementStore
    activities: ActivityCatalogue
    documents: DocumentStore

    @classmethod
    def open(cls, meta: MetadataStore, index_seconds: float = 1.0) -> LearningRecordStore:
        activities = ActivityCatalogue(meta)
        statements = StatementStore(meta, activities, deferred=True, index_seconds=index_seconds)
        return cls(statements, activities, DocumentStore(meta))


def lrs(request: Request) -> LearningRecordStore:
    state = request.app.state
    found: LearningRecordStore | None = getattr(state, "xapi", None)
    if found is None:
        with _LRS_LOCK:
            found = getattr(state, "xapi", None)
            if found is None:
                plat = platform(request)
                found = state.xapi = LearningRecordStore.open(plat.meta, plat.settings.ingest.xapi_index_seconds)
    return found


def _basic(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise XapiError(401, "send HTTP Basic authentication: the project's write key as user name (and its secret "
                             "API key as password to read statements or use documents)", headers=CHALLENGE)
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise XapiError(401, "the Basic credentials are not valid base64 of user:password", headers=CHALLENGE) from None
    return user, password


def authorize(request: Request, read: bool) -> ProjectInfo:
    """The project of the credentials: the write key as user; its secret API key as password is needed to read
    (and for the document resources) and, when given on a write, must match. Then the version header is checked."""
    plat = platform(request)
    user, password = _basic(request)
    project = plat.catalog.by_write_key(user)
    if project is None:
        raise XapiError(401, "unknown write key in the Basic user name: check the key shown by "
                             "'edupulse project create'", headers=CHALLENGE)
    if password or read:
        cache: dict[str, ProjectInfo] = request.app.state.api_key_cache
        keyed = cache.get(password) or (plat.meta.project_by_api_key(password) if password else None)
        if keyed is None or keyed.id != project.id:
            what = "this request needs" if read and not password else "the password must be"
            raise XapiError(401 if not password else 403, f"{what} the project's secret API key as the Basic password",
                            headers=CHALLENGE)
        cache[password] = keyed
    version = request.headers.get(VERSION_HEADER)
    if version is None:
        raise XapiError(400, f"the {VERSION_HEADER} header is required; send {XAPI_VERSION}", VERSION_HEADER)
    if not is_supported_version(version.strip()):
        raise XapiError(400, f"{VERSION_HEADER} {version[:20]!r} is not supported; use 1.0.x (1.0.0 to "
                             f"{XAPI_VERSION})", VERSION_HEADER)
    return project


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def body_of(request: Request, sniff_gzip: bool = True) -> bytes:
    """The request body; documents are kept as sent, so only Content-Encoding: gzip is decoded for them."""
    try:
        return await read_body(request, platform(request).settings.ingest.max_body_bytes, sniff_gzip)
    except BodyError as exc:
        raise XapiError(exc.status, exc.message, "body") from None


def check_params(params: Mapping[str, str], allowed: set[str] | frozenset[str], resource: str) -> None:
    """Unknown parameters (and parameters in another case) are refused (Communication 3.2.s3.b7-b8)."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise XapiError(400, f"{unknown[0][:40]!r} is not a parameter of the {resource} here; use "
                             f"{', '.join(sorted(allowed))} (names are case-sensitive)", unknown[0][:40])


def required(params: Mapping[str, str], name: str, resource: str) -> str:
    if name not in params:
        raise XapiError(400, f"the {resource} needs the parameter {name}", name)
    return params[name]


def agent_param(text: str, name: str = "agent") -> tuple[dict[str, Any], str]:
    """An `agent` parameter: JSON of an Agent (not a Group); returns it and its identifier key."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise XapiError(400, f"{name} must be an Agent as JSON, such as "
                             '{"mbox": "mailto:learner@example.com"}', name) from None
    try:
        agent(value, name, group_allowed=False)
    except StatementError as exc:
        raise XapiError.bad(exc) from None
    key = ifi_key(value)
    assert key is not None  # an Agent has exactly one identifier
    return value, key
