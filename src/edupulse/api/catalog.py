"""The data catalogue (events and properties the store has seen, with admins' descriptions) and the
ingestion status of a project (events per minute)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from edupulse.api.auth import platform, require_project
from edupulse.api.reports import actor, ui_store
from edupulse.auth.permissions import Permission
from edupulse.meta.db import MetadataError, ProjectInfo
from edupulse.queries.dialect import DIALECTS
from edupulse.store.base import QueryControl
from edupulse.store.catalog import build_catalogue, group_names

router = APIRouter(tags=["catalogue"])
CAN_QUERY = Depends(require_project(Permission.query_run))
CAN_DESCRIBE = Depends(require_project(Permission.catalogue_manage))
CAN_WATCH = Depends(require_project(Permission.quarantine_view))


class DescriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["event", "property"]
    name: str = Field(min_length=1, max_length=200, description="person properties: person.NAME; group "
                                                                "properties: group.TYPE.NAME")
    description: str = Field(max_length=2000)
    lang: Literal["zh", "en"] | None = Field(None, description="set the display name and description of one "
                                                                "language; without it, the description of all")
    display_name: str | None = Field(None, max_length=200, description="with lang: the name shown in the UI")


class GroupNamesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=1, max_length=64, description="a group type: school, institution, class...")
    keys: list[str] = Field(max_length=500)


FRESH_SECONDS = 30.0


def _catalogue(request: Request, project: ProjectInfo) -> dict[str, Any]:
    return _catalogue_of(request.app, platform(request).store, project)


def _catalogue_of(app: Any, store: Any, project: ProjectInfo, control: QueryControl | None = None) -> dict[str, Any]:
    """Computed again only when the data changed and the last one is older than FRESH_SECONDS: it scans
    every event of the project (about 1 s per million events), and live traffic changes the data constantly."""
    cache: dict[int, tuple[int, float, dict[str, Any]]] = app.state.__dict__.setdefault("catalogue_cache", {})
    lock: threading.Lock = app.state.__dict__.setdefault("catalogue_lock", threading.Lock())
    with lock:  # one scan at a time: a page asking while the start-up scan runs waits for it, not a second one
        version = store.data_version()
        hit = cache.get(project.id)
        if hit is not None and (hit[0] == version or time.monotonic() - hit[1] < FRESH_SECONDS):
            return hit[2]
        data = build_catalogue(store, project.id, control).as_dict()
        cache[project.id] = (version, time.monotonic(), data)
        return data


@router.get("/api/v1/catalog", summary="Events and properties seen: types, volumes, first/last seen, descriptions")
async def catalogue(request: Request, project: ProjectInfo = CAN_QUERY) -> dict[str, Any]:
    data = await run_in_threadpool(_catalogue, request, project)
    described = ui_store(request).descriptions(project.id)
    empty = {"description": "", "texts": {}}

    def told(kind: str, name: str, item: dict[str, Any]) -> dict[str, Any]:
        return {**item, **described.get((kind, name), empty)}

    return {
        "project": project.name,
        "events": [told("event", e["name"], e) for e in data["events"]],
        "properties": [told("property", p["name"], p) for p in data["properties"]],
        "person_properties": [told("property", "person." + p["name"], p) for p in data["person_properties"]],
        "groups": [{**g, "properties": [told("property", f"group.{g['type']}.{p['name']}", p)
                                        for p in g["properties"]]} for g in data.get("groups", [])],
    }


@router.put("/api/v1/catalog/descriptions", summary="Describe an event or property (admins)")
def describe(request: Request, body: DescriptionIn,
             project: ProjectInfo = CAN_DESCRIBE) -> dict[str, Any]:
    try:
        ui_store(request).describe(project.id, body.kind, body.name, body.description, actor(request), body.lang,
                                   body.display_name)
    except MetadataError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"kind": body.kind, "name": body.name, "description": body.description.strip(), "lang": body.lang,
            "display_name": (body.display_name or "").strip() if body.lang else None}


@router.post("/api/v1/groups/names", summary="Stored names of groups (schools, classes...) by key")
async def names_of_groups(request: Request, body: GroupNamesIn, project: ProjectInfo = CAN_QUERY) -> dict[str, Any]:
    store = platform(request).store
    names = await run_in_threadpool(group_names, store, project.id, body.type, list(dict.fromkeys(body.keys)))
    return {"type": body.type, "names": names}


def _per_minute(request: Request, project: ProjectInfo, minutes: int) -> list[dict[str, Any]]:
    store = platform(request).store
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    since = now - dt.timedelta(minutes=minutes - 1)
    # whole minutes since 1970 as integers: grouping by them costs little even when every stored event
    # arrived in the last hour (right after an import or a simulation), unlike truncating timestamps
    bucket = exp.IntDiv(this=DIALECTS[store.dialect].epoch_us(exp.column("received_at")),
                        expression=exp.Literal.number(60_000_000))
    select = (exp.select(bucket.as_("minute"), exp.Count(this=exp.Star())).from_("events")
              .where(exp.and_(exp.column("project_id").eq(exp.Literal.number(project.id)),
                              exp.column("received_at") >= exp.cast(exp.Literal.string(since.isoformat()),
                                                                     exp.DataType.build("timestamptz"))))
              .group_by(exp.column("minute")))
    counts = {int(minute): int(count) for minute, count in store.query(select.sql(store.dialect)).rows}
    first = int(since.timestamp()) // 60
    return [{"minute": (since + dt.timedelta(minutes=i)).isoformat(), "events": counts.get(first + i, 0)}
            for i in range(minutes)]


def warm_catalogues(app: Any, control: QueryControl) -> None:
    """Compute every project's catalogue once (the pickers of the first page opened need it), so that the
    first analysis after a start does not wait for a scan of all events. Run in a thread at start-up;
    `control.cancel()` stops it (at shutdown, before the store closes)."""
    plat = app.state.platform
    for project in plat.meta.projects():
        try:
            _catalogue_of(app, plat.store, project, control)
        except Exception:  # cancelled, or failed: a page that asks later computes it and reports the error
            return


def start_warm_up(app: Any) -> Callable[[], None]:
    """Start warm_catalogues in a thread; returns what stops it and waits for it."""
    control = QueryControl()
    thread = threading.Thread(target=warm_catalogues, args=(app, control), name="catalogue-warm-up", daemon=True)
    thread.start()

    def stop() -> None:
        control.cancel()
        thread.join(timeout=60)

    return stop


@router.get("/api/v1/ingestion/stats", summary="Events stored per minute (by arrival) and refused records")
async def ingestion_stats(request: Request, project: ProjectInfo = CAN_WATCH,
                          minutes: int = Query(60, ge=1, le=1440)) -> dict[str, Any]:
    series = await run_in_threadpool(_per_minute, request, project, minutes)
    return {"project": project.name, "per_minute": series,
            "quarantined": platform(request).meta.quarantine_count(project.id)}
