"""Audit log, account lifecycle, notifications, metric catalogue and advisor assignments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edupulse.api.auth import Principal, client_of, now_of, platform, require
from edupulse.api.errors import refusals
from edupulse.api.params import Id
from edupulse.auth.permissions import Permission, Role
from edupulse.meta.audit import AuditFilter
from edupulse.meta.catalogue import CatalogueError
from edupulse.ops import lifecycle
from edupulse.ops.notify import Notifier, notifications

router = APIRouter(tags=["governance"])
NO_ADVISOR = refusals(404, s404="No advisor with this id in the project")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricBody(Body):
    name: str = Field(max_length=64)
    definition: dict[str, Any]


class MetricUpdateBody(Body):
    definition: dict[str, Any]
    owner_user_id: Id | None = None


class AssignmentBody(Body):
    id_type: str = Field(min_length=1, max_length=32, description="e.g. login_id, mobile, crm_lead_id")
    id_value: str = Field(min_length=1, max_length=200)


def _uid(principal: Principal) -> int | None:
    return principal.user.id if principal.user else None


# audit ------------------------------------------------------------------------------------------


@router.get("/api/v1/audit", summary="The audit log, newest first, filtered")
def audit(
    request: Request,
    action: str | None = Query(None, description="an action, or a prefix ending with '.', e.g. auth."),
    actor_user_id: Id | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: Id | None = None,
    limit: int = Query(100, ge=1, le=1000),
    everything: bool = Query(False, description="superusers: the whole organization, not only this project"),
    principal: Principal = Depends(require(Permission.audit_view)),
) -> dict[str, Any]:
    assert principal.project is not None
    if everything and not principal.superuser:
        raise HTTPException(403, "only superusers read the audit log of the whole organization")
    f = AuditFilter(action=action, actor_user_id=actor_user_id, target=target, since=since, until=until,
                    before_id=before_id, limit=limit, project_id=None if everything else principal.project.id)
    return {"entries": platform(request).meta.audit.entries(f)}


# lifecycle --------------------------------------------------------------------------------------


@router.get("/api/v1/lifecycle/policy", summary="The organization's account lifecycle policy")
def get_policy(request: Request, principal: Principal = Depends(require(Permission.settings_manage))
               ) -> dict[str, Any]:
    return lifecycle.load_policy(platform(request).meta).model_dump()


@router.put("/api/v1/lifecycle/policy", summary="Change the account lifecycle policy (superusers)")
def put_policy(request: Request, body: dict[str, Any],
               principal: Principal = Depends(require(Permission.settings_manage, organization=True))
               ) -> dict[str, Any]:
    try:
        policy = lifecycle.LifecyclePolicy.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise HTTPException(400, problems) from None
    lifecycle.save_policy(platform(request).meta, policy, principal.actor, _uid(principal))
    return policy.model_dump()


@router.post("/api/v1/lifecycle/review", summary="Run the account review now (dry_run: only show what changes)")
def review(request: Request, dry_run: bool = True,
           principal: Principal = Depends(require(Permission.members_manage, organization=True))) -> dict[str, Any]:
    plat = platform(request)
    changes = lifecycle.run(plat.meta, now_of(request), dry_run=dry_run, actor=principal.actor,
                            notifier=Notifier(plat.meta, plat.settings.smtp))
    return {"dry_run": dry_run, "changes": [c.__dict__ for c in changes]}


@router.get("/api/v1/notifications", summary="Your notifications, newest first")
def my_notifications(request: Request, principal: Principal = Depends(require(Permission.reports_view))
                     ) -> dict[str, Any]:
    if principal.user is None:
        return {"notifications": []}
    return {"notifications": notifications(platform(request).meta, principal.user.id)}


# metric catalogue -------------------------------------------------------------------------------


def _catalogue_error(exc: CatalogueError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.get("/api/v1/metrics", summary="The metric catalogue of the project")
def list_metrics(request: Request, principal: Principal = Depends(require(Permission.metrics_view))
                 ) -> dict[str, Any]:
    assert principal.project is not None
    return {"metrics": platform(request).meta.metrics.list(principal.project.id)}


@router.get("/api/v1/metrics/{name}", summary="A metric with every version of its definition",
            responses=refusals(404))
def get_metric(request: Request, name: str, principal: Principal = Depends(require(Permission.metrics_view))
               ) -> dict[str, Any]:
    assert principal.project is not None
    found = platform(request).meta.metrics.get(principal.project.id, name, with_versions=True)
    if found is None:
        raise HTTPException(404, f"no metric named {name!r} in project {principal.project.name!r}")
    return found


@router.post("/api/v1/metrics", status_code=201, summary="Add a metric to the catalogue",
             responses=refusals(409, s409="A metric of this name exists"))
def create_metric(request: Request, body: MetricBody,
                  principal: Principal = Depends(require(Permission.metrics_edit))) -> dict[str, Any]:
    assert principal.project is not None
    meta = platform(request).meta
    try:
        row = meta.metrics.create(principal.project.id, body.name, body.definition, _uid(principal), principal.actor)
    except CatalogueError as exc:
        raise _catalogue_error(exc) from None
    meta.audit.record("metric.create", principal.actor, actor_user_id=_uid(principal), project_id=principal.project.id,
                      target=body.name, detail={"version": row["version"], "definition": row["definition"]},
                      client=client_of(request))
    return row


@router.put("/api/v1/metrics/{name}", summary="Change a metric's definition (a new version)",
            responses=refusals(404))
def update_metric(request: Request, name: str, body: MetricUpdateBody,
                  principal: Principal = Depends(require(Permission.metrics_edit))) -> dict[str, Any]:
    assert principal.project is not None
    meta = platform(request).meta
    before = meta.metrics.get(principal.project.id, name)
    try:
        row = meta.metrics.update(principal.project.id, name, body.definition, principal.actor, body.owner_user_id)
    except CatalogueError as exc:
        raise _catalogue_error(exc) from None
    if before is None or row["version"] != before["version"]:
        meta.audit.record("metric.update", principal.actor, actor_user_id=_uid(principal),
                          project_id=principal.project.id, target=name,
                          detail={"version": row["version"], "previous_version": before["version"] if before else None,
                                  "definition": row["definition"]}, client=client_of(request))
    return row


@router.delete("/api/v1/metrics/{name}", summary="Delete a metric (its versions are kept)",
               responses=refusals(404))
def delete_metric(request: Request, name: str,
                  principal: Principal = Depends(require(Permission.metrics_edit))) -> dict[str, Any]:
    assert principal.project is not None
    meta = platform(request).meta
    try:
        row = meta.metrics.delete(principal.project.id, name)
    except CatalogueError as exc:
        raise _catalogue_error(exc) from None
    meta.audit.record("metric.delete", principal.actor, actor_user_id=_uid(principal), project_id=principal.project.id,
                      target=name, detail={"version": row["version"]}, client=client_of(request))
    return row


# advisors ---------------------------------------------------------------------------------------


def _advisor(request: Request, principal: Principal, user_id: Id) -> Any:
    assert principal.project is not None
    user = platform(request).meta.accounts.user(user_id)
    if user is None or user.roles.get(principal.project.id) is not Role.advisor:
        raise HTTPException(404, f"no advisor with id {user_id} in project {principal.project.name!r}")
    return user


@router.get("/api/v1/advisors/{user_id}/assignments", summary="Persons assigned to an advisor",
            responses=NO_ADVISOR)
def assignments(request: Request, user_id: Id,
                principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    _advisor(request, principal, user_id)
    assert principal.project is not None
    rows = platform(request).meta.accounts.assignments(principal.project.id, user_id)
    return {"user_id": user_id, "assignments": [{"id_type": t, "id_value": v} for t, v in rows]}


@router.post("/api/v1/advisors/{user_id}/assignments", status_code=201, summary="Assign a person to an advisor",
             responses=NO_ADVISOR)
def assign(request: Request, user_id: Id, body: AssignmentBody,
           principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    user = _advisor(request, principal, user_id)
    assert principal.project is not None
    meta = platform(request).meta
    meta.accounts.assign(principal.project.id, user_id, body.id_type, body.id_value)
    meta.audit.record("advisor.assign", principal.actor, actor_user_id=_uid(principal), project_id=principal.project.id,
                      target=user.email, detail=body.model_dump(), client=client_of(request))
    return {"user_id": user_id, **body.model_dump()}


@router.delete("/api/v1/advisors/{user_id}/assignments", summary="Take a person away from an advisor",
               responses=NO_ADVISOR)
def unassign(request: Request, user_id: Id, id_type: str, id_value: str,
             principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    user = _advisor(request, principal, user_id)
    assert principal.project is not None
    meta = platform(request).meta
    meta.accounts.unassign(principal.project.id, user_id, id_type, id_value)
    meta.audit.record("advisor.unassign", principal.actor, actor_user_id=_uid(principal),
                      project_id=principal.project.id, target=user.email,
                      detail={"id_type": id_type, "id_value": id_value}, client=client_of(request))
    return {"user_id": user_id, "removed": True}
