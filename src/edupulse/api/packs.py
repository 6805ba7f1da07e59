"""/api/v1/packs: the education scenario packs (docs/packs.md): the list with what the project has installed,
a pack's headline numbers, install (idempotent; also upgrades) and uninstall."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import Principal, client_of, platform, require
from edupulse.api.errors import refusals
from edupulse.auth.masking import MASKER
from edupulse.auth.permissions import Permission
from edupulse.packs.headline import PackError
from edupulse.packs.service import PackService
from edupulse.queries.errors import QueryError
from edupulse.queries.service import InternalQueryError, PersonScope

router = APIRouter(tags=["packs"])
NOT_FOUND = refusals(404, s404="No such pack, or it is not available yet")


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


def _service(request: Request) -> PackService:
    return PackService(platform(request))


@router.get("/api/v1/packs", summary="The scenario packs, one per problem, with installed")
def list_packs(request: Request, principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    return _json({"packs": [p.model_dump() for p in _service(request).list(principal.project)]})


@router.get("/api/v1/packs/{name}/headline", summary="A pack's headline numbers for a period",
            responses=refusals(400, 404, 499, 504, s404="No such pack, or it is not available yet"))
async def headline(
    request: Request, name: str,
    principal: Principal = Depends(require(Permission.query_run)),
    date_range: Annotated[str | None, Query(description="all: every day of the data")] = None,
    date_from: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD")] = None,
    date_to: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD (default today)")] = None,
    roi_days: Annotated[int, Query(ge=1, le=3650, description="ROI within 30, 90 or 365 days (channel_quality)")] = 365,
    channel: Annotated[str | None, Query(max_length=200, description="leads of one channel (lead_tiering)")] = None,
    max_age_days: Annotated[int | None, Query(ge=0, le=36500,
                                              description="leads at most this many days old (lead_tiering)")] = None,
    class_id: Annotated[str | None, Query(min_length=1, max_length=200,
                                          description="one class's report: its students (learning_indicators)")] = None,
) -> Response:
    project = principal.project
    assert project is not None
    plat = platform(request)
    scope = None
    if principal.restricted_to_assigned and principal.user is not None:
        scope = PersonScope(tuple(plat.meta.accounts.assignments(project.id, principal.user.id)))
    try:
        found = await run_in_threadpool(lambda: PackService(plat).headline(
            project, name, date_range=date_range, date_from=date_from, date_to=date_to, scope=scope,
            roi_days=roi_days, **_lead_options(name, channel, max_age_days),
            **({"class_id": class_id} if class_id is not None else {})))
    except PackError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except (QueryError, InternalQueryError) as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if not principal.can(Permission.personal_view):
        found = found.masked(MASKER)
    return _json(found.model_dump())


def _lead_options(name: str, channel: str | None, max_age_days: int | None) -> dict[str, Any]:
    """The lead pool's filters, for the pack that has them."""
    if name != "lead_tiering":
        return {}
    return {"channel": channel, "max_age_days": max_age_days}


@router.get("/api/v1/packs/{name}", summary="One pack: what it needs and whether it is installed",
            responses=NOT_FOUND)
def get_pack(request: Request, name: str, principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    try:
        return _json(_service(request).info(principal.project, name).model_dump())
    except PackError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/api/v1/packs/{name}/templates/{file}", summary="A template file of a pack's import guide (CSV)",
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
                       **refusals(404, s404="No such pack or template")})
def template(request: Request, name: str, file: str,
             principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    try:
        pack = _service(request).pack(name)
    except PackError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if file not in pack.templates:
        known = ", ".join(pack.templates) or "none"
        raise HTTPException(404, f"pack {name!r} has no template {file!r} (its templates: {known})")
    return Response(pack.templates[file], media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{file}"'})


@router.post("/api/v1/packs/{name}/install",
             summary="Install a pack's metrics, reports and dashboards (again: upgrades what nobody changed)",
             responses=refusals(403, 404, s403="The pack adds metrics (needs metrics:edit) or journeys (journeys:edit)",
                                s404="No such pack, or it is not available yet"))
async def install(request: Request, name: str,
                  principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    project = principal.project
    assert project is not None
    plat = platform(request)
    try:
        done = await run_in_threadpool(lambda: PackService(plat).install(
            project, name, principal.actor, principal.can(Permission.metrics_edit),
            can_edit_journeys=principal.can(Permission.journeys_edit)))
    except PackError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except (QueryError, InternalQueryError) as exc:
        raise HTTPException(exc.status, str(exc)) from None
    plat.meta.audit.record("pack.install", principal.actor, actor_user_id=principal.user.id if principal.user else None,
                           project_id=project.id, target=name, detail=done.to_json(), client=client_of(request))
    return _json(done.to_json())


@router.delete("/api/v1/packs/{name}", summary="Uninstall a pack (parts someone changed stay)",
               responses=NOT_FOUND)
def uninstall(request: Request, name: str,
              principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    project = principal.project
    assert project is not None
    plat = platform(request)
    try:
        done = _service(request).uninstall(project, name)
    except PackError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    plat.meta.audit.record("pack.uninstall", principal.actor,
                           actor_user_id=principal.user.id if principal.user else None,
                           project_id=project.id, target=name, detail=done.to_json(), client=client_of(request))
    return _json(done.to_json())
