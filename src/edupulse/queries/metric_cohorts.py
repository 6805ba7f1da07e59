"""Metrics that count units meeting conditions within a cohort and a window (统计口径 as the business states
them), which a ratio of two event counts cannot express:

- a **cohort**: each unit's `event` (with filters) in the bucket; with `first`, only the unit's first such
  event ever (its first lead); with `per`, one entry per unit and value of that property (per lesson, per
  course), so that a student with two lessons is two entries; with `time`, an entry's time is that time
  property (a lesson's `starts_at`) rather than when the event was sent; with `last`, only the unit's last
  such event per `per` value (the last lesson of a course: the course's end), counted once `settle_days`
  passed after it with no later one; with `unless`, entries whose unit did another event (a refund of the
  same course) are left out;
- an **outcome**: whether the entry's unit did `event` (with filters) from `from_days` to `to_days` days after
  the cohort event (negative: before it; null: no bound), with the same `per` value when `same` is set; or,
  with `value`, how much of that numeric property those events carried (revenue);
- a **channel attribution**: each unit's channel is the value of `property` on its first `event` (the
  channel of its first lead), so one channel's new customers and its own ad spend go together;
- a **ratio**: `rate` (entries with the outcome / entries), `spend_per_unit` (ad spend / entries with the
  outcome, or all entries without an outcome: CAC) or `value_per_spend` (outcome value / ad spend: ROI).

Entries are cut into buckets by the time of their cohort event; the value over the whole range counts every
entry of the range once. The SQL reads the cohort's events and the outcome's events once each and joins them
per unit (never events with events of other units).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import StrEnum

from pydantic import Field, model_validator
from sqlglot import exp

from edupulse.queries.common import Filter, Model, PropertyName, local_midnight
from edupulse.queries.compile import EVENTS, Context
from edupulse.queries.dialect import DAY_US, local_us, truncate_us

NONE = "$none"


class Unless(Model):
    """Cohort entries whose unit did `event` (with filters; with `same`, with the entry's `per` value) by now are
    left out (e.g. a course whose order was refunded)."""

    event: str = Field(min_length=1, max_length=100)
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    same: bool = Field(False, description="with the cohort entry's `per` value (the same course)")


class Cohort(Model):
    """The entries a metric is about: each unit's `event` (with filters) in the bucket."""

    event: str = Field(min_length=1, max_length=100)
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    first: bool = Field(False, description="only each unit's first such event ever (e.g. its first lead)")
    last: bool = Field(False, description="only each unit's last such event per `per` value, by `time` (the last "
                                          "lesson of a course: the course's end)")
    settle_days: int | None = Field(None, ge=0, le=3650,
                                    description="with last: an entry counts once this many whole days (in the "
                                                "project's time zone) followed the day of it by now, with no later one")
    per: PropertyName | None = Field(None, description="one entry per unit and value of this property")
    time: PropertyName | None = Field(None, description="the entry's time is this time property of the event "
                                                        "(e.g. a lesson's starts_at) instead of the event's time")
    unless: Unless | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Cohort:
        if self.first and self.last:
            raise ValueError("a cohort takes each unit's first or its last event, not both")
        if self.settle_days is not None and not self.last:
            raise ValueError("settle_days belongs to a cohort of last events (last: true)")
        if self.unless is not None and self.unless.same and self.per is None:
            raise ValueError("unless.same needs cohort.per (the property both events share)")
        return self


class Outcome(Model):
    """What each cohort entry is checked for: the same unit's `event` from `from_days` to `to_days` after the
    cohort event (null: no bound)."""

    event: str = Field(min_length=1, max_length=100)
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    from_days: float | None = Field(0, ge=-3650, le=3650, description="negative: before the cohort event")
    to_days: float | None = Field(None, ge=-3650, le=3650)
    same: bool = Field(False, description="with the cohort entry's `per` value (the same lesson)")
    value: PropertyName | None = Field(None, description="sum this numeric property instead of counting entries")

    @model_validator(mode="after")
    def _window(self) -> Outcome:
        if self.from_days is not None and self.to_days is not None and self.from_days > self.to_days:
            raise ValueError(f"from_days {self.from_days:g} is after to_days {self.to_days:g}")
        return self


class ChannelAttribution(Model):
    """Each unit's channel: the value of `property` on its first `event`."""

    event: str = Field("lead_created", min_length=1, max_length=100)
    property: PropertyName = "channel"


class Ratio(StrEnum):
    rate = "rate"  # entries with the outcome / entries
    entries = "entries"  # the number of entries (e.g. lessons scheduled, per student and lesson)
    spend_per_unit = "spend_per_unit"  # ad spend / entries with the outcome (all entries without one)
    value_per_spend = "value_per_spend"  # the outcome's value / ad spend


def check(cohort: Cohort, outcome: Outcome | None, ratio: Ratio) -> None:
    """A cohort metric whose parts fit together; ValueError says what is missing."""
    if ratio is Ratio.entries and outcome is not None:
        raise ValueError("ratio entries counts the cohort's entries: it takes no outcome")
    if ratio is Ratio.rate and (outcome is None or outcome.value is not None):
        raise ValueError("ratio rate needs an outcome that counts entries (no value)")
    if ratio is Ratio.value_per_spend and (outcome is None or outcome.value is None):
        raise ValueError("ratio value_per_spend needs an outcome with a value (e.g. amount)")
    if outcome is not None and outcome.same and cohort.per is None:
        raise ValueError("outcome.same needs cohort.per (the property both events share)")


# the SQL --------------------------------------------------------------------------------------------


def cohort_tree(ctx: Context, cohort: Cohort, outcome: Outcome | None, filters: list[Filter], unit: str,
                granularity: str, low: dt.datetime, high: dt.datetime,
                channel: tuple[ChannelAttribution, str] | None = None, by: Sequence[str] = (),
                attribution: ChannelAttribution | None = None) -> exp.Expr:
    """Rows (bucket, whole, entries, hits, value, b0..bn): per bucket of the cohort events in [low, high) and,
    with `whole` 1, over the whole range; with `by`, per value of each of these properties as well (b0..bn,
    `$none` where absent), all in one statement.

    A breakdown property is read on the entry's cohort event (its course, its class); for a `first` or `last`
    cohort, on that first or last event; with `attribution`, on the unit's first attribution event (the
    channel and campaign of its first lead), as the metric's channel is."""
    c = exp.column
    tree = _entry_tree(ctx, cohort, outcome, filters, unit, granularity, low, high, channel, by, attribution)
    names = [c(name) for name in _names(by)]
    sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[c("bucket"), *names]),
                                         exp.Tuple(expressions=[n.copy() for n in names])])
    tree = tree.select(c("bucket"), exp.func("grouping", c("bucket")).as_("whole"), exp.Count(this=exp.Star()),
                       exp.Sum(this=c("hit")), exp.Sum(this=c("v")), *[n.copy() for n in names],
                       copy=False).from_("entries", copy=False)
    tree.set("group", exp.Group(expressions=[sets]))
    return tree


