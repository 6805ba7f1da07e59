"""The OpenAPI description completed from the routes' dependencies (see errors.py for the rules), and the error
handlers that keep the answers to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from edupulse.api.auth import api_routes
from edupulse.api.busy import BUSY_ERRORS, BUSY_RESPONSE, busy_error
from edupulse.api.errors import FASTAPI_PARSE_FAILURE, Responses, body_problem, refusals


def dependency_responses(dependant: Any) -> Responses:
    """The responses declared by the dependencies of a route (walked through sub-dependencies)."""
    found: Responses = {}
    for sub in dependant.dependencies:
        found.update(dependency_responses(sub))
        declared: Mapping[int | str, dict[str, Any]] | None = getattr(sub.call, "responses", None)
        if declared:
            found.update(declared)
    return found


def document_dependencies(app: FastAPI) -> None:
    """Add to every route the responses its auth dependencies declare, 400 for a JSON body that cannot
    be read and 503 for a busy metadata database (a status the route declares too gets either body). Call
    once every router is included."""
    for _, route in api_routes(app.routes):
        extra = dependency_responses(route.dependant)
        if route.body_field is not None:
            extra.setdefault(400, refusals(400)[400])
        extra.setdefault(503, BUSY_RESPONSE)  # any route may find the metadata database busy (busy.py)
        for status, spec in extra.items():
            route.responses[status] = _either(route.responses.get(status), spec)
    app.openapi_schema = None


def _either(mine: dict[str, Any] | None, theirs: dict[str, Any]) -> dict[str, Any]:
    """A route's own description of a status, whose body may also be the one a dependency answers with."""
    if mine is None:
        return theirs
    own, other = mine.get("model"), theirs.get("model")
    if own is None or other is None or own == other:
        return mine
    return {**mine, "model": own | other}


def allowed_methods(app: Any, path: str) -> set[str]:
    """The methods of every API route at `path` (a path may have one route per method)."""
    allowed: set[str] = set()
    for template, route in api_routes(app.routes):
        if compile_path(template)[0].match(path):
            allowed.update(route.methods or ())
    return allowed


async def http_error(request: Request, exc: Exception) -> Response:
    """HTTPException answers, with two mended: FastAPI's 400 for a body its JSON reader gave up on says why,
    and a 405 lists in Allow the methods of every route at the path (Starlette lists the first route's)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_PARSE_FAILURE and exc.__cause__ is not None:
        return JSONResponse({"detail": body_problem(exc.__cause__)}, status_code=400)
    if exc.status_code == 405:
        allowed = allowed_methods(request.app, request.url.path)
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """The error handlers of the app."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    for error in BUSY_ERRORS:
        app.add_exception_handler(error, busy_error)
