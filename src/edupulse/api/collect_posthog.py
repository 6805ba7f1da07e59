"""PostHog compatible collection: POST (and GET) /capture/, /batch/, /e/, /i/v0/e/ (docs/collection.md)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from edupulse.api import compat
from edupulse.api.auth import platform
from edupulse.api.errors import refusals
from edupulse.api.ingest import read_body
from edupulse.ingest import compat as compat_records
from edupulse.ingest import posthog
from edupulse.ingest.validate import BodyError


class PostHogError(BaseModel):
    """PostHog's error body."""

    type: str
    code: str
    detail: str
    attr: str | None


class PostHogResult(compat.CompatResult):
    status: Literal[1]


router = APIRouter(tags=["collection: PostHog"], responses={
    200: {"model": PostHogResult, "description": "Stored: per-record errors list the refused events"},
    **refusals(*compat.COMPAT_STATUSES, model=PostHogError)})


def failure(status: int, detail: str) -> Response:
    """PostHog's error body: {"type", "code", "detail", "attr"}."""
    kind, code = {
        401: ("authentication_error", "invalid_api_key"),
        413: ("validation_error", "payload_too_large"),
        503: ("server_error", "service_unavailable"),
    }.get(status, ("validation_error", "invalid_payload"))
    return Response(orjson.dumps({"type": kind, "code": code, "detail": detail, "attr": None}), status_code=status,
                    media_type="application/json")


def _form(request: Request, body: bytes) -> dict[str, str] | None:
    """Form fields of a urlencoded body, or of the query string of a GET (posthog-js's image fallback)."""
    if request.method == "GET":
        return dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in content_type or body.startswith(b"data="):
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=100))
    return None


async def capture(request: Request) -> Response:
    """Take one PostHog request: decode, authenticate, translate, store, answer {"status": 1}."""
    received = compat_records.now_us()
    limits = platform(request).settings.ingest
    query = dict(request.query_params)
    body = b""
    try:
        if request.method == "POST":
            body = await read_body(request, limits.max_body_bytes)
        payload = posthog.parse_payload(body, _form(request, body), query.get("compression", ""))
        events, envelope = posthog.events_of(payload, limits.max_batch_records)
    except BodyError as exc:
        project = compat.project_by_write_key(request, query.get("api_key") or query.get("token"))
        if project is not None and exc.status == 400:
            await compat.quarantine_body(request, project, posthog.SOURCE, exc.message, body)
        return failure(exc.status, exc.message)
    key = posthog.api_key(envelope, query, events)
    if key is None:
        return failure(401, "API key not provided: send the project's write key as api_key (or token) in the body")
    project = compat.project_by_write_key(request, key)
    if project is None:
        return failure(401, "Project API key invalid: use the project's write key as the PostHog api_key")
    clock = posthog.Clock(received, posthog.sent_at_us(envelope, query))
    translation = posthog.translate_all(events, clock)
    try:
        outcome = await compat.store(request, project, translation, posthog.SOURCE, "batch", len(body) or None)
    except BodyError as exc:
        return failure(exc.status, exc.message)
    result: dict[str, Any] = {"status": 1, "accepted": outcome.accepted, "rejected": outcome.rejected}
    if outcome.errors:
        result["errors"] = outcome.errors
    return Response(orjson.dumps(result), media_type="application/json")


for _path in ("/capture/", "/batch/", "/e/", "/i/v0/e/", "/capture", "/batch", "/e", "/i/v0/e"):
    for _method in ("GET", "POST"):  # a route per method: each operation gets its own id
        router.add_api_route(_path, capture, methods=[_method], include_in_schema=_path in ("/capture/", "/batch/"),
                             summary="PostHog SDK events (api_key = the project's write key)")