def _names(by: Sequence[str]) -> list[str]:
    return [f"b{i}" for i in range(len(by))]


def _value(ctx: Context, prop: str) -> exp.Expr:
    """A breakdown property as text, `$none` where the event has none."""
    return exp.func("coalesce", ctx.text(prop), exp.Literal.string(NONE))


def entry_rows(ctx: Context, cohort: Cohort, outcome: Outcome, unit: str, low: dt.datetime,
               high: dt.datetime) -> exp.Select:
    """Rows (u, t, d, hit): each cohort entry in [low, high) with its unit, time (epoch microseconds), local day
    (wall-clock microseconds of its start) and whether it met the outcome (1 or 0); for per-unit analyses."""
    c = exp.column
    tree = _entry_tree(ctx, cohort, outcome, [], unit, "day", low, high, None, (), None)
    return tree.select(c("u"), c("t"), c("bucket").as_("d"), c("hit"), copy=False).from_("entries", copy=False)


def _entry_tree(ctx: Context, cohort: Cohort, outcome: Outcome | None, filters: list[Filter], unit: str,
                granularity: str, low: dt.datetime, high: dt.datetime,
                channel: tuple[ChannelAttribution, str] | None, by: Sequence[str],
                attribution: ChannelAttribution | None) -> exp.Select:
    """A select with the CTEs `cohort` and `outcome`, and `entries`: (u, t, bucket[, k], b0..bn, hit, v) per
    entry."""
    d, c = ctx.dialect, exp.column
    who = ctx.unit(unit)
    key = [exp.func("coalesce", ctx.text(cohort.per), exp.Literal.string(NONE)).as_("k")] if cohort.per else []
    # a cohort of each unit's first attribution event itself (its first lead, unfiltered) carries the breakdown
    # values of that event: read them there, without a second pass over the attribution events
    own = attribution is not None and cohort.first and cohort.event == attribution.event and not cohort.filters \
        and not filters and cohort.per is None
    entries = _entries(ctx, cohort, filters, who, low, high, by if attribution is None or own else ())
    if channel is not None:
        attribution, value = channel
        owners = ctx.scan([who.as_("u"), d.arg_min(ctx.text(attribution.property), c("time", EVENTS)).as_("ch")],
                          [c("event", EVENTS).eq(exp.Literal.string(attribution.event)),
                           exp.Not(this=exp.Is(this=who.copy(), expression=exp.null()))]).group_by(c("u"), copy=False)
        inside = exp.select(c("u"), copy=False).from_(owners.subquery("owners", copy=False), copy=False).where(
            c("ch").eq(exp.Literal.string(value)), copy=False)
        entries = exp.select("*", copy=False).from_(entries.subquery("all_entries", copy=False), copy=False).where(
            exp.In(this=c("u"), query=inside.subquery(copy=False)), copy=False)
    if by and attribution is not None and not own:
        entries = _attributed(ctx, entries, who, attribution, by, cohort.per is not None)
    names = _names(by)
    stamped = exp.select(c("u"), *([c("k")] if key else []), *[c(n) for n in names], d.epoch_us(c("t0")).as_("t"),
                         truncate_us(d, local_us(d, c("t0"), ctx.timezone, low, high), granularity).as_("bucket")
                         , copy=False).from_(entries.subquery("entries", copy=False), copy=False)
    tree = exp.select(copy=False).with_("cohort", as_=stamped, copy=False)
    hit: exp.Expr = exp.Literal.number(0)
    amount: exp.Expr = exp.Literal.number(0)
    source: exp.Expr = exp.table_("cohort").as_("x")
    group = [c("u", "x"), c("t", "x"), c("bucket", "x"), *([c("k", "x")] if key else []), *[c(n, "x") for n in names]]
    per_entry = exp.select(*[g.copy() for g in group], copy=False)
    if outcome is not None:
        tree = tree.with_("outcome", as_=_outcome(ctx, outcome, who, cohort.per, low, high), copy=False)
        on: list[exp.Expr] = [c("u", "o").eq(c("u", "x"))]
        if outcome.same:
            on.append(c("k", "o").eq(c("k", "x")))
        if outcome.from_days is not None:
            on.append(exp.GTE(this=c("t", "o"), expression=_after(c("t", "x"), outcome.from_days)))
        if outcome.to_days is not None:
            on.append(exp.LTE(this=c("t", "o"), expression=_after(c("t", "x"), outcome.to_days)))
        per_entry = per_entry.from_(source, copy=False).join(exp.table_("outcome").as_("o"), on=exp.and_(*on),
                                                             join_type="left", copy=False)
        # a flag of the outcome's rows, not `o.u IS NOT NULL`: ClickHouse fills a LEFT JOIN's missing side with
        # default values (0), not NULL
        hit = exp.Max(this=exp.func("coalesce", c("hit", "o"), exp.Literal.number(0)))
        amount = exp.func("coalesce", exp.Sum(this=c("v", "o")), exp.Literal.number(0.0)) if outcome.value else amount
    else:
        per_entry = per_entry.from_(source, copy=False)
    per_entry = per_entry.select(hit.as_("hit"), exp.cast(amount, exp.DataType.build("DOUBLE")).as_("v"), copy=False)
    if outcome is not None:
        per_entry = per_entry.group_by(*[g.copy() for g in group], copy=False)
    return tree.with_("entries", as_=per_entry, copy=False)


