"""Attribution (归因分析): each conversion (and its revenue) credited to the channels of the touches before it
within a lookback window, by first touch, last touch, linear, position-based and time-decay models at once,
with ad spend per channel for cost, CAC and ROI.

Conversions and touches are scanned separately (each pre-filtered to its own events), then joined by person
only: a person's conversions against the same person's touches, not events against events. Window functions
over each conversion's touches give their count, order and time-decay weights.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from edupulse.queries.base import QueryRunner
from edupulse.queries.common import DateRange, Filter, Model, PropertyName, PropertyRef, local_midnight
from edupulse.queries.compile import EVENTS, PERSON_COLUMN
from edupulse.queries.dialect import DAY_US
from edupulse.queries.paths import window
from edupulse.queries.results import CHANNEL, Part, Provenance, Result, Table, absent_when_none

NO_TOUCH = "(none)"
NOT_SET = "(not set)"
OTHER_CHANNEL = "$other"
EventName = Annotated[str, Field(min_length=1, max_length=100)]


class AttributionModel(StrEnum):
    first_touch = "first_touch"
    last_touch = "last_touch"
    linear = "linear"
    position_based = "position_based"
    time_decay = "time_decay"


class Touch(Model):
    """One kind of touch: an event with filters; its channel is the value of `channel` (a property), or the
    fixed `name` (default: the event's name) when no property is given."""

    event: EventName
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    channel: PropertyName | None = None
    name: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None:
            PropertyRef.parse(value)
        return value


class Conversion(Model):
    """The conversion event with filters; `value` is the numeric property summed as revenue."""

    event: EventName
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    value: PropertyName | None = None

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | None) -> str | None:
        if value is not None:
            PropertyRef.parse(value)
        return value


class PositionWeights(Model):
    """Position-based shares of the first and the last touch; the middle touches share the rest."""

    first: float = Field(0.4, ge=0, le=1)
    last: float = Field(0.4, ge=0, le=1)

    @model_validator(mode="after")
    def _at_most_one(self) -> PositionWeights:
        if self.first + self.last > 1 + 1e-9:
            raise ValueError(f"first + last is {self.first + self.last:g}: the two shares add up to at most 1")
        return self


class AttributionQuery(Model):
    kind: Literal["attribution"]
    conversion: Conversion
    touches: list[Touch] = Field(min_length=1, max_length=20)
    models: list[AttributionModel] = Field(default_factory=lambda: list(AttributionModel), min_length=1)
    lookback_days: int = Field(30, ge=1, le=365)
    position_based: PositionWeights = PositionWeights()
    half_life_days: float = Field(7, gt=0, le=365)
    date_range: DateRange = DateRange()
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    spend: bool = False
    limit: int = Field(50, ge=1, le=500, description="channels listed; the rest are summed as $other")

    @field_validator("models")
    @classmethod
    def _distinct(cls, value: list[AttributionModel]) -> list[AttributionModel]:
        if len(set(value)) != len(value):
            raise ValueError("a model is named twice")
        return value


def _s(text: str) -> exp.Expr:
    return exp.Literal.string(text)


def _n(value: float) -> exp.Expr:
    return exp.Literal.number(value)


def _double(node: exp.Expr) -> exp.Expr:
    return exp.cast(node, exp.DataType.build("DOUBLE"))


def _if(condition: exp.Expr, true: exp.Expr, false: exp.Expr) -> exp.Expr:
    return exp.If(this=condition, true=true, false=false)


class Credit(Part):
    """Conversions and revenue credited by one model (fractions of conversions for shared credit)."""

    conversions: float
    revenue: float


class CreditAndCost(Part):
    """Credit with the channel's cost per credited conversion (CAC) and return on its cost (ROI), null where
    undefined."""

    conversions: float
    revenue: float
    cac: float | None
    roi: float | None


class ChannelCredit(Part):
    channel: Annotated[str, CHANNEL]
    conversions_touched: int
    models: dict[str, CreditAndCost | Credit]
    cost: float | None = absent_when_none()


