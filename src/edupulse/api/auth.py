"""Who is calling and what they may do: FastAPI dependencies used by every route.

- `write_project`: the project write key, for ingestion only.
- `current_principal`: a signed-in session (cookie, with a CSRF token on every state-changing request), a
  personal API key (`pk_...`, scopes query/admin) or the project's secret API key (`sk_...`, an admin-scope
  key of its project, kept for compatibility); resolves the project of the request (`?project=NAME|ID` or
  the `X-EduPulse-Project` header; by default the caller's only project).
- `require(permission)`: the dependency every route declares; 401 without credentials, 403 without the
  permission in the request's project. The route × role matrix test reads it from each route.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request

from edupulse.api.errors import declare, refusals
from edupulse.auth.permissions import RESTRICTED_TO_ASSIGNED, Permission, Role, Scope, permissions_of
from edupulse.meta.accounts import UserInfo
from edupulse.meta.db import ProjectInfo
from edupulse.runtime import Platform

SESSION_COOKIE = "edupulse_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
PROJECT_HEADER = "X-EduPulse-Project"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# What using a permission counts as, for the account lifecycle (analysts who only view are downgraded).
ACTIVITY: dict[Permission, str] = {Permission.reports_view: "view", Permission.metrics_view: "view",
                                   Permission.query_run: "analyze", Permission.query_sql: "analyze",
                                   Permission.analyses_save: "analyze", Permission.export: "analyze",
                                   Permission.experiments_edit: "analyze", Permission.journeys_edit: "analyze"}


def platform(request: Request) -> Platform:
    return request.app.state.platform


def now_of(request: Request) -> dt.datetime:
    """The app's clock (tests replace `app.state.clock`)."""
    clock: Callable[[], dt.datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock else dt.datetime.now(dt.UTC)


def client_of(request: Request) -> str:
    host = request.client.host if request.client else ""
    agent = request.headers.get("user-agent", "")[:150]
    return f"{host} {agent}".strip()


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def write_project(request: Request) -> ProjectInfo:
    """The project of the write key in the Authorization header (ingestion only)."""
    key = bearer(request)
    if key is None:
        raise HTTPException(401, "send the project's write key as 'Authorization: Bearer <write key>'")
    project = platform(request).catalog.by_write_key(key)
    if project is None:
        raise HTTPException(401, "unknown write key: check the key shown by 'edupulse project create'")
    return project


declare(write_project, refusals(401, s401="Missing or unknown write key"))


def api_project(request: Request) -> ProjectInfo:
    """The project of a secret API key (kept for routes not yet on `require`)."""
    key = bearer(request)
    if key is None:
        raise HTTPException(401, "send the project's secret API key as 'Authorization: Bearer <api key>'")
    project = _project_key(request, key)
    if project is None:
        raise HTTPException(401, "unknown API key")
    return project


def _project_key(request: Request, key: str) -> ProjectInfo | None:
    cache: dict[str, ProjectInfo] = request.app.state.api_key_cache
    project = cache.get(key)
    if project is None:
        project = platform(request).meta.project_by_api_key(key)
        if project is not None:
            cache[key] = project
    return project


@dataclass(frozen=True)
class Principal:
    """The caller of one request, in the project of that request."""

    kind: Literal["session", "personal_key", "project_key"]
    user: UserInfo | None
    project: ProjectInfo | None
    role: Role | None
    scopes: frozenset[Scope] | None  # None: a session (no key scopes)
    key_id: int | None = None
    key_prefix: str | None = None
    csrf_token: str | None = None
    session_id: int | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.role, self.scopes) if self.role else frozenset()

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def superuser(self) -> bool:
        return bool(self.user and self.user.superuser and (self.scopes is None or Scope.admin in self.scopes))

    @property
    def restricted_to_assigned(self) -> bool:
        """Advisors see only the persons assigned to them."""
        return self.role in RESTRICTED_TO_ASSIGNED

    @property
    def actor(self) -> str:
        if self.kind == "project_key":
            return f"project API key of {self.project.name if self.project else '?'}"
        assert self.user is not None
        return f"{self.user.email} (key {self.key_prefix})" if self.kind == "personal_key" else self.user.email


