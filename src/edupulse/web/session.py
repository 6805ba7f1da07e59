"""Web sessions for the pages: who is signed in, their CSRF token and current project.

Sign-in, sessions and CSRF belong to governance (edupulse.api.accounts, edupulse.api.signin: the
`edupulse_session` cookie, server-side sessions, the session's CSRF token); this module only reads them for
the pages. The page's current project is remembered in its own cookie (`edupulse_project`); every API call
of the pages names it in the X-EduPulse-Project header, and the API checks the user's role in it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from edupulse.api.auth import CSRF_HEADER, PROJECT_HEADER, SAFE_METHODS, SESSION_COOKIE, now_of
from edupulse.auth.permissions import Permission, Role, permissions_of
from edupulse.meta.accounts import UserInfo
from edupulse.meta.db import ProjectInfo

PROJECT_COOKIE = "edupulse_project"
__all__ = ["CSRF_HEADER", "PROJECT_HEADER", "SAFE_METHODS", "SESSION_COOKIE", "WebSession", "current"]


@dataclass(frozen=True)
class WebSession:
    """A visitor's session: `user` is None until they sign in."""

    user: UserInfo | None
    csrf: str

    @property
    def signed_in(self) -> bool:
        return self.user is not None

    @property
    def email(self) -> str | None:
        return self.user.email if self.user else None


def current(request: Request) -> WebSession:
    """The session of this request (cached on it); an anonymous one without a valid session cookie."""
    found: WebSession | None = getattr(request.state, "web_session", None)
    if found is not None:
        return found
    token = request.cookies.get(SESSION_COOKIE)
    info = request.app.state.platform.meta.accounts.session_by_token(token, now_of(request)) if token else None
    session = (WebSession(info.user, info.csrf_token) if info is not None and not info.user.disabled
               else WebSession(None, secrets.token_urlsafe(24)))
    request.state.web_session = session
    return session


def check_csrf(request: Request, token: str | None) -> bool:
    """Does `token` (from a form, else the X-CSRF-Token header) equal the session's CSRF token?"""
    session = current(request)
    given = token if token is not None else request.headers.get(CSRF_HEADER, "")
    return session.signed_in and bool(given) and hmac.compare_digest(given, session.csrf)


def projects(request: Request) -> list[ProjectInfo]:
    """Projects the signed-in user has a role in (every project for superusers)."""
    user = current(request).user
    if user is None:
        return []
    return [p for p in request.app.state.platform.meta.projects() if user.role_in(p.id) is not None]


def project(request: Request) -> ProjectInfo | None:
    """The page's project: the one chosen with the switcher (cookie) if the user still has it, else the first."""
    available = projects(request)
    wanted = request.headers.get(PROJECT_HEADER) or request.cookies.get(PROJECT_COOKIE)
    chosen = next((p for p in available if wanted in (str(p.id), p.name)), None) if wanted else None
    return chosen or (available[0] if available else None)


def is_admin(request: Request) -> bool:
    """Admin of the page's project (admins edit the data catalogue's descriptions)."""
    user, found = current(request).user, project(request)
    return bool(user and found and user.role_in(found.id) is Role.admin)


def permissions(request: Request) -> frozenset[Permission]:
    """What the signed-in user may do in the page's project (nothing without a project or a role)."""
    user, found = current(request).user, project(request)
    role = user.role_in(found.id) if user and found else None
    return permissions_of(role) if role is not None else frozenset()


def set_project(request: Request, response: Response, project_id: int) -> bool:
    if not any(p.id == project_id for p in projects(request)):
        return False
    response.set_cookie(PROJECT_COOKIE, str(project_id), max_age=365 * 24 * 3600, httponly=True, samesite="lax",
                        path="/")
    return True
