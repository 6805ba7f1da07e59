"""POST /api/v1/query: run an analysis model (see docs/queries.md) in the request's project.

Metrics are resolved by name from the project's catalogue, advisors see only persons assigned to them, and
personal properties are masked for callers without `personal:view`."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import Principal, platform, require
from edupulse.auth.masking import mask_result
from edupulse.auth.permissions import Permission
from edupulse.auth.scope import person_scope
from edupulse.queries import QueryError, run_query

router = APIRouter(tags=["analysis"])


@router.post("/api/v1/query", summary="Run an analysis (trends, ...) described by a JSON query")
async def query(
    request: Request, body: Annotated[Any, Body(examples=[{"kind": "trends", "series": [{"event": "page_view"}]}])],
    principal: Principal = Depends(require(Permission.query_run)),
) -> Response:
    plat = platform(request)
    project = principal.project
    assert project is not None
    if isinstance(body, dict) and body.get("kind") == "sql" and not principal.can(Permission.query_sql):
        raise HTTPException(403, f"{Permission.query_sql.value} is needed for SQL analyses")
    scope = None
    if principal.restricted_to_assigned and principal.user is not None:
        scope = person_scope(project.id, plat.meta.accounts.assignments(project.id, principal.user.id))
    try:
        result = await run_in_threadpool(run_query, plat.store, project, body, metrics=plat.meta.metrics.lookup(
            project.id), person_scope=scope)
    except QueryError as exc:
        return Response(orjson.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
    if not principal.can(Permission.personal_view):
        breakdown = body.get("breakdown") if isinstance(body, dict) else None
        props = breakdown.get("properties") if isinstance(breakdown, dict) else None
        result = mask_result(result, breakdown=props if isinstance(props, list) else None)
    return Response(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")
