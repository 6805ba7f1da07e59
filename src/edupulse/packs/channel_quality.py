"""Pack 1, channel quality (渠道质量): per channel and campaign, visitors, leads, valid leads, trials booked and
attended, first orders, revenue, ad spend, cost per lead, CAC and ROI within N days, side by side.

Counts are trends series broken down by the person's `channel` and `campaign`, visitors by the `utm_source`
of their page views; first-order conversion, CAC and ROI are the catalogue's metrics broken down by `channel`
(and `campaign`): the channel and campaign of a person's first lead; ad spend the pack's `ad_spend` metric (the
spend table by channel and campaign; spend imported without a campaign shows as no campaign). Each breakdown
is one statement whatever the number of channels. The headline runs the same queries as the reports the pack
installs, so the dashboard shows the same numbers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackError, PackRun, by_key, ratio
from edupulse.packs.spec import DashboardPart, MetricPart, Pack, ReportPart, Stage
from edupulse.queries.trends import TrendsResponse

NAME = "channel_quality"
CHANNEL = "person.channel"
CAMPAIGN = "person.campaign"
BY_CHANNEL = ["channel"]  # the metrics' breakdown: the channel (and campaign) of each person's first lead
BY_CAMPAIGN = ["channel", "campaign"]
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
    return {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-29d"},
            "series": [series for _, series in FUNNEL],
            "breakdown": {"properties": breakdown, "limit": 100}}


VISITORS = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-29d"},
            "series": [{"event": "page_view", "math": "unique"}],
            "breakdown": {"properties": ["utm_source"], "limit": 100}}


def per_channel_query(metric: str) -> dict[str, Any]:
    """The whole project's value of a metric (over the period)."""
    return {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-29d"},
            "series": [{"metric": metric}]}


def metrics_query(metrics: list[str], breakdown: list[str]) -> dict[str, Any]:
    """Catalogue metrics per channel (or channel and campaign), each in one statement."""
    return {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-29d"},
            "series": [{"metric": m} for m in metrics], "breakdown": {"properties": breakdown, "limit": 100}}


def money_metrics(days: int) -> list[str]:
    return ["first_order_conversion", "cac", ROI_METRICS[days], "ad_spend"]


REPORTS = (
    ReportPart("funnel", "渠道质量：线索到首单 Channel quality: leads to first orders", funnel_query([CHANNEL]),
               view={"chart": "bar"}, width=12),
    ReportPart("roi", "各渠道 ROI ROI by channel", metrics_query(["roi"], BY_CHANNEL), view={"chart": "bar"}),
    ReportPart("cac", "各渠道获客成本 CAC by channel", metrics_query(["cac"], BY_CHANNEL), view={"chart": "bar"}),
    ReportPart("conversion", "各渠道首单转化率 First-order conversion by channel",
               metrics_query(["first_order_conversion"], BY_CHANNEL), view={"chart": "bar"}),
    ReportPart("spend", "各渠道广告花费 Ad spend by channel", metrics_query(["ad_spend"], BY_CHANNEL),
               view={"chart": "bar"}),
    ReportPart("visitors", "访客（按来源） Visitors by source", VISITORS, view={"chart": "bar"}),
    ReportPart("campaigns", "渠道与计划 Channels and campaigns", funnel_query([CHANNEL, CAMPAIGN]),
               view={"chart": "bar"}),
    ReportPart("campaign_money", "各计划花费、获客成本与 ROI Spend, CAC and ROI by campaign",
               metrics_query(money_metrics(365), BY_CAMPAIGN), view={"chart": "bar"}, width=12),
)


class ChannelRow(BaseModel):
    """One channel; rates are shares (0.25 = 25 %), money in the currency of the data."""

    model_config = ConfigDict(extra="forbid")
    channel: str
    visitors: int
    leads: int
    valid_leads: int | None  # None when the project never sent lead_qualified: unknown, not 0
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
    """One campaign of a channel (`campaign` null: leads or spend without a campaign)."""

    model_config = ConfigDict(extra="forbid")
    channel: str
    campaign: str | None
    leads: int
    valid_leads: int | None
    trials_booked: int
    trials_attended: int
    first_orders: int
    first_order_rate: float | None
    revenue: float
    spend: float
    cost_per_lead: float | None
    cac: float | None
    roi: float | None


class ChannelQuality(Headline):
    roi_days: int
    channels: list[ChannelRow]
    campaigns: list[CampaignRow]
    best_channel: str | None
    best_roi_channel: str | None


COUNTS = tuple(name for name, _ in FUNNEL)
MONEY = ("first_order_rate", "cac", "roi", "spend")
Money = dict[tuple[str | None, ...], dict[str, float | None]]


def channels_of(run: PackRun) -> list[str]:
    """The channels of the period's leads, most leads first."""
    return ordered_channels(funnel_counts(run))


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def funnel_counts(run: PackRun) -> dict[tuple[str, ...], dict[str, float]]:
    """Leads, valid leads, trials, first orders and revenue per channel in the run's period."""
    return by_key(run.trends(funnel_query([CHANNEL])), COUNTS)


def _channel_counts(campaigns: dict[tuple[str, ...], dict[str, float]],
                    run: PackRun) -> dict[tuple[str, ...], dict[str, float]]:
    """Per channel, the sums of its campaigns' counts: a person has one channel and one campaign, so the
    distinct persons of a channel are those of its campaigns. When campaigns were cut at the breakdown's limit
    (an $other row), the channels are asked for on their own."""
    if any("$other" in key for key in campaigns):
        return funnel_counts(run)
    out: dict[tuple[str, ...], dict[str, float]] = {}
    for key, values in campaigns.items():
        mine = out.setdefault(key[:1], {})
        for name, value in values.items():
            mine[name] = mine.get(name, 0.0) + value
    return out


