"""Pages of the UI for administering the platform and its data: members and roles, personal API keys, the
audit log, account lifecycle, the metric catalogue, the quarantine, and segments. Each is a shell whose
script (static/admin.js, static/segments.js) reads and changes the governance API with the session."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from edupulse.auth.permissions import Permission
from edupulse.web import nav, session
from edupulse.web.pages import render, signed_in

router = APIRouter(include_in_schema=False)


def _page(request: Request, path: str) -> Response:
    """An admin page: its name, title and the permission it needs are its menu entry's (web/nav.py)."""
    signed_in(request)
    item = next(i for i in nav.NAV if i.path == path)
    page, title, needs = item.pages[0], item.label, item.needs
    if needs is not None and needs not in session.permissions(request):
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
