"""Errors of a query the caller can act on (each maps to an HTTP status). Anything else raised while a query
runs is a defect of ours, not the caller's mistake: the query service reports it as an internal error."""

from __future__ import annotations


class QueryError(ValueError):
    """The query cannot run as written; the message says what to change (and where). A ValueError, so that
    pydantic validators may raise it too."""

    status = 400


class QueryTimeout(QueryError):
    status = 504


class QueryCancelled(QueryError):
    status = 499


class QueryTooLarge(QueryError):
    status = 413
