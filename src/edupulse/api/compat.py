"""What the routers of other analytics protocols share: the native write path for translated records.

Each protocol router (collect_sensors.py, collect_posthog.py, collect_segment.py) authenticates in its own
way, decodes its wire format into a Translation (edupulse.ingest.compat) and hands it here: the records
are validated like native ones, refused ones are quarantined under the protocol's name, and the accepted
ones are durably logged before the router answers, exactly as POST /api/v1/ingest does.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from edupulse.api.auth import platform
from edupulse.ingest.compat import CompatOutcome, Translation, fold_outcome
from edupulse.ingest.validate import BodyError
from edupulse.meta.db import ProjectInfo


class RecordError(BaseModel):
    """A refused record of the request: its index as sent, where it is wrong and what to change."""

    index: int
    field: str
    reason: str


class CompatResult(BaseModel):
    accepted: int
    rejected: int
    errors: list[RecordError] | None = Field(None, description="the refused records (absent when none)")


COMPAT_STATUSES = (400, 401, 413, 415, 503)


def project_by_write_key(request: Request, key: str | None) -> ProjectInfo | None:
    """The project whose write key `key` is, if any."""
    if not key:
        return None
    return platform(request).catalog.by_write_key(key)


async def quarantine_body(request: Request, project: ProjectInfo, source: str, reason: str, body: bytes) -> None:
    """Keep a request the protocol adapter could not read where an admin looks."""
    await run_in_threadpool(platform(request).ingestor.quarantine_body, project, source, reason, body)


async def store(request: Request, project: ProjectInfo, translation: Translation, source: str, label: str,
                body_bytes: int | None = None) -> CompatOutcome:
    """Validate, quarantine and durably log translated records; return the outcome per sent record.
    BodyError(503) when the accepted records could not be made durable (nothing was acknowledged)."""
    ingestor = platform(request).ingestor
    request_id = uuid.uuid4().hex
    prepared = ingestor.prepare(project, translation.records, source=source, request_id=request_id,
                                body_bytes=body_bytes)
    outcome = fold_outcome(translation, prepared, request_id, label)
    if prepared.rejections:
        await run_in_threadpool(ingestor.quarantine, project, prepared, source)
    future = ingestor.commit(project, prepared, source)
    if future is not None:
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:  # nothing was acknowledged: the client must retry
            raise BodyError(503, f"could not store the batch durably ({exc}); retry later") from None
    return outcome


COLLECTION_PATHS = frozenset({"/sa", "/sa.gif", "/capture", "/capture/", "/batch", "/batch/", "/e", "/e/", "/i/v0/e",
                              "/i/v0/e/"})


# Response headers the xAPI clients read (concurrency, paging consistency, version).
EXPOSED = b"ETag, Last-Modified, X-Experience-API-Version, X-Experience-API-Consistent-Through"


def is_collection_path(path: str) -> bool:
    """Paths that browsers send to from other sites' pages (the SDKs' collection endpoints)."""
    return path in COLLECTION_PATHS or path.startswith(("/v1/", "/xapi/"))


class CollectionCORS:
    """Cross-origin access to the collection endpoints only: web pages on the organization's own sites send to
    them with the browser SDKs. Write keys are public, so any origin may send; the rest of the API stays
    same-origin. A pure ASGI wrapper, so other requests pay one set lookup."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_collection_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allow = [(b"access-control-allow-origin", origin), (b"access-control-allow-credentials", b"true"),
                 (b"vary", b"Origin"), (b"access-control-expose-headers", EXPOSED)]
        if scope["method"] == "OPTIONS":
            requested = headers.get(b"access-control-request-headers", b"content-type")
            await send({"type": "http.response.start", "status": 204, "headers": [
                *allow, (b"access-control-allow-methods", b"GET, HEAD, POST, PUT, DELETE, OPTIONS"),
                (b"access-control-allow-headers", requested), (b"access-control-max-age", b"86400")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *allow]}
            await send(message)

        await self.app(scope, receive, send_with_cors)
