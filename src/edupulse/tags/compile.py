"""Each tag family compiled to one SELECT of its values: columns `unit` (the person after merges, or the group
key), `value` (text), `number` and `detail`. Every family reads the events in one pass (`Context.scan`, so the
project, the caller's scope and merged identities apply as in every analysis); the rest is arithmetic over
per-unit aggregates. Time values are numbers (seconds since 1970) so that both engines agree on them.

The families of the built-in education tags (missed lessons, referral KOLs, institution health) are in
builtin.py; model scores in tags/learn."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from edupulse.queries.common import Filter
from edupulse.queries.compile import EVENTS, Context, literal
from edupulse.queries.errors import QueryError
from edupulse.queries.segments import Window, compile_first_match
from edupulse.queries.sql import restrict
from edupulse.tags.model import (
    Aggregate,
    CustomTiers,
    FirstLast,
    Measure,
    MetricTiers,
    Preference,
    Range,
    Rfm,
    SqlTag,
    TagSpec,
)

ALL_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
S = "s"  # alias of a per-unit aggregate


def sql(text: str) -> exp.Expr:
    """A fixed formula (no user values) as a tree; it is rendered for each engine like any other."""
    return sqlglot.parse_one(text, read="duckdb")


def col(name: str, table: str = S) -> exp.Column:
    return exp.column(name, table)


def events_of(ctx: Context, event: str | Sequence[str], window: Window | None = None,
              filters: Sequence[Filter] = ()) -> list[exp.Expr]:
    """Conditions of a scan: the event (or one of these events), in the window, meeting the filters."""
    names = [event] if isinstance(event, str) else list(event)
    which = exp.column("event", EVENTS)
    parts: list[exp.Expr] = [which.eq(exp.Literal.string(names[0])) if len(names) == 1
                             else exp.In(this=which, expressions=[exp.Literal.string(n) for n in names])]
    if window is not None:
        parts += ctx.in_time(*window.bounds(ctx))
    parts += ctx.conditions(list(filters))
    return parts


def span(ctx: Context, window: Window | None) -> tuple[dt.datetime, dt.datetime]:
    now = ctx.now or dt.datetime.now(dt.UTC)
    return window.bounds(ctx) if window is not None else (ALL_TIME, now + dt.timedelta(days=2))


def output(unit: exp.Expr, value: exp.Expr, number: exp.Expr | None = None,
           detail: exp.Expr | None = None) -> list[exp.Expr]:
    return [unit.as_("unit"), value.as_("value"), (number if number is not None else exp.null()).as_("number"),
            (detail if detail is not None else exp.null()).as_("detail")]


def text_null(ctx: Context) -> exp.Expr:
    return exp.cast(exp.null(), exp.DataType.build("TEXT"))


def ranges_case(value: exp.Expr, ranges: Sequence[Range]) -> exp.Expr:
    """The name of the first range holding `value` (NULL: none)."""
    case = exp.Case()
    for r in ranges:
        tests: list[exp.Expr] = []
        if r.min is not None:
            tests.append(exp.GTE(this=value.copy(), expression=literal(float(r.min))))
        if r.max is not None:
            tests.append(exp.LT(this=value.copy(), expression=literal(float(r.max))))
        case = case.when(exp.and_(*tests) if tests else exp.true(), exp.Literal.string(r.name))
    return case


# families --------------------------------------------------------------------------------------------


def custom_tiers(spec: TagSpec, d: CustomTiers, ctx: Context) -> exp.Select:
    values: list[exp.Expr] = [exp.Literal.string(t.name) for t in d.tiers]
    matches = compile_first_match([t.condition for t in d.tiers], values, ctx)
    value: exp.Expr = col("value", "m")
    if d.otherwise is not None:
        value = exp.func("coalesce", value, exp.Literal.string(d.otherwise))
    tree = exp.select(*output(col("person_id", "m"), value)).from_(matches.subquery("m"))
    return tree if d.otherwise is not None else tree.where(exp.Not(this=exp.Is(this=col("value", "m"),
                                                                                 expression=exp.null())))


def measure_tree(spec: TagSpec, m: Measure, ctx: Context) -> exp.Select:
    """SELECT unit, m: the measure of every unit with at least one counted event."""
    unit = ctx.unit(spec.unit)
    conditions = events_of(ctx, m.event, m.window, m.filters)
    if m.aggregate is Aggregate.count:
        measure: exp.Expr = exp.Count(this=exp.Star())
    elif m.aggregate is Aggregate.distinct_days:
        low, high = span(ctx, m.window)
        measure = exp.Count(this=exp.Distinct(expressions=[ctx.bucket("day", low, high)]))
    else:
        assert m.property is not None
        number = ctx.number(m.property)
        conditions.append(exp.Not(this=exp.Is(this=number.copy(), expression=exp.null())))
        measure = exp.func(m.aggregate.value, number)
    conditions.append(exp.Not(this=exp.Is(this=unit.copy(), expression=exp.null())))
    return ctx.scan([unit.as_("unit"), exp.cast(measure, exp.DataType.build("DOUBLE")).as_("m")],
                    conditions).group_by(unit.copy())


def metric_tiers(spec: TagSpec, d: MetricTiers, ctx: Context) -> exp.Select:
    inner = measure_tree(spec, d.measure, ctx).subquery(S)
    m = col("m")
    if not d.ranges:
        return exp.select(*output(col("unit"), text_null(ctx), m)).from_(inner)
    if d.cut == "values":
        tiered = exp.select(*output(col("unit"), ranges_case(m, d.ranges), m)).from_(inner)
    else:
        # percentile rank 0..100 among units with a value: ties share the lower rank
        rank = sql("100.0 * (rank() OVER (ORDER BY s.m) - 1) / greatest(count(*) OVER () - 1, 1)")
        ranked = exp.select(col("unit"), m, rank.as_("pr")).from_(inner).subquery("r")
        tiered = exp.select(*output(col("unit", "r"), ranges_case(col("pr", "r"), d.ranges), col("m", "r"),
                                    exp.func("round", col("pr", "r"), exp.Literal.number(1)))).from_(ranked)
    return exp.select(exp.Star()).from_(tiered.subquery("t")).where(
        exp.Not(this=exp.Is(this=col("value", "t"), expression=exp.null())))


def first_last(spec: TagSpec, d: FirstLast, ctx: Context) -> exp.Select:
    unit = ctx.unit(spec.unit)
    first = d.type == "first_event"
    time = exp.column("time", EVENTS)
    conditions = [*events_of(ctx, d.event, d.window, d.filters), exp.Not(this=exp.Is(this=unit.copy(),
                                                                                      expression=exp.null()))]
    seconds = exp.Div(this=ctx.dialect.epoch_us(exp.func("min" if first else "max", time)),
                      expression=exp.Literal.number(1_000_000))
    if d.property is None:
        columns = output(unit, text_null(ctx), exp.cast(seconds, exp.DataType.build("DOUBLE")))
    else:
        value = ctx.text(d.property)
        conditions.append(exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())))
        pick = ctx.dialect.arg_min if first else _arg_max(ctx)
        # ties in time: the smaller value, so both engines agree
        key = exp.Tuple(expressions=[time.copy(), value.copy()])
        columns = output(unit, pick(value, key), exp.cast(seconds, exp.DataType.build("DOUBLE")))
    return ctx.scan(columns, conditions).group_by(unit.copy())


def _arg_max(ctx: Context):  # type: ignore[no-untyped-def]
    name = "arg_max" if ctx.dialect.name == "duckdb" else "argMax"
    return lambda v, by: exp.func(name, v, by)


def preference(spec: TagSpec, d: Preference, ctx: Context) -> exp.Select:
    unit = ctx.unit(spec.unit)
    value = ctx.text(d.property)
    conditions = [*events_of(ctx, d.event, d.window, d.filters),
                  exp.Not(this=exp.Is(this=unit.copy(), expression=exp.null())),
                  exp.Not(this=exp.Is(this=value.copy(), expression=exp.null()))]
    counted = ctx.scan([unit.as_("unit"), value.as_("v"), exp.Count(this=exp.Star()).as_("n")],
                       conditions).group_by(unit.copy(), value.copy()).subquery(S)
    ranked = exp.select(col("unit"), col("v"), col("n"),
                        sql("row_number() OVER (PARTITION BY s.unit ORDER BY s.n DESC, s.v)").as_("rn")).from_(
        counted).where(exp.true()).subquery("r")
    kept = exp.select(col("unit", "r"), col("v", "r"), col("n", "r"), col("rn", "r")).from_(ranked).where(
        exp.LTE(this=col("rn", "r"), expression=exp.Literal.number(d.top)))
    picks = [exp.func("max", exp.If(this=col("rn", "k").eq(exp.Literal.number(i)), true=col("v", "k")))
             for i in range(1, d.top + 1)]
    joined: exp.Expr = picks[0]
    for pick in picks[1:]:
        joined = exp.func("coalesce", exp.DPipe(this=exp.DPipe(this=joined, expression=exp.Literal.string(", ")),
                                                expression=pick), joined.copy())
    top_count = exp.func("max", exp.If(this=col("rn", "k").eq(exp.Literal.number(1)), true=col("n", "k")))
    return exp.select(*output(col("unit", "k"), joined, exp.cast(top_count, exp.DataType.build("DOUBLE")))).from_(
        kept.subquery("k")).group_by(col("unit", "k"))


RFM_SEGMENTS = {  # (R high, F high, M high) -> segment (重要价值客户 ... 一般挽留客户)
    (True, True, True): "important_value", (True, False, True): "important_development",
    (False, True, True): "important_retention", (False, False, True): "important_recovery",
    (True, True, False): "general_value", (True, False, False): "general_development",
    (False, True, False): "general_retention", (False, False, False): "general_recovery",
}


def rfm(spec: TagSpec, d: Rfm, ctx: Context) -> exp.Select:
    unit = ctx.unit(spec.unit)
    amount = ctx.number(d.amount)
    time = exp.column("time", EVENTS)
    per_unit = ctx.scan([unit.as_("unit"), exp.cast(ctx.dialect.epoch_us(exp.func("max", time)),
                                                    exp.DataType.build("DOUBLE")).as_("r"),
                         exp.cast(exp.Count(this=exp.Star()), exp.DataType.build("DOUBLE")).as_("f"),
                         exp.cast(exp.func("coalesce", exp.func("sum", amount), exp.Literal.number(0)),
                                  exp.DataType.build("DOUBLE")).as_("m")],
                        [*events_of(ctx, d.event, d.window), exp.Not(this=exp.Is(this=unit.copy(),
                                                                                  expression=exp.null()))]
                        ).group_by(unit.copy()).subquery(S)

    def score(column: str) -> exp.Expr:  # 1..5 by rank among buyers, lowest 1, highest 5 (ties share a score)
        return sql(f"1 + CAST(floor(4.999 * (rank() OVER (ORDER BY s.{column}) - 1) / "
                   f"greatest(count(*) OVER () - 1, 1)) AS INT)")

    scored = exp.select(col("unit"), score("r").as_("rs"), score("f").as_("fs"), score("m").as_("ms")).from_(
        per_unit).subquery("c")
    case = exp.Case()
    for (r, f, m), name in RFM_SEGMENTS.items():
        tests = [sql(f"c.{c} {'>=' if high else '<'} 4") for c, high in (("rs", r), ("fs", f), ("ms", m))]
        case = case.when(exp.and_(*tests), exp.Literal.string(name))
    code = sql("CAST(c.rs * 100 + c.fs * 10 + c.ms AS DOUBLE)")
    return exp.select(*output(col("unit", "c"), case, code)).from_(scored)


def sql_tag(spec: TagSpec, d: SqlTag, ctx: Context) -> exp.Select:
    query = restrict(d.sql, ctx)
    names = {s.alias_or_name for s in query.selects} if isinstance(query, exp.Select) else set()
    if isinstance(query, exp.Select) and not {"unit", "value"} <= names:
        raise QueryError("sql: the query must return columns named unit (the person id, or the group key) and "
                         f"value; it returns {', '.join(sorted(names)) or 'none'}")
    inner = query.subquery("q")
    unit = (exp.cast(col("unit", "q"), exp.DataType.build("BIGINT")) if spec.unit == "person"
            else ctx.dialect.to_text(col("unit", "q")))
    value = ctx.dialect.to_text(col("value", "q"))
    # one value per unit: the greatest, if the query gives several
    return exp.select(*output(unit.copy(), exp.func("max", value), exp.func("max", ctx.dialect.to_double(
        value.copy())))).from_(inner).where(exp.Not(this=exp.Is(this=col("unit", "q"), expression=exp.null()))
                                           ).group_by(unit)
