"""Sign-in, sessions, members and personal API keys."""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from edupulse.api.auth import (
    SESSION_COOKIE,
    Principal,
    client_of,
    current_principal,
    now_of,
    platform,
    require,
)
from edupulse.api.errors import refusals
from edupulse.api.params import Id
from edupulse.auth.permissions import Permission
from edupulse.meta.accounts import AccountError, parse_role, parse_scopes

router = APIRouter(tags=["accounts"])
LOGIN_WINDOW_SECONDS = 300.0
NO_MEMBER = refusals(404, s404="No member with this id in the project")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class NewUserBody(Body):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    role: str
    name: str = Field("", max_length=100)


class RoleBody(Body):
    role: str | None = Field(description="admin, analyst, viewer, advisor; null removes the user from the project")


class PasswordBody(Body):
    password: str = Field(max_length=1024)


class NewKeyBody(Body):
    name: str = Field("key", max_length=100)
    scopes: list[str] = Field(min_length=1)


class LoginLimiter:
    """At most N sign-in attempts per client address in a sliding window (429 beyond)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.attempts: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float) -> float | None:
        """None when allowed, else the seconds to wait."""
        if len(self.attempts) > 10_000:  # forget addresses whose attempts are all old
            self.attempts = {k: w for k, w in self.attempts.items() if w and now - w[-1] <= LOGIN_WINDOW_SECONDS}
        window = self.attempts.setdefault(client, deque())
        while window and now - window[0] > LOGIN_WINDOW_SECONDS:
            window.popleft()
        if len(window) >= self.limit:
            return LOGIN_WINDOW_SECONDS - (now - window[0])
        window.append(now)
        return None


def _fail(exc: AccountError) -> HTTPException:
    return HTTPException(400, str(exc))


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure over HTTPS (or as configured)."""
    mode = platform(request).settings.auth.cookie_secure
    secure = mode == "always" or (mode == "auto" and request.url.scheme == "https")
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure,
                        path="/")


def _me(principal: Principal) -> dict[str, Any]:
    plat_user = principal.user
    return {
        "kind": principal.kind,
        "user": plat_user.as_dict() if plat_user else None,
        "project": principal.project.name if principal.project else None,
        "role": principal.role.value if principal.role else None,
        "permissions": sorted(p.value for p in principal.permissions),
        "scopes": sorted(s.value for s in principal.scopes) if principal.scopes is not None else None,
        "csrf_token": principal.csrf_token,
    }


@router.post("/api/v1/auth/login", summary="Sign in with email and password; sets the session cookie",
             responses=refusals(401, 429, s401="Wrong email or password, or a disabled account"))
