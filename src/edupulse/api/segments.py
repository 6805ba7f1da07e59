"""/api/v1/segments: saved person definitions of a project (reading needs reports:view, changing
analyses:save), usable as filters in every
analysis ({"segment": NAME}) and listed by the `segments` query kind."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from edupulse.api.auth import Principal, platform, require, require_project
from edupulse.api.errors import ErrorBody, refusals
from edupulse.auth.masking import personal_probe
from edupulse.auth.permissions import Permission
from edupulse.meta.db import MetadataError, ProjectInfo
from edupulse.ops.segments import SegmentCatalog

router = APIRouter(tags=["segments"])


class SegmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    definition: dict[str, Any]


class SegmentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)
    definition: dict[str, Any] | None = None


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _error(exc: Exception, status: int = 400) -> Response:
    return _json({"error": str(exc)}, status)



def _project(principal: Principal) -> ProjectInfo:
    assert principal.project is not None
    return principal.project


def _probe(principal: Principal, definition: Any) -> Response | None:
    """A segment used by others may not compare personal properties by range or pattern unless its author
    may see them (the segment's members would reveal the masked values)."""
    if principal.can(Permission.personal_view):
        return None
    found = personal_probe(definition, where="definition")
    return None if found is None else _error(MetadataError(found), 403)


@router.get("/api/v1/segments", summary="The project's saved segments")
def list_segments(request: Request,
                  project: ProjectInfo = Depends(require_project(Permission.reports_view))) -> Response:
    catalog = SegmentCatalog(platform(request).meta)
    return _json({"project": project.name, "segments": [s.to_json() for s in catalog.all(project.id)]})


@router.post("/api/v1/segments", summary="Save a segment", status_code=201,
             responses=refusals(400, 409, model=ErrorBody, s409="A segment of this name exists"))
async def create_segment(request: Request, body: SegmentBody,
                         principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    project = _project(principal)
    refusal = _probe(principal, body.definition)
    if refusal is not None:
        return refusal
    catalog = SegmentCatalog(platform(request).meta)
    try:
        saved = await run_in_threadpool(catalog.create, project.id, body.name, body.definition, body.description)
    except MetadataError as exc:
        return _error(exc, 409 if "already exists" in str(exc) else 400)
    return _json(saved.to_json(), 201)


@router.get("/api/v1/segments/{segment}", summary="One segment, by name or id",
            responses=refusals(404, model=ErrorBody))
def show_segment(request: Request, segment: str,
                 project: ProjectInfo = Depends(require_project(Permission.reports_view))) -> Response:
    found = SegmentCatalog(platform(request).meta).get(project.id, segment)
    if found is None:
        return _error(MetadataError(f"segment {segment!r}: no such segment in this project"), 404)
    return _json(found.to_json())


@router.put("/api/v1/segments/{segment}", summary="Change a segment's name, description or definition",
            responses=refusals(400, 404, 409, model=ErrorBody, s409="A segment of the new name exists"))
async def update_segment(request: Request, segment: str, body: SegmentChange,
                         principal: Principal = Depends(require(Permission.analyses_save))) -> Response:
    project = _project(principal)
    refusal = _probe(principal, body.definition)
    if refusal is not None:
        return refusal
    catalog = SegmentCatalog(platform(request).meta)
    try:
        saved = await run_in_threadpool(lambda: catalog.update(
            project.id, segment, name=body.name, definition=body.definition, description=body.description))
    except MetadataError as exc:
        return _error(exc, 404 if "no such segment" in str(exc) else 409 if "already exists" in str(exc) else 400)
    return _json(saved.to_json())


@router.delete("/api/v1/segments/{segment}", summary="Delete a segment no other segment refers to",
               responses=refusals(404, 409, model=ErrorBody, s409="Another segment refers to it"))
def delete_segment(request: Request, segment: str,
                   project: ProjectInfo = Depends(require_project(Permission.analyses_save))) -> Response:
    try:
        gone = SegmentCatalog(platform(request).meta).delete(project.id, segment)
    except MetadataError as exc:
        return _error(exc, 404 if "no such segment" in str(exc) else 409)
    return _json({"deleted": gone.to_json()})
