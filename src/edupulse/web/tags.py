"""Pages of tags: the list with a new-tag editor (forms for every type beside the JSON, a preview of the
distribution before saving), and one tag's page (distribution, history, values, versions, runs, a model's
evaluation, the editor of its definition and an uploaded tag's CSV upload). Their data comes from
/api/v1/tags (static/tags.js, static/tag_editor.js); a person's tags show on the person page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from edupulse.auth.permissions import Permission
from edupulse.web import session
from edupulse.web.pages import render, signed_in

router = APIRouter(include_in_schema=False)


@router.get("/tags", response_class=HTMLResponse)
def tags(request: Request) -> Response:
    signed_in(request)
    can_save = Permission.analyses_save in session.permissions(request)
    return render(request, "tags.html", "tags", {"can_save": can_save})


@router.get("/tags/{name}", response_class=HTMLResponse)
def tag(request: Request, name: str) -> Response:
    signed_in(request)
    can_run = Permission.analyses_save in session.permissions(request)
    return render(request, "tag.html", "tag", {"name": name, "can_run": can_run})
