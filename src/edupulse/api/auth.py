"""Key-based authentication: write keys for ingestion, secret API keys for query and admin."""

from __future__ import annotations

from fastapi import HTTPException, Request

from edupulse.meta.db import ProjectInfo
from edupulse.runtime import Platform


def platform(request: Request) -> Platform:
    return request.app.state.platform


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def write_project(request: Request) -> ProjectInfo:
    key = bearer(request)
    if key is None:
        raise HTTPException(401, "send the project's write key as 'Authorization: Bearer <write key>'")
    project = platform(request).catalog.by_write_key(key)
    if project is None:
        raise HTTPException(401, "unknown write key: check the key shown by 'edupulse project create'")
    return project


def session_project(request: Request) -> ProjectInfo | None:
    """The project of a signed-in web session (cookie), or None when the request has no session. A session
    request that changes state must carry the session's CSRF token in the X-CSRF-Token header."""
    from edupulse.web import session

    if session.SESSION_COOKIE not in request.cookies or not session.current(request).signed_in:
        return None
    if request.method not in session.SAFE_METHODS and not session.check_csrf(request, None):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    project = session.project(request)
    if project is None:
        raise HTTPException(404, "no such project, or none yet: create one with 'edupulse project create NAME'")
    return project


def api_project(request: Request) -> ProjectInfo:
    """The project of the secret API key sent as a bearer token; without one, of the web session's cookie."""
    key = bearer(request)
    if key is None:
        project = session_project(request)
        if project is not None:
            return project
        raise HTTPException(401, "send the project's secret API key as 'Authorization: Bearer <api key>'")
    cache: dict[str, ProjectInfo] = request.app.state.api_key_cache
    project = cache.get(key)
    if project is None:
        if key.startswith("wk_"):
            raise HTTPException(403, "this is a write key: it can only send data; use the secret API key")
        project = platform(request).meta.project_by_api_key(key)
        if project is None:
            raise HTTPException(401, "unknown API key")
        cache[key] = project
    return project
