"""A minimal sign-in page (登录) that works without JavaScript: GET /login shows the form, POST /login signs in
and redirects. The web UI builds its pages on the same sessions; this page only has to let a person in."""

from __future__ import annotations

import datetime as dt
import html
import time
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from edupulse.api.accounts import set_session_cookie
from edupulse.api.auth import SESSION_COOKIE, client_of, now_of, platform

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>登录 Sign in · EduPulse</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;color:#1f2933}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1.2rem}}.error{{color:#b42318}}</style></head><body>
<h1>EduPulse</h1><p>登录 · Sign in</p>{message}
<form method="post" action="/login">
<label for="email">邮箱 Email</label><input id="email" name="email" type="email" autocomplete="username" required
 value="{email}">
<label for="password">密码 Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<button type="submit">登录 Sign in</button></form></body></html>"""


def _page(message: str = "", email: str = "", status: int = 200) -> HTMLResponse:
    note = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return HTMLResponse(PAGE.format(message=note, email=html.escape(email)), status_code=status,
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


@router.get("/login")
def login_page() -> HTMLResponse:
    return _page()


@router.post("/login")
async def login_form(request: Request) -> Response:
    # A cross-site page must not sign a browser in to an account of its choosing (login CSRF).
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        return _page("请从本站登录 · sign in from this site", status=403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    email, password = (form.get("email") or [""])[0], (form.get("password") or [""])[0]
    plat = platform(request)
    limiter = request.app.state.login_limiter
    if limiter.allow(request.client.host if request.client else "", time.monotonic()) is not None:
        return _page("尝试次数过多 · too many sign-in attempts; try again in a few minutes", email, 429)
    auth = plat.settings.auth
    now = now_of(request)
    outcome = await run_in_threadpool(plat.meta.accounts.authenticate, email, password, now,
                                      auth.max_failed_logins, dt.timedelta(minutes=auth.lockout_minutes))
    client = client_of(request)
    if outcome.user is None:
        plat.meta.audit.record("auth.locked" if outcome.locked_until else "auth.sign_in_failed", email[:254],
                               target=email[:254], detail={"reason": outcome.reason}, client=client, at=now)
        return _page(outcome.reason, email, 401)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        plat.meta.accounts.revoke_session(old, now)
    token, _ = plat.meta.accounts.create_session(outcome.user.id, now, client, dt.timedelta(days=auth.session_days))
    plat.meta.audit.record("auth.sign_in", outcome.user.email, actor_user_id=outcome.user.id,
                           target=outcome.user.email, client=client, at=now)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, token, auth.session_days * 86400)
    return response
