"""/api/v1/tags: tags, scores and tiers of persons and groups. Reading needs reports:view (advisors see the
values of their assigned persons only, and of group tags those of the groups their persons belong to);
defining, running and uploading needs analyses:save; changes are versioned and audited. Values are kept for
every run: `?as_of=YYYY-MM-DD` answers the value on a day."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import Principal, now_of, platform, require
from edupulse.api.errors import ErrorBody, refusals
from edupulse.api.params import Id, Offset
from edupulse.auth.masking import PersonalMasker, personal_probe
from edupulse.auth.permissions import Permission
from edupulse.meta.db import MetadataError
from edupulse.meta.tags import check_spec
from edupulse.queries.errors import QueryError
from edupulse.queries.service import PersonScope
from edupulse.tags.background import TagRunPool
from edupulse.tags.model import TagSpec
from edupulse.tags.run import TagError, TagService, history_start

router = APIRouter(tags=["tags"])
MASKER = PersonalMasker()
EXAMPLE = {"name": "lead_tier", "description": "lead tier from behaviour", "definition": {
    "type": "custom_tiers", "tiers": [
        {"name": "A", "condition": {"event": "trial_booked"}},
        {"name": "B", "condition": {"event": "page_view", "at_least": 3}}]}}


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _error(message: str, status: int = 400) -> Response:
    return _json({"error": message}, status)


def service(request: Request) -> TagService:
    plat = platform(request)
    return TagService(plat.meta, plat.store, plat.query_service())


def _project(principal: Principal) -> Any:
    assert principal.project is not None
    return principal.project


def _scope(request: Request, principal: Principal) -> PersonScope | None:
    if principal.restricted_to_assigned and principal.user is not None:
        return PersonScope(tuple(platform(request).meta.accounts.assignments(_project(principal).id,
                                                                             principal.user.id)))
    return None


def _audit(request: Request, principal: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
    platform(request).meta.audit.record(action, principal.actor, actor_user_id=principal.user.id
                                        if principal.user else None, project_id=_project(principal).id,
                                        target=target, detail=detail)


def _status(exc: Exception) -> int:
    text = str(exc)
    return 404 if "no such tag" in text else 409 if "already exists" in text else 400


@router.get("/api/v1/tags", summary="The project's tags with their units, coverage (the share of units with a "
            "value) and last run")
def list_tags(request: Request, principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    svc = service(request)
    project = _project(principal)
    out = []
    for tag in svc.tags(project):
        last = svc.catalog.runs(tag.id, 1)
        units = svc.count(project, tag, scope=_scope(request, principal))
        population = svc.population(project, tag)
        out.append({**tag.to_json(), "units": units,
                    "coverage": round(units / population, 4) if population and _scope(request, principal) is None
                    else None, "last_run": last[0].to_json() if last else None})
    return _json({"project": project.name, "tags": out})


def _personal_refusal(principal: Principal, spec: TagSpec) -> Response | None:
    """Tag values are shown as computed, not masked: a caller without personal:view may not define a tag
    that reads a personal property or compares one piece by piece, nor an SQL tag (SQL reads personal
    data unmasked, as for the `sql` analysis kind)."""
    if principal.can(Permission.personal_view):
        return None
    if spec.definition.type == "sql":
        return _error("an SQL tag needs the personal:view permission (SQL reads personal data unmasked)", 403)
    found = personal_probe(spec.definition.model_dump(mode="json", exclude_none=True), where="definition",
                           reads=True)
    return None if found is None else _error(found, 403)


@router.post("/api/v1/tags", summary="Define a tag", status_code=201,
             responses=refusals(400, 409, model=ErrorBody, s409="A tag of this name exists"))
async def create_tag(request: Request, body: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
                     principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    svc = service(request)
    project = _project(principal)
    try:
        spec = check_spec(body)
        refusal = _personal_refusal(principal, spec)
        if refusal is not None:
            return refusal
        await run_in_threadpool(svc.check, project, spec, now_of(request))
        made = await run_in_threadpool(svc.catalog.create, project.id, spec, principal.actor)
    except MetadataError as exc:
        return _error(str(exc), _status(exc))
    _audit(request, principal, "tag.create", spec.name, {"version": made.version})
    return _json(made.to_json(), 201)


@router.post("/api/v1/tags/preview", summary="The distribution of a definition, computed now and not saved",
             responses=refusals(400, model=ErrorBody))
async def preview_tag(request: Request, body: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
                      principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    try:
        spec = check_spec(body)
        refusal = _personal_refusal(principal, spec)
        if refusal is not None:
            return refusal
        answer = await run_in_threadpool(service(request).preview, _project(principal), spec, now_of(request))
    except (MetadataError, QueryError) as exc:
        return _error(str(exc))
    return _json(answer)


@router.get("/api/v1/tags/{name}", summary="One tag: definition, versions, runs and distribution",
            responses=refusals(404, model=ErrorBody))
def show_tag(request: Request, name: str, principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    svc = service(request)
    project = _project(principal)
    try:
        tag = svc.tag(project, name)
    except MetadataError as exc:
        return _error(str(exc), 404)
    return _json({**tag.to_json(), "versions": svc.catalog.versions(tag.id),
                  "runs": [r.to_json() for r in svc.catalog.runs(tag.id)],
                  "units": svc.count(project, tag, scope=_scope(request, principal)),
                  "distribution": svc.distribution(project, name) if _scope(request, principal) is None else None})


@router.get("/api/v1/tags/{name}/history", summary="The distribution of a tag on each day it ran",
            responses=refusals(404, model=ErrorBody))
def tag_history(request: Request, name: str, days: Annotated[int, Query(ge=1, le=366)] = 30,
                principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    svc = service(request)
    if _scope(request, principal) is not None:  # as the tag's distribution: the whole project's is not theirs
        return _json({"tag": name, "days": [], "reason": "advisors see the values of their own persons only "
                                                          "(GET /api/v1/tags/NAME/values)"})
    try:
        return _json({"tag": name, "days": svc.timeline(_project(principal), name, days)})
    except MetadataError as exc:
        return _error(str(exc), 404)


@router.get("/api/v1/persons/{person_id}/tags", summary="A person's tags in force and their history",
            responses=refusals(404, model=ErrorBody))
def person_tags(request: Request, person_id: Id,
                principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    svc = service(request)
    project = _project(principal)
    scope = _scope(request, principal)
    if scope is not None and not svc.in_scope(project, scope, person_id):
        return _error(f"person {person_id}: not one of the persons assigned to you", 404)
    return _json({"person_id": person_id, "tags": svc.person_tags(project, person_id),
                  "history": svc.person_history(project, person_id)})


@router.put("/api/v1/tags/{name}", summary="Change a tag's definition (a new version)",
            responses=refusals(400, 404, model=ErrorBody))
async def update_tag(request: Request, name: str, body: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
                     principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    svc = service(request)
    project = _project(principal)
    try:
        spec = check_spec({"name": name, **body})
        refusal = _personal_refusal(principal, spec)
        if refusal is not None:
            return refusal
        await run_in_threadpool(svc.check, project, spec, now_of(request))
        saved = await run_in_threadpool(svc.catalog.update, project.id, name, spec, principal.actor)
    except MetadataError as exc:
        return _error(str(exc), _status(exc))
    _audit(request, principal, "tag.update", name, {"version": saved.version})
    return _json(saved.to_json())


@router.delete("/api/v1/tags/{name}", summary="Delete a tag", responses=refusals(404, model=ErrorBody))
def delete_tag(request: Request, name: str,
               principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    try:
        gone = service(request).catalog.delete(_project(principal).id, name, principal.actor)
    except MetadataError as exc:
        return _error(str(exc), 404)
    _audit(request, principal, "tag.delete", name, {"version": gone.version})
    return _json({"deleted": gone.to_json()})


@router.post("/api/v1/tags/{name}/run", summary="Compute a tag now (training first for a model tag)",
             description="Answers the finished run (200), or, when it takes longer than the wait, 202 with the run "
                         "so far and its address in Location: poll GET /api/v1/tags/NAME/runs/ID until its status is "
                         "finished or failed. The wait is `?wait=SECONDS`, else `Prefer: wait=SECONDS` or "
                         "`Prefer: respond-async` (no wait), else the server's tags.run_wait_seconds.",
             responses={**refusals(400, 404, model=ErrorBody),
                        202: {"description": "Still running: the run so far (status, progress); poll it at Location"}})
async def run_tag(request: Request, name: str,
                  wait: Annotated[float | None, Query(ge=0, le=600, description="seconds to wait for the run "
                                                                                "before answering 202")] = None,
                  prefer: Annotated[str | None, Header(description="respond-async, or wait=SECONDS (RFC 7240)")]
                  = None,
                  principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    svc = service(request)
    project = _project(principal)
    try:
        seconds = _wait(request, wait, prefer)
    except ValueError as exc:
        return _error(str(exc))
    now = now_of(request)
    try:
        tag, run = await run_in_threadpool(svc.start, project, name, now)
    except MetadataError as exc:
        return _error(str(exc), 404)
    _audit(request, principal, "tag.run", name, {"run": run.id})
    pool: TagRunPool | None = getattr(request.app.state, "tag_runs", None)
    if pool is None:  # an app without its background parts: the run is computed while the request waits
        return _json((await run_in_threadpool(svc.execute, project, tag, run, now)).to_json())
    future = asyncio.wrap_future(pool.submit(svc, project, tag, run, now))
    try:
        done = await asyncio.wait_for(asyncio.shield(future), seconds)
    except TimeoutError:
        so_far = await run_in_threadpool(svc.catalog.run, run.id)
        answer = _json((so_far or run).to_json(), 202)
        answer.headers["Location"] = f"/api/v1/tags/{quote(name)}/runs/{run.id}"
        answer.headers["Retry-After"] = "1"
        return answer
    return _json(done.to_json())


def _wait(request: Request, wait: float | None, prefer: str | None) -> float:
    """Seconds to wait for a run: ?wait=, else the Prefer header (RFC 7240), else the server's setting."""
    if wait is not None:
        return wait
    for part in (prefer or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "respond-async":
            return 0.0
        if key.strip().lower() == "wait":
            try:
                seconds = float(value.strip().strip('"'))
            except ValueError:
                seconds = math.nan
            if not math.isfinite(seconds):
                raise ValueError(f"Prefer: wait={value.strip()!r} is not a number of seconds")
            return min(max(seconds, 0.0), 600.0)
    return float(platform(request).settings.tags.run_wait_seconds)


@router.get("/api/v1/tags/{name}/runs/{run_id}", summary="One run of a tag: status, progress, counts, error",
            responses=refusals(404, model=ErrorBody))
def show_run(request: Request, name: str, run_id: Id,
             principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    svc = service(request)
    try:
        tag = svc.tag(_project(principal), name)
    except MetadataError as exc:
        return _error(str(exc), 404)
    run = svc.catalog.run(run_id)
    if run is None or run.tag_id != tag.id:
        return _error(f"run {run_id}: no such run of tag {name!r}", 404)
    return _json(run.to_json())


@router.post("/api/v1/tags/{name}/upload", summary="Upload values of an uploaded tag (CSV: identity,value)",
             responses=refusals(400, 404, model=ErrorBody))
async def upload_tag(request: Request, name: str,
                     principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    svc = service(request)
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _error("the file is not UTF-8 text: save the CSV as UTF-8")
    try:
        run, problems = await run_in_threadpool(svc.upload, _project(principal), name, text, now_of(request))
    except MetadataError as exc:
        return _error(str(exc), 404)
    except TagError as exc:
        return _error(str(exc))
    _audit(request, principal, "tag.upload", name, {"run": run.id, "bad_lines": len(problems)})
    return _json({"run": run.to_json(), "problems": problems})


@router.get("/api/v1/tags/{name}/values", summary="The values of a tag in force now or on a day",
            responses=refusals(400, 404, model=ErrorBody))
def tag_values(request: Request, name: str,
               as_of: Annotated[dt.date | None, Query(description="the day (YYYY-MM-DD), default today")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[Offset, Query()] = 0,
               principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    svc = service(request)
    project = _project(principal)
    kept = history_start(project, platform(request).settings.tags.history_days, now_of(request))
    if as_of is not None and as_of < kept:
        return _error(f"as_of: tag history is kept for {platform(request).settings.tags.history_days} days "
                      f"(EDUPULSE_TAGS__HISTORY_DAYS): give a day from {kept.isoformat()} on")
    try:
        tag = svc.tag(project, name)
        total, values = svc.values(project, name, as_of, limit, offset, _scope(request, principal))
    except MetadataError as exc:
        return _error(str(exc), 404)
    rows = [v.to_json(tag) for v in values]
    if not principal.can(Permission.personal_view):
        for row in rows:
            if "identities" in row:
                row["identities"] = {kind: [MASKER.value(kind, x) for x in items]
                                     for kind, items in row["identities"].items()}
    return _json({"tag": name, "as_of": (as_of.isoformat() if as_of else None), "total": total, "values": rows})
