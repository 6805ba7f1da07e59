"""The query service: the one way an analysis runs, for the HTTP API, reports and share links, the CLI, the
web pages and the packs built on them.

    service = QueryService(store, metadata, cache, settings.query)
    answer = service.run(project, {"kind": "funnel", ...}, scope=PersonScope(identities))
    answer.result            # FunnelResponse: typed
    answer.to_wire()         # the JSON object the API sends
    answer.masked(masker)    # personal values in their shown-safe form

It parses the query (400 with each problem and where), expands metrics by name into their definitions (a
typed rewrite, metrics.py), builds the compile context from the project's metadata (group types, saved
segments) and the caller's person scope, serves the result cache, runs the runner under the time limit
(504) and cancellation (499), and maps errors: a `QueryError` is the caller's to fix; anything else is a
defect of ours, logged with its trace under an error id that the caller is shown (500).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import orjson

from edupulse.conf import QuerySettings
from edupulse.queries.base import Executor, QueryRunner, render
from edupulse.queries.common import Model, local_midnight
from edupulse.queries.compile import Context, _no_segments
from edupulse.queries.dialect import DIALECTS
from edupulse.queries.errors import QueryCancelled, QueryError, QueryTimeout
from edupulse.queries.metadata import ProjectRef, QueryMetadata
from edupulse.queries.metric_cohorts import cohort_tree
from edupulse.queries.metric_keys import CohortCounts, Key, SpendCounts, cohort_counts, spend_by_bucket, spend_tree
from edupulse.queries.metrics import Expansion, MetricUsed, expand
from edupulse.queries.registry import Registry
from edupulse.queries.results import Masker, Result, Table, to_csv
from edupulse.queries.scope import person_scope
from edupulse.queries.segments import segment_resolver
from edupulse.queries.trends import TrendsPeriod, TrendsQuery, TrendsResponse
from edupulse.store.base import EventStore, QueryControl, QueryInterrupted

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Result)


class InternalQueryError(Exception):
    """A defect of ours stopped a query (not the caller's mistake): logged with its trace under `error_id`."""

    status = 500

    def __init__(self, error_id: str, kind: str | None) -> None:
        super().__init__(f"an internal error stopped this {kind or 'query'} (error id {error_id}); it is logged on "
                         "the server: please report it with this id")
        self.error_id = error_id


@dataclass(frozen=True)
class PersonScope:
    """Restricts every read of a query to the persons of these identities (advisors see only the persons
    assigned to them); no identities: nobody."""

    identities: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class QueryResult(Generic[R]):
    """A typed result and the frame every response has: the SQL that ran, whether it came from the cache,
    how long it took, and the catalogue metrics it used."""

    kind: str
    timezone: str
    result: R
    sql: tuple[str, ...]
    cached: bool = False
    seconds: float = 0.0
    metrics: dict[str, MetricUsed] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object the API sends (the result's fields between the kind and the SQL)."""
        out: dict[str, Any] = {"kind": self.kind, "timezone": self.timezone, **self.result.model_dump(),
                               "sql": list(self.sql), "cached": self.cached, "timings": {"seconds": self.seconds}}
        if self.metrics is not None:
            out["metrics"] = {name: used.model_dump() for name, used in self.metrics.items()}
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_wire(), option=orjson.OPT_NON_STR_KEYS)

    def to_table(self) -> Table:
        return self.result.to_table()

    def to_csv(self) -> str:
        return to_csv(self.result.to_table())

    def masked(self, masker: Masker) -> QueryResult[R]:
        """The result with the values of personal properties in their shown-safe form."""
        return replace(self, result=self.result.masked(masker))


class ResultCache:
    """Recent results by query, project, day, data version and metadata stamp: new data changes the version, so
    a cached result is never older than the data. Bounded, least recently used out first; thread-safe."""

    def __init__(self, entries: int = 256) -> None:
        self.entries = entries
        self._items: OrderedDict[str, QueryResult[Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> QueryResult[Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: str, value: QueryResult[Any]) -> None:
        if self.entries <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)


@dataclass
class QueryService:
    """Runs analyses on one event store with one project's metadata source, cache and limits."""

    store: EventStore
    metadata: QueryMetadata | None = None
    cache: ResultCache | None = None
    limits: QuerySettings = field(default_factory=QuerySettings)
    registry: Registry = field(default_factory=Registry)

    @property
    def kinds(self) -> list[str]:
        return self.registry.kinds

    def parse(self, data: Any) -> Model:
        """The query model of a JSON query (or the model given); QueryError says what is wrong and where."""
        return self.registry.parse(data)

    def context(self, project: ProjectRef, scope: PersonScope | None = None,
                now: dt.datetime | None = None) -> Context:
        """What compiling a query of this project needs: its time zone, typed columns, group types, saved
        segments and the caller's person scope."""
        dialect = DIALECTS[self.store.dialect]
        meta = self.metadata
        return Context(project_id=project.id, timezone=ZoneInfo(project.timezone),
                       typed=dict(self.store.typed_properties()), dialect=dialect,
                       groups=dict(meta.group_types(project.id)) if meta is not None else {},
                       segments=segment_resolver(lambda name: meta.segment(project.id, name))
                       if meta is not None else _no_segments,
                       person_scope=person_scope(project.id, list(scope.identities), dialect)
                       if scope is not None else None,
                       now=now or dt.datetime.now(dt.UTC),
                       tags=dict(meta.tags(project.id)) if meta is not None else {})

    def runner(self, project: ProjectRef, data: Any, *, now: dt.datetime | None = None,
               scope: PersonScope | None = None) -> QueryRunner[Any, Any]:
        """The runner of a query, made to compile (`to_queries()`), not to run. Metrics are expanded."""
        query, _ = self._plain(project, self.parse(data))
        return self.registry.runner_for(query)(query, self.context(project, scope, now))

    def run(self, project: ProjectRef, data: Any, *, now: dt.datetime | None = None,
            control: QueryControl | None = None, scope: PersonScope | None = None) -> QueryResult[Any]:
        """Parse, compile and run one query of a project. Raises QueryError (the caller's to fix) or
        InternalQueryError (ours, logged)."""
        started = time.perf_counter()
        kind = data.get("kind") if isinstance(data, dict) else getattr(data, "kind", None)
        try:
            asked = self.parse(data)
            ctx = self.context(project, scope, now)
            query, expansion = self._plain(project, asked)
            key = self._key(project, ctx, asked, expansion)
            cached = self.cache.get(key) if self.cache is not None and key is not None else None
            if cached is not None:
                return replace(cached, cached=True, seconds=round(time.perf_counter() - started, 4))
            answer = self._calculate(project, ctx, query, expansion, control)
        except QueryError:
            raise
        except Exception:
            error_id = secrets.token_hex(6)
            log.exception("query %s of project %s failed with an internal error (error id %s)", kind,
                          project.id, error_id)
            raise InternalQueryError(error_id, kind if isinstance(kind, str) else None) from None
        if self.cache is not None and key is not None:
            self.cache.put(key, answer)
        return replace(answer, seconds=round(time.perf_counter() - started, 4))

    def calculate(self, project: ProjectRef, query: Model, response: type[R], *, now: dt.datetime | None = None,
                  scope: PersonScope | None = None) -> R:
        """The typed result of a query model whose response is `response` (for code that builds on analyses)."""
        result = self.run(project, query, now=now, scope=scope).result
        if not isinstance(result, response):
            raise TypeError(f"a {type(query).__name__} answers with {type(result).__name__}, not {response.__name__}")
        return result

    # the steps ---------------------------------------------------------------------------------------

    def _plain(self, project: ProjectRef, query: Model) -> tuple[Model, Expansion | None]:
        """The query with catalogue metrics replaced by their definitions, and how to fold them back."""
        if not isinstance(query, TrendsQuery) or not query.names_metrics():
            return query, None
        meta = self.metadata
        expansion = expand(query, (lambda name: meta.metric(project.id, name)) if meta is not None else None)
        return expansion.query, expansion

    def _key(self, project: ProjectRef, ctx: Context, query: Model, expansion: Expansion | None) -> str | None:
        if self.cache is None:
            return None
        assert ctx.now is not None
        today = ctx.now.astimezone(ctx.timezone).date().isoformat()
        stamp = self.metadata.cache_stamp(project.id) if self.metadata is not None else None
        scope = ctx.person_scope.sql(ctx.dialect.name) if ctx.person_scope is not None else None
        metrics = ([[r.name, r.version, r.definition.model_dump(mode="json")] for r in expansion.refs]
                   if expansion is not None else None)
        material = orjson.dumps([project.id, project.timezone, today, self.store.dialect, self.store.data_version(),
                                 stamp, query.model_dump(mode="json", by_alias=True), scope, metrics],
                                option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(material).hexdigest()

    def _calculate(self, project: ProjectRef, ctx: Context, query: Model, expansion: Expansion | None,
                   control: QueryControl | None) -> QueryResult[Any]:
        control = control or QueryControl(self.limits.timeout_seconds)
        executor = Executor(self.store, ctx.dialect, control, self.limits)
        runner = self.registry.runner_for(query)(query, ctx, executor)
        try:
            control.remaining()
            result = runner.calculate()
            metrics = None
            if expansion is not None:
                assert isinstance(result, TrendsResponse)
                assert isinstance(query, TrendsQuery)
                result = expansion.fold(
                    result, lambda period, channel, by: self._spend(ctx, executor, query, period, channel, by),
                    lambda plan, period: self._counts(ctx, executor, query, plan, period))
                metrics = expansion.metrics_used()
        except QueryInterrupted as exc:
            raise (QueryTimeout("the query ran past its time limit") if exc.reason == "timeout"
                   else QueryCancelled("the query was cancelled")) from None
        return QueryResult(kind=runner.kind, timezone=project.timezone, result=result,
                           sql=tuple(executor.statements), metrics=metrics)

    @staticmethod
    def _spend(ctx: Context, executor: Executor, query: TrendsQuery, period: TrendsPeriod,
               channel: str | None, by: tuple[str, ...]) -> dict[Key, SpendCounts]:
        """The ad spend (of one channel) per bucket of a period, per value of the spend columns `by`."""
        start, end = dt.date.fromisoformat(period.date_from), dt.date.fromisoformat(period.date_to)
        tree = spend_tree(ctx.project_id, start, end, channel, by)
        return spend_by_bucket(executor.run(tree), period, query.granularity, len(by))

    @staticmethod
    def _counts(ctx: Context, executor: Executor, query: TrendsQuery, plan: Any,
                period: TrendsPeriod) -> dict[Key, CohortCounts]:
        """A cohort metric's entries, outcomes and values per bucket of a period (per breakdown value), in one
        statement."""
        definition = plan.ref.definition
        assert definition.cohort is not None
        start, end = dt.date.fromisoformat(period.date_from), dt.date.fromisoformat(period.date_to)
        low, high = local_midnight(start, ctx.timezone), local_midnight(end + dt.timedelta(days=1), ctx.timezone)
        channel = plan.series.channel
        tree = cohort_tree(ctx, definition.cohort, definition.outcome, [*query.filters, *plan.series.filters],
                           query.unit, query.granularity.value, low, high,
                           (definition.channel, channel) if channel is not None and definition.channel else None,
                           plan.by, definition.channel)
        return cohort_counts(executor.run(tree), period, query.granularity, len(plan.by))


def statements(runner: QueryRunner[Any, Any], dialect_name: str) -> dict[str, str]:
    """The SQL text of each statement of a runner's `to_queries()` for an engine (for snapshots and docs)."""
    dialect = DIALECTS[dialect_name]
    return {name: render(tree, dialect) for name, tree in runner.to_queries().items()}