def _requested_project(request: Request) -> str | None:
    value = request.query_params.get("project") or request.headers.get(PROJECT_HEADER)
    return value.strip() if value and value.strip() else None


def _find_project(plat: Platform, ref: str) -> ProjectInfo | None:
    project = plat.meta.project_by_name(ref)
    if project is None and ref.isdigit():
        project = next((p for p in plat.meta.projects() if p.id == int(ref)), None)
    return project


def _user_project(plat: Platform, user: UserInfo, ref: str | None) -> tuple[ProjectInfo | None, Role | None]:
    if ref is not None:
        project = _find_project(plat, ref)
        role = user.role_in(project.id) if project else None
        if project is None or role is None:
            # the same answer whether the project exists or not: names of other projects stay private
            raise HTTPException(403, f"you have no access to project {ref!r}")
        return project, role
    if user.superuser:
        projects = plat.meta.projects()
        return (projects[0], Role.admin) if len(projects) == 1 else (None, None)
    if len(user.roles) == 1:
        project_id, role = next(iter(user.roles.items()))
        return next((p for p in plat.meta.projects() if p.id == project_id), None), role
    return None, None


async def _check_csrf(request: Request, expected: str) -> None:
    """Synchronizer token: a state-changing request signed in by cookie must carry the session's CSRF token
    in the X-CSRF-Token header or a `csrf_token` field of a URL-encoded form (multipart forms: the header)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # the body is cached by the request, so the route can still read the form afterwards
        values = parse_qs((await request.body()).decode("utf-8", "replace")).get(CSRF_FIELD)
        sent = values[0] if values else None
    if not sent or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, f"missing or wrong CSRF token: send the token from sign-in (or GET "
                                 f"/api/v1/auth/me) in the {CSRF_HEADER} header or a {CSRF_FIELD} form field")


async def current_principal(request: Request) -> Principal:
    """Authenticate the request and resolve its project; 401 when there are no valid credentials."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    plat = platform(request)
    now = now_of(request)
    ref = _requested_project(request)
    key = bearer(request)
    principal: Principal
    if key is not None:
        if key.startswith("wk_"):
            raise HTTPException(403, "this is a write key: it can only send data; use a secret or personal API key")
        if key.startswith("pk_"):
            found = plat.meta.accounts.key_by_token(key, now)
            if found is None:
                raise HTTPException(401, "unknown or revoked API key")
            info, user = found
            project, role = _user_project(plat, user, ref)
            principal = Principal("personal_key", user, project, role, info.scopes, key_id=info.id,
                                  key_prefix=info.prefix)
        else:
            project = _project_key(request, key)
            if project is None:
                raise HTTPException(401, "unknown API key")
            if ref is not None and ref not in (project.name, str(project.id)):
                raise HTTPException(403, f"this API key belongs to project {project.name!r}, not {ref!r}")
            principal = Principal("project_key", None, project, Role.admin, frozenset({Scope.admin}))
    else:
        token = request.cookies.get(SESSION_COOKIE)
        session = plat.meta.accounts.session_by_token(token, now) if token else None
        if session is None:
            raise HTTPException(401, "sign in (POST /api/v1/auth/login) or send an API key as "
                                     "'Authorization: Bearer <key>'")
        await _check_csrf(request, session.csrf_token)
        project, role = _user_project(plat, session.user, ref)
        principal = Principal("session", session.user, project, role, None, csrf_token=session.csrf_token,
                              session_id=session.id)
    request.state.principal = principal
    return principal


declare(current_principal, refusals(401, 403, s401="No session and no API key, or an unknown one",
                                    s403="A write key, a missing CSRF token, or a project of which the caller "
                                         "is not a member"))


Dependency = Callable[..., Coroutine[Any, Any, Principal]]


