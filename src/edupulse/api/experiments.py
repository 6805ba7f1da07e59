"""/api/v1/experiments: A/B tests (reading needs reports:view, changing experiments:edit), their assignment and
results; /api/features/{client key}: the running experiments in the format the official GrowthBook SDKs read
(the client key is the project's write key, which browsers hold already)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import Principal, client_of, now_of, platform, require
from edupulse.api.errors import ErrorBody, refusals
from edupulse.auth.permissions import Permission
from edupulse.experiments.model import SpecError
from edupulse.experiments.results import Options
from edupulse.experiments.results_model import Engine
from edupulse.experiments.service import Actor, ExperimentService
from edupulse.queries.errors import QueryError
from edupulse.stats import Correction, sample_size
from edupulse.stats import conversion_sample_size as sample_size_of_rate

router = APIRouter(tags=["experiments"])
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Cache-Control": "no-cache"}


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json", headers=headers)


def _error(exc: SpecError | QueryError) -> Response:
    if isinstance(exc, SpecError):
        return _json({"error": str(exc), "field": exc.field}, exc.status)
    return _json({"error": str(exc)}, exc.status)


def service(request: Request) -> ExperimentService:
    plat = platform(request)
    return ExperimentService(plat.meta, plat.query_service(), plat.catalog)


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal.actor, principal.user.id if principal.user else None, client_of(request))


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise SpecError("body", f"is not valid JSON: {exc.msg}") from None


@router.get("/api/v1/experiments", summary="The project's experiments, newest first")
def list_experiments(request: Request, principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    found = service(request).store.all(principal.project.id)
    return _json({"project": principal.project.name, "experiments": [e.to_json() for e in found]})


@router.post("/api/v1/experiments", summary="Create an experiment (a draft until started)", status_code=201,
             responses=refusals(400, 409, model=ErrorBody, s409="An experiment of this key exists"))
async def create_experiment(request: Request,
                            principal: Principal = Depends(require(Permission.experiments_edit))) -> Response:
    assert principal.project is not None
    try:
        data = await _body(request)
        made = await run_in_threadpool(service(request).create, principal.project, data, _actor(request, principal),
                                       now_of(request))
    except SpecError as exc:
        return _error(exc)
    return _json(made.to_json(), 201)


@router.get("/api/v1/experiment-sample-size", summary="Units per arm and days to detect an effect",
            responses=refusals(400, model=ErrorBody))
def experiment_sample_size(baseline: float = Query(description="control conversion rate, or mean with sd"),
                           mde: float = Query(gt=0, le=10, description="relative effect to detect, 0.05 = 5%"),
                           sd: float | None = Query(None, gt=0, description="per-unit standard deviation (means)"),
                           arms: int = Query(2, ge=2, le=10), alpha: float = Query(0.05, gt=0, lt=0.5),
                           power: float = Query(0.8, gt=0, lt=1), units_per_day: float | None = Query(None, gt=0),
                           _: Principal = Depends(require(Permission.reports_view))) -> Response:
    if sd is None:
        size = sample_size_of_rate(baseline, mde, arms=arms, alpha=alpha, power=power, units_per_day=units_per_day)
    else:
        size = sample_size(baseline, sd * sd, mde, arms=arms, alpha=alpha, power=power, units_per_day=units_per_day)
    status = 400 if size.error else 200
    return _json({"per_arm": size.per_arm, "total": size.total, "days": size.days, "error": size.error}, status)


@router.get("/api/v1/experiments/{key}", summary="One experiment with every version",
            responses=refusals(404, model=ErrorBody))
def show_experiment(request: Request, key: str,
                    principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    svc = service(request)
    found = svc.store.get(principal.project.id, key)
    if found is None:
        return _error(SpecError("key", f"no experiment with key {key!r} in this project", 404))
    return _json({**found.to_json(), "versions": svc.store.versions(found.id)})


@router.put("/api/v1/experiments/{key}", summary="Change an experiment (a running one keeps its assignment)",
            responses=refusals(400, 404, 409, model=ErrorBody, s409="A running experiment's assignment cannot change"))
async def update_experiment(request: Request, key: str,
                            principal: Principal = Depends(require(Permission.experiments_edit))) -> Response:
    assert principal.project is not None
    try:
        data = await _body(request)
        changed = await run_in_threadpool(service(request).update, principal.project, key, data,
                                          _actor(request, principal), now_of(request))
    except SpecError as exc:
        return _error(exc)
    return _json(changed.to_json())


def _transition(request: Request, key: str, principal: Principal, change: str) -> Response:
    assert principal.project is not None
    svc = service(request)
    act = svc.start if change == "start" else svc.stop
    try:
        done = act(principal.project, key, _actor(request, principal), now_of(request))
    except SpecError as exc:
        return _error(exc)
    return _json(done.to_json())


@router.post("/api/v1/experiments/{key}/start", summary="Start (or start again, as a new version)",
             responses=refusals(404, 409, model=ErrorBody, s409="Running already, or its namespace range is taken"))
def start_experiment(request: Request, key: str,
                     principal: Principal = Depends(require(Permission.experiments_edit))) -> Response:
    return _transition(request, key, principal, "start")


@router.post("/api/v1/experiments/{key}/stop", summary="Stop; its results stay, covering the run",
             responses=refusals(404, 409, model=ErrorBody, s409="Not running"))
def stop_experiment(request: Request, key: str,
                    principal: Principal = Depends(require(Permission.experiments_edit))) -> Response:
    return _transition(request, key, principal, "stop")


@router.get("/api/v1/experiments/{key}/assign", summary="The variant of a unit, as the SDKs assign it",
            responses=refusals(400, 404, 413, 499, 504, model=ErrorBody))
def assign_unit(request: Request, key: str, distinct_id: str = Query(min_length=1, max_length=255),
                attributes: str | None = Query(None, max_length=8000,
                                               description="JSON object of SDK attributes (e.g. class, grade)"),
                principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    try:
        attrs = orjson.loads(attributes) if attributes else {}
        if not isinstance(attrs, dict):
            raise SpecError("attributes", "must be a JSON object")
        found = service(request).assign(principal.project, key, distinct_id, attrs, now_of(request))
    except orjson.JSONDecodeError as exc:
        return _error(SpecError("attributes", f"is not valid JSON: {exc.msg}"))
    except (SpecError, QueryError) as exc:
        return _error(exc)
    return _json({"experiment": key, "variant": found.variant, "in_experiment": found.in_experiment,
                  "reason": found.reason})


@router.get("/api/v1/experiments/{key}/results", summary="Results per metric and variant",
            responses=refusals(400, 404, 413, 499, 504, model=ErrorBody))
def experiment_results(request: Request, key: str, engine: Engine = Engine.frequentist, cuped: bool = False,
                       relative: bool = False, alpha: float = Query(0.05, gt=0, lt=0.5),
                       correction: Correction = Correction.holm,
                       principal: Principal = Depends(require(Permission.reports_view))) -> Response:
    assert principal.project is not None
    options = Options(engine=engine, cuped=cuped, relative=relative, alpha=alpha, correction=correction)
    try:
        result = service(request).results(principal.project, key, options, now_of(request))
    except (SpecError, QueryError) as exc:
        return _error(exc)
    return _json(result.model_dump(mode="json"))


@router.get("/api/features/{client_key}", summary="Running experiments for the official GrowthBook SDKs",
            responses=refusals(404, 413, 499, 504, model=ErrorBody, s404="Unknown client key"))
def sdk_features(request: Request, client_key: str) -> Response:
    project = platform(request).catalog.by_write_key(client_key)
    if project is None:
        return _json({"status": 404, "error": "unknown client key: use the project's write key"}, 404, CORS)
    try:
        body = service(request).sdk_payload(project, now_of(request))
    except QueryError as exc:
        return _json({"status": exc.status, "error": str(exc)}, exc.status, CORS)
    return _json(body, headers=CORS)


@router.options("/api/features/{client_key}", include_in_schema=False)
def sdk_features_preflight() -> Response:
    return Response(status_code=204, headers=CORS)
