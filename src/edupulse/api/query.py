"""POST /api/v1/query: run an analysis model (see docs/queries.md) with the project's secret API key."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import api_project, platform
from edupulse.meta.db import ProjectInfo
from edupulse.queries import QueryError, run_query
from edupulse.queries.base import QueryEnv

router = APIRouter(tags=["analysis"])


@router.post("/api/v1/query", summary="Run an analysis (trends, ...) described by a JSON query")
async def query(
    request: Request, body: Annotated[Any, Body(examples=[{"kind": "trends", "series": [{"event": "page_view"}]}])],
    project: ProjectInfo = Depends(api_project),
) -> Response:
    plat = platform(request)
    try:
        env = QueryEnv(plat.store, plat.meta, limits=plat.settings.query)  # the metadata holds saved segments
        result = await run_in_threadpool(run_query, env, project, body)
    except QueryError as exc:
        return Response(orjson.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
    return Response(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")
