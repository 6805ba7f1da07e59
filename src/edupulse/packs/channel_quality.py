"""Pack 1, channel quality (渠道质量): per channel and campaign, visitors, leads, valid leads, trials booked and
attended, first orders, revenue, ad spend, cost per lead, CAC and ROI within N days, side by side.

Counts are trends series broken down by the person's `channel` (and `campaign`), visitors by the `utm_source`
of their page views; first-order conversion, CAC and ROI are the catalogue's metrics for each channel (the
channel of a person's first lead), ad spend the pack's `ad_spend` metric (the spend table by channel). The
headline runs the same queries as the reports the pack installs, so the dashboard shows the same numbers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackError, PackRun, by_key, ratio
from edupulse.packs.spec import MAX_SERIES, DashboardPart, MetricPart, Pack, ReportPart, Stage

NAME = "channel_quality"
CHANNEL = "person.channel"
CAMPAIGN = "person.campaign"
ROI_METRICS = {30: "roi_30d", 90: "roi_90d", 365: "roi"}
FIRST = [{"property": "order_type", "op": "eq", "value": "first"}]

# the counting series, in the columns' order
FUNNEL: tuple[tuple[str, dict[str, Any]], ...] = (
    ("leads", {"event": "lead_created", "math": "unique"}),
    ("valid_leads", {"event": "lead_qualified", "math": "unique"}),
    ("trials_booked", {"event": "trial_booked", "math": "unique"}),
    ("trials_attended", {"event": "trial_attended", "math": "unique"}),
    ("first_orders", {"event": "order_paid", "filters": FIRST}),
    ("revenue", {"event": "order_paid", "math": "sum", "property": "amount"}),
)


def _roi_within(days: int) -> dict[str, Any]:
    return {"title": f"{days} 天 ROI · ROI within {days} days", "unit": "ratio",
            "description": f"Revenue of a channel's new leads within {days} days of their first lead / the channel's "
                           "ad spend in the period (as roi, with a shorter window).",
            "cohort": {"event": "lead_created", "first": True},
            "outcome": {"event": "order_paid", "value": "amount", "to_days": days}, "ratio": "value_per_spend",
            "channel": {"event": "lead_created", "property": "channel"}}


METRICS = (
    MetricPart("ad_spend", {"title": "广告花费 ad spend", "unit": "CNY", "numerator": {"spend": True},
                            "description": "Cost in the spend table (imported ad spend) of the period; of one "
                                           "channel with a channel."}),
    MetricPart("roi_30d", _roi_within(30)),
    MetricPart("roi_90d", _roi_within(90)),
)


def funnel_query(breakdown: list[str]) -> dict[str, Any]:
    return {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-30d"},
            "series": [series for _, series in FUNNEL],
            "breakdown": {"properties": breakdown, "limit": 100}}


VISITORS = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-30d"},
            "series": [{"event": "page_view", "math": "unique"}],
            "breakdown": {"properties": ["utm_source"], "limit": 100}}


def per_channel_query(metric: str) -> dict[str, Any]:
    return {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-30d"},
            "series": [{"metric": metric}]}


REPORTS = (
    ReportPart("funnel", "渠道质量：线索到首单 Channel quality: leads to first orders", funnel_query([CHANNEL]),
               view={"chart": "bar"}, width=12),
    ReportPart("roi", "各渠道 ROI ROI by channel", per_channel_query("roi"), per_channel="roi"),
    ReportPart("cac", "各渠道获客成本 CAC by channel", per_channel_query("cac"), per_channel="cac"),
    ReportPart("conversion", "各渠道首单转化率 First-order conversion by channel",
               per_channel_query("first_order_conversion"), per_channel="first_order_conversion"),
    ReportPart("spend", "各渠道广告花费 Ad spend by channel", per_channel_query("ad_spend"), per_channel="ad_spend"),
    ReportPart("visitors", "访客（按来源） Visitors by source", VISITORS, view={"chart": "bar"}),
    ReportPart("campaigns", "渠道与计划 Channels and campaigns", funnel_query([CHANNEL, CAMPAIGN]),
               view={"chart": "bar"}),
)


class ChannelRow(BaseModel):
    """One channel; rates are shares (0.25 = 25 %), money in the currency of the data."""

    model_config = ConfigDict(extra="forbid")
    channel: str
    visitors: int
    leads: int
    valid_leads: int
    trials_booked: int
    trials_attended: int
    first_orders: int
    first_order_rate: float | None
    revenue: float
    spend: float
    cost_per_lead: float | None
    cac: float | None
    roi: float | None


class CampaignRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str
    campaign: str
    leads: int
    valid_leads: int
    trials_booked: int
    trials_attended: int
    first_orders: int
    revenue: float


class ChannelQuality(Headline):
    roi_days: int
    channels: list[ChannelRow]
    campaigns: list[CampaignRow]
    best_channel: str | None
    best_roi_channel: str | None


COUNTS = tuple(name for name, _ in FUNNEL)


def channels_of(run: PackRun) -> list[str]:
    """The channels of the period's leads, most leads first."""
    return ordered_channels(funnel_counts(run))


