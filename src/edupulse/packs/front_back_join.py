"""Pack 2, front-to-back join (前后端数据打通): ad spend (imported into the spend table) and orders (tracked or
imported) joined to the leads of each channel through One-ID, as ROI per channel week by week, with an import
guide and template files for spend, CRM leads and orders.

ROI per channel and week is the catalogue's `roi` broken down by channel (one statement for every channel),
bucketed by the week of each person's first lead (the revenue those leads brought within a year / the
channel's spend of that week); a channel's revenue is the `order_paid` amount of its persons in the period."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs import channel_quality as cq
from edupulse.packs.headline import Card, Headline, PackRun, by_key
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage
from edupulse.queries.trends import SeriesResult

NAME = "front_back_join"


def _weekly(*metrics: str) -> dict[str, Any]:
    """Metrics per channel (the channel of each person's first lead) and week."""
    return {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-90d"},
            "series": [{"metric": m} for m in metrics], "breakdown": {"properties": ["channel"], "limit": 100}}


MONEY = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-90d"},
         "series": [{"metric": "revenue"}, {"metric": "ad_spend"}, {"metric": "roi"}]}
CHANNELS = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-90d"},
            "series": [{"event": "lead_created", "math": "unique"},
                       {"event": "order_paid", "math": "sum", "property": "amount"}],
            "breakdown": {"properties": [cq.CHANNEL], "limit": 100}}
ORDERS_BY_SOURCE = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-90d"},
                    "series": [{"event": "order_paid", "math": "sum", "property": "amount"}],
                    "breakdown": {"properties": ["person.channel"], "limit": 20}}

REPORTS = (
    ReportPart("roi_weekly", "各渠道周 ROI ROI by channel, week by week", _weekly("roi"), width=12),
    ReportPart("money", "营收、花费与 ROI Revenue, ad spend and ROI", MONEY, width=12),
    ReportPart("spend_weekly", "各渠道周花费 Ad spend by channel, week by week", _weekly("ad_spend")),
    ReportPart("revenue_by_channel", "各渠道营收 Revenue by channel", ORDERS_BY_SOURCE, view={"chart": "bar"}),
)

# Template files of the import guide: the columns `edupulse import` reads without options.
TEMPLATES: dict[str, str] = {
    "spend.csv": "date,channel,campaign,cost,impressions,clicks\n"
                 "2026-09-01,douyin,short_video_trial,1280.50,52000,1100\n"
                 "2026-09-01,baidu_sem,brand_keywords,860.00,9000,420\n",
    "leads.csv": "event,distinct_id,distinct_id_type,time,identities.mobile,channel,campaign,source_system\n"
                 "lead_created,L100001,crm_lead_id,2026-09-01T10:15:00+08:00,13800000001,douyin,short_video_trial,crm\n",
    "lead_channels.csv": "distinct_id,distinct_id_type,op,channel,campaign\n"
                         "L100001,crm_lead_id,set_once,douyin,short_video_trial\n",
    "orders.csv": "event,distinct_id,distinct_id_type,time,order_id,amount,course_id,order_type\n"
                  "order_paid,13800000001,mobile,2026-09-03T20:40:00+08:00,O-20260903-001,1999,eng-l1,first\n",
}


class ChannelWeeks(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str
    revenue: float
    spend: float
    roi: float | None
    roi_by_week: list[float | None]
    spend_by_week: list[float | None]


class FrontBackJoin(Headline):
    has_spend: bool
    weeks: list[str]
    revenue: float
    spend: float
    roi: float | None
    channels: list[ChannelWeeks]


def headline(run: PackRun) -> FrontBackJoin:
    counts = by_key(run.trends(CHANNELS), ("leads", "revenue"))
    names = cq.ordered_channels(counts)
    weekly = run.trends(_weekly("roi", "ad_spend"))
    found: dict[tuple[int, str], SeriesResult] = {}
    for series in weekly.series:
        if series.breakdown and series.breakdown[0] is not None:
            found[(series.index, str(series.breakdown[0]))] = series
    total = run.trends(MONEY).series
    revenue, cost, overall = (s.aggregated_value for s in total)
    rows = []
    for c in names:
        roi, spend = found.get((0, c)), found.get((1, c))
        rows.append(ChannelWeeks(
            channel=c, revenue=round(counts[(c,)].get("revenue", 0.0), 2),
            spend=round(float(spend.aggregated_value or 0), 2) if spend else 0.0,
            roi=None if roi is None or roi.aggregated_value is None else round(float(roi.aggregated_value), 6),
            roi_by_week=list(roi.data) if roi else [None] * len(weekly.buckets),
            spend_by_week=list(spend.data) if spend else [0.0] * len(weekly.buckets)))
    return FrontBackJoin(**run.frame(NAME), card=Card(value=revenue, unit="CNY", label="packs.card.front_back_join"),
                         has_spend=bool(cost), weeks=list(weekly.buckets), revenue=round(float(revenue or 0), 2),
                         spend=round(float(cost or 0), 2), roi=overall, channels=rows)


PACK = Pack(
    name=NAME, version=2, stage=Stage.acquisition, problem="2", headline=headline, uses_spend=True,
    needs=("lead_created", "order_paid"), metrics=cq.METRICS, reports=REPORTS, templates=TEMPLATES,
    dashboards=(DashboardPart("board", "前后端打通 Front-to-back join",
                              ("roi_weekly", "money", "spend_weekly", "revenue_by_channel"), date_from="-90d"),),
)
