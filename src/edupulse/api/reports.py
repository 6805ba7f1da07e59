"""Saved reports, dashboards and their share links: the JSON API the web UI uses (with a signed-in session)
and that scripts can use with the secret API key."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from edupulse.api.auth import Principal, platform, require_project
from edupulse.api.errors import refusals
from edupulse.api.params import Id
from edupulse.auth.masking import MASKER, for_masked_caller
from edupulse.auth.permissions import Permission
from edupulse.meta.db import MetadataError, ProjectInfo
from edupulse.meta.ui import UIStore
from edupulse.queries.errors import QueryError
from edupulse.queries.service import InternalQueryError

router = APIRouter(tags=["reports"])
CAN_VIEW = Depends(require_project(Permission.reports_view))  # viewers see dashboards and reports
CAN_SAVE = Depends(require_project(Permission.analyses_save))  # analysts and admins build them
NOT_FOUND = refusals(404, s404="No such report or dashboard in the project")


class ReportView(BaseModel):
    """Display choices saved with a report: the order of breakdown values and whether "other values" shows."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    sort: Literal["value_desc", "value_asc", "name"] = "value_desc"
    hide_other: bool = Field(False, alias="hideOther")
    chart: Literal["line", "bar"] | None = None


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    query: dict[str, Any]
    dashboard_id: Id | None = Field(None, description="Also add the report to this dashboard.")
    view: ReportView | None = Field(None, description="How the result is shown (not part of the query).")


class DashboardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    refresh_seconds: int | None = Field(60, ge=10, le=86400, description="Refresh interval; at least 10 s; null: "
                                        "no automatic refresh. Real-time boards refresh every minute by default.")
    date_from: str | None = Field(None, max_length=20, description="Date filter applied to every report.")
    date_to: str | None = Field(None, max_length=20)


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report_id: Id
    width: int = Field(6, ge=3, le=12)


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


def ui_store(request: Request) -> UIStore:
    return UIStore(platform(request).meta)


def actor(request: Request) -> str:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.actor if principal is not None else "unknown"


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type="application/json")


def _missing(exc: MetadataError) -> HTTPException:
    return HTTPException(404 if str(exc).startswith("no ") else 400, str(exc))


def _view(body: ReportIn) -> dict[str, Any] | None:
    return body.view.model_dump(by_alias=True, exclude_none=True) if body.view is not None else None


def _checked_query(request: Request, project: ProjectInfo, query: dict[str, Any]) -> None:
    """Refuse a query that cannot run; metrics it names are checked with their current definitions."""
    try:
        platform(request).query_service().runner(project, query)
    except QueryError as exc:
        raise HTTPException(400, f"the query cannot run: {exc}") from None


# kinds whose queries have no date range (a dashboard's date filter leaves them as they are)
UNDATED = frozenset({"sql", "persons", "person", "segments"})


def with_date_filter(query: dict[str, Any], date_from: str | None, date_to: str | None) -> dict[str, Any]:
    """The query with a dashboard's date filter in place of its own date range (when the filter is set)."""
    if (not date_from and not date_to) or query.get("kind") in UNDATED:
        return query
    date_range = {k: v for k, v in (("date_from", date_from), ("date_to", date_to)) if v}
    return {**query, "date_range": date_range}


async def run(request: Request, project: ProjectInfo, query: dict[str, Any]) -> Response:
    """A report's result for a share link, whose holder has no role: personal data is masked, and SQL
    reports (which read personal data unmasked) are not shown."""
    if query.get("kind") == "sql":
        raise HTTPException(403, "SQL reports are not shown through share links: they read personal data unmasked")
    refusal, query = for_masked_caller(query)
    if refusal is not None:
        raise HTTPException(403, refusal)
    try:
        answer = await run_in_threadpool(platform(request).query_service().run, project, query)
    except (QueryError, InternalQueryError) as exc:  # the message of an internal error carries its id
        raise HTTPException(exc.status, str(exc)) from None
    return Response(answer.masked(MASKER).to_json(), media_type="application/json")


@router.get("/api/v1/reports", summary="Saved reports of the project")
def list_reports(request: Request, project: ProjectInfo = CAN_VIEW) -> dict[str, Any]:
    return {"reports": ui_store(request).reports(project.id)}


@router.post("/api/v1/reports", summary="Save a query as a report (optionally onto a dashboard)",
            responses=NOT_FOUND)