def per_channel(run: PackRun, metric: str, channels: list[str]) -> dict[str, float | None]:
    """A catalogue metric for each channel (queries of at most MAX_SERIES series, as the reports hold)."""
    out: dict[str, float | None] = {}
    for start in range(0, len(channels), MAX_SERIES):
        chunk = channels[start:start + MAX_SERIES]
        result = run.trends({**per_channel_query(metric),
                             "series": [{"metric": metric, "channel": c, "name": c} for c in chunk]})
        out.update({c: s.aggregated_value for c, s in zip(chunk, result.series, strict=True)})
    return out


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def funnel_counts(run: PackRun) -> dict[tuple[str, ...], dict[str, float]]:
    """Leads, valid leads, trials, first orders and revenue per channel in the run's period."""
    return by_key(run.trends(funnel_query([CHANNEL])), COUNTS)


def ordered_channels(counts: dict[tuple[str, ...], dict[str, float]]) -> list[str]:
    """The channels, most leads first."""
    return sorted((key[0] for key in counts), key=lambda c: (-counts[(c,)].get("leads", 0), c))


def headline(run: PackRun) -> ChannelQuality:
    days = int(run.params.get("roi_days", 365))
    if days not in ROI_METRICS:
        raise PackError(f"roi_days {days}: use one of {', '.join(map(str, ROI_METRICS))}")
    counts = funnel_counts(run)
    visitors = by_key(run.trends(VISITORS), ("visitors",))
    names = ordered_channels(counts)
    conversion, cac = per_channel(run, "first_order_conversion", names), per_channel(run, "cac", names)
    roi, spend = per_channel(run, ROI_METRICS[days], names), per_channel(run, "ad_spend", names)
    rows = []
    for channel in names:
        mine = counts[(channel,)]
        rows.append(ChannelRow(
            channel=channel, visitors=int(visitors.get((channel,), {}).get("visitors", 0)),
            leads=int(mine.get("leads", 0)), valid_leads=int(mine.get("valid_leads", 0)),
            trials_booked=int(mine.get("trials_booked", 0)), trials_attended=int(mine.get("trials_attended", 0)),
            first_orders=int(mine.get("first_orders", 0)),
            first_order_rate=ratio(conversion[channel], 100), revenue=round(mine.get("revenue", 0.0), 2),
            spend=round(float(spend[channel] or 0), 2),
            cost_per_lead=ratio(spend[channel] or None, mine.get("leads"), 2),
            cac=_rounded(cac[channel], 2), roi=_rounded(roi[channel], 6)))
    campaigns = [CampaignRow(channel=key[0], campaign=key[1], leads=int(v.get("leads", 0)),
                             valid_leads=int(v.get("valid_leads", 0)), trials_booked=int(v.get("trials_booked", 0)),
                             trials_attended=int(v.get("trials_attended", 0)),
                             first_orders=int(v.get("first_orders", 0)), revenue=round(v.get("revenue", 0.0), 2))
                 for key, v in sorted(by_key(run.trends(funnel_query([CHANNEL, CAMPAIGN])), COUNTS).items())]
    rated = [r for r in rows if r.first_order_rate is not None]
    paid = [r for r in rows if r.roi is not None]
    overall = run.trends(per_channel_query(ROI_METRICS[days])).series[0].aggregated_value
    return ChannelQuality(
        **run.frame(NAME), card=Card(value=overall, unit="ratio", label="packs.card.channel_quality"),
        roi_days=days, channels=rows, campaigns=campaigns,
        best_channel=max(rated, key=lambda r: r.first_order_rate or 0).channel if rated else None,
        best_roi_channel=max(paid, key=lambda r: r.roi or 0).channel if paid else None)


PACK = Pack(
    name=NAME, version=1, stage=Stage.acquisition, problem="1", headline=headline, uses_spend=True,
    needs=("lead_created", "lead_qualified", "trial_booked", "trial_attended", "order_paid", "page_view"),
    metrics=METRICS, reports=REPORTS,
    dashboards=(DashboardPart("board", "渠道质量 Channel quality",
                              ("funnel", "roi", "cac", "conversion", "spend", "visitors", "campaigns")),),
)