def _attributed(ctx: Context, entries: exp.Select, who: exp.Expr, attribution: ChannelAttribution,
                by: Sequence[str], per: bool) -> exp.Select:
    """The entries with the breakdown values of their unit's first attribution event (b0..bn; `$none` for a
    unit without one)."""
    d, c = ctx.dialect, exp.column
    names = _names(by)
    owners = ctx.scan([who.copy().as_("u"), *[d.arg_min(_value(ctx, p), c("time", EVENTS)).as_(n)
                                              for p, n in zip(by, names, strict=True)],
                       exp.Max(this=exp.Literal.number(1)).as_("owned")],
                      [c("event", EVENTS).eq(exp.Literal.string(attribution.event)),
                       exp.Not(this=exp.Is(this=who.copy(), expression=exp.null()))]).group_by(c("u"), copy=False)
    # a flag of the owners' rows, not `o.u IS NULL`: ClickHouse fills a LEFT JOIN's missing side with defaults
    owned = exp.func("coalesce", c("owned", "o"), exp.Literal.number(0)).eq(exp.Literal.number(1))
    columns = [c("u", "w"), c("t0", "w"), *([c("k", "w")] if per else []),
               *[exp.If(this=owned.copy(), true=c(n, "o"), false=exp.Literal.string(NONE)).as_(n) for n in names]]
    return exp.select(*columns, copy=False).from_(entries.subquery("w", copy=False), copy=False).join(
        owners.subquery("o", copy=False), on=c("u", "o").eq(c("u", "w")), join_type="left", copy=False)


