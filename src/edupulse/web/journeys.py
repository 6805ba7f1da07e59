"""Pages of journeys (automated operations): the list with live counters and the editor (forms for the
trigger, the steps as a vertical flow and the guard rails, the JSON beside them, the reach of the trigger
now), one journey's page (per-step counts, the funnel, the holdout result, the delivery log with reasons and
the editor of its definition), and the advisors' task inbox. Their data comes from /api/v1/journeys and
/api/v1/journey-tasks (static/journeys.js, static/journey_editor.js)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from edupulse.auth.permissions import Permission
from edupulse.web import session
from edupulse.web.pages import render, signed_in

router = APIRouter(include_in_schema=False)


@router.get("/journeys", response_class=HTMLResponse)
def journeys(request: Request) -> Response:
    signed_in(request)
    can_edit = Permission.journeys_edit in session.permissions(request)
    return render(request, "journeys.html", "journeys", {"can_edit": can_edit})


@router.get("/journeys/{journey_id:int}", response_class=HTMLResponse)
def journey(request: Request, journey_id: int) -> Response:
    signed_in(request)
    return render(request, "journey.html", "journey", {"id": journey_id})


@router.get("/journey-tasks", response_class=HTMLResponse)
def tasks(request: Request) -> Response:
    signed_in(request)
    return render(request, "journey_tasks.html", "journey-tasks")
