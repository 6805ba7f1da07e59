"""Pack 10, referral (转介绍): the referral rate (the catalogue's: new paying students who came with a referrer /
all new paying students), the conversion of referred sign-ups, and the top referrers (KOLs) by the number of
people who signed up with their `referrer_id`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, ratio
from edupulse.packs.spec import DashboardPart, MetricPart, Pack, ReportPart, Stage

NAME = "referral"
TOP = 10
FIRST = [{"property": "order_type", "op": "eq", "value": "first"}]
CONVERSION = MetricPart("referral_conversion", {
    "title": "转介绍转化率 referral conversion", "unit": "%", "scale": 100,
    "description": "Persons whose first referral_signup is in the period and who paid a first order "
                   "(order_paid, order_type first) at any time after it / those persons.",
    "cohort": {"event": "referral_signup", "first": True},
    "outcome": {"event": "order_paid", "filters": FIRST, "from_days": 0}, "ratio": "rate"})
RATES = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-90d"},
         "series": [{"metric": "referral_rate"}, {"metric": "referral_conversion"}]}
REFERRERS = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-90d"},
             "series": [{"event": "referral_signup", "math": "unique"}],
             "breakdown": {"properties": ["referrer_id"], "limit": 100}}
ACTIVITY = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-90d"},
            "series": [{"event": "referral_shared"}, {"event": "referral_signup"}]}
REPORTS = (
    ReportPart("rates", "转介绍率与转化率 Referral rate and conversion", RATES, width=12),
    ReportPart("referrers", "推荐人排行 Top referrers", REFERRERS, view={"chart": "bar"}),
    ReportPart("activity", "分享与注册 Shares and sign-ups", ACTIVITY),
)


class Referrer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    referrer_id: str
    referees: int


class Referral(Headline):
    referral_rate: float | None
    referral_conversion: float | None
    referred_signups: int
    top_referrers: list[Referrer]


def headline(run: PackRun) -> Referral:
    rate, conversion = (ratio(s.aggregated_value, 100) for s in run.trends(RATES).series)
    found = [(str(s.breakdown[0]), int(s.aggregated_value or 0)) for s in run.trends(REFERRERS).series
             if s.breakdown and s.breakdown[0] is not None and s.breakdown[0] != "$other"]
    ranked = sorted(found, key=lambda r: (-r[1], r[0]))
    return Referral(**run.frame(NAME), card=Card(value=rate, unit="%", label="packs.card.referral"),
                    referral_rate=rate, referral_conversion=conversion, referred_signups=sum(n for _, n in found),
                    top_referrers=[Referrer(referrer_id=r, referees=n) for r, n in ranked[:TOP]])


PACK = Pack(
    name=NAME, version=1, stage=Stage.repurchase, problem="10", headline=headline,
    needs=("referral_signup", "referral_shared", "order_paid"), metrics=(CONVERSION,), reports=REPORTS,
    dashboards=(DashboardPart("board", "转介绍 Referral", ("rates", "referrers", "activity"), refresh_seconds=None,
                              date_from="-90d"),),
)
