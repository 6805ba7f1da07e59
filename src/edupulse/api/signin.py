"""The sign-in page (登录) that works without JavaScript: GET /login shows the form (web/login_page.py, in the
visitor's language), POST /login signs in and redirects. The web UI builds its pages on the same sessions."""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from edupulse.api.accounts import set_session_cookie
from edupulse.api.auth import SESSION_COOKIE, client_of, now_of, platform
from edupulse.web.i18n import language
from edupulse.web.login_page import reason_key, render_login

router = APIRouter(include_in_schema=False)


def _page(request: Request, message: str = "", email: str = "", status: int = 200, detail: str = "") -> HTMLResponse:
    return HTMLResponse(render_login(language(request), message, email, detail), status_code=status,
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return _page(request)


@router.post("/login")
async def login_form(request: Request) -> Response:
    # A cross-site page must not sign a browser in to an account of its choosing (login CSRF).
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        return _page(request, "login.cross_site", status=403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    email, password = (form.get("email") or [""])[0], (form.get("password") or [""])[0]
    plat = platform(request)
    limiter = request.app.state.login_limiter
    if limiter.allow(request.client.host if request.client else "", time.monotonic()) is not None:
        return _page(request, "login.too_many", email, 429)
    auth = plat.settings.auth
    now = now_of(request)
    outcome = await run_in_threadpool(plat.meta.accounts.authenticate, email, password, now,
                                      auth.max_failed_logins, dt.timedelta(minutes=auth.lockout_minutes))
    client = client_of(request)
    if outcome.user is None:
        plat.meta.audit.record("auth.locked" if outcome.locked_until else "auth.sign_in_failed", email[:254],
                               target=email[:254], detail={"reason": outcome.reason}, client=client, at=now)
        until = f"{outcome.locked_until:%Y-%m-%d %H:%M} UTC" if outcome.locked_until else ""
        return _page(request, reason_key(outcome.reason, outcome.locked_until), email, 401, until)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        plat.meta.accounts.revoke_session(old, now)
    token, _ = plat.meta.accounts.create_session(outcome.user.id, now, client, dt.timedelta(days=auth.session_days))
    plat.meta.audit.record("auth.sign_in", outcome.user.email, actor_user_id=outcome.user.id,
                           target=outcome.user.email, client=client, at=now)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, token, auth.session_days * 86400)
    return response
