"""Pack 9, renewal intent (续费意向): the renewal rate (the catalogue's: students whose course ended in the period
and who paid a renewal / those whose course ended) overall, per course and, after the fact, per tier of the
built-in model tag `renewal_propensity`; and the students whose course ends in the next 30 days with their
renewal propensity (tier, score and reasons).

When a course ends for a student: at the start of the last lesson of that course scheduled for them when the
schedule is known ahead; else it is estimated — a course has as many lessons as the most any student had
scheduled in it, and the lessons still to come follow at the student's average interval so far."""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, by_key, masked_people, ratio
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage
from edupulse.packs.tagged import scorer, values_by_person, why_none
from edupulse.queries.results import Masker

NAME = "renewal"
TAG = "renewal_propensity"
TIERS = ("high", "medium", "low")
SOON_DAYS = 30
LIST_LIMIT = 200
# A lesson scheduled again (moved) is one lesson: counted by its lesson_id (by its start where it has none).
COURSE_LESSONS = """WITH per_student AS (
  SELECT person_id, prop_course_id AS course,
    count(DISTINCT coalesce(prop_lesson_id, CAST(prop_starts_at AS VARCHAR))) AS scheduled,
    min(prop_starts_at) AS first_start, max(prop_starts_at) AS last_start FROM events
  WHERE event = 'lesson_scheduled' AND prop_course_id IS NOT NULL AND prop_starts_at IS NOT NULL
  GROUP BY person_id, prop_course_id),
lengths AS (SELECT course, max(scheduled) AS lessons FROM per_student GROUP BY course)
SELECT s.person_id, s.course, s.scheduled, g.lessons, s.first_start, s.last_start
FROM per_student AS s JOIN lengths AS g ON g.course = s.course ORDER BY s.person_id, s.course"""
BY_TIER = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-90d"},
           "series": [{"metric": "renewal_rate", "name": t, "filters": [{"tag": TAG, "op": "eq", "value": t}]}
                      for t in TIERS]}
BREAKDOWN_LIMIT = 100  # the most values a breakdown shows before "$other"
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
    ReportPart("by_tier", "各续费意向层级的续费率 Renewal rate by renewal propensity tier", BY_TIER,
               view={"chart": "bar"}),
    ReportPart("lessons", "学员课程进度（排课） Course progress per student (lessons scheduled)",
               {"kind": "sql", "sql": COURSE_LESSONS}, width=12),
)


class CourseRenewal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    course_id: str
    renewal_rate: float | None


class TierRenewal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: str
    renewal_rate: float | None


class Ending(BaseModel):
    """A student whose course ends in the next SOON_DAYS days, with their renewal propensity."""

    model_config = ConfigDict(extra="forbid")
    person_id: int
    identities: dict[str, list[str]]
    course_id: str
    lessons_scheduled: int
    lessons: int  # of the course
    ends_at: str
    estimated: bool  # the end is estimated (the remaining lessons are not scheduled yet)
    tier: str | None
    score: float | None
    reasons: list[str]
    reasons_zh: list[str]


class Renewal(Headline):
    renewal_rate: float | None
    courses: list[CourseRenewal]
    tag_ready: bool  # the renewal propensity model is published
    model_error: str | None
    by_tier: list[TierRenewal]
    ending_soon: int
    ending: list[Ending]  # the first LIST_LIMIT, soonest first

    def masked(self, masker: Masker) -> Self:
        """The listed persons' personal identities (a mobile number) masked, in the same order."""
        return self.model_copy(update={"ending": masked_people(self.ending, masker)})


def headline(run: PackRun) -> Renewal:
    rate = ratio(run.trends(RATE).series[0].aggregated_value, 100)
    courses = sorted(k[0] for k in by_key(run.trends(COURSES), ("enrolled",)))
    rows: list[CourseRenewal] = []
    for start in range(0, len(courses), BREAKDOWN_LIMIT):
        # the rate broken down by course: one statement for up to BREAKDOWN_LIMIT courses
        chunk = courses[start:start + BREAKDOWN_LIMIT]
        series: list[dict[str, Any]] = [{"metric": "renewal_rate",
                                         "filters": [{"property": "course_id", "op": "in", "value": chunk}]}]
        result = run.trends({**RATE, "series": series,
                             "breakdown": {"properties": ["course_id"], "limit": len(chunk)}})
        found = {str(s.breakdown[0]): s.aggregated_value for s in result.series if s.breakdown}
        rows += [CourseRenewal(course_id=c, renewal_rate=ratio(found.get(c), 100)) for c in chunk]
    scores = values_by_person(run, TAG)
    by_tier = [TierRenewal(tier=t, renewal_rate=ratio(s.aggregated_value, 100))
               for t, s in zip(TIERS, run.trends(BY_TIER).series, strict=True)] if scores else \
        [TierRenewal(tier=t, renewal_rate=None) for t in TIERS]
    ending = _ending(run)
    assert run.tags is not None
    shown = ending[:LIST_LIMIT]
    identities = run.tags.identities(run.project, [e[0] for e in shown])
    scored = scorer(run, TAG)
    listed = []
    for person, course, scheduled, lessons, ends, estimated in shown:
        score = scored(scores.get(person))
        listed.append(Ending(person_id=person, identities=identities.get(person, {}), course_id=course,
                             lessons_scheduled=scheduled, lessons=lessons, ends_at=ends.isoformat(),
                             estimated=estimated,
                             tier=score.tier if score else None, score=score.score if score else None,
                             reasons=score.reasons if score else [],
                             reasons_zh=score.reasons_zh if score else []))
    return Renewal(**run.frame(NAME), card=Card(value=rate, unit="%", label="packs.card.renewal"),
                   renewal_rate=rate, courses=rows, tag_ready=bool(scores),
                   model_error=None if scores else why_none(run, TAG), by_tier=by_tier, ending_soon=len(ending),
                   ending=listed)


def _moment(value: Any) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def course_end(scheduled: int, lessons: int, first: dt.datetime, last: dt.datetime) -> tuple[dt.datetime, bool]:
    """When a student's course ends (see the module's docstring) and whether that is an estimate."""
    if scheduled >= lessons:
        return last, False
    step = (last - first) / (scheduled - 1) if scheduled > 1 else dt.timedelta(days=7)
    return last + step * (lessons - scheduled), True


def _ending(run: PackRun) -> list[tuple[int, str, int, int, dt.datetime, bool]]:
    """(person, course, lessons scheduled, lessons, end, estimated) of the courses ending in the next SOON_DAYS
    days after the period's end (or now, if earlier), soonest first."""
    rows = run.service.run(run.project, {"kind": "sql", "sql": COURSE_LESSONS}, now=run.now,
                           scope=run.scope).result.rows
    now = min(run.now or dt.datetime.now(dt.UTC), run.bounds()[1])
    until = now + dt.timedelta(days=SOON_DAYS)
    found = []
    for person, course, scheduled, lessons, first, last in rows:
        ends, estimated = course_end(int(scheduled), int(lessons), _moment(first), _moment(last))
        if now < ends <= until:
            found.append((int(person), str(course), int(scheduled), int(lessons), ends, estimated))
    found.sort(key=lambda e: (e[4], e[0], e[1]))
    return found


PACK = Pack(
    name=NAME, version=3, stage=Stage.repurchase, problem="9", headline=headline,
    needs=("lesson_scheduled", "course_enrolled", "order_paid"), reports=REPORTS, tags=(TAG,),
    dashboards=(DashboardPart("board", "续费 Renewal", ("rate", "orders", "by_tier", "lessons"), refresh_seconds=None,
                              date_from="-90d"),),
)
