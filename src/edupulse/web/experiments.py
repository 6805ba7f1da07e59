"""Pages of A/B testing: the list with a sample-size calculator and a new-experiment form, and one
experiment's results. Their data comes from /api/v1/experiments (static/experiments.js)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from edupulse.web.pages import render, signed_in

router = APIRouter(include_in_schema=False)


@router.get("/experiments", response_class=HTMLResponse)
def experiments(request: Request) -> Response:
    signed_in(request)
    return render(request, "experiments.html", "experiments")


@router.get("/experiments/{key}", response_class=HTMLResponse)
def experiment(request: Request, key: str) -> Response:
    signed_in(request)
    return render(request, "experiment.html", "experiment", {"key": key})
