"""Pack 4, one person across sources (一人一档), first part: how many persons One-ID links across the sources of
an education organization — the CRM (lead events), WeCom / WeChat (`wechat_added`), the app (`trial_attended`,
`page_view` with `platform` app) and learning (enrolments, lessons, quizzes, homework) — as the persons seen in
1, 2, 3 and all 4 of them in the period. The person page (`/people/<id>`) shows each person's timeline.

The counts are a SQL report (the `sql` analysis over the documented `events` view, whose `person_id` is the
person after merges), the same public part an analyst writes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, ratio
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage
from edupulse.queries.common import local_midnight

NAME = "one_person"
SOURCES = {
    "crm": ("lead_created", "lead_assigned", "lead_qualified", "call_connected", "trial_booked"),
    "wecom": ("wechat_added",),
    "app": ("trial_attended",),
    "learning": ("course_enrolled", "lesson_attended", "lesson_completed", "quiz_answered", "homework_submitted"),
}


def _flag(events: tuple[str, ...], also: str = "") -> str:
    names = ", ".join(f"'{e}'" for e in events)
    return f"max(CASE WHEN event IN ({names}){also} THEN 1 ELSE 0 END)"


def coverage_sql(where: str = "") -> str:
    """Persons per number of sources they were seen in (0 left out)."""
    app = " OR (event = 'page_view' AND prop_platform = 'app')"
    flags = "\n    + ".join(_flag(events, app if source == "app" else "") for source, events in SOURCES.items())
    return (f"SELECT sources, count(*) AS persons FROM (\n  SELECT person_id,\n    {flags} AS sources\n"
            f"  FROM events{where} GROUP BY person_id) AS per_person\n"
            "WHERE sources > 0 GROUP BY sources ORDER BY sources")


COVERAGE = {"kind": "sql", "sql": coverage_sql()}
REPORTS = (ReportPart("coverage", "跨来源打通的人（全部时间） Persons by number of linked sources (all time)", COVERAGE,
                      width=12),)


class Coverage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: int
    persons: int
    share: float | None


class OnePerson(Headline):
    persons: int
    linked_2_or_more: int
    coverage: list[Coverage]


def _between(run: PackRun) -> str:
    tz = ZoneInfo(run.project.timezone)
    low, high = local_midnight(run.start, tz), local_midnight(run.end + dt.timedelta(days=1), tz)
    return f" WHERE time >= '{low.isoformat()}' AND time < '{high.isoformat()}'"


def headline(run: PackRun) -> OnePerson:
    result = run.service.run(run.project, {"kind": "sql", "sql": coverage_sql(_between(run))}, now=run.now,
                             scope=run.scope).result
    counts = {int(row[0]): int(row[1]) for row in result.rows}
    total = sum(counts.values())
    rows = [Coverage(sources=n, persons=counts.get(n, 0), share=ratio(counts.get(n, 0), total)) for n in (1, 2, 3, 4)]
    linked = sum(c.persons for c in rows if c.sources >= 2)
    return OnePerson(**run.frame(NAME), card=Card(value=ratio(linked, total), unit="%", label="packs.card.one_person"),
                     persons=total, linked_2_or_more=linked, coverage=rows)


PACK = Pack(
    name=NAME, version=1, stage=Stage.conversion, problem="4", headline=headline,
    needs=("lead_created", "wechat_added", "trial_attended", "lesson_attended"), reports=REPORTS,
    dashboards=(DashboardPart("board", "一人一档 One person across sources", ("coverage",), refresh_seconds=None,
                              date_from=None),),
)
