"""The data catalogue (events and properties the store has seen, with admins' descriptions) and the
ingestion status of a project (events per minute)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from edupulse.api.auth import platform, require_project
from edupulse.api.reports import actor, ui_store
from edupulse.auth.permissions import Permission
from edupulse.meta.db import MetadataError, ProjectInfo
from edupulse.store.catalog import build_catalogue

router = APIRouter(tags=["catalogue"])
CAN_QUERY = Depends(require_project(Permission.query_run))
CAN_DESCRIBE = Depends(require_project(Permission.catalogue_manage))
CAN_WATCH = Depends(require_project(Permission.quarantine_view))


class DescriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["event", "property"]
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(max_length=2000)


FRESH_SECONDS = 30.0


def _catalogue(request: Request, project: ProjectInfo) -> dict[str, Any]:
    """Computed again only when the data changed and the last one is older than FRESH_SECONDS: it scans
    every event of the project (about 1 s per million events), and live traffic changes the data constantly."""
    store = platform(request).store
    cache: dict[int, tuple[int, float, dict[str, Any]]] = request.app.state.__dict__.setdefault(
        "catalogue_cache", {})
    version = store.data_version()
    hit = cache.get(project.id)
    if hit is not None and (hit[0] == version or time.monotonic() - hit[1] < FRESH_SECONDS):
        return hit[2]
    data = build_catalogue(store, project.id).as_dict()
    cache[project.id] = (version, time.monotonic(), data)
    return data


@router.get("/api/v1/catalog", summary="Events and properties seen: types, volumes, first/last seen, descriptions")
async def catalogue(request: Request, project: ProjectInfo = CAN_QUERY) -> dict[str, Any]:
    data = await run_in_threadpool(_catalogue, request, project)
    described = ui_store(request).descriptions(project.id)
    return {
        "project": project.name,
        "events": [{**e, "description": described.get(("event", e["name"]), "")} for e in data["events"]],
        "properties": [{**p, "description": described.get(("property", p["name"]), "")} for p in data["properties"]],
        "person_properties": [{**p, "description": described.get(("property", "person." + p["name"]), "")}
                              for p in data["person_properties"]],
    }


@router.put("/api/v1/catalog/descriptions", summary="Describe an event or property (admins)")
def describe(request: Request, body: DescriptionIn,
             project: ProjectInfo = CAN_DESCRIBE) -> dict[str, Any]:
    try:
        ui_store(request).describe(project.id, body.kind, body.name, body.description, actor(request))
    except MetadataError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"kind": body.kind, "name": body.name, "description": body.description.strip()}


def _per_minute(request: Request, project: ProjectInfo, minutes: int) -> list[dict[str, Any]]:
    store = platform(request).store
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    since = now - dt.timedelta(minutes=minutes - 1)
    bucket = exp.TimestampTrunc(this=exp.column("received_at"), unit=exp.var("MINUTE"))
    select = (exp.select(bucket.as_("minute"), exp.Count(this=exp.Star())).from_("events")
              .where(exp.and_(exp.column("project_id").eq(exp.Literal.number(project.id)),
                              exp.column("received_at") >= exp.cast(exp.Literal.string(since.isoformat()),
                                                                     exp.DataType.build("timestamptz"))))
              .group_by(exp.column("minute")))
    counts = {}
    for minute, count in store.query(select.sql(store.dialect)).rows:
        counts[minute.astimezone(dt.UTC).replace(tzinfo=dt.UTC) if minute.tzinfo else minute.replace(tzinfo=dt.UTC)] \
            = int(count)
    return [{"minute": (since + dt.timedelta(minutes=i)).isoformat(),
             "events": counts.get(since + dt.timedelta(minutes=i), 0)} for i in range(minutes)]


@router.get("/api/v1/ingestion/stats", summary="Events stored per minute (by arrival) and refused records")
async def ingestion_stats(request: Request, project: ProjectInfo = CAN_WATCH,
                          minutes: int = Query(60, ge=1, le=1440)) -> dict[str, Any]:
    series = await run_in_threadpool(_per_minute, request, project, minutes)
    return {"project": project.name, "per_minute": series,
            "quarantined": platform(request).meta.quarantine_count(project.id)}
