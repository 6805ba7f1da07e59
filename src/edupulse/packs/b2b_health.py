"""B2B customer health (seed 003): for an edu SaaS vendor, each customer institution's staff logins and
enrolments over the last 7 and 30 days of the period, a health score and a warning — the list a
customer-success manager works from each Monday.

Score (0-100) = 50 × staff activity of the last 7 days (staff login days / (staff × 5 working days), at most 1)
+ 20 × login days of the last 30 days / 22 (at most 1) + 30 × (1 + enrolment growth, from 0 to 1), where the
enrolment growth compares `student_enrolled` of the last 30 days with the 30 days before. Below 60: a warning
(the institution is listed as `declining`)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage

NAME = "b2b_health"
WARNING_BELOW = 60.0
INSTITUTION = "group.institution"
LOGINS = {"kind": "trends", "granularity": "day", "date_range": {"date_from": "-30d"},
          "series": [{"event": "staff_login", "math": "dau"}],
          "breakdown": {"properties": [INSTITUTION], "limit": 100}}
ENROLMENTS = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-60d"},
              "series": [{"event": "student_enrolled"}], "breakdown": {"properties": [INSTITUTION], "limit": 100}}
FACTS = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-30d"},
         "series": [{"event": "staff_login", "math": "unique"}],
         "breakdown": {"properties": [INSTITUTION, "group.institution.name", "group.institution.staff"], "limit": 100}}
REPORTS = (
    ReportPart("logins", "各机构员工每日登录人数 Staff logging in per institution and day", LOGINS, width=12),
    ReportPart("enrolments", "各机构每周招生 Enrolments per institution and week", ENROLMENTS, width=12),
)


class Institution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_id: str
    name: str | None
    staff: int | None
    login_days_7: int
    login_days_30: int
    staff_login_days_7: int
    staff_login_days_30: int
    enrolments_30: int
    enrolments_prev_30: int
    enrolment_growth: float | None
    score: float
    warning: bool


class B2BHealth(Headline):
    institutions: list[Institution]
    declining: list[str]


def _score(staff: int | None, staff_days_7: int, login_days_30: int, growth: float | None) -> float:
    activity = min(1.0, staff_days_7 / (5 * staff)) if staff else 0.0
    regular = min(1.0, login_days_30 / 22)
    growing = 1.0 if growth is None else max(0.0, min(1.0, 1.0 + growth))
    return round(100 * (0.5 * activity + 0.2 * regular + 0.3 * growing), 1)


def _enrolments(run: PackRun, start: dt.date, end: dt.date) -> dict[str, int]:
    result = run.trends({**ENROLMENTS, "granularity": "month"}, (start, end))
    return {str(s.breakdown[0]): int(s.aggregated_value or 0) for s in result.series
            if s.breakdown and s.breakdown[0] not in (None, "$other")}


def headline(run: PackRun) -> B2BHealth:
    end = run.end
    month = (end - dt.timedelta(days=29), end)
    logins = run.trends(LOGINS, month)
    week_from = len(logins.buckets) - 7
    last30 = _enrolments(run, *month)
    prev30 = _enrolments(run, end - dt.timedelta(days=59), end - dt.timedelta(days=30))
    facts: dict[str, tuple[str | None, int | None]] = {}
    for s in run.trends(FACTS, month).series:
        if s.breakdown and s.breakdown[0] not in (None, "$other"):
            staff = s.breakdown[2]
            facts[str(s.breakdown[0])] = (None if s.breakdown[1] is None else str(s.breakdown[1]),
                                          None if staff is None else int(float(str(staff))))
    rows = []
    for s in logins.series:
        if not s.breakdown or s.breakdown[0] in (None, "$other"):
            continue
        key = str(s.breakdown[0])
        days = [int(v or 0) for v in s.data]
        name, staff = facts.get(key, (None, None))
        now, before = last30.get(key, 0), prev30.get(key, 0)
        growth = round((now - before) / before, 3) if before else None
        week, login_days = days[week_from:], sum(1 for d in days if d)
        score = _score(staff, sum(week), login_days, growth)
        rows.append(Institution(institution_id=key, name=name, staff=staff,
                                login_days_7=sum(1 for d in week if d), login_days_30=login_days,
                                staff_login_days_7=sum(days[week_from:]), staff_login_days_30=sum(days),
                                enrolments_30=now, enrolments_prev_30=before, enrolment_growth=growth, score=score,
                                warning=score < WARNING_BELOW))
    rows.sort(key=lambda r: (r.score, r.institution_id))
    declining = [r.institution_id for r in rows if r.warning]
    return B2BHealth(**run.frame(NAME), card=Card(value=len(declining), unit="count", label="packs.card.b2b_health"),
                     institutions=rows, declining=declining)


PACK = Pack(
    name=NAME, version=1, stage=Stage.beyond, problem="b2b",
    headline=headline, needs=("staff_login", "student_enrolled"), reports=REPORTS,
    dashboards=(DashboardPart("board", "B2B 客户健康度 B2B customer health", ("logins", "enrolments"),
                              refresh_seconds=None, date_from="-60d"),),
)
