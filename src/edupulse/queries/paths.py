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
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import DateRange, Filter, Model, PropertyName, PropertyRef, local_midnight
from edupulse.queries.compile import EVENTS, PERSON_COLUMN
from edupulse.queries.dialect import MINUTE_US
from edupulse.queries.results import NODE_LABEL, PATH, STEP_NODE, Part, Provenance, Result, Table

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


class PathNode(Part):
    name: Annotated[str, STEP_NODE]  # step:label
    step: int
    label: Annotated[str, NODE_LABEL]  # the event, or event:value with a node property
    count: int
    persons: int


class Transition(Part):
    step: int
    source: Annotated[str, STEP_NODE]  # the name of a node
    target: Annotated[str, STEP_NODE]
    count: int
    persons: int


class CommonPath(Part):
    path: Annotated[list[str], PATH]  # node labels
    count: int
    persons: int


class PathsResponse(Result):
    date_from: str
    date_to: str
    mode: str
    steps: int
    paths_total: int
    persons_total: int
    nodes: list[PathNode]
    transitions: list[Transition]
    paths: list[CommonPath]
    other_paths: int

    def to_table(self) -> Table:
        return (["step", "source", "target", "count", "persons"],
                [[t.step, t.source, t.target, t.count, t.persons] for t in self.transitions])