def create_report(request: Request, body: ReportIn, project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    _checked_query(request, project, body.query)
    store = ui_store(request)
    try:
        report = store.save_report(project.id, body.name, body.query, actor(request), view=_view(body))
        if body.dashboard_id is not None:
            store.add_to_dashboard(project.id, body.dashboard_id, report["id"])
    except MetadataError as exc:
        raise _missing(exc) from None
    return report


@router.put("/api/v1/reports/{report_id}", summary="Change a report's name or query",
            responses=NOT_FOUND)
def update_report(request: Request, report_id: Id, body: ReportIn,
                  project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    _checked_query(request, project, body.query)
    try:
        return ui_store(request).save_report(project.id, body.name, body.query, actor(request), report_id,
                                             view=_view(body))
    except MetadataError as exc:
        raise _missing(exc) from None


@router.delete("/api/v1/reports/{report_id}", summary="Delete a report (and take it off dashboards)",
            responses=NOT_FOUND)
def delete_report(request: Request, report_id: Id, project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    try:
        ui_store(request).delete_report(project.id, report_id)
    except MetadataError as exc:
        raise _missing(exc) from None
    return {"deleted": report_id}


@router.get("/api/v1/dashboards", summary="Dashboards of the project")
def list_dashboards(request: Request, project: ProjectInfo = CAN_VIEW) -> dict[str, Any]:
    return {"dashboards": ui_store(request).dashboards(project.id)}


@router.post("/api/v1/dashboards", summary="Create a dashboard")
def create_dashboard(request: Request, body: DashboardIn,
                     project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    try:
        return ui_store(request).save_dashboard(project.id, body.name, body.refresh_seconds, body.date_from,
                                                body.date_to)
    except MetadataError as exc:
        raise _missing(exc) from None


@router.get("/api/v1/dashboards/{dashboard_id}", summary="A dashboard with its reports",
            responses=NOT_FOUND)
def get_dashboard(request: Request, dashboard_id: Id, project: ProjectInfo = CAN_VIEW) -> dict[str, Any]:
    try:
        return ui_store(request).dashboard(project.id, dashboard_id)
    except MetadataError as exc:
        raise _missing(exc) from None


@router.put("/api/v1/dashboards/{dashboard_id}", summary="Rename; set the refresh interval and date filter",
            responses=NOT_FOUND)
def update_dashboard(request: Request, dashboard_id: Id, body: DashboardIn,
                     project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    try:
        return ui_store(request).save_dashboard(project.id, body.name, body.refresh_seconds, body.date_from,
                                                body.date_to, dashboard_id)
    except MetadataError as exc:
        raise _missing(exc) from None


@router.delete("/api/v1/dashboards/{dashboard_id}", summary="Delete a dashboard (its reports stay)",
            responses=NOT_FOUND)
def delete_dashboard(request: Request, dashboard_id: Id,
                     project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    try:
        ui_store(request).delete_dashboard(project.id, dashboard_id)
    except MetadataError as exc:
        raise _missing(exc) from None
    return {"deleted": dashboard_id}


@router.post("/api/v1/dashboards/{dashboard_id}/items", summary="Put a report on a dashboard",
            responses=NOT_FOUND)
def add_item(request: Request, dashboard_id: Id, body: ItemIn,
             project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    store = ui_store(request)
    try:
        store.add_to_dashboard(project.id, dashboard_id, body.report_id, body.width)
        return store.dashboard(project.id, dashboard_id)
    except MetadataError as exc:
        raise _missing(exc) from None


@router.delete("/api/v1/dashboards/{dashboard_id}/items/{report_id}", summary="Take a report off a dashboard",
            responses=NOT_FOUND)
def remove_item(request: Request, dashboard_id: Id, report_id: Id,
                project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    try:
        ui_store(request).remove_from_dashboard(project.id, dashboard_id, report_id)
    except MetadataError as exc:
        raise _missing(exc) from None
    return {"removed": report_id}


@router.post("/api/v1/dashboards/{dashboard_id}/share",
             summary="Create a new read-only share link (enabled: true) or withdraw it (false)",
            responses=NOT_FOUND)
def share_dashboard(request: Request, dashboard_id: Id, body: ShareIn,
                    project: ProjectInfo = CAN_SAVE) -> dict[str, Any]:
    try:
        token = ui_store(request).share(project.id, dashboard_id, body.enabled)
    except MetadataError as exc:
        raise _missing(exc) from None
    return {"share_token": token, "url": f"/share/{token}" if token else None}


@router.get("/api/v1/share/{token}/reports/{report_id}",
            summary="Result of one report of a shared dashboard (the token is the only credential)",
            responses=refusals(400, 403, 404, 413, 499, 504,
                               s403="SQL reports, and persons sorted by a personal property, are not shown "
                                    "through share links",
                               s404="No such share link, or the report is not on its dashboard"))
async def shared_report(request: Request, token: str, report_id: Id) -> Response:
    found = ui_store(request).dashboard_by_token(token)
    if found is None:
        raise HTTPException(404, "this share link does not exist or was withdrawn")
    project_id, dashboard = found
    item = next((i for i in dashboard["items"] if i["report"]["id"] == report_id), None)
    project = next((p for p in platform(request).meta.projects() if p.id == project_id), None)
    if item is None or project is None:
        raise HTTPException(404, f"report {report_id} is not on this shared dashboard")
    query = with_date_filter(item["report"]["query"], dashboard["date_from"], dashboard["date_to"])
    return await run(request, project, query)