def require(permission: Permission, *, organization: bool = False) -> Dependency:
    """A dependency that lets the request through only with `permission` in the request's project (or, with
    `organization=True`, for organization-wide actions, only for superusers); returns the Principal."""

    async def dependency(request: Request, principal: Principal = Depends(current_principal)) -> Principal:
        if organization:
            # superusers act for the whole organization, whatever project (if any) the request names
            if not (principal.superuser and permission in permissions_of(Role.admin, principal.scopes)):
                raise HTTPException(403, f"{permission.value} for the whole organization is for superusers only")
        elif principal.project is None:
            names = ", ".join(sorted(_member_projects(request, principal))) or "none"
            raise HTTPException(400, f"choose a project with ?project=NAME or the {PROJECT_HEADER} header "
                                     f"(yours: {names})")
        elif not principal.can(permission):
            role = principal.role.value if principal.role else "no role"
            through = " through this key's scopes" if principal.scopes is not None and principal.kind != \
                "project_key" else ""
            raise HTTPException(403, f"{permission.value} is not allowed for {role}{through} in project "
                                     f"{principal.project.name!r}")
        _note_activity(request, principal, permission)
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    dependency.organization = organization  # type: ignore[attr-defined]
    declare(dependency, refusals(400, 403, s400="No project chosen: the caller has several (?project=NAME)",
                                 s403=f"The caller's role lacks {permission.value}"))
    return dependency


def require_project(permission: Permission) -> Callable[..., Coroutine[Any, Any, ProjectInfo]]:
    """Like `require`, for routes that only need the request's project."""
    check = require(permission)

    async def dependency(principal: Principal = Depends(check)) -> ProjectInfo:
        assert principal.project is not None
        return principal.project

    return dependency


def _member_projects(request: Request, principal: Principal) -> list[str]:
    if principal.user is None:
        return []
    projects = platform(request).meta.projects()
    return [p.name for p in projects if principal.user.role_in(p.id) is not None]


def _note_activity(request: Request, principal: Principal, permission: Permission) -> None:
    if principal.user is None:
        return
    kind = ACTIVITY.get(permission, "admin")
    now = now_of(request)
    seen: set[tuple[int, str, dt.date]] = request.app.state.activity_seen
    mark = (principal.user.id, kind, now.date())
    if mark not in seen:  # one write per user, kind and day in each process
        if len(seen) > 10_000:
            seen.clear()
        seen.add(mark)
        platform(request).meta.accounts.record_activity(principal.user.id, kind, now)


def api_routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, APIRoute) of every API route, included routers walked (newer FastAPI keeps them as nodes)."""
    from fastapi.routing import APIRoute

    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):
            inner = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            yield from api_routes(route.original_router.routes, prefix + inner)
        elif hasattr(route, "routes") and hasattr(route, "path"):  # a mounted router
            yield from api_routes(route.routes, prefix + route.path)


def route_permissions(app: Any) -> list[tuple[str, str, Permission | None, bool]]:
    """(methods, path, permission, organization) of every API route; permission None: public or write key."""
    out = []
    for path, route in api_routes(app.routes):
        found = _find_require(route.dependant)
        methods = ",".join(sorted(route.methods or []))
        out.append((methods, path, found[0] if found else None, found[1] if found else False))
    return out


def uses_dependency(app: Any, path: str, dependency: Callable[..., Any]) -> bool:
    """Whether the routes at `path` depend on `dependency` (e.g. write_project: ingestion by write key)."""

    def walk(dependant: Any) -> bool:
        return any(sub.call is dependency or walk(sub) for sub in dependant.dependencies)

    return any(p == path and walk(r.dependant) for p, r in api_routes(app.routes))


COLLECTION_TAG = "collection"  # routers of the compatible protocols: the write key comes in each protocol's form


def takes_write_key(app: Any, path: str) -> bool:
    """Whether the routes at `path` are ingestion authenticated by a project's write key: the native
    endpoint's dependency, or a collection protocol's router, which reads the key where its clients put it."""
    if uses_dependency(app, path, write_project):
        return True
    return any(p == path and any(str(tag).startswith(COLLECTION_TAG) for tag in (r.tags or []))
               for p, r in api_routes(app.routes))


def _find_require(dependant: Any) -> tuple[Permission, bool] | None:
    for sub in dependant.dependencies:
        permission = getattr(sub.call, "permission", None)
        if permission is not None:
            return permission, bool(getattr(sub.call, "organization", False))
        found = _find_require(sub)
        if found:
            return found
    return None
