"""Segment / RudderStack compatible collection: POST /v1/batch, /v1/track, /v1/identify, /v1/alias, /v1/page,
/v1/screen, /v1/group (docs/collection.md)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from edupulse.api import compat
from edupulse.api.auth import platform
from edupulse.api.errors import refusals
from edupulse.api.ingest import read_body
from edupulse.ingest import compat as compat_records
from edupulse.ingest import segment
from edupulse.ingest.validate import BodyError


class SegmentError(BaseModel):
    """Segment's error body."""

    success: Literal[False]
    code: str
    message: str


class SegmentResult(compat.CompatResult):
    success: Literal[True]


router = APIRouter(tags=["collection: Segment / RudderStack"], responses={
    200: {"model": SegmentResult, "description": "Stored: per-record errors list the refused messages"},
    **refusals(*compat.COMPAT_STATUSES, model=SegmentError)})
_CODES = {400: "invalid_request", 401: "unauthorized", 413: "payload_too_large", 503: "service_unavailable"}


def failure(status: int, message: str) -> Response:
    """Segment's error body: {"success": false, "code", "message"}."""
    body = {"success": False, "code": _CODES.get(status, "invalid_request"), "message": message}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def basic_user(request: Request) -> str | None:
    """The user name of HTTP basic auth (Segment's write key), or None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


async def collect(request: Request, kind: str | None) -> Response:
    """Take one Segment request: authenticate, decode, translate, store, answer {"success": true}."""
    received = compat_records.now_us()
    limits = platform(request).settings.ingest
    key = basic_user(request)
    project = compat.project_by_write_key(request, key)
    if key is not None and project is None:
        return failure(401, "unknown write key: use the project's write key as the basic-auth user name")
    body = b""
    try:
        body = await read_body(request, limits.max_body_bytes)
        messages, envelope = segment.parse_body(body, kind, limits.max_batch_records)
    except BodyError as exc:
        if project is not None and exc.status == 400:
            await compat.quarantine_body(request, project, segment.SOURCE, exc.message, body)
        return failure(exc.status, exc.message)
    if project is None:  # analytics.js and some servers send the key in the body instead
        project = compat.project_by_write_key(request, envelope.get("writeKey") if isinstance(
            envelope.get("writeKey"), str) else None)
        if project is None:
            return failure(401, "send the project's write key as the basic-auth user name (or writeKey in the body)")
    clock = compat_records.Clock(received, segment.sent_at_us(envelope))
    translation = segment.translate_all(messages, clock)
    try:
        outcome = await compat.store(request, project, translation, segment.SOURCE, "batch" if kind is None else kind,
                                     len(body))
    except BodyError as exc:
        return failure(exc.status, exc.message)
    result: dict[str, Any] = {"success": True, "accepted": outcome.accepted, "rejected": outcome.rejected}
    if outcome.errors:
        result["errors"] = outcome.errors
    return Response(orjson.dumps(result), media_type="application/json")


def _route(kind: str | None) -> Any:
    async def endpoint(request: Request) -> Response:
        return await collect(request, kind)

    endpoint.__name__ = f"segment_{kind or 'batch'}"
    return endpoint


for _kind in (None, *segment.MESSAGE_TYPES):
    router.add_api_route(f"/v1/{_kind or 'batch'}", _route(_kind), methods=["POST"],
                         summary=f"Segment / RudderStack {_kind or 'batch'} (basic auth: write key as user name)")