class TotalCredit(Part):
    conversions: int
    revenue: float
    models: dict[str, Credit]
    cost: float | None = absent_when_none()


class AttributionResponse(Result):
    date_from: str
    date_to: str
    models: list[str]
    lookback_days: int
    channels: list[ChannelCredit]
    totals: TotalCredit

    def to_table(self) -> Table:
        spend = self.totals.cost is not None
        columns = ["channel", "conversions_touched", *(["cost"] if spend else [])]
        for m in self.models:
            columns += [f"{m}_conversions", f"{m}_revenue", *([f"{m}_cac", f"{m}_roi"] if spend else [])]
        rows = []
        for c in self.channels:
            row: list[Any] = [c.channel, c.conversions_touched, *([c.cost] if spend else [])]
            for m in self.models:
                e = c.models[m]
                row += [e.conversions, e.revenue,
                        *([e.cac, e.roi] if isinstance(e, CreditAndCost) else [])]
            rows.append(row)
        return columns, rows


class AttributionRunner(QueryRunner[AttributionQuery, AttributionResponse]):
    kind = "attribution"
    query_model = AttributionQuery
    response_model = AttributionResponse

    def _bounds(self) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
        tz = self.ctx.timezone
        start, end = self.query.date_range.days(tz, self.now)
        return start, end, local_midnight(start, tz), local_midnight(end + dt.timedelta(days=1), tz)

    def to_queries(self) -> dict[str, exp.Expr]:
        start, end, low, high = self._bounds()
        out = {"credit": self._tree(low, high)}
        if self.query.spend:
            out["costs"] = self._costs_tree(start, end)
        return out

    def calculate(self) -> AttributionResponse:
        q = self.query
        start, end, _, _ = self._bounds()
        statements = self.to_queries()
        models = [m.value for m in q.models]
        channels: dict[str, dict[str, Any]] = {}
        conversions, revenue = 0, 0.0
        for kind, channel, touched, *values in self.run(statements["credit"]):
            if kind == "total":
                conversions, revenue = int(touched), float(values[1] or 0)
                continue
            channels[channel] = {"touched": int(touched), "credit": [float(v or 0) for v in values]}
        costs = ({str(channel): float(cost or 0) for channel, cost in self.run(statements["costs"])}
                 if q.spend else {})
        for channel in costs:
            channels.setdefault(channel, {"touched": 0, "credit": [0.0] * (2 * len(models))})
        for channel, data in channels.items():
            data["cost"] = costs.get(channel, 0.0)
        listed = self._top(channels)
        totals = TotalCredit(
            conversions=conversions, revenue=_round(revenue),
            models={m: Credit(conversions=_round(sum(d["credit"][2 * i] for _, d in listed)),
                              revenue=_round(sum(d["credit"][2 * i + 1] for _, d in listed)))
                    for i, m in enumerate(models)},
            cost=_round(sum(costs.values())) if q.spend else None)
        response = AttributionResponse(date_from=start.isoformat(), date_to=end.isoformat(), models=models,
                                       lookback_days=q.lookback_days,
                                       channels=[self._channel(name, data, models) for name, data in listed],
                                       totals=totals)
        return response.from_data(Provenance(
            channel_properties=tuple(t.channel for t in q.touches if t.channel is not None),
            fixed_channels=frozenset(t.name or t.event for t in q.touches if t.channel is None)))

    def _top(self, channels: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """The `limit` channels with the most credited conversions (first model), the rest as $other."""
        ordered = sorted(channels.items(), key=lambda kv: (-kv[1]["credit"][0], -kv[1]["credit"][1], kv[0]))
        kept, rest = ordered[:self.query.limit], ordered[self.query.limit:]
        if rest:
            width = len(rest[0][1]["credit"])
            merged = {"touched": sum(d["touched"] for _, d in rest),
                      "credit": [sum(d["credit"][i] for _, d in rest) for i in range(width)],
                      "cost": sum(d["cost"] for _, d in rest)}
            kept.append((OTHER_CHANNEL, merged))
        return kept

    def _channel(self, name: str, data: dict[str, Any], models: list[str]) -> ChannelCredit:
        credited: dict[str, CreditAndCost | Credit] = {}
        cost: float | None = data["cost"] if self.query.spend else None
        for i, m in enumerate(models):
            count, money = data["credit"][2 * i], data["credit"][2 * i + 1]
            if cost is None:
                credited[m] = Credit(conversions=_round(count), revenue=_round(money))
            else:
                credited[m] = CreditAndCost(conversions=_round(count), revenue=_round(money),
                                            cac=_round(cost / count) if count > 1e-12 else None,
                                            roi=_round((money - cost) / cost) if cost > 0 else None)
        return ChannelCredit(channel=name, conversions_touched=data["touched"], models=credited,
                             cost=_round(cost or 0.0) if self.query.spend else None)

    # the SQL ----------------------------------------------------------------------------------

    def _tree(self, low: dt.datetime, high: dt.datetime) -> exp.Expr:
        q, ctx = self.query, self.ctx
        c = exp.column
        reach = low - dt.timedelta(days=q.lookback_days + 1)  # a day more: the window is on wall-clock time
        local = ctx.local_us(reach, high)
        person = c(PERSON_COLUMN, EVENTS).as_("person")
        value = (exp.func("coalesce", ctx.number(q.conversion.value), _n(0.0)) if q.conversion.value is not None
                 else _n(0.0))
        conv = ctx.scan([person, local.as_("t"), _double(value).as_("v")],
                        [*ctx.in_time(low, high), c("event", EVENTS).eq(_s(q.conversion.event)),
                         *ctx.conditions([*q.filters, *q.conversion.filters])])
        tree = exp.select().with_("conv", as_=conv)
        numbered = window(exp.RowNumber(), [], ["person", "t", "v"])
        tree = tree.with_("convs", as_=exp.select("person", "t", "v", numbered.as_("cid")).from_("conv"))
        tree = tree.with_("touch", as_=self._touches(reach, high, local))
        lookback = q.lookback_days * DAY_US
        pairs = (exp.select(c("cid", "c"), c("v", "c"), c("t", "x").as_("tt"), c("channel", "x"), c("i", "x"))
                 .from_(exp.table_("convs").as_("c"))
                 .join(exp.table_("touch").as_("x"), on=c("person", "c").eq(c("person", "x")), join_type="inner")
                 .where(exp.and_(exp.LTE(this=c("t", "x"), expression=c("t", "c")),
                                 exp.GTE(this=c("t", "x"), expression=exp.Sub(this=c("t", "c"),
                                                                                expression=_n(lookback))))))
        tree = tree.with_("pairs", as_=pairs)
        ranked = exp.select("cid", "v", "channel", "tt",
                            window(exp.Count(this=exp.Star()), ["cid"]).as_("n"),
                            window(exp.RowNumber(), ["cid"], ["tt", "channel", "i"]).as_("r"),
                            window(exp.Max(this=c("tt")), ["cid"]).as_("last_t")).from_("pairs")
        tree = tree.with_("ranked", as_=ranked)
        # weights relative to the latest touch (weight 1): no underflow, whatever the half-life
        half_life = q.half_life_days * DAY_US
        decay = exp.Pow(this=_n(2.0), expression=exp.Div(this=exp.Paren(this=exp.Sub(this=c("tt"),
                                                                                  expression=c("last_t"))),
                                                       expression=_n(float(half_life))))
        tree = tree.with_("decayed", as_=exp.select("cid", "v", "channel", "n", "r", decay.as_("w")).from_("ranked"))
        tree = tree.with_("weighted", as_=exp.select("cid", "v", "channel", "n", "r", "w",
                                                     window(exp.Sum(this=c("w")), ["cid"]).as_("sw"))
                          .from_("decayed"))
        credited: list[exp.Expr] = []
        for m in q.models:
            share = self._credit(m)
            credited += [exp.Sum(this=share), exp.Sum(this=exp.Mul(this=exp.Paren(this=share), expression=c("v")))]
        touched = (exp.select(_s("channel").as_("out_kind"), c("channel").as_("out_channel"),
                              exp.Count(this=exp.Distinct(expressions=[c("cid")])).as_("out_touched"),
                              *[_double(x).as_(f"out_{i}") for i, x in enumerate(credited)])
                   .from_("weighted").group_by("channel"))
        whole = [_double(exp.Count(this=exp.Star())), _double(exp.func("coalesce", exp.Sum(this=c("v")), _n(0.0)))]
        untouched = (exp.select(_s("channel"), _s(NO_TOUCH), exp.Count(this=exp.Star()), *(whole * len(q.models)))
                     .from_("convs")
                     .where(exp.Not(this=exp.In(this=c("cid"), query=exp.select("cid").from_("pairs").subquery()))))
        total = (exp.select(_s("total"), _s(""), exp.Count(this=exp.Star()), *(whole * len(q.models)))
                 .from_("convs"))
        union = touched.union(untouched, distinct=False).union(total, distinct=False)
        return tree.select("*").from_(union.subquery("credited"))

    def _touches(self, low: dt.datetime, high: dt.datetime, local: exp.Expr) -> exp.Query:
        q, ctx = self.query, self.ctx
        parts: list[exp.Select] = []
        for i, touch in enumerate(q.touches):
            channel: exp.Expr
            if touch.channel is not None:
                channel = exp.func("coalesce", ctx.text(touch.channel), _s(NOT_SET))
            else:
                channel = _s(touch.name or touch.event)
            parts.append(ctx.scan(
                [exp.column(PERSON_COLUMN, EVENTS).as_("person"), local.as_("t"), channel.as_("channel"),
                 _n(i).as_("i")],
                [*ctx.in_time(low, high), exp.column("event", EVENTS).eq(_s(touch.event)),
                 *ctx.conditions([*q.filters, *touch.filters])]))
        union: exp.Query = parts[0]
        for part in parts[1:]:
            union = union.union(part, distinct=False)
        return union

    def _credit(self, m: AttributionModel) -> exp.Expr:
        """The share of one conversion a touch gets (the shares of a conversion's touches add up to 1)."""
        c = exp.column
        n, r = c("n"), c("r")
        one, zero = _n(1.0), _n(0.0)
        if m is AttributionModel.first_touch:
            return _if(r.eq(_n(1)), one, zero)
        if m is AttributionModel.last_touch:
            return _if(r.eq(n), one, zero)
        if m is AttributionModel.linear:
            return exp.Div(this=one, expression=_double(n))
        if m is AttributionModel.time_decay:
            return exp.Div(this=c("w"), expression=c("sw"))
        first, last = self.query.position_based.first, self.query.position_based.last
        ends = first + last
        pair_first = first / ends if ends > 0 else 0.5  # two touches: the end shares, scaled to add up to 1
        middle = exp.Div(this=_n(1.0 - ends), expression=_double(exp.Sub(this=n, expression=_n(2))))
        return (exp.Case().when(n.eq(_n(1)), one)
                .when(n.eq(_n(2)), _if(r.eq(_n(1)), _n(pair_first), _n(1.0 - pair_first)))
                .when(r.eq(_n(1)), _n(first)).when(r.eq(n), _n(last)).else_(middle))

    def _costs_tree(self, start: dt.date, end: dt.date) -> exp.Expr:
        c = exp.column
        day = exp.DataType.build("DATE")
        return (exp.select(c("channel").as_("out_channel"), exp.Sum(this=c("cost")).as_("out_cost"))
                .from_("spend")
                .where(exp.and_(c("project_id").eq(_n(self.ctx.project_id)),
                                exp.GTE(this=c("date"), expression=exp.cast(_s(start.isoformat()), day)),
                                exp.LTE(this=c("date"), expression=exp.cast(_s(end.isoformat()), day))))
                .group_by("channel"))


def _round(value: float) -> float:
    return round(float(value), 6) + 0.0  # + 0.0: no -0.0
