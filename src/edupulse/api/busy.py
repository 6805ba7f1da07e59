"""A metadata database that is busy is a moment to retry, not a server error.

Under load a write to the metadata database can wait past its busy timeout (SQLite "database is locked",
a PostgreSQL lock or statement timeout) or for a pooled connection (SQLAlchemy's pool timeout). Those
errors say nothing about the request: the answer is 503 with Retry-After and the reason, and every API
route documents it (`BUSY_RESPONSE`, added by openapi.document_dependencies). So does a uniqueness
conflict with a request that stored the same name at the same moment (a look-then-insert that lost the
race): retried, the request gets its definitive answer (the name is taken)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from edupulse.api.errors import Problem

RETRY_AFTER_SECONDS = 2
BUSY_REASON = ("The metadata database is busy with other writes, or another request changed the same thing at the "
               "same moment; nothing was changed: retry after the time given")
BUSY_RESPONSE: dict[str, Any] = {"model": Problem, "description": BUSY_REASON,
                                 "headers": {"Retry-After": {"description": "Seconds to wait before retrying",
                                                             "schema": {"type": "integer"}}}}
BUSY_ERRORS: tuple[type[Exception], ...] = (OperationalError, PoolTimeout, IntegrityError)


def busy_reason(exc: BaseException) -> str:
    """What a person is told about this busy or unavailable metadata database."""
    if isinstance(exc, PoolTimeout):
        return "every connection to the metadata database is in use"
    if isinstance(exc, IntegrityError):
        return "another request stored the same thing at the same moment"
    cause = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
    return f"the metadata database could not serve the request in time ({cause})"


async def busy_error(request: Request, exc: Exception) -> Response:
    """503 with Retry-After for an operational error of the metadata database (nothing was acknowledged)."""
    return JSONResponse({"detail": f"{busy_reason(exc)}; nothing was changed: retry in {RETRY_AFTER_SECONDS} s"},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
