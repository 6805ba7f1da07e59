"""Admin API: quarantine, identity warnings, status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from edupulse import __version__
from edupulse.api.auth import Principal, platform, require
from edupulse.api.params import Offset
from edupulse.auth.permissions import Permission

router = APIRouter(tags=["admin"])


@router.get("/api/v1/quarantine", summary="Records refused at ingestion, newest first, with reasons (`total` of the "
                                        "source asked for; `sources`: how many each source had refused)")
def quarantine(
    request: Request,
    principal: Principal = Depends(require(Permission.quarantine_view)),
    limit: int = Query(100, ge=1, le=1000),
    offset: Annotated[Offset, Query()] = 0,
    source: str | None = Query(None, min_length=1, max_length=32,
                               description="only records of this source: native, xapi, sensors, posthog, segment..."),
) -> dict[str, Any]:
    project = principal.project
    assert project is not None
    meta = platform(request).meta
    return {
        "project": project.name,
        "total": meta.quarantine_count(project.id, source),
        "sources": meta.quarantine_sources(project.id),
        "records": meta.quarantine(project.id, limit, offset, source),
    }


@router.get("/api/v1/identity/warnings", summary="Identity links that were refused")
def identity_warnings(
    request: Request, principal: Principal = Depends(require(Permission.quarantine_view)),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    project = principal.project
    assert project is not None
    return {"project": project.name, "warnings": platform(request).meta.warnings(project.id, limit)}


@router.get("/api/v1/status", summary="Server health: version and loading progress")
def status(request: Request) -> dict[str, Any]:
    plat = platform(request)
    loader = plat.loader
    return {
        "version": __version__,
        "log_durable": str(plat.wal.durable),
        "log_applied": str(loader.applied) if loader else None,
        "log_frames_written": plat.wal.frames_written,
        "log_fsyncs": plat.wal.fsyncs,
        "loader_error": loader.last_error if loader else None,
    }
