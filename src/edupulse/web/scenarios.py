"""The page of one scenario pack (/scenarios/<name>): what it answers, install / upgrade / uninstall, its
headline numbers for a period and the empty state that names the events to send; and the printable report of one
class (/scenarios/learning_indicators/classes/<class_id>). The Scenarios home is the home page (pages.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from edupulse.auth.permissions import Permission
from edupulse.packs.headline import PackError
from edupulse.packs.service import PackService
from edupulse.web import session
from edupulse.web.pages import render, signed_in

router = APIRouter(include_in_schema=False)


@router.get("/scenarios/{name}", response_class=HTMLResponse)
def scenario(request: Request, name: str) -> Response:
    signed_in(request)
    project = session.project(request)
    if project is None:
        return render(request, "error.html", "error", {"message": "error.not_found"}, status=404)
    service = PackService(request.app.state.platform)
    try:
        service.pack(name)
        info = service.info(project, name)
    except PackError:
        return render(request, "error.html", "error", {"message": "error.not_found"}, status=404)
    granted = session.permissions(request)
    return render(request, "scenario.html", "scenario",
                  {"pack": info.model_dump(), "can_install": Permission.analyses_save in granted})


@router.get("/scenarios/learning_indicators/classes/{class_id}", response_class=HTMLResponse)
def class_report(request: Request, class_id: str) -> Response:
    """One class's learning indicators and its students', styled to print (the numbers come from the pack's
    headline with `class_id`)."""
    signed_in(request)
    if session.project(request) is None:
        return render(request, "error.html", "error", {"message": "error.not_found"}, status=404)
    return render(request, "class_report.html", "class_report", {"class_id": class_id[:200]})
