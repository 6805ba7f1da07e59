"""/api/v1/alerts: the project's alerts (the real-time board's, see docs/packs.md): a count of an event per hour
checked each hour against a threshold or its usual band for the hour of the week, delivered to a webhook once
per change of state. Reading needs reports:view, changing analyses:save."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from edupulse.api.auth import Principal, platform, require
from edupulse.api.errors import refusals
from edupulse.api.params import Id
from edupulse.auth.permissions import Permission
from edupulse.meta.alerts import AlertStore
from edupulse.meta.db import MetadataError
from edupulse.ops.alerts import AlertSpec

router = APIRouter(tags=["alerts"])
NOT_FOUND = refusals(404, s404="No such alert in the project")


def _store(request: Request) -> AlertStore:
    return AlertStore(platform(request).meta)


def _missing(exc: MetadataError) -> HTTPException:
    return HTTPException(404, str(exc))


@router.get("/api/v1/alerts", summary="The project's alerts with their state")
def list_alerts(request: Request, principal: Principal = Depends(require(Permission.reports_view))) -> dict[str, Any]:
    assert principal.project is not None
    return {"alerts": _store(request).all(principal.project.id)}


@router.post("/api/v1/alerts", summary="Create an alert", status_code=201)
def create_alert(request: Request, body: AlertSpec,
                 principal: Principal = Depends(require(Permission.analyses_save))) -> dict[str, Any]:
    assert principal.project is not None
    return _store(request).save(principal.project.id, body.stored(), principal.actor)


@router.put("/api/v1/alerts/{alert_id}", summary="Change an alert", responses=NOT_FOUND)
def update_alert(request: Request, alert_id: Id, body: AlertSpec,
                 principal: Principal = Depends(require(Permission.analyses_save))) -> dict[str, Any]:
    assert principal.project is not None
    try:
        return _store(request).save(principal.project.id, body.stored(), principal.actor, alert_id)
    except MetadataError as exc:
        raise _missing(exc) from None


@router.delete("/api/v1/alerts/{alert_id}", summary="Delete an alert", responses=NOT_FOUND)
def delete_alert(request: Request, alert_id: Id,
                 principal: Principal = Depends(require(Permission.analyses_save))) -> dict[str, Any]:
    assert principal.project is not None
    try:
        _store(request).delete(principal.project.id, alert_id)
    except MetadataError as exc:
        raise _missing(exc) from None
    return {"deleted": alert_id}


@router.get("/api/v1/alerts/{alert_id}/events", summary="An alert's changes of state and their deliveries",
            responses=NOT_FOUND)
def alert_events(request: Request, alert_id: Id,
                 principal: Principal = Depends(require(Permission.reports_view))) -> dict[str, Any]:
    assert principal.project is not None
    try:
        return {"events": _store(request).events(principal.project.id, alert_id)}
    except MetadataError as exc:
        raise _missing(exc) from None


