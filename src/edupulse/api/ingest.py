"""POST /api/v1/ingest: the native ingestion endpoint."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from concurrent.futures import Executor
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from edupulse.api.auth import platform, write_project
from edupulse.api.errors import ErrorBody, Responses, refusals
from edupulse.ingest.validate import BodyError, PreparedBatch, parse_body, validate_body
from edupulse.meta.db import ProjectInfo

router = APIRouter(tags=["ingestion"])


class RecordResult(BaseModel):
    index: int
    status: Literal["accepted", "rejected"]
    field: str | None = Field(None, description="where a rejected record is wrong")
    reason: str | None = Field(None, description="what to change (rejected records)")


class IngestResult(BaseModel):
    """One result per record, in order; accepted records are on disk."""

    accepted: int
    rejected: int
    results: list[RecordResult]


INGEST_RESPONSES: Responses = {
    200: {"model": IngestResult, "description": "Per-record results; accepted records are durable"},
    **refusals(400, 413, 415, 503, model=ErrorBody, s400="The body is not JSON, not UTF-8, not valid gzip, or not "
               '{"batch": [...]}', s413="The body or the batch is over the limit",
               s415="A Content-Encoding other than gzip"),
}


def error(status: int, message: str, **extra: Any) -> Response:
    return Response(orjson.dumps({"error": message, **extra}), status_code=status, media_type="application/json")


async def read_body(request: Request, limit: int, sniff_gzip: bool = True) -> bytes:
    """The request body, gunzipped (when Content-Encoding says so, or, with `sniff_gzip`, when it starts as gzip
    does), refused early when larger than `limit`."""
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
    if encoding == "gzip" or (sniff_gzip and body[:2] == b"\x1f\x8b"):
        try:
            inflater = zlib.decompressobj(wbits=31)
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BodyError(400, f"body is not valid gzip: {exc}") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise BodyError(413, f"body is over {limit} bytes once decompressed: send smaller batches")
        if not inflater.eof:
            raise BodyError(400, "body is not valid gzip: the compressed data ends before the end of the stream")
    elif encoding not in ("", "identity"):
        raise BodyError(415, f"content-encoding {encoding!r} is not supported; use gzip or none")
    return body


@router.post(
    "/api/v1/ingest", summary="Send a batch of records (track, profile_*, identify, alias, group_set, item_set)",
    responses=INGEST_RESPONSES,
)
async def ingest(request: Request, project: ProjectInfo = Depends(write_project)) -> Response:
    return await ingest_request(request, project)


async def ingest_request(request: Request, project: ProjectInfo) -> Response:
    """Validate, quarantine and durably log the batch of a request for `project` (the native path)."""
    plat = platform(request)
    limits = plat.settings.ingest
    try:
        body = await read_body(request, limits.max_body_bytes)
    except BodyError as exc:
        return error(exc.status, exc.message)
    request_id = uuid.uuid4().hex
    prepared: PreparedBatch | BodyError | None = None
    pool: Executor | None = getattr(request.app.state, "validators", None)
    if pool is not None:  # validate in a worker process, in parallel with this one
        rules = plat.ingestor.rules(project)
        prepared = await asyncio.get_running_loop().run_in_executor(pool, validate_body, rules, body, request_id)
    if prepared is None:  # no workers, or a group type new to the project: here
        try:
            prepared = plat.ingestor.prepare(project, parse_body(body, limits.max_batch_records), request_id=request_id,
                                             body_bytes=len(body))
        except BodyError as exc:
            prepared = exc
    if isinstance(prepared, BodyError):
        if prepared.status == 400:
            await run_in_threadpool(plat.ingestor.quarantine_body, project, "native", prepared.message, body)
        return error(prepared.status, prepared.message)
    if prepared.rejections:
        await run_in_threadpool(plat.ingestor.quarantine, project, prepared)
    future = plat.ingestor.commit(project, prepared)
    if future is not None:
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:  # nothing was acknowledged: the client must retry
            return error(503, f"could not store the batch durably ({exc}); retry later")
    return Response(orjson.dumps(prepared.outcome.as_response()), media_type="application/json")
