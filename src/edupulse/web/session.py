"""Web sessions: who is signed in, their CSRF token and current project, in a signed cookie.

The one place the UI learns who the caller is. It signs in against the metadata users table
(`MetadataStore.check_password`); the account and role model of governance can replace the inside of this
module without changing its callers (`current`, `sign_in`, `sign_out`, `check_csrf`, `set_project`).

The cookie is signed (itsdangerous, key kept in the data directory), HttpOnly and SameSite=Lax, and expires.
Every state-changing request made with the cookie must carry the session's CSRF token: as the `csrf_token`
form field or the `X-CSRF-Token` header.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from edupulse.meta.db import ProjectInfo
from edupulse.meta.models import User

SESSION_COOKIE = "edupulse_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
PROJECT_HEADER = "X-EduPulse-Project"
MAX_AGE = 14 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class WebSession:
    """A visitor's session: `email` is None until they sign in; `csrf` is set for every visitor."""

    email: str | None
    csrf: str
    project_id: int | None
    is_admin: bool = False

    @property
    def signed_in(self) -> bool:
        return self.email is not None


def _secret(request: Request) -> bytes:
    """The signing key: made once per data directory (file mode 0600) so sessions survive restarts."""
    cached: bytes | None = getattr(request.app.state, "session_secret", None)
    if cached is not None:
        return cached
    path = Path(request.app.state.platform.settings.data_dir) / "session.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    secret = path.read_text().strip().encode()
    request.app.state.session_secret = secret
    return secret


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(request), salt="edupulse.web.session")


def _user(request: Request, email: str) -> User | None:
    with request.app.state.platform.meta.session() as s:
        return s.scalar(select(User).where(User.email == email))


def current(request: Request) -> WebSession:
    """The session of this request (cached on it); a fresh anonymous one when the cookie is missing or bad."""
    found: WebSession | None = getattr(request.state, "web_session", None)
    if found is not None:
        return found
    data: dict[str, Any] = {}
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        try:
            data = _serializer(request).loads(raw, max_age=MAX_AGE)
        except BadSignature:
            data = {}
    session = WebSession(email=None, csrf=str(data.get("c") or secrets.token_urlsafe(24)), project_id=None)
    if data.get("u"):
        user = _user(request, str(data["u"]))
        if user is not None:  # a deleted user's cookie signs nobody in
            session = WebSession(email=user.email, csrf=session.csrf, project_id=data.get("p"),
                                 is_admin=bool(user.is_admin))
    request.state.web_session = session
    request.state.web_session_dirty = not raw or data.get("c") != session.csrf
    return session


def _store(request: Request, response: Response, session: WebSession) -> None:
    value = _serializer(request).dumps({"u": session.email, "c": session.csrf, "p": session.project_id,
                                        "t": int(time.time())})
    response.set_cookie(SESSION_COOKIE, value, max_age=MAX_AGE, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
    request.state.web_session = session


def persist(request: Request, response: Response) -> None:
    """Write the cookie when this request created the session (so its CSRF token stays the same)."""
    if getattr(request.state, "web_session_dirty", False):
        _store(request, response, current(request))


def sign_in(request: Request, response: Response, email: str, password: str) -> bool:
    """Check the password; on success a new session (new CSRF token: no fixation of a pre-login session)."""
    meta = request.app.state.platform.meta
    email = email.strip()
    if not email or not password or not meta.check_password(email, password):
        return False
    user = _user(request, email)
    if user is None:
        return False
    projects = meta.projects()
    session = WebSession(email=user.email, csrf=secrets.token_urlsafe(24),
                         project_id=projects[0].id if projects else None, is_admin=bool(user.is_admin))
    _store(request, response, session)
    return True


def sign_out(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    request.state.web_session = WebSession(email=None, csrf=secrets.token_urlsafe(24), project_id=None)


def check_csrf(request: Request, token: str | None) -> bool:
    """Does `token` (from the form or the header) equal the session's CSRF token?"""
    expected = current(request).csrf
    given = token if token is not None else request.headers.get(CSRF_HEADER, "")
    return bool(given) and hmac.compare_digest(given, expected)


def projects(request: Request) -> list[ProjectInfo]:
    """Projects the signed-in user may open (every project until roles per project exist)."""
    if not current(request).signed_in:
        return []
    return list(request.app.state.platform.meta.projects())


def project(request: Request) -> ProjectInfo | None:
    """The project of this request: the X-EduPulse-Project header (id or name) if sent, else the session's."""
    session = current(request)
    if not session.signed_in:
        return None
    available = projects(request)
    wanted = request.headers.get(PROJECT_HEADER)
    if wanted:
        return next((p for p in available if str(p.id) == wanted or p.name == wanted), None)
    chosen = next((p for p in available if p.id == session.project_id), None)
    return chosen or (available[0] if available else None)


def set_project(request: Request, response: Response, project_id: int) -> bool:
    session = current(request)
    if not session.signed_in or not any(p.id == project_id for p in projects(request)):
        return False
    _store(request, response, WebSession(session.email, session.csrf, project_id, session.is_admin))
    return True