def login(request: Request, response: Response, body: LoginBody) -> dict[str, Any]:
    plat = platform(request)
    auth = plat.settings.auth
    client = client_of(request)
    limiter: LoginLimiter = request.app.state.login_limiter
    wait = limiter.allow(request.client.host if request.client else "", time.monotonic())
    if wait is not None:
        raise HTTPException(429, f"too many sign-in attempts from this address; try again in {int(wait) + 1} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    now = now_of(request)
    outcome = plat.meta.accounts.authenticate(body.email, body.password, now, auth.max_failed_logins,
                                              dt.timedelta(minutes=auth.lockout_minutes))
    if outcome.user is None:
        plat.meta.audit.record("auth.locked" if outcome.locked_until else "auth.sign_in_failed", body.email[:254],
                               target=body.email[:254], detail={"reason": outcome.reason}, client=client, at=now)
        raise HTTPException(429 if outcome.locked_until and "locked until" in outcome.reason else 401,
                            outcome.reason)
    user = outcome.user
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # whatever session the browser had ends; the new one gets a fresh token
        plat.meta.accounts.revoke_session(old, now)
    token, session = plat.meta.accounts.create_session(user.id, now, client, dt.timedelta(days=auth.session_days))
    set_session_cookie(request, response, token, auth.session_days * 86400)
    plat.meta.audit.record("auth.sign_in", user.email, actor_user_id=user.id, target=user.email, client=client, at=now)
    return {"user": user.as_dict(), "csrf_token": session.csrf_token,
            "projects": [{"id": p.id, "name": p.name, "role": user.role_in(p.id)}
                         for p in plat.meta.projects() if user.role_in(p.id) is not None]}


@router.post("/api/v1/auth/logout", summary="Sign out of this session")
def logout(request: Request, response: Response,
           principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    plat = platform(request)
    token = request.cookies.get(SESSION_COOKIE)
    if principal.kind == "session" and token:
        plat.meta.accounts.revoke_session(token, now_of(request))
        plat.meta.audit.record("auth.sign_out", principal.actor, actor_user_id=principal.user.id if principal.user
                               else None, client=client_of(request), at=now_of(request))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"signed_out": True}


@router.post("/api/v1/auth/logout-everywhere", summary="End every session of the signed-in user",
             responses=refusals(400, s400="A project API key has no sessions"))
def logout_everywhere(request: Request, response: Response,
                      principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    if principal.user is None:
        raise HTTPException(400, "a project API key has no sessions")
    plat = platform(request)
    ended = plat.meta.accounts.revoke_sessions(principal.user.id, now_of(request))
    plat.meta.audit.record("auth.sign_out_everywhere", principal.actor, actor_user_id=principal.user.id,
                           target=principal.user.email, detail={"sessions": ended}, client=client_of(request))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"sessions_ended": ended}


@router.get("/api/v1/auth/me", summary="Who is signed in, in which project, with what permissions")
def me(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    return _me(principal)


# members ----------------------------------------------------------------------------------------


@router.get("/api/v1/users", summary="Members of the project with their roles")
def users(request: Request, principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    assert principal.project is not None
    members = platform(request).meta.accounts.users(principal.project.id)
    return {"project": principal.project.name,
            "users": [{**u.as_dict(), "role": r.value if (r := u.role_in(principal.project.id)) else None}
                      for u in members]}


@router.post("/api/v1/users", status_code=201, summary="Create a user with a role in the project (or add one)")
def create_user(request: Request, body: NewUserBody,
                principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    assert principal.project is not None
    plat = platform(request)
    accounts = plat.meta.accounts
    try:
        role = parse_role(body.role)
        user = accounts.user_by_email(body.email)
        created = user is None
        if user is None:
            user = accounts.create_user(body.email, body.password, body.name)
        before = accounts.set_role(user.id, principal.project.id, role)
    except AccountError as exc:
        raise _fail(exc) from None
    actor_id = principal.user.id if principal.user else None
    if created:
        plat.meta.audit.record("user.create", principal.actor, actor_user_id=actor_id, project_id=principal.project.id,
                               target=user.email, client=client_of(request))
    plat.meta.audit.record("user.role", principal.actor, actor_user_id=actor_id, project_id=principal.project.id,
                           target=user.email, detail={"before": before.value if before else None, "after": role.value},
                           client=client_of(request))
    fresh = accounts.user(user.id)
    assert fresh is not None
    return {**fresh.as_dict(), "created": created}


def _member(request: Request, principal: Principal, user_id: Id) -> Any:
    assert principal.project is not None
    user = platform(request).meta.accounts.user(user_id)
    if user is None or (user.role_in(principal.project.id) is None and not principal.superuser):
        raise HTTPException(404, f"no member with id {user_id} in project {principal.project.name!r}")
    return user


@router.put("/api/v1/users/{user_id}/role", summary="Change a member's role in the project (null: remove)",
            responses=NO_MEMBER)
def set_role(request: Request, user_id: Id, body: RoleBody,
             principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    assert principal.project is not None
    user = _member(request, principal, user_id)
    plat = platform(request)
    try:
        role = parse_role(body.role) if body.role is not None else None
        before = plat.meta.accounts.set_role(user.id, principal.project.id, role)
    except AccountError as exc:
        raise _fail(exc) from None
    plat.meta.audit.record("user.role", principal.actor, actor_user_id=principal.user.id if principal.user else None,
                           project_id=principal.project.id, target=user.email,
                           detail={"before": before.value if before else None, "after": role.value if role else None},
                           client=client_of(request))
    return {"user_id": user.id, "role": role.value if role else None, "before": before.value if before else None}


@router.post("/api/v1/users/{user_id}/password", summary="Reset a member's password (signs them out everywhere)",
             responses=NO_MEMBER)
def reset_password(request: Request, user_id: Id, body: PasswordBody,
                   principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    user = _member(request, principal, user_id)
    if user.superuser and not principal.superuser:
        raise HTTPException(403, "only a superuser can reset a superuser's password")
    plat = platform(request)
    try:
        plat.meta.accounts.set_password(user.id, body.password)
    except AccountError as exc:
        raise _fail(exc) from None
    plat.meta.audit.record("user.password_reset", principal.actor,
                           actor_user_id=principal.user.id if principal.user else None,
                           project_id=principal.project.id if principal.project else None, target=user.email,
                           client=client_of(request))
    return {"user_id": user.id, "password_reset": True}


@router.post("/api/v1/users/{user_id}/disable", summary="Disable an account (signs it out, its keys stop)",
             responses=NO_MEMBER)
def disable(request: Request, user_id: Id,
            principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    return _set_disabled(request, principal, user_id, True)


@router.post("/api/v1/users/{user_id}/enable", summary="Enable a disabled account", responses=NO_MEMBER)
def enable(request: Request, user_id: Id,
           principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    return _set_disabled(request, principal, user_id, False)


def _set_disabled(request: Request, principal: Principal, user_id: Id, disabled: bool) -> dict[str, Any]:
    user = _member(request, principal, user_id)
    if user.superuser and not principal.superuser:
        raise HTTPException(403, "only a superuser can disable or enable a superuser")
    plat = platform(request)
    changed = plat.meta.accounts.set_disabled(user.id, disabled, f"by {principal.actor}", now=now_of(request))
    if changed:
        plat.meta.audit.record("user.disable" if disabled else "user.enable", principal.actor,
                               actor_user_id=principal.user.id if principal.user else None,
                               project_id=principal.project.id if principal.project else None, target=user.email,
                               client=client_of(request))
    return {"user_id": user.id, "disabled": disabled, "changed": changed}


@router.post("/api/v1/users/{user_id}/sign-out", summary="Sign a member out everywhere", responses=NO_MEMBER)
def sign_out_user(request: Request, user_id: Id,
                  principal: Principal = Depends(require(Permission.members_manage))) -> dict[str, Any]:
    user = _member(request, principal, user_id)
    plat = platform(request)
    ended = plat.meta.accounts.revoke_sessions(user.id)
    plat.meta.audit.record("auth.sign_out_everywhere", principal.actor,
                           actor_user_id=principal.user.id if principal.user else None, target=user.email,
                           detail={"sessions": ended}, client=client_of(request))
    return {"user_id": user.id, "sessions_ended": ended}


# personal API keys ------------------------------------------------------------------------------


@router.get("/api/v1/keys", summary="Your personal API keys (with keys:manage and ?all=true: every member's)")
def keys(request: Request, all: bool = False,
         principal: Principal = Depends(require(Permission.reports_view))) -> dict[str, Any]:
    accounts = platform(request).meta.accounts
    if all:
        if not principal.can(Permission.keys_manage):
            raise HTTPException(403, "keys:manage is needed to see every member's keys")
        assert principal.project is not None
        members = {u.id for u in accounts.users(principal.project.id)}
        found = [k for k in accounts.keys(None) if k.user_id in members]
    elif principal.user is None:
        found = []
    else:
        found = accounts.keys(principal.user.id)
    return {"keys": [k.as_dict() for k in found]}


@router.post("/api/v1/keys", status_code=201, summary="Create a personal API key (shown once)")
async def create_key(request: Request, body: NewKeyBody,
                     principal: Principal = Depends(require(Permission.reports_view))) -> dict[str, Any]:
    if principal.user is None:
        raise HTTPException(400, "a personal key belongs to a user: sign in, or use 'edupulse key create'")
    try:
        scopes = parse_scopes(body.scopes)
    except AccountError as exc:
        raise _fail(exc) from None
    if principal.scopes is not None and not scopes <= principal.scopes:
        raise HTTPException(403, "a key cannot create a key with scopes it does not have itself")
    plat = platform(request)
    key, info = await run_in_threadpool(plat.meta.accounts.create_key, principal.user.id, body.name, scopes)
    plat.meta.audit.record("key.create", principal.actor, actor_user_id=principal.user.id, target=info.prefix,
                           detail={"key_id": info.id, "scopes": sorted(s.value for s in scopes)},
                           client=client_of(request))
    return {**info.as_dict(), "key": key, "note": "the key is shown only now; store it safely"}


@router.delete("/api/v1/keys/{key_id}", summary="Revoke a personal API key",
               responses=refusals(404, s404="No such key of the caller (or of the project, with keys:manage)"))
def revoke_key(request: Request, key_id: Id,
               principal: Principal = Depends(require(Permission.reports_view))) -> dict[str, Any]:
    accounts = platform(request).meta.accounts
    info = accounts.key(key_id)
    own = info is not None and principal.user is not None and info.user_id == principal.user.id
    if info is None or not (own or principal.can(Permission.keys_manage)):
        raise HTTPException(404, f"no API key with id {key_id} of yours")
    if not own:
        assert principal.project is not None
        owner = accounts.user(info.user_id)
        if owner is None or owner.role_in(principal.project.id) is None:
            raise HTTPException(404, f"no API key with id {key_id} in project {principal.project.name!r}")
    revoked = accounts.revoke_key(key_id)
    platform(request).meta.audit.record("key.revoke", principal.actor,
                                        actor_user_id=principal.user.id if principal.user else None,
                                        target=info.prefix, detail={"key_id": key_id}, client=client_of(request))
    return {"key_id": key_id, "revoked": True, "changed": revoked}
