"""Bounded types of the numbers routes take, so that a value out of range is answered 422 with the bound
(not an overflow deep in a database driver) and the OpenAPI description states the bound.

Every integer a route takes (path, query or body) should use one of these or carry its own `le=`: the
OpenAPI test refuses an integer without a maximum."""

from __future__ import annotations

from typing import Annotated

import annotated_types as at

# The largest integer every JSON reader holds exactly (JavaScript's Number.MAX_SAFE_INTEGER); database ids
# stay far below it, and it fits the 64-bit integers of SQLite, PostgreSQL, DuckDB and ClickHouse.
MAX_ID = 2**53 - 1

Id = Annotated[int, at.Ge(1), at.Le(MAX_ID)]
"""A database id (of a user, key, report, dashboard...)."""

Offset = Annotated[int, at.Ge(0), at.Le(MAX_ID)]
"""How many rows to skip."""