def ordered_channels(counts: dict[tuple[str, ...], dict[str, float]]) -> list[str]:
    """The channels, most leads first."""
    return sorted((key[0] for key in counts), key=lambda c: (-counts[(c,)].get("leads", 0), c))


def _money(result: TrendsResponse) -> Money:
    """Per breakdown key (null: none), the money metrics of `money_metrics` in their order."""
    out: Money = {}
    for series in result.series:
        key = tuple(None if v is None else str(v) for v in series.breakdown or [])
        value = series.aggregated_value
        out.setdefault(key, {})[MONEY[series.index]] = None if value is None else float(value)
    return out


def _campaign_counts(run: PackRun) -> dict[tuple[str, ...], dict[str, float]]:
    """Funnel counts per channel and campaign ($none: no campaign), $other rows kept (they mark a cut)."""
    out: dict[tuple[str, ...], dict[str, float]] = {}
    for series in run.trends(funnel_query([CHANNEL, CAMPAIGN])).series:
        values = series.breakdown or []
        if not values or values[0] is None:
            continue
        key = (str(values[0]), "$none" if values[1] is None else str(values[1]))
        out.setdefault(key, {})[COUNTS[series.index]] = float(series.aggregated_value or 0)
    return out


def _valid(counts: dict[str, float], qualified: bool) -> int | None:
    return int(counts.get("valid_leads", 0)) if qualified else None


def _campaign_rows(counts: dict[tuple[str, ...], dict[str, float]], money: Money,
                   qualified: bool = True) -> list[CampaignRow]:
    keys = {k for k in counts if "$other" not in k} | {
        (str(k[0]), "$none" if k[1] is None else str(k[1])) for k in money if k and k[0] is not None
        and "$other" not in k}
    rows = []
    for channel, campaign in sorted(keys):
        mine = counts.get((channel, campaign), {})
        paid = money.get((channel, None if campaign == "$none" else campaign), {})
        spend = float(paid.get("spend") or 0)
        rows.append(CampaignRow(
            channel=channel, campaign=None if campaign == "$none" else campaign,
            leads=int(mine.get("leads", 0)), valid_leads=_valid(mine, qualified),
            trials_booked=int(mine.get("trials_booked", 0)), trials_attended=int(mine.get("trials_attended", 0)),
            first_orders=int(mine.get("first_orders", 0)), first_order_rate=ratio(paid.get("first_order_rate"), 100),
            revenue=round(mine.get("revenue", 0.0), 2), spend=round(spend, 2),
            cost_per_lead=ratio(spend or None, mine.get("leads"), 2), cac=_rounded(paid.get("cac"), 2),
            roi=_rounded(paid.get("roi"), 6)))
    return rows


def headline(run: PackRun) -> ChannelQuality:
    days = int(run.params.get("roi_days", 365))
    if days not in ROI_METRICS:
        raise PackError(f"roi_days {days}: use one of {', '.join(map(str, ROI_METRICS))}")
    campaigns = _campaign_counts(run)
    counts = _channel_counts(campaigns, run)
    visitors = by_key(run.trends(VISITORS), ("visitors",))
    money = _money(run.trends(metrics_query(money_metrics(days), BY_CHANNEL)))
    names = ordered_channels(counts)
    qualified = "lead_qualified" not in run.missing
    rows = []
    for channel in names:
        mine, cost = counts[(channel,)], money.get((channel,), {})
        spend = float(cost.get("spend") or 0)
        rows.append(ChannelRow(
            channel=channel, visitors=int(visitors.get((channel,), {}).get("visitors", 0)),
            leads=int(mine.get("leads", 0)), valid_leads=_valid(mine, qualified),
            trials_booked=int(mine.get("trials_booked", 0)), trials_attended=int(mine.get("trials_attended", 0)),
            first_orders=int(mine.get("first_orders", 0)),
            first_order_rate=ratio(cost.get("first_order_rate"), 100), revenue=round(mine.get("revenue", 0.0), 2),
            spend=round(spend, 2), cost_per_lead=ratio(spend or None, mine.get("leads"), 2),
            cac=_rounded(cost.get("cac"), 2), roi=_rounded(cost.get("roi"), 6)))
    by_campaign = _money(run.trends(metrics_query(money_metrics(days), BY_CAMPAIGN)))
    rated = [r for r in rows if r.first_order_rate is not None]
    paid = [r for r in rows if r.roi is not None]
    overall = run.trends(per_channel_query(ROI_METRICS[days])).series[0].aggregated_value
    return ChannelQuality(
        **run.frame(NAME), card=Card(value=overall, unit="ratio", label="packs.card.channel_quality"),
        roi_days=days, channels=rows, campaigns=_campaign_rows(campaigns, by_campaign, qualified),
        best_channel=max(rated, key=lambda r: r.first_order_rate or 0).channel if rated else None,
        best_roi_channel=max(paid, key=lambda r: r.roi or 0).channel if paid else None)


PACK = Pack(
    name=NAME, version=3, stage=Stage.acquisition, problem="1", headline=headline, uses_spend=True,
    needs=("lead_created", "lead_qualified", "trial_booked", "trial_attended", "order_paid", "page_view"),
    metrics=METRICS, reports=REPORTS,
    dashboards=(DashboardPart("board", "渠道质量 Channel quality",
                              ("funnel", "roi", "cac", "conversion", "spend", "visitors", "campaigns",
                               "campaign_money")),),
)
