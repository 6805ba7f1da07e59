"""SQL (自定义查询): read-only SQL for power users over documented views of one project.

The user's text is parsed (in the store's dialect) into a tree and only that tree, rewritten, is run:

- exactly one statement, a SELECT (CTEs, subqueries and UNION / INTERSECT / EXCEPT allowed);
- every table it names must be one of the views below (an allow list), or a CTE in scope; each view is
  replaced by a subquery of the real table filtered to the project, so self-joins, subqueries, CTEs that
  shadow a view and unions all see the project's rows only. CTEs get names of our own, so no name the
  user writes can reach a real table;
- schema- or catalog-qualified names, table functions (read_csv, file(), url(), Python()...), statements
  that write or change settings (DDL, DML, PRAGMA, ATTACH, COPY, SET, SETTINGS, INTO...), and functions that
  reach outside the query (getenv, current_setting, dictGet, nextval...) are refused with the reason;
- comments are dropped; a row limit and the query time limit apply.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable
from typing import Any, Literal

import sqlglot
from pydantic import Field
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import Model
from edupulse.queries.compile import Context
from edupulse.queries.errors import QueryError
from edupulse.queries.results import Result, Table
from edupulse.store.schema import GROUP_SLOTS, property_column

MAX_ROWS = 100_000


# the views ------------------------------------------------------------------------------------------


def _project(ctx: Context) -> exp.Expr:
    return exp.column("project_id").eq(exp.Literal.number(ctx.project_id))


def _view(table: str, columns: list[exp.Expr], ctx: Context) -> exp.Select:
    return exp.select(*columns).from_(exp.table_(table)).where(_project(ctx))


def _named(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, exp.to_identifier(name, quoted=True))


def events_view(ctx: Context) -> exp.Select:
    groups = {slot: name for name, slot in ctx.groups.items()}
    columns: list[exp.Expr] = [
        exp.column("event"), exp.column("time"), exp.column("distinct_id"),
        _named(exp.column("resolved_person_id"), "person_id"), exp.column("insert_id"), exp.column("received_at"),
        *[_named(exp.column(f"group_{i}"), f"group_{groups[i]}" if i in groups else f"group_{i}")
          for i in range(GROUP_SLOTS)],
        exp.column("properties"),
        *[exp.column(property_column(name)) for name in sorted(ctx.typed)],
    ]
    return _view("events_resolved", columns, ctx)


VIEWS: dict[str, Callable[[Context], exp.Select]] = {
    "events": events_view,
    "persons": lambda ctx: _view("persons", [exp.column("person_id"), exp.column("properties")], ctx),
    "identities": lambda ctx: _view("identities", [exp.column(c) for c in ("id_type", "id_value", "person_id")],
                                    ctx),
    "spend": lambda ctx: _view("spend", [exp.column(c) for c in ("date", "channel", "campaign", "cost",
                                                                 "impressions", "clicks")], ctx),
    "entities": lambda ctx: _view("entities", [exp.column(c) for c in ("kind", "entity_type", "entity_key",
                                                                       "properties")], ctx),
}

# Statements and clauses that write, change settings or reach files and other databases.
_DENIED_NODES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name) for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command", "Copy", "Set", "SetItem",
        "Pragma", "Use", "Transaction", "Commit", "Rollback", "Into", "Attach", "Detach", "Describe", "LoadData",
        "Grant", "Revoke", "TruncateTable", "Analyze", "Cache", "Uncache", "Refresh", "Kill", "Install",
        "Summarize", "Show", "Export", "Lock", "Semicolon",
    ) if hasattr(exp, name))

# Functions that read files, URLs, other databases, the environment or settings, run SQL given as text, or
# change state. Tables are an allow list; functions are too many to list, so these patterns deny.
_DENIED_FUNCTIONS = re.compile(
    r"^(duckdb_|pragma_|read_|sniff_|glob|getenv|current_setting|getvariable|set_variable|nextval|setval|"
    r"currval|lastval|file|url|s3|gcs|azure|hdfs|remote|cluster|mysql|postgres|sqlite|mongodb|redis|odbc|"
    r"jdbc|hive|iceberg|delta_scan|deltalake|hudi|parquet_|input$|executable|dict|joinget|getsetting|"
    r"getmacro|hascolumnintable|hastable|filesystem|query|currentuser|current_user|currentdatabase|"
    r"current_database|current_schema|current_catalog|hostname|fqdn|getserverport|uptime|version|buildid|"
    r"serveruuid|shard|getoskernelversion|zookeeper|system|attach|detach|load|install|force_|checkpoint|"
    r"enable_|disable_|which_secret|tpch|tpcds|dbgen|dsdgen|arrow_scan|python|pandas|sql_|json_execute|"
    r"json_serialize|json_deserialize|to_json_serialized|sleep|throwif|getserver|"
    r"initializeaggregation|getclientsetting|getmergetree|globalvariable|catboost|evalml|naivebayes|"
    r"sequencenextnode)", re.IGNORECASE)

_TABLE_ARGS = {"this", "alias"}


class SqlQuery(Model):
    kind: Literal["sql"]
    sql: str = Field(min_length=1, max_length=100_000, description="one SELECT in the store's dialect")
    limit: int = Field(1000, ge=1, le=MAX_ROWS, description="most rows returned; more are cut off (truncated)")


def _refuse(message: str) -> QueryError:
    return QueryError(f"sql: {message}")


def restrict(text: str, ctx: Context) -> exp.Query:
    """The user's SQL as a tree that reads only the project's rows of the views, or QueryError saying why not."""
    try:
        statements = [s for s in sqlglot.parse(text, read=ctx.dialect.name) if s is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _refuse(f"cannot be read as {ctx.dialect.name} SQL: {first}") from None
    if len(statements) != 1:
        raise _refuse(f"one statement only (found {len(statements)})")
    root = statements[0]
    while isinstance(root, exp.Subquery) and not root.alias:
        root = root.this
    if not isinstance(root, exp.Select | exp.SetOperation):
        raise _refuse(f"only SELECT queries can run here; {_what(root)} cannot")
    for node in root.walk():
        # Comments are dropped, and with them the node metadata sqlglot reads from "sqlglot.meta" comments
        # (the compiler marks its own scans with metadata: a user's comment must not).
        node.comments = None
        node._meta = None
        _check_node(node)
    _rewrite_tables(root, ctx)
    _check_rendered(root, ctx)
    return root


def _check_rendered(root: exp.Query, ctx: Context) -> None:
    """Check the functions of the SQL the engine will run, by the names the engine reads: a tree node may
    render under another name than its own (sqlglot's CurrentVersion is VERSION(), a quoted "version"() is
    the same function), and the engine decides by the rendered text."""
    tokens = Dialect.get_or_raise(ctx.dialect.name).tokenize(root.sql(ctx.dialect.name))
    for before, token, after in zip([None, *tokens], tokens, [*tokens[1:], None], strict=False):
        if after is None or after.token_type is not TokenType.L_PAREN:
            continue
        if before is not None and before.token_type is TokenType.ALIAS:  # AS name(columns): not a call
            continue
        if _DENIED_FUNCTIONS.match(token.text):
            raise _refuse(f"function {token.text}() is not allowed: it reaches outside the project's views")


def _what(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, _DENIED_NODES):
        raise _refuse(f"{_what(node)} is not allowed: this SQL can only read the views (events, persons, ...)")
    if isinstance(node, exp.Query):
        for clause in ("settings", "format", "into", "options", "locks"):
            if node.args.get(clause):
                raise _refuse(f"{clause.upper()} is not allowed in a query here")
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        if _DENIED_FUNCTIONS.match(name or ""):
            raise _refuse(f"function {name}() is not allowed: it reaches outside the project's views")
    if isinstance(node, exp.In) and node.args.get("field") is not None:
        raise _refuse("IN needs a list or a subquery: write x IN (SELECT ... FROM view)")


def _rewrite_tables(root: exp.Expr, ctx: Context) -> None:
    """Name every CTE anew, and replace each reference to a view by its project-filtered subquery."""
    counter = iter(range(1, 1_000_000))
    replacements: list[tuple[exp.Table, exp.Expr]] = []

    def visit(node: exp.Expr, scope: dict[str, str]) -> None:
        if isinstance(node, exp.Table):
            replacements.append((node, _table(node, scope, ctx)))
            for child in node.iter_expressions():  # e.g. an alias's column list: nothing to resolve
                if not isinstance(child, exp.Identifier | exp.TableAlias):
                    visit(child, scope)
            return
        with_ = node.args.get("with_") or node.args.get("with")
        inner = dict(scope)
        if isinstance(with_, exp.With):
            recursive = bool(with_.args.get("recursive"))
            pending = {cte: f"__cte_{next(counter)}" for cte in with_.expressions}
            if recursive:  # every CTE of a WITH RECURSIVE sees all of them
                inner.update({_cte_name(cte): name for cte, name in pending.items() if not cte.args.get("scalar")})
            for cte, name in pending.items():
                visit(cte.this, inner)
                if cte.args.get("scalar"):  # ClickHouse WITH (subquery) AS x: a value, not a table
                    continue
                inner[_cte_name(cte)] = name
                columns = cte.args["alias"].columns if cte.args.get("alias") else []
                cte.set("alias", exp.TableAlias(this=exp.to_identifier(name), columns=[c.copy() for c in columns]))
        for key, value in node.args.items():
            if key in ("with_", "with"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, exp.Expr):
                    visit(child, inner)

    visit(root, {})
    for table, replacement in replacements:
        table.replace(replacement)


def _cte_name(cte: exp.CTE) -> str:
    return cte.alias_or_name.lower()


def _table(table: exp.Table, scope: dict[str, str], ctx: Context) -> exp.Expr:
    if not isinstance(table.this, exp.Identifier):
        shown = table.this.sql(ctx.dialect.name)[:80]
        raise _refuse(f"{shown} is not allowed: read the views ({', '.join(VIEWS)}), not table functions or files")
    written = table.name
    if table.args.get("db") is not None or table.args.get("catalog") is not None:
        raise _refuse(f"{table.sql(ctx.dialect.name)[:80]}: name the views without a schema or database "
                      f"({', '.join(VIEWS)})")
    extra = sorted(k for k, v in table.args.items() if v and k not in _TABLE_ARGS)
    if extra:
        raise _refuse(f"{written}: {', '.join(extra)} is not supported on the views")
    key = written.lower() if written.isascii() else written
    alias = table.args.get("alias")
    if key in scope:
        renamed = exp.Table(this=exp.to_identifier(scope[key]))
        renamed.set("alias", alias.copy() if alias is not None else exp.TableAlias(this=exp.to_identifier(written)))
        return renamed
    view = VIEWS.get(key)
    if view is None:
        raise _refuse(f"{written!r} is not a view here; the views are {', '.join(VIEWS)} (or a CTE of the query)")
    return exp.Subquery(this=view(ctx), alias=alias.copy() if alias is not None else exp.TableAlias(
        this=exp.to_identifier(written, quoted=True)))


def _value(value: Any) -> Any:
    """A JSON-able value of a result cell."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo is not None else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    return value


