"""Small parts the per-unit models share (distribution, interval, LTV): breakdown keys kept as the top N
combinations with the rest as `$other`, an event step (name plus filters), numbers as JSON."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field
from sqlglot import exp

from edupulse.queries.common import OTHER, Breakdown, Filter, Model
from edupulse.queries.compile import EVENTS, Context

NONE = "$none"  # a missing breakdown value inside SQL; null in results


class EventStep(Model):
    """An event (None: any event) and conditions on it."""

    event: str | None = Field(None, min_length=1, max_length=100, description="None: any event")
    filters: list[Filter] = Field(default_factory=list, max_length=50)

    def conditions(self, ctx: Context, table: str = EVENTS) -> list[exp.Expr]:
        out: list[exp.Expr] = []
        if self.event is not None:
            out.append(exp.column("event", table).eq(exp.Literal.string(self.event)))
        return out + ctx.conditions(self.filters, table)


def key_names(breakdown: Breakdown | None) -> list[str]:
    return [f"b{i}" for i in range(len(breakdown.properties))] if breakdown else []


def key_columns(ctx: Context, breakdown: Breakdown | None) -> list[exp.Expr]:
    """The breakdown properties as text columns b0, b1...; a missing value is `$none`."""
    if breakdown is None:
        return []
    return [exp.func("coalesce", ctx.text(prop), exp.Literal.string(NONE)).as_(key)
            for key, prop in zip(key_names(breakdown), breakdown.properties, strict=True)]


def with_top(tree: exp.Select, source: str, breakdown: Breakdown | None, rank: exp.Expr) -> tuple[exp.Select,
                                                                                                   list[exp.Expr]]:
    """Add a CTE `top` with the `limit` combinations of the source's keys ranked by `rank` (descending, ties
    in value order); return the tree and the keys as columns labelled `$other` outside the top."""
    keys = key_names(breakdown)
    if breakdown is None:
        return tree, []
    columns = [exp.column(k) for k in keys]
    # ROW_NUMBER, not ORDER BY ... LIMIT: DuckDB 2.0 drops a LIMIT when it estimates fewer rows than it keeps
    order = exp.Order(expressions=[exp.Ordered(this=rank, desc=True), *[exp.Ordered(this=c) for c in columns]])
    ranked = exp.select(*columns, exp.Window(this=exp.RowNumber(), order=order).as_("r")).from_(source).group_by(
        *columns)
    top = exp.select(*columns).from_(ranked.subquery("ranked")).where(
        exp.LTE(this=exp.column("r"), expression=exp.Literal.number(breakdown.limit)))
    tree = tree.with_("top", as_=top)
    inside = exp.In(this=exp.Tuple(expressions=[exp.column(k) for k in keys]),
                    query=exp.select(*[exp.column(k) for k in keys]).from_("top").subquery())
    return tree, [exp.If(this=inside, true=exp.column(k), false=exp.Literal.string(OTHER)) for k in keys]


def breakdown_value(value: Any) -> Any:
    return None if value == NONE else value


def number(value: Any) -> float | int | None:
    """A JSON number: integers as integers, NaN and missing as None."""
    if value is None:
        return None
    result = float(value)
    if math.isnan(result) or math.isinf(result):
        return None
    return int(result) if result.is_integer() else result


def count_distinct(column: exp.Expr) -> exp.Expr:
    return exp.Count(this=exp.Distinct(expressions=[column]))
