"""/api/v1/journeys: automated operations (reading needs reports:view, building journeys:edit); channels,
allowed hosts, guard rails and dead-letter replay need channels:manage (admins). Secrets are never returned."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import Principal, client_of, now_of, require
from edupulse.api.errors import ErrorBody, refusals
from edupulse.api.params import Id
from edupulse.auth.permissions import Permission
from edupulse.journeys.model import SpecError
from edupulse.journeys.runtime import JourneyRuntime
from edupulse.journeys.service import Actor
from edupulse.queries.errors import QueryError

router = APIRouter(tags=["journeys"])
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed", "dead", "skipped", "held")


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _error(exc: SpecError) -> Response:
    return _json({"error": str(exc), "field": exc.field}, exc.status)


def runtime(request: Request) -> JourneyRuntime:
    return request.app.state.journeys


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal.actor, principal.user.id if principal.user else None, client_of(request))


def _audit(request: Request, principal: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
    assert principal.project is not None
    runtime(request).meta.audit.record(action, principal.actor, actor_user_id=principal.user.id if principal.user
                                       else None, project_id=principal.project.id, target=target,
                                       client=client_of(request), detail=detail)


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise SpecError("body", f"is not valid JSON: {exc.msg}") from None


@router.get("/api/v1/journeys", summary="The project's journeys, newest first, with their counters")
def list_journeys(request: Request, principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    rt = runtime(request)
    found = rt.service.store.all(principal.project.id)
    return _json({"project": principal.project.name, "journeys": [
        {**j.to_json(), "counts": rt.service.results(principal.project, j)["funnel"]} for j in found]})


@router.post("/api/v1/journeys", summary="Create a journey (a draft until started)", status_code=201,
             responses=refusals(400, 409, model=ErrorBody, s409="A journey of this name exists"))
async def create_journey(request: Request,
                         principal: Principal = Depends(require(Permission.journeys_edit))) -> Response:
    assert principal.project is not None
    try:
        data = await _body(request)
        made = await run_in_threadpool(runtime(request).service.create, principal.project, data,
                                       _actor(request, principal), now_of(request))
    except SpecError as exc:
        return _error(exc)
    return _json(made.to_json(), 201)


@router.get("/api/v1/journeys/{journey_id}", summary="One journey with every version",
            responses=refusals(404, model=ErrorBody))
def show_journey(request: Request, journey_id: Id,
                 principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    service = runtime(request).service
    found = service.store.get(principal.project.id, journey_id)
    if found is None:
        return _error(SpecError("id", f"no journey with id {journey_id} in this project", 404))
    return _json({**found.to_json(), "versions": service.store.versions(found.id)})


@router.put("/api/v1/journeys/{journey_id}", summary="Change a journey (a running one keeps its trigger)",
            responses=refusals(400, 404, 409, model=ErrorBody, s409="The change conflicts with the journey's state"))
async def update_journey(request: Request, journey_id: Id,
                         principal: Principal = Depends(require(Permission.journeys_edit))) -> Response:
    assert principal.project is not None
    try:
        data = await _body(request)
        changed = await run_in_threadpool(runtime(request).service.update, principal.project, journey_id, data,
                                          _actor(request, principal), now_of(request))
    except SpecError as exc:
        return _error(exc)
    runtime(request).changed()
    return _json(changed.to_json())


@router.delete("/api/v1/journeys/{journey_id}", summary="Delete a journey that is not running",
               responses=refusals(404, 409, model=ErrorBody, s409="The journey is running"))
def delete_journey(request: Request, journey_id: Id,
                   principal: Principal = Depends(require(Permission.journeys_edit))) -> Response:
    assert principal.project is not None
    try:
        gone = runtime(request).service.delete(principal.project, journey_id, _actor(request, principal))
    except SpecError as exc:
        return _error(exc)
    return _json({"deleted": gone.to_json()})


def _transition(request: Request, journey_id: Id, principal: Principal, change: str) -> Response:
    assert principal.project is not None
    try:
        done = runtime(request).service.transition(principal.project, journey_id, change,
                                                   _actor(request, principal), now_of(request))
    except SpecError as exc:
        return _error(exc)
    runtime(request).changed()
    return _json(done.to_json())


@router.post("/api/v1/journeys/{journey_id}/start", summary="Start (or resume) a journey",
             responses=refusals(400, 404, 409, model=ErrorBody, s409="Running or finished already"))
def start_journey(request: Request, journey_id: Id,
                  principal: Principal = Depends(require(Permission.journeys_edit))) -> Response:
    return _transition(request, journey_id, principal, "start")


@router.post("/api/v1/journeys/{journey_id}/pause", summary="Pause: nobody enters or moves on until resumed",
             responses=refusals(404, 409, model=ErrorBody, s409="Not running"))
def pause_journey(request: Request, journey_id: Id,
                  principal: Principal = Depends(require(Permission.journeys_edit))) -> Response:
    return _transition(request, journey_id, principal, "pause")


@router.post("/api/v1/journeys/{journey_id}/finish", summary="Finish: the journey stops for good",
             responses=refusals(404, 409, model=ErrorBody, s409="Finished already"))
def finish_journey(request: Request, journey_id: Id,
                   principal: Principal = Depends(require(Permission.journeys_edit))) -> Response:
    return _transition(request, journey_id, principal, "finish")


@router.get("/api/v1/journeys/{journey_id}/deliveries", summary="The delivery log, newest first",
            responses=refusals(404, model=ErrorBody))
def journey_deliveries(request: Request, journey_id: Id, limit: int = Query(100, ge=1, le=1000),
                       before_id: Id | None = Query(None),
                       status: str | None = Query(None, pattern="^(" + "|".join(DELIVERY_STATUSES) + ")$"),
                       principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    service = runtime(request).service
    if service.store.get(principal.project.id, journey_id) is None:
        return _error(SpecError("id", f"no journey with id {journey_id} in this project", 404))
    return _json({"deliveries": service.deliveries(principal.project, journey_id, limit, before_id, status)})


@router.get("/api/v1/journeys/{journey_id}/results", summary="Conversion of treatment against the holdout",
            responses=refusals(404, model=ErrorBody))
def journey_results(request: Request, journey_id: Id, alpha: float = Query(0.05, gt=0, lt=0.5),
                    principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    service = runtime(request).service
    found = service.store.get(principal.project.id, journey_id)
    if found is None:
        return _error(SpecError("id", f"no journey with id {journey_id} in this project", 404))
    return _json(service.results(principal.project, found, alpha))


@router.post("/api/v1/journeys/{journey_id}/deliveries/{delivery_id}/replay",
             summary="Send a dead letter again (same idempotency key)",
             responses=refusals(404, 409, model=ErrorBody, s409="Not a dead letter"))
def replay_delivery(request: Request, journey_id: Id, delivery_id: Id,
                    principal: Principal = Depends(require(Permission.channels_manage))) -> Response:
    assert principal.project is not None
    rt = runtime(request)
    try:
        rt.outbox.replay(principal.project.id, delivery_id, now_of(request))
    except SpecError as exc:
        return _error(exc)
    _audit(request, principal, "journey.replay", f"journey:{journey_id}", {"delivery": delivery_id})
    rt.worker.wake()
    return _json({"replayed": delivery_id})


# channels and settings (admins) -------------------------------------------------------------------


@router.get("/api/v1/journey-channels", summary="The project's channels (secrets are never shown)")
def list_channels(request: Request, principal: Principal = Depends(require(Permission.journeys_edit))) -> Response:
    assert principal.project is not None
    return _json({"channels": [c.to_json() for c in runtime(request).channels.all(principal.project.id)]})


@router.put("/api/v1/journey-channels/{name}", summary="Add or change a channel and its secrets",
            responses=refusals(400, model=ErrorBody))
async def save_channel(request: Request, name: str,
                       principal: Principal = Depends(require(Permission.channels_manage))) -> Response:
    assert principal.project is not None
    rt = runtime(request)
    try:
        data = await _body(request)
        if not isinstance(data, dict):
            raise SpecError("channel", "must be a JSON object")
        saved = await run_in_threadpool(rt.channels.save, principal.project.id, {**data, "name": name},
                                        principal.actor, now_of(request))
    except SpecError as exc:
        return _error(exc)
    rt.senders.forget()
    _audit(request, principal, "journey.channel", f"channel:{name}",
           {"kind": saved.kind, "secrets_set": list(saved.secret_names)})
    return _json(saved.to_json())


@router.delete("/api/v1/journey-channels/{name}", summary="Delete a channel",
               responses=refusals(404, model=ErrorBody))
def delete_channel(request: Request, name: str,
                   principal: Principal = Depends(require(Permission.channels_manage))) -> Response:
    assert principal.project is not None
    rt = runtime(request)
    try:
        gone = rt.channels.delete(principal.project.id, name)
    except SpecError as exc:
        return _error(exc)
    rt.senders.forget()
    rt.senders.forget()
    _audit(request, principal, "journey.channel", f"channel:{name}", {"deleted": True})
    return _json({"deleted": gone.to_json()})


@router.get("/api/v1/journey-settings", summary="Allowed hosts and guard rails of the project's journeys")
def show_settings(request: Request, principal: Principal = Depends(require(Permission.journeys_edit))) -> Response:
    assert principal.project is not None
    value = runtime(request).channels.settings(principal.project.id)
    return _json(value.model_dump(mode="json", exclude_none=True))


@router.put("/api/v1/journey-settings", summary="Change allowed hosts and guard rails",
            responses=refusals(400, model=ErrorBody))
async def save_settings(request: Request,
                        principal: Principal = Depends(require(Permission.channels_manage))) -> Response:
    assert principal.project is not None
    rt = runtime(request)
    try:
        data = await _body(request)
        value = rt.channels.save_settings(principal.project.id, data, now_of(request))
    except SpecError as exc:
        return _error(exc)
    dumped = value.model_dump(mode="json", exclude_none=True)
    rt.senders.forget()
    _audit(request, principal, "journey.settings", "journey-settings", dumped)
    return _json(dumped)


# advisor tasks --------------------------------------------------------------------------------------


@router.get("/api/v1/journey-tasks", summary="Advisor tasks: an advisor sees their own, builders see all")
def list_tasks(request: Request, status: str | None = Query(None, pattern="^(open|done|no_answer)$"),
               mine: bool = False, principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    user_id = principal.user.id if principal.user else None
    everyone = principal.can(Permission.journeys_edit) and not mine
    if not everyone and user_id is None:
        return _json({"tasks": []})
    return _json({"tasks": runtime(request).tasks.tasks(principal.project.id, None if everyone else user_id,
                                                        status)})


@router.post("/api/v1/journey-tasks/{task_id}/close", summary="Close a task as done or no answer",
             responses=refusals(400, 404, 409, model=ErrorBody, s409="Closed already"))
async def close_task(request: Request, task_id: Id,
                     principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    try:
        data = await _body(request)
        outcome = data.get("outcome") if isinstance(data, dict) else None
        closed = runtime(request).tasks.close(principal.project.id, task_id, str(outcome), principal.user.id
                                              if principal.user else None,
                                              principal.can(Permission.journeys_edit), now_of(request))
    except SpecError as exc:
        return _error(exc)
    return _json(closed)


@router.post("/api/v1/journeys/preview", summary="How many persons a definition's trigger would reach now",
             responses=refusals(400, model=ErrorBody))
async def preview_journey(request: Request,
                          principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    rt = runtime(request)
    try:
        data = await _body(request)
        spec = rt.service.checked(principal.project, data)
        reach = await run_in_threadpool(rt.audience.reach, principal.project.id, spec.trigger, now_of(request))
    except SpecError as exc:
        return _error(exc)
    except (QueryError, ValueError) as exc:
        return _error(SpecError("trigger", str(exc)))
    return _json(reach)