class SqlResponse(Result):
    """The rows as the engine gave them (JSON-able). Not masked: SQL reads every property as stored, so only
    callers allowed to see personal data may run it."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    limit: int

    def to_table(self) -> Table:
        return list(self.columns), [list(row) for row in self.rows]


class SqlRunner(QueryRunner[SqlQuery, SqlResponse]):
    """Runs the restricted tree; the rows come back as lists with the column names."""

    kind = "sql"
    query_model = SqlQuery
    response_model = SqlResponse

    def to_queries(self) -> dict[str, exp.Expr]:
        return {"sql": self._capped(restrict(self.query.sql, self.ctx), self.query.limit + 1)}

    def calculate(self) -> SqlResponse:
        q = self.query
        tree = self.to_queries()["sql"]
        try:
            rows = self.run(tree, max_rows=q.limit + 1)
        except QueryError:
            raise
        except Exception as exc:  # the engine's own complaint (unknown column, wrong types...) is the user's to fix
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise _refuse(f"the {self.ctx.dialect.name} engine refused the query: {first[:500]}") from None
        truncated = len(rows) > q.limit
        return SqlResponse(columns=list(self.columns), rows=[[_value(v) for v in row] for row in rows[: q.limit]],
                           truncated=truncated, limit=q.limit)

    @staticmethod
    def _capped(tree: exp.Query, cap: int) -> exp.Query:
        """The query returning at most `cap` rows: its own LIMIT when that is lower, else ours."""
        current = tree.args.get("limit")
        if current is None:
            return tree.limit(cap, copy=False)
        value = current.expression if isinstance(current, exp.Limit) else None
        if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= cap:
            return tree
        return exp.select(exp.Star()).from_(tree.subquery("capped")).limit(cap)
