"""What the admin pages of the web UI show beyond the governance API: where each catalogue metric is used
(reports naming it and the dashboards they are on) and the last account review."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from edupulse.api.auth import Principal, platform, require
from edupulse.auth.permissions import Permission
from edupulse.meta.audit import AuditFilter
from edupulse.meta.ui import UIStore

router = APIRouter(tags=["governance"])


def metric_names(query: Any) -> set[str]:
    """Metric names a saved query refers to ({"metric": NAME} in its series)."""
    found: set[str] = set()
    for series in (query or {}).get("series") or []:
        if isinstance(series, dict) and isinstance(series.get("metric"), str):
            found.add(series["metric"])
    return found


@router.get("/api/v1/metrics-usage", summary="Where each catalogue metric is used: reports and their dashboards")
def metrics_usage(request: Request, principal: Principal = Depends(require(Permission.metrics_view))
                  ) -> dict[str, Any]:
    assert principal.project is not None
    store = UIStore(platform(request).meta)
    on_boards: dict[int, list[dict[str, Any]]] = {}
    for board in store.dashboards(principal.project.id):
        for item in store.dashboard(principal.project.id, board["id"])["items"]:
            on_boards.setdefault(item["report"]["id"], []).append({"id": board["id"], "name": board["name"]})
    usage: dict[str, list[dict[str, Any]]] = {}
    for report in store.reports(principal.project.id):
        for name in sorted(metric_names(report["query"])):
            usage.setdefault(name, []).append({"report_id": report["id"], "report": report["name"],
                                               "kind": report["kind"], "dashboards": on_boards.get(report["id"], [])})
    return {"usage": usage}


@router.get("/api/v1/lifecycle/last-review", summary="The last account review that changed accounts or ran")
def last_review(request: Request, principal: Principal = Depends(require(Permission.settings_manage))
                ) -> dict[str, Any]:
    meta = platform(request).meta
    found = meta.audit.entries(AuditFilter(action="lifecycle.run", limit=1))
    if not found:
        return {"last_review": None}
    entry = dict(found[0])
    if not principal.superuser:  # a project's admin sees the changes of its own members only
        assert principal.project is not None
        members = {u.id for u in meta.accounts.users(principal.project.id)}
        changes = (entry.get("detail") or {}).get("changes") or []
        entry["detail"] = {"changes": [c for c in changes if c.get("user_id") in members]}
    return {"last_review": entry}
