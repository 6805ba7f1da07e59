"""POST /api/v1/query: run an analysis model (see docs/queries.md) in the request's project.

Metrics are resolved by name from the project's catalogue, advisors see only persons assigned to them,
personal properties are masked for callers without `personal:view`, and CSV exports are audited.

`?format=csv` answers with the result as CSV. `?query_id=ID` names the running query so that
`DELETE /api/v1/query/ID` can cancel it (from another request)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import Principal, client_of, platform, require
from edupulse.api.errors import ErrorBody, Responses, refusals
from edupulse.auth.masking import MASKER, for_masked_caller
from edupulse.auth.permissions import Permission
from edupulse.queries.errors import QueryError
from edupulse.queries.service import InternalQueryError, PersonScope
from edupulse.store.base import QueryControl

router = APIRouter(tags=["analysis"])
_QUERY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _error(status: int, message: str, **extra: Any) -> Response:
    return Response(orjson.dumps({"error": message, **extra}), status_code=status, media_type="application/json")


def refused(exc: QueryError | InternalQueryError) -> Response:
    """The answer to a query that did not run: the caller's mistake (4xx) or ours (500, with the error id)."""
    if isinstance(exc, InternalQueryError):
        return _error(500, str(exc), error_id=exc.error_id)
    return _error(exc.status, str(exc))


class InternalErrorBody(ErrorBody):
    """A defect of EduPulse stopped the query; the server's log holds its trace under `error_id`."""

    error_id: str


QUERY_RESPONSES: Responses = {
    200: {"description": "The result (JSON), or with ?format=csv its table as CSV",
          "content": {"text/csv": {"schema": {"type": "string"}}}},
    **refusals(400, 409, 413, 415, 499, 504, model=ErrorBody, s409="A query of this query_id is running",
               s413="The result is too large", s415="The body is not JSON"),
    500: {"model": InternalErrorBody, "description": "An internal error (not the query's fault): report its error_id"},
}


@router.post("/api/v1/query", summary="Run an analysis (trends, funnel, retention, ...) described by a JSON query",
             responses=QUERY_RESPONSES)
async def query(
    request: Request,
    body: Annotated[Any, Body(examples=[{"kind": "trends", "series": [{"event": "page_view"}]}])],
    principal: Principal = Depends(require(Permission.query_run)),
    output: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
    query_id: Annotated[str | None, Query(description="a name to cancel the query by")] = None,
) -> Response:
    plat = platform(request)
    project = principal.project
    assert project is not None
    content_type = request.headers.get("content-type", "")
    if not isinstance(body, dict) and "json" not in content_type:
        return _error(415, f"send the query as JSON with 'Content-Type: application/json' (got {content_type!r})")
    if isinstance(body, dict) and body.get("kind") == "sql" and not (
            principal.can(Permission.query_sql) and principal.can(Permission.personal_view)):
        # raw SQL reads every property as stored, so it cannot be masked: it needs personal:view as well
        raise HTTPException(403, f"SQL analyses need {Permission.query_sql.value} and "
                                 f"{Permission.personal_view.value} (SQL reads personal data unmasked)")
    if not principal.can(Permission.personal_view):
        refusal, body = for_masked_caller(body)
        if refusal is not None:
            raise HTTPException(403, refusal)
    if output == "csv" and not principal.can(Permission.export):
        raise HTTPException(403, f"{Permission.export.value} is needed for CSV exports")
    scope = None
    if principal.restricted_to_assigned and principal.user is not None:
        scope = PersonScope(tuple(plat.meta.accounts.assignments(project.id, principal.user.id)))
    if query_id is not None and not _QUERY_ID.match(query_id):
        return _error(400, "query_id: use 1-64 letters, digits and _ . : -")
    key = f"{project.id}:{query_id}" if query_id else None
    control = QueryControl(plat.settings.query.timeout_seconds)
    if key is not None:
        if key in plat.running_queries:
            return _error(409, f"a query named {query_id!r} is running already")
        plat.running_queries[key] = control
    try:
        answer = await run_in_threadpool(lambda: plat.query_service().run(project, body, control=control,
                                                                          scope=scope))
    except (QueryError, InternalQueryError) as exc:
        return refused(exc)
    finally:
        if key is not None:
            plat.running_queries.pop(key, None)
    if not principal.can(Permission.personal_view):
        answer = answer.masked(MASKER)
    if output == "csv":
        plat.meta.audit.record("export", principal.actor, actor_user_id=principal.user.id if principal.user else None,
                               project_id=project.id, target=answer.kind,
                               detail={"format": "csv", "query": body if isinstance(body, dict) else None},
                               client=client_of(request))
        return Response(answer.to_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{answer.kind}.csv"'})
    return Response(answer.to_json(), media_type="application/json")


@router.delete("/api/v1/query/{query_id}", summary="Cancel a running query started with ?query_id=ID",
               responses=refusals(404, model=ErrorBody, s404="No query of this name is running in the project"))
def cancel(request: Request, query_id: str,
           principal: Principal = Depends(require(Permission.query_run))) -> Response:
    project = principal.project
    assert project is not None
    control = platform(request).running_queries.get(f"{project.id}:{query_id}")
    if control is None:
        return _error(404, f"no query named {query_id!r} is running in this project")
    control.cancel()
    return Response(orjson.dumps({"cancelled": query_id}), media_type="application/json")