class PathsRunner(QueryRunner[PathsQuery, PathsResponse]):
    kind = "paths"
    query_model = PathsQuery
    response_model = PathsResponse

    def _bounds(self) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
        start, end = self.query.date_range.days(self.ctx.timezone, self.now)
        tz = self.ctx.timezone
        return start, end, local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)

    def to_queries(self) -> dict[str, exp.Expr]:
        _, _, low, high = self._bounds()
        return {"paths": self._tree(low, high)}

    def calculate(self) -> PathsResponse:
        q = self.query
        start, end, _, _ = self._bounds()
        nodes: list[PathNode] = []
        transitions: list[Transition] = []
        paths: list[tuple[CommonPath, list[tuple[bool, str]]]] = []
        total, persons = 0, 0
        for kind, at, source, target, n, distinct, *path in self.run(self.to_queries()["paths"]):
            step, count, people = int(at), int(n), int(distinct)
            if kind == "total":
                total, persons = count, people
            elif kind == "node":
                nodes.append(PathNode(name=f"{step}:{source}", step=step, label=source, count=count, persons=people))
            elif kind == "link":
                transitions.append(Transition(step=step, source=f"{step}:{source}", target=f"{step + 1}:{target}",
                                              count=count, persons=people))
            else:
                paths.append((CommonPath(path=[node for node in path if node is not None], count=count,
                                         persons=people), [(node is None, node or "") for node in path]))
        nodes.sort(key=lambda n: (n.step, -n.count, n.label))
        transitions.sort(key=lambda t: (t.step, -t.count, t.source, t.target))
        paths.sort(key=lambda p: (-p[0].count, -p[0].persons, p[1]))
        response = PathsResponse(date_from=start.isoformat(), date_to=end.isoformat(), mode=q.mode, steps=q.steps,
                                 paths_total=total, persons_total=persons, nodes=nodes, transitions=transitions,
                                 paths=[p for p, _ in paths], other_paths=total - sum(p.count for p, _ in paths))
        return response.from_data(Provenance(node_properties=dict(q.node_properties)))

    # the SQL ----------------------------------------------------------------------------------

    def _order(self) -> tuple[str, ...]:
        """A person's events by time; ties by event name, then by node when nodes are qualified by a property
        (events equal in all of these are alike, so their order does not matter)."""
        return ("t", "event", "node") if self.query.node_properties else ("t", "event")

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
        """The events taking part; with a start or end event, only of persons who did it in the range."""
        q, ctx = self.query, self.ctx
        event = exp.column("event", EVENTS)
        taking_part = ctx.in_time(low, high)
        if q.include_events is not None:
            taking_part.append(exp.In(this=event, expressions=[_s(v) for v in q.include_events]))
        if q.exclude_events:
            taking_part.append(exp.Not(this=exp.In(this=event, expressions=[_s(v) for v in q.exclude_events])))
        taking_part += ctx.conditions(q.filters)
        conditions = list(taking_part)
        anchor = q.start_event or q.end_event
        if anchor is not None:
            anchored = ctx.scan([exp.column(PERSON_COLUMN, EVENTS)], [*taking_part, event.eq(_s(anchor))])
            conditions.append(exp.In(this=exp.column(PERSON_COLUMN, EVENTS), query=anchored.subquery()))
        columns = [exp.column(PERSON_COLUMN, EVENTS).as_("person"), ctx.dialect.epoch_us(exp.column("time", EVENTS))
                   .as_("t"), event.as_("event"), self._node().as_("node")]
        return ctx.scan(columns, conditions)

    def _tree(self, low: dt.datetime, high: dt.datetime) -> exp.Expr:
        """Window functions over each person's events: the gap to the previous event (and its node), then
        running sums numbering sessions and positions (the same order both times); the anchors' positions by
        session (an aggregate) and the events around them."""
        q = self.query
        c = exp.column
        order = self._order()
        previous = window(exp.Lag(this=c("t"), offset=_n(1), default=c("t")), ["person"], order)
        fresh = exp.If(this=exp.GT(this=exp.Sub(this=c("t"), expression=previous),
                                   expression=_n(q.session_minutes * MINUTE_US)), true=_n(1), false=_n(0))
        first_pass: list[exp.Expr] = [c("person"), c("t"), c("event"), c("node"), fresh.as_("fresh")]
        if q.collapse_repeats:
            before = window(exp.Lag(this=c("node"), offset=_n(1), default=_s("")), ["person"], order)
            first_pass.append(before.as_("prev"))
        else:  # positions come with the first pass (the same sort); collapsing needs a running count instead
            first_pass.append(window(exp.RowNumber(), ["person"], order).as_("kpos"))
        tree = exp.select().with_("ev", as_=self._events(low, high))
        tree = tree.with_("s1", as_=exp.select(*first_pass).from_("ev"))
        # a repeat is an event with the node of the event before it in the same session
        keep = (exp.If(this=exp.or_(exp.NEQ(this=c("node"), expression=c("prev")), c("fresh").eq(_n(1))),
                       true=_n(1), false=_n(0)) if q.collapse_repeats else _n(1))
        position = window(exp.Sum(this=keep), ["person"], order, running=True) if q.collapse_repeats else c("kpos")
        second_pass = [c("person"), c("event"), c("node"), keep.as_("keep"),
                       window(exp.Sum(this=c("fresh")), ["person"], order, running=True).as_("session"),
                       position.as_("kpos")]
        tree = tree.with_("s2", as_=exp.select(*second_pass).from_("s1"))
        # the anchor: the position of the session's first start (or end) event, or of its first event
        first: exp.Expr = c("keep").eq(_n(1))
        if q.mode != "session_start":
            first = exp.and_(first, c("event").eq(_s(q.start_event or q.end_event or "")))
        anchors = (exp.select("person", "session", exp.Min(this=c("kpos")).as_("anchor")).from_("s2").where(first)
                   .group_by("person", "session"))
        tree = tree.with_("anchors", as_=anchors)
        pos, at, n = c("kpos", "s"), c("anchor", "a"), _n(q.steps)
        if q.mode == "end":
            # pos + steps > anchor rather than pos > anchor - steps: positions are unsigned on ClickHouse
            keep_step = exp.and_(exp.LTE(this=pos, expression=at),
                                 exp.GT(this=exp.Add(this=pos, expression=n), expression=at))
            step: exp.Expr = exp.Sub(this=exp.Add(this=pos, expression=n), expression=at)
        else:
            keep_step = exp.and_(exp.GTE(this=pos, expression=at),
                                 exp.LT(this=pos, expression=exp.Add(this=at, expression=n)))
            step = exp.Add(this=exp.Sub(this=pos, expression=at), expression=_n(1))
        # each event meets at most one anchor (its session's): a lookup, not a join of events with events
        same_session = exp.and_(c("person", "s").eq(c("person", "a")), c("session", "s").eq(c("session", "a")))
        steps = (exp.select(c("person", "s").as_("person"), c("session", "s").as_("session"),
                            c("node", "s").as_("node"), _int(step).as_("step"))
                 .from_(exp.table_("s2").as_("s"))
                 .join(exp.table_("anchors").as_("a"), on=same_session, join_type="inner")
                 .where(exp.and_(c("keep", "s").eq(_n(1)), keep_step)))
        tree = tree.with_("steps", as_=steps)
        ranked = (exp.select("step", "node", window(exp.RowNumber(), ["step"]).as_("r"))
                  .from_("steps").group_by("step", "node"))
        ranked.selects[2].this.set("order", exp.Order(expressions=[
            exp.Ordered(this=exp.Count(this=exp.Star()), desc=True), exp.Ordered(this=c("node"))]))
        tree = tree.with_("top", as_=exp.select("step", "node").from_(ranked.subquery("ranked"))
                          .where(exp.LTE(this=c("r"), expression=_n(q.nodes_per_step))))
        kept = exp.In(this=exp.Tuple(expressions=[c("step"), c("node")]),
                      query=exp.select("step", "node").from_("top").subquery())
        label = exp.If(this=kept, true=c("node"), false=_s(OTHER_NODE))
        tree = tree.with_("labeled", as_=exp.select("person", "session", "step", "node", label.as_("label"))
                          .from_("steps"))
        return self._summary(tree)

    def _summary(self, tree: exp.Select) -> exp.Expr:
        """Rows (kind, step, source, target, count, persons, node 1..N): the total, the nodes, the transitions,
        the most common complete paths."""
        q = self.query
        c = exp.column
        count, persons = exp.Count(this=exp.Star()), exp.Count(this=exp.Distinct(expressions=[c("person")]))
        parts = ["person", "session"]
        previous = window(exp.Lag(this=c("label"), offset=_n(1), default=_s("")), parts, ["step"])
        last = window(exp.Max(this=c("step")), parts)
        tree = tree.with_("edges", as_=exp.select("person", "step", "label", previous.as_("prev"), last.as_("last"))
                          .from_("labeled"))
        names = [f"n{k}" for k in range(1, q.steps + 1)]
        no_path = [exp.cast(exp.null(), exp.DataType.build("TEXT")) for _ in names]
        anchor_step = q.steps if q.mode == "end" else 1
        # names unlike the columns read: ClickHouse lets an alias shadow a column in WHERE
        total = (exp.select(_s("total").as_("out_kind"), _int(_n(anchor_step)).as_("out_step"),
                            _s("").as_("out_source"), _s("").as_("out_target"), count.as_("out_count"),
                            persons.as_("out_persons"),
                            *[x.as_(f"out_{name}") for x, name in zip(no_path, names, strict=True)])
                 .from_("labeled").where(c("step").eq(_n(anchor_step))))
        nodes = (exp.select(_s("node"), _int(c("step")), c("label"), _s(""), count, persons, *no_path)
                 .from_("labeled").group_by("step", "label"))
        links = (exp.select(_s("link"), _int(exp.Sub(this=c("step"), expression=_n(1))), c("prev"), c("label"),
                            count, persons, *no_path)
                 .from_("edges").where(exp.NEQ(this=c("prev"), expression=_s(""))).group_by("step", "prev", "label"))
        union: exp.Query = total.union(nodes, distinct=False).union(links, distinct=False)
        if q.mode != "end":
            drops = (exp.select(_s("link"), _int(c("step")), c("label"), _s(DROP_OFF), count, persons, *no_path)
                     .from_("edges").where(exp.and_(c("step").eq(c("last")),
                                                    exp.LT(this=c("step"), expression=_n(q.steps))))
                     .group_by("step", "label"))
            union = union.union(drops, distinct=False)
        union = union.union(self._top_paths(names), distinct=False)
        return tree.select("*").from_(union.subquery("summary"))

    def _top_paths(self, names: list[str]) -> exp.Select:
        """The most common complete paths (raw nodes, no $other), one column per step."""
        q = self.query
        c = exp.column
        pivot = (exp.select(*[exp.Max(this=exp.Case().when(c("step").eq(_n(k)), c("node"))).as_(name)
                              for k, name in enumerate(names, start=1)], "person")
                 .from_("steps").group_by("person", "session"))
        count, persons = exp.Count(this=exp.Star()), exp.Count(this=exp.Distinct(expressions=[c("person")]))
        top = (exp.select(_s("path").as_("kind"), _int(_n(0)).as_("at"), _s("").as_("source"), _s("").as_("target"),
                          count.as_("n"), persons.as_("persons"), *names)
               .from_(pivot.subquery("per_path")).group_by(*names)
               .order_by(exp.Ordered(this=c("n"), desc=True), exp.Ordered(this=c("persons"), desc=True),
                         *[exp.Ordered(this=c(name), nulls_first=False) for name in names])
               # OFFSET 0: DuckDB 2.0.0 ignores a LIMIT over a filtered scan of events_resolved (its LEFT
               # JOIN on two columns) without one
               .limit(q.paths_limit).offset(0))
        return exp.select("*").from_(top.subquery("top_paths"))
