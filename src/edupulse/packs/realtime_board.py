"""Pack 3, real-time board with alerts (实时监控与告警): leads, orders and revenue per channel, hour by hour, on a
dashboard that refreshes every 10 seconds, and alerts on leads and orders that leave their usual band for the
hour of the week (ops/alerts.py, checked each hour by the scheduler).

The headline counts the period's leads and orders, in all and per channel (the person's `channel`: that of their
first lead, see ingest/first_touch.py), and those of its last day, and lists the project's alerts with their
state. The totals count every lead and order, those of persons without a channel too."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun
from edupulse.packs.spec import AlertPart, DashboardPart, Pack, ReportPart, Stage

NAME = "realtime_board"
CHANNEL = "person.channel"


def _today(series: dict[str, Any], by_channel: bool = True) -> dict[str, Any]:
    query: dict[str, Any] = {"kind": "trends", "granularity": "hour", "date_range": {"date_from": "today"},
                             "series": [series]}
    if by_channel:
        query["breakdown"] = {"properties": [CHANNEL], "limit": 20}
    return query


LEADS = {"event": "lead_created"}
ORDERS = {"event": "order_paid"}
REVENUE = {"event": "order_paid", "math": "sum", "property": "amount"}
REPORTS = (
    ReportPart("leads", "今日各渠道线索（每小时） Leads per channel today, by hour", _today(LEADS), width=6),
    ReportPart("orders", "今日各渠道订单（每小时） Orders per channel today, by hour", _today(ORDERS), width=6),
    ReportPart("revenue", "今日营收（每小时） Revenue today, by hour", _today(REVENUE, by_channel=False), width=12),
)
ALERTS = (
    AlertPart("leads_band", {"name": "线索数异常 Leads outside their usual band", "event": "lead_created",
                             "kind": "anomaly", "band": 3, "weeks": 8}),
    AlertPart("orders_band", {"name": "订单数异常 Orders outside their usual band", "event": "order_paid",
                              "kind": "anomaly", "band": 3, "weeks": 8}),
)


class ChannelNow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str
    leads: int
    orders: int
    leads_last_day: int
    orders_last_day: int


class AlertState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    name: str
    state: str
    last_hour: str | None
    last_value: float | None
    webhook: bool


class RealtimeBoard(Headline):
    last_day: str
    leads: int
    orders: int
    leads_last_day: int
    orders_last_day: int
    channels: list[ChannelNow]
    alerts: list[AlertState]


def _per_channel(run: PackRun, series: dict[str, Any], last_day: bool = False) -> tuple[dict[str, int], int]:
    """Per named channel, the count of the period (or its last day); and the count of all, those without a
    channel and those of the channels past the breakdown's limit included."""
    result = run.trends({**_today(series), "granularity": "day"}, (run.end, run.end) if last_day else None)
    named = {str(s.breakdown[0]): int(s.aggregated_value or 0) for s in result.series
             if s.breakdown and s.breakdown[0] is not None and s.breakdown[0] != "$other"}
    return named, sum(int(s.aggregated_value or 0) for s in result.series)


def headline(run: PackRun) -> RealtimeBoard:
    day = run.end.isoformat()
    (leads, all_leads), (orders, all_orders) = _per_channel(run, LEADS), _per_channel(run, ORDERS)
    (leads_day, all_leads_day), (orders_day, all_orders_day) = (_per_channel(run, LEADS, True),
                                                                _per_channel(run, ORDERS, True))
    names = sorted(set(leads) | set(orders), key=lambda c: (-leads.get(c, 0), c))
    rows = [ChannelNow(channel=c, leads=leads.get(c, 0), orders=orders.get(c, 0), leads_last_day=leads_day.get(c, 0),
                       orders_last_day=orders_day.get(c, 0)) for c in names]
    alerts = [AlertState(id=a["id"], name=a["name"], state=a["state"], last_hour=a["last_hour"],
                         last_value=a["last_value"], webhook=bool(a["webhook_url"]))
              for a in run.alerts]
    return RealtimeBoard(**run.frame(NAME), card=Card(value=all_leads_day, unit="count",
                                                     label="packs.card.realtime_board"),
                         last_day=day, leads=all_leads, orders=all_orders, leads_last_day=all_leads_day,
                         orders_last_day=all_orders_day, channels=rows, alerts=alerts)


PACK = Pack(
    name=NAME, version=1, stage=Stage.acquisition, problem="3", headline=headline,
    needs=("lead_created", "order_paid"), reports=REPORTS, alerts=ALERTS,
    dashboards=(DashboardPart("board", "实时渠道看板 Real-time channel board", ("leads", "orders", "revenue"),
                              refresh_seconds=10, date_from="today"),),
)
