"""Pack 9, renewal intent (续费意向), first part: the renewal rate (the catalogue's: students whose course ended in
the period and who paid a renewal / those whose course ended) overall and per course. The renewal propensity of
each student with its reasons comes with tags (a model tag), and is added to this pack then."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, by_key, ratio
from edupulse.packs.spec import MAX_SERIES, DashboardPart, Pack, ReportPart, Stage

NAME = "renewal"
RATE = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-90d"},
        "series": [{"metric": "renewal_rate"}]}
ORDERS = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-90d"},
          "series": [{"event": "order_paid", "filters": [{"property": "order_type", "op": "eq", "value": "renewal"}]},
                     {"event": "order_paid", "math": "sum", "property": "amount",
                      "filters": [{"property": "order_type", "op": "eq", "value": "renewal"}]}]}
COURSES = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-90d"},
           "series": [{"event": "course_enrolled", "math": "unique"}],
           "breakdown": {"properties": ["course_id"], "limit": 100}}
REPORTS = (
    ReportPart("rate", "续费率 Renewal rate", RATE),
    ReportPart("orders", "续费订单与金额 Renewal orders and amount", ORDERS),
)


class CourseRenewal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    course_id: str
    renewal_rate: float | None


class Renewal(Headline):
    renewal_rate: float | None
    courses: list[CourseRenewal]


def headline(run: PackRun) -> Renewal:
    rate = ratio(run.trends(RATE).series[0].aggregated_value, 100)
    courses = sorted(k[0] for k in by_key(run.trends(COURSES), ("enrolled",)))
    rows: list[CourseRenewal] = []
    for start in range(0, len(courses), MAX_SERIES):
        chunk = courses[start:start + MAX_SERIES]
        series: list[dict[str, Any]] = [{"metric": "renewal_rate", "name": c,
                                         "filters": [{"property": "course_id", "op": "eq", "value": c}]}
                                        for c in chunk]
        result = run.trends({**RATE, "series": series})
        rows += [CourseRenewal(course_id=c, renewal_rate=ratio(s.aggregated_value, 100))
                 for c, s in zip(chunk, result.series, strict=True)]
    return Renewal(**run.frame(NAME), card=Card(value=rate, unit="%", label="packs.card.renewal"),
                   renewal_rate=rate, courses=rows)


PACK = Pack(
    name=NAME, version=1, stage=Stage.repurchase, problem="9", headline=headline,
    needs=("lesson_scheduled", "course_enrolled", "order_paid"), reports=REPORTS,
    dashboards=(DashboardPart("board", "续费 Renewal", ("rate", "orders"), refresh_seconds=None, date_from="-90d"),),
)
