"""The SQL trees of a funnel: one scan of the step events, then window functions over each unit's events
ordered by time, then one row per unit, then the counts.

Columns of the per-event layers: `u` the unit, `t` local microseconds, `f1..fn` 1 when the event is step k,
`x1..xm` 1 when it is exclusion j, `b0..` the breakdown values, `r1..rn` the start (t of its step-1 event)
of the freshest attempt this event carries to step k (NULL when it carries none).

Ordered (windowFunnel's default): r1 = t on step-1 events; for k >= 2, on a step-k event,
  m = max(r(k-1)) over the unit's events up to and including this moment (events at the same moment
      included: ClickHouse handles equal times step by step in step order, so a step-(k-1) event at the
      same moment comes first), within the same exclusion segments;
  rk = m when t <= m + window, else NULL.
Processing the unit's events in time order, windowFunnel keeps for each step the start of the last
attempt that reached it, which is this running maximum (starts only grow in time order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from edupulse.queries.compile import EVENTS, Context
from edupulse.queries.dialect import truncate_us

if TYPE_CHECKING:
    from edupulse.queries.funnel import FunnelQuery

NONE = "$none"
OTHER = "$other"
QUANTILES = (0.5, 0.25, 0.75, 0.9)
START_BITS = 2**52
ORDER_BITS = 32  # strict order: o = t * 32 + k, steps 0..20


def _c(name: str) -> exp.Column:
    return exp.column(name)


def _n(value: int | float) -> exp.Expr:
    return exp.Literal.number(value)


def _flag(condition: exp.Expr) -> exp.Expr:
    return exp.Case().when(condition, _n(1)).else_(_n(0))


def _is(name: str) -> exp.Expr:
    return _c(name).eq(_n(1))


def _not_null(node: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=node, expression=exp.null()))


def _over(func: exp.Expr, partition: Sequence[exp.Expr], order: bool = True,
          spec: exp.WindowSpec | None = None, by: str = "t") -> exp.Expr:
    return exp.Window(this=func, partition_by=list(partition),
                      order=exp.Order(expressions=[exp.Ordered(this=_c(by))]) if order else None, spec=spec)


BEFORE = exp.WindowSpec(kind="RANGE", start="UNBOUNDED", start_side="PRECEDING", end=_n(1), end_side="PRECEDING")
FROM_HERE = exp.WindowSpec(kind="RANGE", start="CURRENT ROW", end="UNBOUNDED", end_side="FOLLOWING")


class FunnelPlan:
    """The trees of one funnel over the local-day range [low, high)."""

    def __init__(self, ctx: Context, query: FunnelQuery, low: dt.datetime, high: dt.datetime) -> None:
        self.ctx, self.q, self.low, self.high = ctx, query, low, high
        self.n = len(query.steps)
        self.window = query.window.microseconds()
        self.width = len(query.breakdown.properties) if query.breakdown else 0
        self.layers: list[tuple[str, exp.Select]] = []

    # the scan ----------------------------------------------------------------------------------------

    def _scan(self) -> exp.Select:
        ctx, q = self.ctx, self.q
        unit = ctx.unit(q.unit)
        steps = [exp.and_(exp.column("event", EVENTS).eq(exp.Literal.string(s.event)), *ctx.conditions(s.filters))
                 for s in q.steps]
        exclusions = [exp.and_(exp.column("event", EVENTS).eq(exp.Literal.string(x.event)),
                               *ctx.conditions(x.filters)) for x in q.exclusions]
        columns: list[exp.Expr] = [unit.as_("u"), ctx.local_us(self.low, self.high).as_("t")]
        columns += [_flag(cond).as_(f"f{k + 1}") for k, cond in enumerate(steps)]
        columns += [_flag(cond).as_(f"x{j + 1}") for j, cond in enumerate(exclusions)]
        if q.breakdown:
            columns += [exp.func("coalesce", ctx.text(p), exp.Literal.string(NONE)).as_(f"b{i}")
                        for i, p in enumerate(q.breakdown.properties)]
        conditions = [*ctx.in_time(self.low, self.high), _not_null(unit), *ctx.conditions(q.filters)]
        if q.order.value != "strict":  # strict: every other event of the unit breaks the funnel, so read them all
            names = sorted({s.event for s in q.steps} | {x.event for x in q.exclusions})
            event = exp.column("event", EVENTS)
            conditions.append(exp.In(this=event, expressions=[exp.Literal.string(v) for v in names])
                              if len(names) > 1 else event.eq(exp.Literal.string(names[0])))
        return ctx.scan(columns, conditions)

    def _layer(self, name: str, select: exp.Select) -> str:
        self.layers.append((name, select))
        return name

    def _star(self, source: str, *columns: exp.Expr) -> exp.Select:
        return exp.select(exp.Star(), *columns).from_(source)

    # per event -------------------------------------------------------------------------------------

    def _chains(self) -> str:
        """Ordered, other events allowed in between: per step k, the step-k events that carry an attempt
        (`r` its start), each found by an ASOF join to the latest step-(k-1) event carrying one at or
        before it: starts only grow in time, so the latest is the freshest attempt. Returns a table of
        (u, k, r, t, b0..) for every step event carrying an attempt, with `sd` the unit's deepest attempt."""
        q, n = self.q, self.n
        base = self._layer("base", self._scan())
        values = [_c(f"b{i}") for i in range(self.width)]

        def events(flag: str, *extra: exp.Expr) -> exp.Select:
            return exp.select(_c("u"), _c("t"), *extra).from_(base).where(_is(flag))

        self._layer("s1", events("f1", _c("t").as_("r"), *[v.copy() for v in values]))
        for j, _ in enumerate(q.exclusions):
            self._layer(f"xs{j + 1}", events(f"x{j + 1}"))
        for k in range(2, n + 1):
            step = events(f"f{k}", *[v.copy() for v in values]).subquery("b")
            if not any(x.from_step <= k - 1 < x.to_step for x in q.exclusions):
                self._layer(f"s{k}", self._continued(k, step))
                continue
            # only units with a step-k event need their step-(k-1) events sorted for the ASOF join: a hash
            # semi-join drops the others first (most units never get past step 1)
            doers = exp.select(_c("u")).from_(base).where(_is(f"f{k}"))
            previous = (exp.select(_c("u"), _c("t"), _c("r")).from_(f"s{k - 1}")
                        .where(exp.In(this=_c("u"), query=doers.subquery())))
            on = exp.and_(exp.column("u", "b").eq(exp.column("u", "a")),
                          exp.GTE(this=exp.column("t", "b"), expression=exp.column("t", "a")))
            select = (exp.select(exp.column("u", "b").as_("u"), exp.column("t", "b").as_("t"),
                                 exp.column("r", "a").as_("r"), *[exp.column(f"b{i}", "b").as_(f"b{i}")
                                                                  for i in range(self.width)])
                      .from_(step)
                      .join(exp.Join(this=previous.subquery("a"), on=on, method="ASOF")))
            keep = [exp.LTE(this=exp.column("t", "b"),
                            expression=exp.Add(this=exp.column("r", "a"), expression=_n(self.window)))]
            for j, x in enumerate(q.exclusions):
                if x.from_step <= k - 1 < x.to_step:
                    # the latest exclusion event at or before this step event must not be after the previous step
                    alias = f"x{j + 1}"
                    select = select.join(exp.Join(
                        this=exp.table_(f"xs{j + 1}").as_(alias), method="ASOF", side="LEFT",
                        on=exp.and_(exp.column("u", "b").eq(exp.column("u", alias)),
                                    exp.GTE(this=exp.column("t", "b"), expression=exp.column("t", alias)))))
                    # no match reads as NULL on DuckDB and 0 on ClickHouse: both mean "none"
                    last = exp.func("coalesce", exp.column("t", alias), _n(0))
                    keep.append(exp.LTE(this=last, expression=exp.column("t", "a")))
            self._layer(f"s{k}", select.where(exp.and_(*keep)))
        union: exp.Query | None = None
        # step 1 carries only its latest event per unit (the start of an attempt is its step-1 event, so
        # the deepest attempt's step-1 time is its start), unless the breakdown reads the step-1 event
        every_first = bool(q.breakdown) and (q.attribution_step or 1) == 1
        for k in range(1, n + 1):
            if k == 1 and not every_first:
                # (aggregated under other names: ClickHouse reads a select's aliases in its other columns)
                latest = (exp.select(_c("u"), exp.Max(this=_c("r")).as_("mr"),
                                     *[exp.Max(this=v.copy()).as_(f"m{v.name}") for v in values])
                          .from_("s1").group_by(_c("u")))
                part = (exp.select(_c("u"), _n(1).as_("k"), _c("mr").as_("r"), _c("mr").as_("t"),
                                   *[_c(f"m{v.name}").as_(v.name) for v in values])
                        .from_(latest.subquery("m1")))
            else:
                part = exp.select(_c("u"), _n(k).as_("k"), _c("r"), _c("t"),
                                  *[v.copy() for v in values]).from_(f"s{k}")
            union = part if union is None else exp.union(union, part, distinct=False)
        assert union is not None
        lv = self._layer("lv", union)  # type: ignore[arg-type]
        # the deepest attempt: the latest start among those reaching the deepest step, as the maximum of
        # one integer k * 2^52 + r (starts are local microseconds below 2^52, i.e. before 2112): a plain
        # maximum is several times faster than an arg_max over (k, r) pairs
        key = exp.Add(this=exp.Mul(this=_c("k"), expression=_n(START_BITS)), expression=_c("r"))
        deepest = exp.Mod(this=exp.Paren(this=_over(exp.Max(this=key), [_c("u")], order=False)),
                          expression=_n(START_BITS))
        return self._layer("ranked", self._star(lv, deepest.as_("sd")))

    def _continued(self, k: int, step: exp.Subquery) -> exp.Select:
        """The step-k events that continue an attempt, without exclusions in the way: the freshest attempt
        of the step-(k-1) events at or before the event, found by a hash join on the unit (the step-k
        events are few) and a maximum, instead of sorting every step-(k-1) event for an ASOF join. Starts
        only grow in time, so the maximum start at or before the event is the ASOF match's, and when that
        one is outside the window every earlier one is too."""
        a, b = "a", "b"
        keys = [exp.column("u", b), exp.column("t", b), *[exp.column(f"b{i}", b) for i in range(self.width)]]
        within = exp.and_(
            exp.LTE(this=exp.column("t", a), expression=exp.column("t", b)),
            exp.GTE(this=exp.column("r", a), expression=exp.Sub(this=exp.column("t", b), expression=_n(self.window))))
        return (exp.select(exp.column("u", b).as_("u"), exp.column("t", b).as_("t"),
                           exp.Max(this=exp.column("r", a)).as_("r"),
                           *[exp.column(f"b{i}", b).as_(f"b{i}") for i in range(self.width)])
                .from_(step)
                .join(exp.table_(f"s{k - 1}").as_(a), on=exp.column("u", b).eq(exp.column("u", a)))
                .where(within)
                .group_by(*keys))

    def _entries(self) -> str:
        """Strict order reads the unit's events as windowFunnel does: one entry per event and step it
        matches (`k` that step; 0 for an event matching no step), ordered by time and, at one moment, by
        `k` (other events first, then steps by number). `o` = t * 32 + k is that order as one integer
        (steps are at most 20). An event matching several steps is an entry for each of them; that can
        only happen when a step's event name is an earlier step's too."""
        q, n = self.q, self.n
        base = self._layer("base", self._scan())
        keep = [_c("u"), _c("t"), *[_c(f"x{j + 1}") for j in range(len(q.exclusions))],
                *[_c(f"b{i}") for i in range(self.width)]]

        def entry(k: exp.Expr) -> list[exp.Expr]:
            order = exp.Add(this=exp.Mul(this=_c("t"), expression=_n(ORDER_BITS)), expression=k.copy())
            return [*[c.copy() for c in keep], k.as_("k"), order.as_("o")]

        lowest = exp.Case()
        for k in range(1, n + 1):
            lowest = lowest.when(_is(f"f{k}"), _n(k))
        union: exp.Query = exp.select(*entry(lowest.else_(_n(0)))).from_(base)
        for k in range(2, n + 1):
            earlier = [j for j in range(1, k) if q.steps[j - 1].event == q.steps[k - 1].event]
            if earlier:  # the event may also match an earlier step: its entry as step k comes in addition
                matched_before = exp.or_(*[_is(f"f{j}") for j in earlier])
                union = union.union(exp.select(*entry(_n(k))).from_(base)
                                    .where(exp.and_(_is(f"f{k}"), matched_before)), distinct=False)
        return self._layer("entries", union)  # type: ignore[arg-type]

    def _ordered(self) -> str:
        """Strict order by window functions over the entries (`_entries`): rk on the step-k entries, by a
        running maximum of r(k-1) over the unit's entries up to this one, then `_strict` cuts the unit's
        entries at the first that breaks the funnel."""
        q, n = self.q, self.n
        u = [_c("u")]
        source = self._entries()
        first = [exp.Case().when(_c("k").eq(_n(1)), _c("t")).as_("r1")]
        # exclusion segments by time (an exclusion event at the moment of a step counts as before it)
        segments = [_over(exp.Sum(this=_c(f"x{j + 1}")), u).as_(f"g{j + 1}") for j in range(len(q.exclusions))]
        source = self._layer("l1", self._star(source, *first, *segments))
        for k in range(2, n + 1):
            # exclusions between steps a and b cut the link from step k-1 to step k when a <= k-1 < b
            cut = [_c(f"g{j + 1}") for j, x in enumerate(q.exclusions) if x.from_step <= k - 1 < x.to_step]
            latest = _over(exp.Max(this=_c(f"r{k - 1}")), [*u, *cut], by="o")
            in_window = exp.LTE(this=_c("t"), expression=exp.Add(this=latest, expression=_n(self.window)))
            carried = exp.Case().when(exp.and_(_c("k").eq(_n(k)), in_window), latest.copy())
            source = self._layer(f"l{k}", self._star(source, carried.as_(f"r{k}")))
        source = self._strict(source)
        reached = [_over(exp.Max(this=_c(f"r{k}")), u, order=False) for k in range(n, 0, -1)]
        return self._layer("ranked", self._star(source, exp.func("coalesce", *reached).as_("sd")))

    def _strict(self, source: str) -> str:
        """windowFunnel's 'strict_order': after the first step-1 entry, the first entry that is no step, or a
        step whose previous step was not reached by an earlier entry, ends the unit's funnel; nothing from
        that entry on counts."""
        n = self.n
        u = [_c("u")]
        level = exp.Case()
        for k in range(n, 0, -1):
            level = level.when(_not_null(_c(f"r{k}")), _n(k))
        source = self._layer("s0", self._star(source, level.else_(_n(0)).as_("lv")))
        began = _flag(_c("k").eq(_n(1)))
        started = exp.func("coalesce", _over(exp.Max(this=began), u, spec=BEFORE, by="o"), _n(0)).eq(_n(1))
        deepest = exp.func("coalesce", _over(exp.Max(this=_c("lv")), u, spec=BEFORE, by="o"), _n(0))
        skips = exp.and_(exp.GTE(this=_c("k"), expression=_n(2)),
                         exp.GT(this=exp.Sub(this=_c("k"), expression=_n(1)), expression=deepest))
        breaks = exp.and_(started, exp.Paren(this=exp.or_(_c("k").eq(_n(0)), skips)))
        source = self._layer("s1", self._star(source, exp.Case().when(breaks, _c("o")).as_("brk")))
        stop = _over(exp.Min(this=_c("brk")), u, order=False)
        inner = self._star(source, stop.as_("stop"))
        kept = (exp.select(exp.Star()).from_(inner.subquery("s"))
                .where(exp.or_(exp.Is(this=_c("stop"), expression=exp.null()),
                               exp.LT(this=_c("o"), expression=_c("stop")))))
        return self._layer("s2", kept)

    def _any(self) -> str:
        n = self.n
        u = [_c("u")]
        source = self._layer("base", self._scan())
        nexts = [_over(exp.Min(this=exp.Case().when(_is(f"f{k}"), _c("t"))), u, spec=FROM_HERE).as_(f"nx{k}")
                 for k in range(1, n + 1)]
        source = self._layer("a1", self._star(source, *nexts))
        horizon = exp.Add(this=_c("t"), expression=_n(self.window))
        done: exp.Expr = _flag(exp.LTE(this=_c("nx1"), expression=horizon))
        for k in range(2, n + 1):
            done = exp.Add(this=done, expression=_flag(exp.LTE(this=_c(f"nx{k}"), expression=horizon.copy())))
        is_step = exp.or_(*[_is(f"f{k}") for k in range(1, n + 1)])
        source = self._layer("a2", self._star(source, exp.Case().when(is_step, done).else_(_n(0)).as_("lv")))
        source = self._layer("a3", self._star(source, _over(exp.Max(this=_c("lv")), u, order=False).as_("top")))
        best = exp.Case().when(exp.and_(_c("lv").eq(_c("top")), exp.GT(this=_c("lv"), expression=_n(0))), _c("t"))
        return self._layer("ranked", self._star(source, _over(exp.Max(this=best), u, order=False).as_("sd")))

    # per unit ---------------------------------------------------------------------------------------

    def _member(self, k: int) -> exp.Expr:
        """Whether the event is the deepest attempt's step k."""
        if self.q.order.value == "ordered":
            return exp.and_(_c("k").eq(_n(k)), _c("r").eq(_c("sd")))
        if self.q.order.value == "any":
            return exp.and_(_is(f"f{k}"), exp.GTE(this=_c("t"), expression=_c("sd")),
                            exp.LTE(this=_c("t"), expression=exp.Add(this=_c("sd"), expression=_n(self.window))))
        return _c(f"r{k}").eq(_c("sd"))

    def people(self) -> exp.Select:
        """WITH ... the layers ... people: one row per unit that did step 1, with its deepest step `lvl`, the
        start of its deepest attempt `start`, the earliest event of each step of that attempt `at1..`
        and the breakdown values `v0..` attributed to it."""
        people = self._people_from_events()
        tree = exp.select()
        for name, layer in self.layers:
            tree = tree.with_(name, as_=layer)
        return tree.with_("people", as_=people)

    def _people_from_events(self) -> exp.Select:
        q, n = self.q, self.n
        order = q.order.value
        source = self._any() if order == "any" else self._chains() if order == "ordered" else self._ordered()
        if order == "any":
            level: exp.Expr = exp.Max(this=_c("lv"))
        elif order == "ordered":
            level = exp.Max(this=_c("k"))
        else:
            case = exp.Case()
            for k in range(n, 0, -1):
                case = case.when(_not_null(exp.Max(this=_c(f"r{k}"))), _n(k))
            level = case.else_(_n(0))
        columns: list[exp.Expr] = [_c("u"), level.as_("lvl"), exp.Max(this=_c("sd")).as_("start")]
        columns += [(exp.Max(this=_c("sd")) if k == 1 and order == "ordered"
                     else exp.Min(this=exp.Case().when(self._member(k), _c("t")))).as_(f"at{k}")
                    for k in range(1, n + 1)]
        if q.breakdown:
            if q.order.value == "any" and q.attribution_step is None:
                # any order: the attempt's first event, whichever step it is
                member = _flag(exp.and_(_c("t").eq(_c("sd")),
                                        exp.or_(*[_is(f"f{k}") for k in range(1, n + 1)])))
            else:
                member = _flag(self._member(q.attribution_step or 1))
            # one event gives every value: the earliest member, and at equal times the one whose values, in the
            # order of the properties, are smallest (not the smallest value of each property on its own)
            key = exp.Tuple(expressions=[exp.Sub(this=_n(1), expression=member.copy()), _c("t"),
                                         *[_c(f"b{i}") for i in range(self.width)]])
            for i in range(self.width):
                chosen = exp.Case().when(exp.Max(this=member.copy()).eq(_n(1)),
                                         exp.ArgMin(this=_c(f"b{i}"), expression=key.copy()))
                columns.append(chosen.else_(exp.Literal.string(NONE)).as_(f"v{i}"))
        return exp.select(*columns).from_(source).group_by(_c("u"))

    # results ----------------------------------------------------------------------------------------

    def steps_tree(self) -> exp.Select:
        """Per breakdown value: units reaching each step, then per step from the second the statistics of
        the seconds from the previous step (average, median, p25, p75, p90)."""
        n, d = self.n, self.ctx.dialect
        tree = self.people()
        groups: list[exp.Expr] = []
        if self.q.breakdown:
            keys = [_c(f"v{i}") for i in range(self.width)]
            top = (exp.select(*keys).from_("people").where(exp.GTE(this=_c("lvl"), expression=_n(1)))
                   .group_by(*keys)
                   .order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True), *[k.copy() for k in keys])
                   .limit(self.q.breakdown.limit))
            tree = tree.with_("top", as_=top)
            inside = exp.In(this=exp.Tuple(expressions=[k.copy() for k in keys]),
                            query=exp.select(*[k.copy() for k in keys]).from_("top").subquery())
            groups = [exp.If(this=inside.copy(), true=k.copy(), false=exp.Literal.string(OTHER)).as_(f"o{i}")
                      for i, k in enumerate(keys)]
        counts = [d.count_if(exp.GTE(this=_c("lvl"), expression=_n(k))).as_(f"c{k}") for k in range(1, n + 1)]
        times: list[exp.Expr] = []
        for k in range(2, n + 1):
            seconds = exp.Div(this=exp.cast(exp.Sub(this=_c(f"at{k}"), expression=_c(f"at{k - 1}")),
                                            exp.DataType.build("DOUBLE")), expression=_n(1_000_000))
            times.append(exp.Avg(this=seconds).as_(f"avg{k}"))
            times += [d.quantile(seconds.copy(), p).as_(f"q{k}_{i}") for i, p in enumerate(QUANTILES)]
        select = (tree.select(*groups, *counts, *times).from_("people")
                  .where(exp.GTE(this=_c("lvl"), expression=_n(1))))
        if groups:
            select = select.group_by(*[g.this for g in groups if isinstance(g, exp.Alias)])
        return select

    def trend_tree(self, granularity: str) -> exp.Select:
        """Per bucket of the deepest attempt's start: units entering, units reaching the last step."""
        d = self.ctx.dialect
        bucket = truncate_us(d, _c("start"), granularity)
        return (self.people()
                .select(bucket.as_("bucket"), exp.Count(this=exp.Star()),
                        d.count_if(exp.GTE(this=_c("lvl"), expression=_n(self.n))))
                .from_("people").where(exp.GTE(this=_c("lvl"), expression=_n(1)))
                .group_by(bucket.copy()))
