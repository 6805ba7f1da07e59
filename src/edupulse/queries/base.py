"""The query runner: a pydantic query model (`kind` picks the runner) compiled to SQL trees and run on the
project's event store. Runners register by kind; the base owns parsing, the guard rails (time limit,
cancellation, row limits, clear errors for queries too large to run), the result cache and the response
frame."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError
from sqlglot import exp

from edupulse.conf import QuerySettings
from edupulse.meta.db import MetadataStore, ProjectInfo
from edupulse.queries.common import Model
from edupulse.queries.compile import Context, SegmentResolver, _no_segments, resolve_persons
from edupulse.queries.dialect import DIALECTS
from edupulse.store.base import EventStore, QueryControl, QueryInterrupted

Table = tuple[list[str], list[list[Any]]]


class QueryError(ValueError):
    """The query cannot run as written; the message says what to change (and where)."""

    status = 400


class QueryTimeout(QueryError):
    status = 504


class QueryCancelled(QueryError):
    status = 499


class QueryTooLarge(QueryError):
    status = 413


class QueryRunner:
    """Compiles one query model to trees and shapes their rows into the JSON result."""

    kind: ClassVar[str]
    model: ClassVar[type[Model]]

    def __init__(self, query: Any, ctx: Context, store: EventStore, now: dt.datetime,
                 control: QueryControl | None = None, limits: QuerySettings | None = None) -> None:
        self.query = query
        self.ctx = ctx
        self.store = store
        self.now = now
        self.control = control
        self.limits = limits or QuerySettings()
        self.statements: list[str] = []
        self.columns: list[str] = []  # column names of the last statement run

    def run(self, tree: exp.Expr, max_rows: int | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; more than `max_rows` rows (default: the result row limit) is an error."""
        sql = resolve_persons(tree, self.ctx.dialect).sql(self.ctx.dialect.name)
        self.statements.append(sql)
        limit = max_rows or self.limits.max_result_rows
        try:
            answer = self.store.query(sql, control=self.control, max_rows=limit)
            rows, self.columns = answer.rows, answer.columns
        except QueryInterrupted as exc:
            if exc.reason == "timeout":
                raise QueryTimeout(f"the query ran past its time limit of {self.limits.timeout_seconds:g} s: "
                                   "narrow the date range, add filters or choose a coarser granularity") from None
            raise QueryCancelled("the query was cancelled") from None
        except MemoryError:
            raise QueryTooLarge("the query needs more memory than this server has: narrow the date range, "
                                "add filters or lower the breakdown limit") from None
        except Exception as exc:  # engine errors that mean "too large" have no common class
            if "out of memory" in str(exc).lower() or "memory limit" in str(exc).lower():
                raise QueryTooLarge("the query needs more memory than this server allows: narrow the date "
                                    "range, add filters or lower the breakdown limit") from None
            raise
        if len(rows) > limit:
            raise QueryTooLarge(f"the result has more than {limit} rows: narrow the query (filters, a shorter "
                                "range, a lower limit)")
        return rows

    def calculate(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def table(cls, result: dict[str, Any]) -> Table:
        """The result as one table (column names, rows), for CSV export."""
        raise NotImplementedError


RUNNERS: dict[str, type[QueryRunner]] = {}

# Set by the segments model: how to look up a project's saved segments.
SegmentLookup = Callable[[MetadataStore, ProjectInfo], SegmentResolver]
SEGMENT_LOOKUP: list[SegmentLookup] = []

# Set by models whose results depend on metadata (saved segments): a value that changes whenever that
# metadata changes, made part of the result cache key so that editing a segment never serves a stale result.
CacheStamp = Callable[[MetadataStore, ProjectInfo], Any]
CACHE_STAMPS: list[CacheStamp] = []


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


class ResultCache:
    """Recent results by query, project, day and data version: new data changes the version, so a cached
    result is never older than the data. Bounded, least recently used out first; thread-safe."""

    def __init__(self, entries: int = 256) -> None:
        self.entries = entries
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self.entries <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)


@dataclass
class QueryEnv:
    """Where a query runs: the store, the metadata (group types, segments), the cache and the limits."""

    store: EventStore
    meta: MetadataStore | None = None
    cache: ResultCache | None = None
    limits: QuerySettings = field(default_factory=QuerySettings)


def context(env: QueryEnv, project: ProjectInfo) -> Context:
    groups = env.meta.group_types(project.id) if env.meta is not None else {}
    segments = SEGMENT_LOOKUP[0](env.meta, project) if SEGMENT_LOOKUP and env.meta is not None else _no_segments
    return Context(project_id=project.id, timezone=ZoneInfo(project.timezone), typed=dict(env.store.typed_properties()),
                   dialect=DIALECTS[env.store.dialect], groups=groups, segments=segments)


def run_query(
    store: EventStore | QueryEnv, project: ProjectInfo, data: Any, now: dt.datetime | None = None,
    control: QueryControl | None = None,
) -> dict[str, Any]:
    """Parse, compile and run one query for one project; the response carries the SQL that ran."""
    env = store if isinstance(store, QueryEnv) else QueryEnv(store)
    query = parse_query(data)
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    ctx = context(env, project)
    ctx.now = now
    key = None
    if env.cache is not None:
        today = now.astimezone(ctx.timezone).date().isoformat()
        stamps = [stamp(env.meta, project) for stamp in CACHE_STAMPS] if env.meta is not None else []
        material = orjson.dumps([project.id, project.timezone, today, env.store.dialect, env.store.data_version(),
                                 stamps, query.model_dump(mode="json", by_alias=True)], option=orjson.OPT_SORT_KEYS)
        key = hashlib.sha256(material).hexdigest()
        cached = env.cache.get(key)
        if cached is not None:
            return {**cached, "cached": True,
                    "timings": {"seconds": round(time.perf_counter() - started, 4)}}
    control = control or QueryControl(env.limits.timeout_seconds)
    runner = RUNNERS[query.kind](query, ctx, env.store, now, control, env.limits)
    try:
        control.remaining()
        result = runner.calculate()
    except QueryInterrupted as exc:
        raise (QueryTimeout("the query ran past its time limit") if exc.reason == "timeout"
               else QueryCancelled("the query was cancelled")) from None
    except QueryError:
        raise
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    response = {"kind": query.kind, "timezone": project.timezone, **result, "sql": runner.statements}
    if env.cache is not None and key is not None:
        env.cache.put(key, response)
    return {**response, "cached": False, "timings": {"seconds": round(time.perf_counter() - started, 4)}}


def result_table(result: dict[str, Any]) -> Table:
    """A result (from run_query) as a table of its model."""
    runner = RUNNERS.get(str(result.get("kind")))
    if runner is None:
        raise QueryError(f"no table form for kind {result.get('kind')!r}")
    return runner.table(result)


def to_csv(result: dict[str, Any]) -> str:
    """A result as CSV text: a header row, then one row per line of the result's table."""
    columns, rows = result_table(result)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()
