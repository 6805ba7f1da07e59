"""POST /api/v1/query: run an analysis model (see docs/queries.md) with the project's secret API key.

`?format=csv` answers with the result as CSV. `?query_id=ID` names the running query so that
`DELETE /api/v1/query/ID` can cancel it (from another request)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import api_project, platform
from edupulse.meta.db import ProjectInfo
from edupulse.queries import QueryError, run_query
from edupulse.queries.base import to_csv
from edupulse.store.base import QueryControl

router = APIRouter(tags=["analysis"])
_QUERY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


@router.post("/api/v1/query", summary="Run an analysis (trends, funnel, retention, ...) described by a JSON query")
async def query(
    request: Request,
    body: Annotated[Any, Body(examples=[{"kind": "trends", "series": [{"event": "page_view"}]}])],
    project: ProjectInfo = Depends(api_project),
    output: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
    query_id: Annotated[str | None, Query(description="a name to cancel the query by")] = None,
) -> Response:
    plat = platform(request)
    if query_id is not None and not _QUERY_ID.match(query_id):
        return _error(400, "query_id: use 1-64 letters, digits and _ . : -")
    key = f"{project.id}:{query_id}" if query_id else None
    control = QueryControl(plat.settings.query.timeout_seconds)
    if key is not None:
        if key in plat.running_queries:
            return _error(409, f"a query named {query_id!r} is running already")
        plat.running_queries[key] = control
    try:
        result = await run_in_threadpool(run_query, plat.query_env(), project, body, None, control)
    except QueryError as exc:
        return _error(exc.status, str(exc))
    finally:
        if key is not None:
            plat.running_queries.pop(key, None)
    if output == "csv":
        return Response(to_csv(result), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{result["kind"]}.csv"'})
    return Response(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")


@router.delete("/api/v1/query/{query_id}", summary="Cancel a running query started with ?query_id=ID")
def cancel(request: Request, query_id: str, project: ProjectInfo = Depends(api_project)) -> Response:
    control = platform(request).running_queries.get(f"{project.id}:{query_id}")
    if control is None:
        return _error(404, f"no query named {query_id!r} is running in this project")
    control.cancel()
    return Response(orjson.dumps({"cancelled": query_id}), media_type="application/json")
