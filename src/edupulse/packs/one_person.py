"""Pack 4, one person across sources (一人一档): how many persons One-ID links across the sources of an education
organization — the CRM (lead events), WeCom / WeChat (`wechat_added`), the app (`trial_attended`, `page_view`
with `platform` app or school_app) and learning (enrolments, lessons, quizzes, homework) — as the persons seen
in 1, 2, 3 and all 4 of them in the period, and per source. The person page (`/people/<id>`) shows each
person's timeline with the source of each event (queries/sources.py, the same lists).

The counts are a SQL report (the `sql` analysis over the documented `events` view, whose `person_id` is the
person after merges), the same public part an analyst writes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, period_condition, ratio
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage
from edupulse.queries.sources import APP_PLATFORMS, LINKED

NAME = "one_person"
SOURCES = LINKED


def _flag(events: tuple[str, ...], also: str = "") -> str:
    names = ", ".join(f"'{e}'" for e in events)
    return f"max(CASE WHEN event IN ({names}){also} THEN 1 ELSE 0 END)"


def coverage_sql(where: str = "") -> str:
    """Persons per number of sources they were seen in (0 left out), with how many of them each source saw."""
    platforms = ", ".join(f"'{p}'" for p in APP_PLATFORMS)
    app = f" OR (event = 'page_view' AND prop_platform IN ({platforms}))"
    flags = ",\n    ".join(f"{_flag(events, app if source == 'app' else '')} AS {source}"
                           for source, events in SOURCES.items())
    # the per-person flags named with their table: on ClickHouse an unqualified `crm` would be the alias of
    # sum(crm) below, an aggregate inside WHERE and GROUP BY
    total = " + ".join(f"per_person.{source}" for source in SOURCES)
    sums = ", ".join(f"sum(per_person.{source}) AS {source}" for source in SOURCES)
    return (f"SELECT {total} AS sources, count(*) AS persons, {sums} FROM (\n  SELECT person_id,\n    {flags}\n"
            f"  FROM events{where} GROUP BY person_id) AS per_person\n"
            f"WHERE {total} > 0 GROUP BY {total} ORDER BY sources")


COVERAGE = {"kind": "sql", "sql": coverage_sql()}
REPORTS = (ReportPart("coverage", "跨来源打通的人（全部时间） Persons by number of linked sources (all time)", COVERAGE,
                      width=12),)


class Coverage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: int
    persons: int
    share: float | None


class SourceCoverage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str  # crm, wecom, app, learning
    persons: int  # seen in this source
    share: float | None  # of all persons seen in any
    linked: int  # of them, also seen in another source


class OnePerson(Headline):
    persons: int
    linked_2_or_more: int
    coverage: list[Coverage]
    by_source: list[SourceCoverage]


def headline(run: PackRun) -> OnePerson:
    result = run.service.run(run.project, {"kind": "sql", "sql": coverage_sql(period_condition(run))}, now=run.now,
                             scope=run.scope).result
    found = {int(row[0]): [int(v or 0) for v in row[1:]] for row in result.rows}
    counts = {n: values[0] for n, values in found.items()}
    total = sum(counts.values())
    rows = [Coverage(sources=n, persons=counts.get(n, 0), share=ratio(counts.get(n, 0), total)) for n in (1, 2, 3, 4)]
    linked = sum(c.persons for c in rows if c.sources >= 2)
    by_source = []
    for i, source in enumerate(SOURCES, start=1):
        seen = sum(values[i] for values in found.values())
        alone = found.get(1, [0] * (len(SOURCES) + 1))[i]
        by_source.append(SourceCoverage(source=source, persons=seen, share=ratio(seen, total), linked=seen - alone))
    return OnePerson(**run.frame(NAME), card=Card(value=ratio(linked, total), unit="%", label="packs.card.one_person"),
                     persons=total, linked_2_or_more=linked, coverage=rows, by_source=by_source)


PACK = Pack(
    name=NAME, version=3, stage=Stage.conversion, problem="4", headline=headline,
    needs=("lead_created", "wechat_added", "trial_attended", "lesson_attended"), reports=REPORTS,
    dashboards=(DashboardPart("board", "一人一档 One person across sources", ("coverage",), refresh_seconds=None,
                              date_from=None),),
)