def _entries(ctx: Context, cohort: Cohort, filters: list[Filter], who: exp.Expr, low: dt.datetime,
             high: dt.datetime, by: Sequence[str] = ()) -> exp.Select:
    """Rows (u, t0[, k], b0..bn): the cohort's entries whose time is in [low, high), with the values of the
    breakdown properties `by` on the entry's event."""
    d, c = ctx.dialect, exp.column
    moment = _moment(ctx, cohort)
    conditions = [c("event", EVENTS).eq(exp.Literal.string(cohort.event)),
                  exp.Not(this=exp.Is(this=who.copy(), expression=exp.null())),
                  *ctx.conditions([*cohort.filters, *filters])]
    if cohort.time is not None:
        conditions.append(exp.Not(this=exp.Is(this=moment.copy(), expression=exp.null())))
    key = [exp.func("coalesce", ctx.text(cohort.per), exp.Literal.string(NONE)).as_("k")] if cohort.per else []
    # what the data shows by now (the query's now; without one, the end of the range), so that a month's value
    # does not depend on the range it is asked in
    horizon = ctx.now if ctx.now is not None else high
    names = _names(by)
    if cohort.first:  # the unit's first such event ever: read up to the range's end, keep those in the range
        firsts = ctx.scan([who.as_("u"), exp.Min(this=moment.copy()).as_("t0"), *key,
                           *[d.arg_min(_value(ctx, p), moment.copy()).as_(n) for p, n in zip(by, names, strict=True)]],
                          [*conditions, exp.LT(this=moment.copy(), expression=d.timestamp(high))])
        entries = firsts.group_by(c("u"), *([c("k")] if key else []), copy=False).having(
            exp.GTE(this=exp.Min(this=moment.copy()), expression=d.timestamp(low)), copy=False)
    elif cohort.last:  # the unit's last such event (per value) sent before the horizon, settled by then
        # settled: the entry's day and `settle_days` whole days after it are over by today (local days)
        today = horizon.astimezone(ctx.timezone).date()
        settled = local_midnight(today - dt.timedelta(days=cohort.settle_days), ctx.timezone) \
            if cohort.settle_days is not None else horizon
        upper = min(high, settled)
        lasts = ctx.scan([who.as_("u"), exp.Max(this=moment.copy()).as_("t0"), *key,
                          *[d.arg_max(_value(ctx, p), moment.copy()).as_(n) for p, n in zip(by, names, strict=True)]],
                         [*conditions, exp.LT(this=c("time", EVENTS), expression=d.timestamp(horizon))])
        latest = exp.Max(this=moment.copy())
        entries = lasts.group_by(c("u"), *([c("k")] if key else []), copy=False).having(exp.and_(
            exp.GTE(this=latest, expression=d.timestamp(low)),
            exp.LT(this=latest.copy(), expression=d.timestamp(upper))), copy=False)
    else:
        bounds = (ctx.in_time(low, high) if cohort.time is None else
                  [exp.GTE(this=moment.copy(), expression=d.timestamp(low)),
                   exp.LT(this=moment.copy(), expression=d.timestamp(high))])
        entries = ctx.scan([who.as_("u"), moment.copy().as_("t0"), *key,
                            *[_value(ctx, p).as_(n) for p, n in zip(by, names, strict=True)]], [*conditions, *bounds])
    if cohort.unless is not None:
        entries = _unless(ctx, cohort, cohort.unless, entries, who, horizon, names)
    return entries


