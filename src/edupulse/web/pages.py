"""Page routes of the web UI. Pages are server-rendered shells; their data comes from the JSON API, called
by our own JavaScript (static/app.js) with the session cookie and the CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from edupulse import __version__
from edupulse.api.params import Id
from edupulse.auth.masking import MASKER
from edupulse.auth.permissions import Permission
from edupulse.meta.db import MetadataError
from edupulse.meta.ui import UIStore
from edupulse.packs.registry import STAGES
from edupulse.packs.service import PackService
from edupulse.queries.registry import Registry
from edupulse.web import i18n, nav, session

WEB_DIR = Path(__file__).parent
# Analysis models the builder knows, in menu order; those the engine has not registered are shown disabled.
BUILDER_KINDS = ("trends", "funnel", "retention", "distribution", "interval", "ltv", "paths", "attribution")

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by pages that need a signed-in user; answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def templates(request: Request) -> Jinja2Templates:
    found: Jinja2Templates | None = getattr(request.app.state, "templates", None)
    if found is None:
        found = Jinja2Templates(directory=str(WEB_DIR / "templates"))
        request.app.state.templates = found
    return found


def local_path(url: str | None, default: str = "/") -> str:
    """Only paths on this site are followed after sign-in or a language switch (no open redirects)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


def registered_kinds() -> set[str]:
    return set(Registry().kinds)


def render(request: Request, template: str, page: str, data: dict[str, Any] | None = None,
           status: int = 200, public: bool = False) -> Response:
    """A page with the layout's context; `data` also goes to the page's script as JSON."""
    lang = i18n.language(request)
    messages = i18n.messages(lang)
    web = session.current(request)
    project = session.project(request) if not public else None
    granted = session.permissions(request) if not public else frozenset()
    boot = {"page": page, "lang": lang, "csrf": web.csrf, "messages": messages, "kinds": sorted(registered_kinds()),
            "project": {"id": project.id, "name": project.name, "timezone": project.timezone} if project else None,
            "is_admin": session.is_admin(request) if not public else False,
            "permissions": sorted(p.value for p in granted), "data": data or {}}
    context = {"request": request, "t": messages, "lang": lang, "session": web, "project": project,
               "projects": session.projects(request) if not public else [], "page": page, "version": __version__,
               "csrf": web.csrf, "kinds": BUILDER_KINDS, "available": registered_kinds(), "data": data or {},
               "public": public, "nav": nav.visible(granted, "main"), "admin_nav": nav.visible(granted, "admin"),
               "admin_on": any(page in item.pages for item in nav.visible(granted, "admin")),
               "boot": Markup(orjson.dumps(boot).decode().replace("<", "\\u003c"))}
    return templates(request).TemplateResponse(request, template, context, status_code=status)


def signed_in(request: Request) -> session.WebSession:
    web = session.current(request)
    if not web.signed_in:
        raise LoginRequired(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
    return web


def ui_store(request: Request) -> UIStore:
    return UIStore(request.app.state.platform.meta)


@router.get("/lang/{code}")
def switch_language(code: str, next: str = "/") -> Response:
    response = RedirectResponse(local_path(next), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


@router.post("/project")
def switch_project(request: Request, project_id: int = Form(...), csrf_token: str = Form(""),
                   next: str = Form("/")) -> Response:
    signed_in(request)
    if not session.check_csrf(request, csrf_token):
        return render(request, "error.html", "error", {"message": "error.csrf"}, status=403)
    response = RedirectResponse(local_path(next), status_code=303)
    session.set_project(request, response, project_id)
    return response


def _event_count(request: Request, project_id: int) -> int:
    rows = request.app.state.platform.store.query(
        "SELECT count(*) FROM events WHERE project_id = ?", [project_id]).rows
    return int(rows[0][0])


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    signed_in(request)
    project = session.project(request)
    count = _event_count(request, project.id) if project else 0
    packs = [p.model_dump() for p in PackService(request.app.state.platform).list(project)] if project else []
    return render(request, "home.html", "home", {"events": count, "packs": packs, "stages": [s.value for s in STAGES]})


@router.get("/analysis")
def analysis_default() -> Response:
    return RedirectResponse("/analysis/trends", status_code=303)


@router.get("/analysis/{kind}", response_class=HTMLResponse)
def analysis(request: Request, kind: str, report: Id | None = None) -> Response:
    signed_in(request)
    project = session.project(request)
    if kind not in BUILDER_KINDS and kind not in registered_kinds():  # other kinds: their query as JSON
        return render(request, "error.html", "error", {"message": "error.not_found"}, status=404)
    saved = None
    if report is not None and project is not None:
        try:
            saved = ui_store(request).report(project.id, report)
        except MetadataError:
            saved = None
    dashboards = ui_store(request).dashboards(project.id) if project else []
    return render(request, "analysis.html", "analysis", {"kind": kind, "report": saved, "dashboards": dashboards})


@router.get("/reports", response_class=HTMLResponse)
def reports(request: Request) -> Response:
    signed_in(request)
    project = session.project(request)
    return render(request, "reports.html", "reports",
                  {"reports": ui_store(request).reports(project.id) if project else []})


@router.get("/dashboards", response_class=HTMLResponse)
def dashboards(request: Request) -> Response:
    signed_in(request)
    project = session.project(request)
    return render(request, "dashboards.html", "dashboards",
                  {"dashboards": ui_store(request).dashboards(project.id) if project else []})


@router.get("/dashboards/{dashboard_id}", response_class=HTMLResponse)
def dashboard(request: Request, dashboard_id: Id) -> Response:
    signed_in(request)
    project = session.project(request)
    try:
        found = ui_store(request).dashboard(project.id if project else -1, dashboard_id)
    except MetadataError:
        return render(request, "error.html", "error", {"message": "error.not_found"}, status=404)
    return render(request, "dashboard.html", "dashboard", {"dashboard": found})


@router.get("/share/{token}", response_class=HTMLResponse)
def shared_dashboard(request: Request, token: str) -> Response:
    found = ui_store(request).dashboard_by_token(token)
    if found is None:
        return render(request, "error.html", "error", {"message": "error.not_found"}, status=404, public=True)
    return render(request, "dashboard.html", "shared", {"dashboard": found[1], "token": token}, public=True)


@router.get("/people", response_class=HTMLResponse)
def people(request: Request, q: str = "") -> Response:
    signed_in(request)
    # without personal:view the list cannot be sorted by a personal property (the order would reveal it)
    sortable = Permission.personal_view in session.permissions(request)
    return render(request, "people.html", "people",
                  {"q": q, "personal": [] if sortable else sorted(MASKER.names)})


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person(request: Request, person_id: Id) -> Response:
    signed_in(request)
    return render(request, "person.html", "person", {"person_id": person_id})


@router.get("/catalog", response_class=HTMLResponse)
def catalog(request: Request) -> Response:
    signed_in(request)
    return render(request, "catalog.html", "catalog")


@router.get("/ingestion", response_class=HTMLResponse)
def ingestion(request: Request) -> Response:
    signed_in(request)
    return render(request, "ingestion.html", "ingestion")


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request) -> Response:
    signed_in(request)
    base = str(request.base_url).rstrip("/")
    return render(request, "settings.html", "settings", {"base_url": base})
