"""POST /api/v1/ingest: the native ingestion endpoint."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import platform, write_project
from edupulse.meta.db import ProjectInfo

router = APIRouter(tags=["ingestion"])


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str, **extra: Any) -> Response:
    return Response(orjson.dumps({"error": message, **extra}), status_code=status, media_type="application/json")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped, refused early when larger than `limit`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"request body is {declared} bytes; the limit is {limit}: send smaller batches")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"request body is over the limit of {limit} bytes: send smaller batches")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding == "gzip" or body[:2] == b"\x1f\x8b":
        try:
            inflater = zlib.decompressobj(wbits=31)
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BodyError(400, f"body is not valid gzip: {exc}") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise BodyError(413, f"body is over {limit} bytes once decompressed: send smaller batches")
    elif encoding not in ("", "identity"):
        raise BodyError(415, f"content-encoding {encoding!r} is not supported; use gzip or none")
    return body


def parse_json(body: bytes) -> Any:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"body is not UTF-8: invalid byte at offset {exc.start}") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


@router.post(
    "/api/v1/ingest", summary="Send a batch of records (track, profile_*, identify, alias, group_set, item_set)"
)
async def ingest(request: Request, project: ProjectInfo = Depends(write_project)) -> Response:
    plat = platform(request)
    limits = plat.settings.ingest
    try:
        body = await read_body(request, limits.max_body_bytes)
        data = parse_json(body)
    except BodyError as exc:
        if exc.status == 400 and "body" in locals():
            await run_in_threadpool(plat.ingestor.quarantine_body, project, "native", exc.message, body)
        return error(exc.status, exc.message)
    batch = data.get("batch") if isinstance(data, dict) else None
    if not isinstance(batch, list):
        return error(400, 'body must be a JSON object {"batch": [record, ...]}')
    if len(batch) > limits.max_batch_records:
        return error(413, f"batch has {len(batch)} records; at most {limits.max_batch_records} per request")
    prepared = plat.ingestor.prepare(project, batch, body_bytes=len(body))
    if prepared.quarantine:
        await run_in_threadpool(plat.catalog.meta.add_quarantine, prepared.quarantine)
        prepared.quarantine = []
    future = plat.ingestor.commit(prepared)
    if future is not None:
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:  # nothing was acknowledged: the client must retry
            return error(503, f"could not store the batch durably ({exc}); retry later")
    return Response(orjson.dumps(prepared.outcome.as_response()), media_type="application/json")