def _moment(ctx: Context, cohort: Cohort) -> exp.Expr:
    """An entry's time: the event's, or the cohort's time property (a typed time column), the event's where the
    property is missing."""
    if cohort.time is None:
        return exp.column("time", EVENTS)
    return ctx.moment(cohort.time, "cohort.time")


def _unless(ctx: Context, cohort: Cohort, unless: Unless, entries: exp.Select, who: exp.Expr,
            horizon: dt.datetime, names: Sequence[str]) -> exp.Select:
    """The entries without those whose unit did the `unless` event before the horizon."""
    d, c = ctx.dialect, exp.column
    per = cohort.per if unless.same else None
    key = [exp.func("coalesce", ctx.text(per), exp.Literal.string(NONE)).as_("k")] if per is not None else []
    gone = ctx.scan([who.copy().as_("u"), *key, exp.Max(this=exp.Literal.number(1)).as_("gone")],
                    [c("event", EVENTS).eq(exp.Literal.string(unless.event)),
                     exp.Not(this=exp.Is(this=who.copy(), expression=exp.null())), *ctx.conditions(unless.filters),
                     exp.LT(this=c("time", EVENTS), expression=d.timestamp(horizon))]
                    ).group_by(c("u"), *([c("k")] if key else []), copy=False)
    on = [c("u", "g").eq(c("u", "w")), *([c("k", "g").eq(c("k", "w"))] if key else [])]
    columns = [c("u", "w"), c("t0", "w"), *([c("k", "w")] if cohort.per else []), *[c(n, "w") for n in names]]
    # a flag of the excluded rows, not `g.u IS NULL`: ClickHouse fills a LEFT JOIN's missing side with defaults
    return exp.select(*columns, copy=False).from_(entries.subquery("w", copy=False), copy=False).join(
        gone.subquery("g", copy=False), on=exp.and_(*on), join_type="left", copy=False).where(
        exp.func("coalesce", c("gone", "g"), exp.Literal.number(0)).eq(exp.Literal.number(0)), copy=False)


def _outcome(ctx: Context, outcome: Outcome, who: exp.Expr, per: str | None, low: dt.datetime,
             high: dt.datetime) -> exp.Select:
    d, c = ctx.dialect, exp.column
    conditions = [c("event", EVENTS).eq(exp.Literal.string(outcome.event)),
                  exp.Not(this=exp.Is(this=who.copy(), expression=exp.null())), *ctx.conditions(outcome.filters)]
    if outcome.from_days is not None:  # only events that can fall in some entry's window
        conditions.append(exp.GTE(this=c("time", EVENTS),
                                  expression=d.timestamp(low + dt.timedelta(days=min(outcome.from_days, 0)))))
    if outcome.to_days is not None:
        conditions.append(exp.LT(this=c("time", EVENTS),
                                 expression=d.timestamp(high + dt.timedelta(days=max(outcome.to_days, 0)))))
    columns = [who.copy().as_("u"), d.epoch_us(c("time", EVENTS)).as_("t"), exp.Literal.number(1).as_("hit")]
    if outcome.same and per is not None:
        columns.append(exp.func("coalesce", ctx.text(per), exp.Literal.string(NONE)).as_("k"))
    if outcome.value is not None:
        columns.append(exp.cast(ctx.number(outcome.value), exp.DataType.build("DOUBLE")).as_("v"))
    else:
        columns.append(exp.cast(exp.Literal.number(0), exp.DataType.build("DOUBLE")).as_("v"))
    return ctx.scan(columns, conditions)


def _after(moment: exp.Expr, days: float) -> exp.Expr:
    """Microseconds `days` after `moment` (epoch microseconds)."""
    return exp.Add(this=moment, expression=exp.Literal.number(round(days * DAY_US)))

