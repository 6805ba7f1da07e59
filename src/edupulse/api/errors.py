"""What the API answers when it refuses a request, and how the OpenAPI description learns it.

Error bodies: routes raise HTTPException, answered `{"detail": "..."}` (`Problem`); the ingestion and query
routes answer `{"error": "..."}` (`ErrorBody`); FastAPI answers a value that breaks a route's types 422
with the list of problems; each compatible protocol has its own error body (its router documents it).

Documented statuses are structural, so a route added later is described without a hand list:

- an auth dependency states what it answers (`declare`: `require` 400/401/403, the write key 401...);
  `openapi.document_dependencies` adds those to every route that depends on it;
- a route with a JSON body may answer 400 when the body cannot be read (the parse-error handler below);
- what a route itself answers (404, 409...) it declares with `responses=refusals(404, ...)`.

The test suite holds every route to its description (tests/test_openapi.py and the OpenAPI fuzz run).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

FASTAPI_PARSE_FAILURE = "There was an error parsing the body"


class Problem(BaseModel):
    """Why the request was refused."""

    detail: str


class ErrorBody(BaseModel):
    """Why the request was refused (ingestion and analysis routes)."""

    error: str


REASONS: dict[int, str] = {
    400: "The request cannot be taken as sent (the reason says what to change)",
    401: "No valid credentials",
    403: "The credentials do not allow this",
    404: "Not found in the request's project",
    409: "Conflicts with what exists",
    412: "A precondition of the request (If-Match, If-None-Match) does not hold",
    413: "The body is too large",
    415: "The body is not in a media type this route reads",
    429: "Too many attempts; retry after the time given",
    499: "The query was cancelled (DELETE /api/v1/query/{query_id})",
    503: "Could not be stored durably; nothing was acknowledged: retry",
    504: "The query ran out of its time limit",
}

Responses = dict[int | str, dict[str, Any]]


def refusals(*statuses: int, model: type[BaseModel] = Problem, **reasons: str) -> Responses:
    """OpenAPI responses for these refusal statuses with `model` as the body (`reasons`: s404="..." to say
    more than the standard reason)."""
    return {status: {"model": model, "description": reasons.get(f"s{status}", REASONS[status])}
            for status in statuses}


def declare(dependency: Callable[..., Any], responses: Responses) -> Callable[..., Any]:
    """Mark what an auth dependency answers when it refuses; returns the dependency."""
    dependency.responses = responses  # type: ignore[attr-defined]
    return dependency


def body_problem(cause: BaseException) -> str:
    """What is wrong with a body the JSON reader gave up on."""
    if isinstance(cause, RecursionError):
        return ("the body nests arrays and objects too deeply to be read: keep JSON bodies under a few hundred "
                "levels")
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not UTF-8: invalid byte at offset {cause.start}"
    if isinstance(cause, json.JSONDecodeError):
        return f"the body is not valid JSON: {cause.msg} at line {cause.lineno} column {cause.colno}"
    return f"the body cannot be read as JSON ({type(cause).__name__}: {str(cause)[:200]})"
