"""Paths (路径分析): the sequences of events persons go through after a start event or before an end event,
within one session, as transitions between steps (data for a Sankey chart) and as the most common paths.

One pass of window functions over the person's pre-filtered events (no self-joins): a new session where the
gap to the previous event is longer than the inactivity limit, optional collapse of repeats, the position of
each event in its session and of the anchor (the first start or end event of the session), then the steps
of the path around the anchor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner, Table, register
from edupulse.queries.common import DateRange, Filter, Model, PropertyName, PropertyRef, local_midnight
from edupulse.queries.compile import EVENTS, PERSON_COLUMN
from edupulse.queries.dialect import MINUTE_US

OTHER_NODE = "$other"
DROP_OFF = "$drop_off"
NONE_VALUE = "$none"
EventName = Annotated[str, Field(min_length=1, max_length=100)]


class PathsQuery(Model):
    """Paths after `start_event`, or before `end_event`, or (neither) from the start of each session."""

    kind: Literal["paths"]
    start_event: EventName | None = None
    end_event: EventName | None = None
    steps: int = Field(5, ge=2, le=10, description="events in a path, the anchor included")
    session_minutes: int = Field(30, ge=1, le=1440, description="inactivity that ends a session")
    include_events: list[EventName] | None = Field(None, min_length=1, max_length=100)
    exclude_events: list[EventName] = Field(default_factory=list, max_length=100)
    collapse_repeats: bool = False
    node_properties: dict[EventName, PropertyName] = Field(default_factory=dict, max_length=20)
    date_range: DateRange = DateRange()
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    nodes_per_step: int = Field(10, ge=1, le=50, description="most frequent nodes kept per step; the rest: $other")
    paths_limit: int = Field(20, ge=1, le=200)

    @field_validator("node_properties")
    @classmethod
    def _properties(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value.values():
            PropertyRef.parse(name)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PathsQuery:
        if self.start_event is not None and self.end_event is not None:
            raise ValueError("give start_event (paths after it) or end_event (paths before it), not both")
        anchor = self.start_event or self.end_event
        field = "start_event" if self.start_event is not None else "end_event"
        if anchor is not None and anchor in self.exclude_events:
            raise ValueError(f"{field} {anchor!r} is in exclude_events: it cannot both anchor and be left out")
        if anchor is not None and self.include_events is not None and anchor not in self.include_events:
            raise ValueError(f"{field} {anchor!r} is not in include_events: add it there")
        both = set(self.include_events or []) & set(self.exclude_events)
        if both:
            raise ValueError(f"include_events and exclude_events both name {sorted(both)}")
        return self

    @property
    def mode(self) -> str:
        if self.start_event is not None:
            return "start"
        return "end" if self.end_event is not None else "session_start"


def _ordered(*columns: str) -> exp.Order:
    return exp.Order(expressions=[exp.Ordered(this=exp.column(c), nulls_first=False) for c in columns])


def window(func: exp.Expr, partition: Sequence[str], order: Sequence[str] = (), running: bool = False) -> exp.Expr:
    """func OVER (PARTITION BY ... ORDER BY ... [ROWS UNBOUNDED PRECEDING])."""
    spec = (exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
            if running else None)
    return exp.Window(this=func, partition_by=[exp.column(c) for c in partition],
                      order=_ordered(*order) if order else None, spec=spec)


def _s(text: str) -> exp.Expr:
    return exp.Literal.string(text)


def _n(value: int) -> exp.Expr:
    return exp.Literal.number(value)


def _int(node: exp.Expr) -> exp.Expr:
    return exp.cast(node, exp.DataType.build("BIGINT"))


EVENT_ORDER = ("t", "event", "node")  # ties broken by event name, then node label: identical ties are alike


@register
class PathsRunner(QueryRunner):
    kind = "paths"
    model = PathsQuery
    query: PathsQuery

    def calculate(self) -> dict[str, Any]:
        q = self.query
        start, end = q.date_range.days(self.ctx.timezone, self.now)
        low = local_midnight(start, self.ctx.timezone)
        high = local_midnight(end + dt.timedelta(days=1), self.ctx.timezone)
        steps = self._steps(low, high)
        summary = self.run(self._summary_tree(steps))
        top_paths = self.run(self._paths_tree(steps), max_rows=q.paths_limit)
        nodes: list[dict[str, Any]] = []
        transitions: list[dict[str, Any]] = []
        total, persons = 0, 0
        for kind, at, source, target, n, distinct in summary:
            step, count, people = int(at), int(n), int(distinct)
            if kind == "total":
                total, persons = count, people
            elif kind == "node":
                nodes.append({"name": f"{step}:{source}", "step": step, "label": source, "count": count,
                              "persons": people})
            else:
                transitions.append({"step": step, "source": f"{step}:{source}", "target": f"{step + 1}:{target}",
                                    "count": count, "persons": people})
        nodes.sort(key=lambda n: (n["step"], -n["count"], n["label"]))
        transitions.sort(key=lambda t: (t["step"], -t["count"], t["source"], t["target"]))
        paths: list[dict[str, Any]] = [
            {"path": [n for n in row[:q.steps] if n is not None], "count": int(row[q.steps]),
             "persons": int(row[q.steps + 1])} for row in top_paths]
        return {"date_from": start.isoformat(), "date_to": end.isoformat(), "mode": q.mode, "steps": q.steps,
                "paths_total": total, "persons_total": persons, "nodes": nodes, "transitions": transitions,
                "paths": paths, "other_paths": total - sum(p["count"] for p in paths)}

    @classmethod
    def table(cls, result: dict[str, Any]) -> Table:
        return (["step", "source", "target", "count", "persons"],
                [[t["step"], t["source"], t["target"], t["count"], t["persons"]] for t in result["transitions"]])

    # the SQL ----------------------------------------------------------------------------------

    def _node(self) -> exp.Expr:
        event = exp.column("event", EVENTS)
        if not self.query.node_properties:
            return event
        case = exp.Case()
        for name, prop in self.query.node_properties.items():
            value = exp.func("coalesce", self.ctx.text(prop), _s(NONE_VALUE))
            case = case.when(event.eq(_s(name)), exp.func("concat", event, _s(":"), value))
        return case.else_(event)

    def _events(self, low: dt.datetime, high: dt.datetime) -> exp.Select:
        q, ctx = self.query, self.ctx
        conditions = ctx.in_time(low, high)
        event = exp.column("event", EVENTS)
        if q.include_events is not None:
            conditions.append(exp.In(this=event, expressions=[_s(v) for v in q.include_events]))
        if q.exclude_events:
            conditions.append(exp.Not(this=exp.In(this=event, expressions=[_s(v) for v in q.exclude_events])))
        conditions += ctx.conditions(q.filters)
        columns = [exp.column(PERSON_COLUMN, EVENTS).as_("person"), ctx.dialect.epoch_us(exp.column("time", EVENTS))
                   .as_("t"), event.as_("event"), self._node().as_("node")]
        return ctx.scan(columns, conditions)

    def _steps(self, low: dt.datetime, high: dt.datetime) -> exp.Select:
        """WITH ... the CTEs down to `labeled` (person, session, step, node, label); selects from it."""
        q = self.query
        c = exp.column
        gap = q.session_minutes * MINUTE_US
        previous = window(exp.Lag(this=c("t"), offset=_n(1), default=c("t")), ["person"], EVENT_ORDER)
        fresh = exp.If(this=exp.GT(this=exp.Sub(this=c("t"), expression=previous), expression=_n(gap)),
                       true=_n(1), false=_n(0))
        tree = exp.select().with_("ev", as_=self._events(low, high))
        tree = tree.with_("s1", as_=exp.select("person", "t", "event", "node", fresh.as_("fresh")).from_("ev"))
        session = window(exp.Sum(this=c("fresh")), ["person"], EVENT_ORDER, running=True)
        tree = tree.with_("s2", as_=exp.select("person", "t", "event", "node", session.as_("session")).from_("s1"))
        source = "s2"
        parts = ["person", "session"]
        if q.collapse_repeats:
            before = window(exp.Lag(this=c("node"), offset=_n(1), default=_s("")), parts, EVENT_ORDER)
            tree = tree.with_("s3", as_=exp.select("person", "session", "t", "event", "node", before.as_("prev"))
                              .from_("s2"))
            tree = tree.with_("s4", as_=exp.select("person", "session", "t", "event", "node").from_("s3")
                              .where(exp.NEQ(this=c("node"), expression=c("prev"))))
            source = "s4"
        position = window(exp.RowNumber(), parts, EVENT_ORDER)
        tree = tree.with_("s5", as_=exp.select("person", "session", "event", "node", position.as_("pos"))
                          .from_(source))
        anchor_event = q.start_event or q.end_event
        if anchor_event is None:
            anchor: exp.Expr = _n(1)
        else:
            first = exp.Case().when(c("event").eq(_s(anchor_event)), c("pos"))
            anchor = window(exp.Min(this=first), parts)
        tree = tree.with_("s6", as_=exp.select("person", "session", "node", "pos", anchor.as_("anchor")).from_("s5"))
        pos, at, n = c("pos"), c("anchor"), _n(q.steps)
        if q.mode == "end":
            # pos + steps > anchor rather than pos > anchor - steps: positions are unsigned on ClickHouse
            keep = exp.and_(exp.LTE(this=pos, expression=at),
                            exp.GT(this=exp.Add(this=pos, expression=n), expression=at))
            step: exp.Expr = exp.Sub(this=exp.Add(this=pos, expression=n), expression=at)
        else:
            keep = exp.and_(exp.GTE(this=pos, expression=at),
                            exp.LT(this=pos, expression=exp.Add(this=at, expression=n)))
            step = exp.Add(this=exp.Sub(this=pos, expression=at), expression=_n(1))
        tree = tree.with_("steps", as_=exp.select("person", "session", "node", _int(step).as_("step")).from_("s6")
                          .where(exp.and_(exp.Not(this=exp.Is(this=at, expression=exp.null())), keep)))
        ranked = (exp.select("step", "node", window(exp.RowNumber(), ["step"]).as_("r"))
                  .from_("steps").group_by("step", "node"))
        ranked.selects[2].this.set("order", exp.Order(expressions=[
            exp.Ordered(this=exp.Count(this=exp.Star()), desc=True), exp.Ordered(this=c("node"))]))
        tree = tree.with_("top", as_=exp.select("step", "node").from_(ranked.subquery("ranked"))
                          .where(exp.LTE(this=c("r"), expression=_n(q.nodes_per_step))))
        kept = exp.In(this=exp.Tuple(expressions=[c("step"), c("node")]),
                      query=exp.select("step", "node").from_("top").subquery())
        label = exp.If(this=kept, true=c("node"), false=_s(OTHER_NODE))
        return tree.with_("labeled", as_=exp.select("person", "session", "step", "node", label.as_("label"))
                          .from_("steps"))

    def _summary_tree(self, steps: exp.Select) -> exp.Expr:
        """Rows (kind, step, source, target, count, persons): the total, the nodes, the transitions."""
        q = self.query
        c = exp.column
        count, persons = exp.Count(this=exp.Star()), exp.Count(this=exp.Distinct(expressions=[c("person")]))
        parts = ["person", "session"]
        previous = window(exp.Lag(this=c("label"), offset=_n(1), default=_s("")), parts, ["step"])
        last = window(exp.Max(this=c("step")), parts)
        tree = steps.with_("edges", as_=exp.select("person", "step", "label", previous.as_("prev"), last.as_("last"))
                           .from_("labeled"))
        anchor_step = q.steps if q.mode == "end" else 1
        # names unlike the columns read: ClickHouse lets an alias shadow a column in WHERE
        total = (exp.select(_s("total").as_("out_kind"), _int(_n(anchor_step)).as_("out_step"),
                            _s("").as_("out_source"), _s("").as_("out_target"), count.as_("out_count"),
                            persons.as_("out_persons"))
                 .from_("labeled").where(c("step").eq(_n(anchor_step))))
        nodes = (exp.select(_s("node"), _int(c("step")), c("label"), _s(""), count, persons)
                 .from_("labeled").group_by("step", "label"))
        links = (exp.select(_s("link"), _int(exp.Sub(this=c("step"), expression=_n(1))), c("prev"), c("label"),
                            count, persons)
                 .from_("edges").where(exp.NEQ(this=c("prev"), expression=_s(""))).group_by("step", "prev", "label"))
        union: exp.Query = total.union(nodes, distinct=False).union(links, distinct=False)
        if q.mode != "end":
            drops = (exp.select(_s("link"), _int(c("step")), c("label"), _s(DROP_OFF), count, persons)
                     .from_("edges").where(exp.and_(c("step").eq(c("last")),
                                                    exp.LT(this=c("step"), expression=_n(q.steps))))
                     .group_by("step", "label"))
            union = union.union(drops, distinct=False)
        return tree.select("*").from_(union.subquery("summary"))

    def _paths_tree(self, steps: exp.Select) -> exp.Expr:
        """The most common complete paths (raw nodes, no $other), one column per step."""
        q = self.query
        c = exp.column
        names = [f"n{k}" for k in range(1, q.steps + 1)]
        pivot = exp.select(*[exp.Max(this=exp.Case().when(c("step").eq(_n(k)), c("node"))).as_(name)
                             for k, name in enumerate(names, start=1)], "person").from_("steps").group_by(
            "person", "session")
        count, persons = exp.Count(this=exp.Star()), exp.Count(this=exp.Distinct(expressions=[c("person")]))
        tree = steps.with_("per_path", as_=pivot)
        return (tree.select(*names, count.as_("n"), persons.as_("persons")).from_("per_path").group_by(*names)
                .order_by(exp.Ordered(this=c("n"), desc=True), exp.Ordered(this=c("persons"), desc=True),
                          *[exp.Ordered(this=c(name), nulls_first=False) for name in names])
                # OFFSET 0: DuckDB 2.0.0 ignores a LIMIT over a filtered scan of events_resolved (its LEFT
                # JOIN on two columns) without one
                .limit(q.paths_limit).offset(0))
