"""The query runner: a pydantic query model (`kind` picks the runner) compiled to a SQL tree and run on the
project's event store. Runners register by kind; the base owns parsing, timing and the response frame."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlglot import exp

from edupulse.meta.db import ProjectInfo
from edupulse.queries.common import DUCKDB, Context, Dialect, Model
from edupulse.store.base import EventStore

# name -> the metric's current definition, or None when there is no such metric
MetricLookup = Callable[[str], Any]


class QueryError(ValueError):
    """The query cannot run as written; the message says what to change (and where)."""


class QueryRunner:
    kind: ClassVar[str]
    model: ClassVar[type[Model]]

    def __init__(self, query: Any, ctx: Context, store: EventStore, now: dt.datetime) -> None:
        self.query = query
        self.ctx = ctx
        self.store = store
        self.now = now
        self.statements: list[str] = []

    def run(self, tree: exp.Expr) -> list[tuple[Any, ...]]:
        sql = tree.sql(self.ctx.dialect.name)
        self.statements.append(sql)
        return self.store.query(sql).rows

    def calculate(self) -> dict[str, Any]:
        raise NotImplementedError


RUNNERS: dict[str, type[QueryRunner]] = {}


def register(cls: type[QueryRunner]) -> type[QueryRunner]:
    RUNNERS[cls.kind] = cls
    return cls


def parse_query(data: Any) -> Any:
    """The query model of a JSON object; QueryError names each problem and where it is."""
    if not isinstance(data, dict):
        raise QueryError("a query is a JSON object with a \"kind\"")
    kind = data.get("kind")
    runner = RUNNERS.get(kind) if isinstance(kind, str) else None
    if runner is None:
        raise QueryError(f"kind {kind!r} is not an analysis model; use one of {', '.join(sorted(RUNNERS))}")
    try:
        return runner.model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "query"
            problems.append(f"{where}: {error['msg']}")
        raise QueryError("; ".join(problems)) from None


def run_query(
    store: EventStore, project: ProjectInfo, data: Any, now: dt.datetime | None = None, dialect: Dialect = DUCKDB,
    *, metrics: MetricLookup | None = None, person_scope: exp.Expr | None = None,
) -> dict[str, Any]:
    """Parse, compile and run one query for one project; the response carries the SQL that ran.

    `metrics` resolves series that name a catalogue metric (`{"metric": "attendance_rate"}`, see
    edupulse.queries.metrics); `person_scope` restricts every runner to some persons (edupulse.auth.scope)."""
    from edupulse.queries.metrics import references_metrics, run_with_metrics

    if references_metrics(data):
        return run_with_metrics(store, project, data, metrics, now=now, dialect=dialect, person_scope=person_scope)
    query = parse_query(data)
    started = time.perf_counter()
    ctx = Context(project_id=project.id, timezone=ZoneInfo(project.timezone), typed=dict(store.typed_properties()),
                  dialect=dialect, person_scope=person_scope)
    runner = RUNNERS[query.kind](query, ctx, store, now or dt.datetime.now(dt.UTC))
    try:
        result = runner.calculate()
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    return {"kind": query.kind, "timezone": project.timezone, **result,
            "timings": {"seconds": round(time.perf_counter() - started, 4)}, "sql": runner.statements}
