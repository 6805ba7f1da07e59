"""B2B customer health (seed 003): for an edu SaaS vendor, each customer institution's staff logins and
enrolments over the last 7 and 30 days of the period, a health score and a warning — the list a
customer-success manager works from each Monday.

Score (0-100) = 50 × staff activity of the last 7 days (staff login days / (staff × 5 working days), at most 1)
+ 20 × login days of the last 30 days / 22 (at most 1) + 30 × (1 + enrolment growth, from 0 to 1), where the
enrolment growth compares `student_enrolled` of the last 30 days with the 30 days before. Below 60: a warning
(the institution is listed as `declining`).

Every institution with a staff login or an enrolment in the last 60 days is listed, so one whose staff stopped
logging in a month ago scores 0 on activity instead of dropping off the list. Without the institution's `staff`
property, its staff are those who logged in during the last 30 days (`staff_estimated`), rather than none (which
would flag every such institution)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, whole_number
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage

NAME = "b2b_health"
WARNING_BELOW = 60.0
INSTITUTION = "group.institution"
LOGINS = {"kind": "trends", "granularity": "day", "date_range": {"date_from": "-29d"},
          "series": [{"event": "staff_login", "math": "dau"}],
          "breakdown": {"properties": [INSTITUTION], "limit": 100}}
ENROLMENTS = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-59d"},
              "series": [{"event": "student_enrolled"}], "breakdown": {"properties": [INSTITUTION], "limit": 100}}
FACTS = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-29d"},
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
    staff_estimated: bool  # no `staff` property: the staff who logged in during the last 30 days
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


def _facts(run: PackRun, start: dt.date, end: dt.date) -> dict[str, tuple[str | None, int | None, int]]:
    """Per institution with a staff login in those days: its name, its `staff` property and the staff who logged
    in."""
    out: dict[str, tuple[str | None, int | None, int]] = {}
    for s in run.trends(FACTS, (start, end)).series:
        if s.breakdown and s.breakdown[0] not in (None, "$other"):
            name, staff = s.breakdown[1], s.breakdown[2]
            out[str(s.breakdown[0])] = (None if name is None else str(name),
                                        whole_number(staff), int(s.aggregated_value or 0))
    return out


def headline(run: PackRun) -> B2BHealth:
    end = run.end
    month = (end - dt.timedelta(days=29), end)
    logins = run.trends(LOGINS, month)
    week_from = len(logins.buckets) - 7
    last30 = _enrolments(run, *month)
    prev30 = _enrolments(run, end - dt.timedelta(days=59), end - dt.timedelta(days=30))
    facts, earlier = _facts(run, *month), _facts(run, end - dt.timedelta(days=59), end - dt.timedelta(days=30))
    daily = {str(s.breakdown[0]): [int(v or 0) for v in s.data] for s in logins.series
             if s.breakdown and s.breakdown[0] not in (None, "$other")}
    rows = []
    for key in sorted({*daily, *earlier, *last30, *prev30}):
        days = daily.get(key, [0] * len(logins.buckets))
        name, staff, active = facts.get(key) or (*earlier.get(key, (None, None, 0))[:2], 0)
        estimated = staff is None and active > 0
        now, before = last30.get(key, 0), prev30.get(key, 0)
        growth = round((now - before) / before, 3) if before else None
        week, login_days = days[week_from:], sum(1 for d in days if d)
        score = _score(active if estimated else staff, sum(week), login_days, growth)
        rows.append(Institution(institution_id=key, name=name, staff=active if estimated else staff,
                                staff_estimated=estimated,
                                login_days_7=sum(1 for d in week if d), login_days_30=login_days,
                                staff_login_days_7=sum(days[week_from:]), staff_login_days_30=sum(days),
                                enrolments_30=now, enrolments_prev_30=before, enrolment_growth=growth, score=score,
                                warning=score < WARNING_BELOW))
    rows.sort(key=lambda r: (r.score, r.institution_id))
    declining = [r.institution_id for r in rows if r.warning]
    return B2BHealth(**run.frame(NAME), card=Card(value=len(declining), unit="count", label="packs.card.b2b_health"),
                     institutions=rows, declining=declining)


PACK = Pack(
    name=NAME, version=2, stage=Stage.beyond, problem="b2b",
    headline=headline, needs=("staff_login", "student_enrolled"), reports=REPORTS,
    dashboards=(DashboardPart("board", "B2B 客户健康度 B2B customer health", ("logins", "enrolments"),
                              refresh_seconds=None, date_from="-59d"),),
)
