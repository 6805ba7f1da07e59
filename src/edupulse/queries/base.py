"""The runner contract of every analysis kind: a pydantic query model `Q` and a response model `R`;
`to_queries()` compiles the query to sqlglot trees (pure: no store, the same trees every time) and
`calculate()` runs them and shapes the rows into `R`.

Running a statement goes through an `Executor`: it renders the tree for the store's dialect, applies the time
limit, cancellation and row limits, and turns the engines' ways of saying "too large" or "interrupted" into
the query errors a caller can act on. The query service (service.py) makes the executor, the context and
the runner; runners never see the metadata or the cache."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Generic, TypeVar

from sqlglot import exp

from edupulse.conf import QuerySettings
from edupulse.queries.common import Model
from edupulse.queries.compile import Context, resolve_persons
from edupulse.queries.dialect import Dialect
from edupulse.queries.errors import QueryCancelled, QueryTimeout, QueryTooLarge
from edupulse.queries.results import Result
from edupulse.store.base import EventStore, QueryControl, QueryInterrupted

Q = TypeVar("Q", bound=Model)
R = TypeVar("R", bound=Result)
Rows = list[tuple[Any, ...]]


def render(tree: exp.Expr, dialect: Dialect) -> str:
    """The SQL text of a tree for an engine: the merge overrides joined where the person is read, and every
    LIMIT with an OFFSET where the engine needs one (see dialect.py)."""
    tree = resolve_persons(tree, dialect)
    if dialect.limit_needs_offset:
        for select in tree.find_all(exp.Select):
            if select.args.get("limit") is not None and select.args.get("offset") is None:
                select.offset(0, copy=False)
    return tree.sql(dialect.name)


class Executor:
    """Runs the statements of one query on the store, under its time limit and row limits; keeps the SQL
    that ran (the response shows it)."""

    def __init__(self, store: EventStore, dialect: Dialect, control: QueryControl | None = None,
                 limits: QuerySettings | None = None) -> None:
        self.store = store
        self.dialect = dialect
        self.limits = limits or QuerySettings()
        self.control = control or QueryControl(self.limits.timeout_seconds)
        self.statements: list[str] = []
        self.columns: list[str] = []  # column names of the last statement run

    def run(self, tree: exp.Expr, max_rows: int | None = None) -> Rows:
        """Run one statement; more than `max_rows` rows (default: the result row limit) is an error."""
        sql = render(tree, self.dialect)
        self.statements.append(sql)
        limit = max_rows or self.limits.max_result_rows
        try:
            answer = self.store.query(sql, control=self.control, max_rows=limit)
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
        self.columns = answer.columns
        if len(answer.rows) > limit:
            raise QueryTooLarge(f"the result has more than {limit} rows: narrow the query (filters, a shorter "
                                "range, a lower limit)")
        return answer.rows


class QueryRunner(Generic[Q, R]):
    """Compiles one query model to trees (`to_queries`) and shapes their rows into its response (`calculate`)."""

    kind: ClassVar[str]
    query_model: ClassVar[type[Model]]
    response_model: ClassVar[type[Result]]

    def __init__(self, query: Q, ctx: Context, executor: Executor | None = None) -> None:
        self.query = query
        self.ctx = ctx
        self.now = ctx.now or dt.datetime.now(dt.UTC)
        self.executor = executor

    def to_queries(self) -> dict[str, exp.Expr]:
        """The statements `calculate` runs, by name, as trees. Statements built from the rows of earlier ones
        (a person's timeline once the person is found, equal-width buckets once the range of values is known)
        are not among them."""
        raise NotImplementedError

    def calculate(self) -> R:
        raise NotImplementedError

    def run(self, tree: exp.Expr, max_rows: int | None = None) -> Rows:
        if self.executor is None:
            raise RuntimeError(f"{self.kind}: this runner was made to compile, not to run")
        return self.executor.run(tree, max_rows)

    @property
    def columns(self) -> list[str]:
        return self.executor.columns if self.executor is not None else []
