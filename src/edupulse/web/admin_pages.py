"""Pages of the UI for administering the platform and its data: members and roles, personal API keys, the
audit log, account lifecycle, the metric catalogue, the quarantine, and segments. Each is a shell whose
script (static/admin.js, static/segments.js) reads and changes the governance API with the session."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from edupulse.auth.permissions import Permission
from edupulse.web import session
from edupulse.web.pages import render, signed_in

router = APIRouter(include_in_schema=False)

# path -> (page name, title message key, permission needed)
ADMIN_PAGES: dict[str, tuple[str, str, Permission]] = {
    "/admin/members": ("admin-members", "nav.members", Permission.members_manage),
    "/admin/keys": ("admin-keys", "nav.keys", Permission.reports_view),
    "/admin/audit": ("admin-audit", "nav.audit", Permission.audit_view),
    "/admin/lifecycle": ("admin-lifecycle", "nav.lifecycle", Permission.settings_manage),
    "/admin/metrics": ("admin-metrics", "nav.metrics", Permission.metrics_view),
    "/admin/quarantine": ("admin-quarantine", "nav.quarantine", Permission.quarantine_view),
}


def _page(request: Request, path: str) -> Response:
    signed_in(request)
    page, title, needs = ADMIN_PAGES[path]
    if needs not in session.permissions(request):
        return render(request, "error.html", "error", {"message": "error.forbidden"}, status=403)
    user = session.current(request).user
    return render(request, "admin.html", page, {"title": title, "superuser": bool(user and user.superuser),
                                                "user_id": user.id if user else None})


@router.get("/admin/members", response_class=HTMLResponse)
def members(request: Request) -> Response:
    return _page(request, "/admin/members")


@router.get("/admin/keys", response_class=HTMLResponse)
def keys(request: Request) -> Response:
    return _page(request, "/admin/keys")


@router.get("/admin/audit", response_class=HTMLResponse)
def audit(request: Request) -> Response:
    return _page(request, "/admin/audit")


@router.get("/admin/lifecycle", response_class=HTMLResponse)
def lifecycle(request: Request) -> Response:
    return _page(request, "/admin/lifecycle")


@router.get("/admin/metrics", response_class=HTMLResponse)
def metrics(request: Request) -> Response:
    return _page(request, "/admin/metrics")


@router.get("/admin/quarantine", response_class=HTMLResponse)
def quarantine(request: Request) -> Response:
    return _page(request, "/admin/quarantine")


@router.get("/segments", response_class=HTMLResponse)
def segments(request: Request) -> Response:
    signed_in(request)
    if Permission.reports_view not in session.permissions(request):
        return render(request, "error.html", "error", {"message": "error.forbidden"}, status=403)
    return render(request, "segments.html", "segments",
                  {"can_save": Permission.analyses_save in session.permissions(request)})
