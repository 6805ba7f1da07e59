"""Pack 8, tiered supervision (分层督学), first part: the students at risk — three scheduled lessons of one class
missed in a row — from the built-in tag `missed_3_in_a_row` (edupulse.tags; the pack runs it when installed, the
scheduler every day), per class, with the persons to recall. Tiers beyond "at risk" and the measured effect of
recall (against a holdout) come with the journeys' recall actions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage
from edupulse.queries.person import PersonsResponse

NAME = "supervision"
TAG = "missed_3_in_a_row"
AT_RISK = [{"tag": TAG, "op": "is_set"}]
LIST_LIMIT = 100
BY_CLASS = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-30d"},
            "series": [{"event": "lesson_scheduled", "math": "unique", "filters": AT_RISK}],
            "breakdown": {"properties": [f"tag.{TAG}"], "limit": 100}}
PERSONS: dict[str, Any] = {"kind": "persons", "filters": AT_RISK, "limit": LIST_LIMIT}
ATTENDANCE = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-30d"},
              "series": [{"metric": "attendance_rate"}]}
REPORTS = (
    ReportPart("by_class", "各班连续缺课 3 次的学员 Students with 3 missed in a row, by class", BY_CLASS,
               view={"chart": "bar"}, width=12),
    ReportPart("attendance", "到课率 Attendance rate", ATTENDANCE),
)


class ClassRisk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    class_id: str
    students: int


class Supervision(Headline):
    tag_ready: bool  # the project has the tag (installing the pack sets it up and computes it)
    at_risk: int
    classes: list[ClassRisk]
    persons: list[int]  # the first LIST_LIMIT at-risk persons' ids (their pages have the timeline)


def headline(run: PackRun) -> Supervision:
    meta = run.service.metadata
    if meta is None or TAG not in meta.tags(run.project.id):  # the tags were never set up: install the pack
        return Supervision(**run.frame(NAME), card=Card(value=None, unit="count", label="packs.card.supervision"),
                           tag_ready=False, at_risk=0, classes=[], persons=[])
    found = run.service.run(run.project, PERSONS, now=run.now, scope=run.scope).result
    assert isinstance(found, PersonsResponse)
    classes = [ClassRisk(class_id=str(s.breakdown[0]), students=int(s.aggregated_value or 0))
               for s in run.trends(BY_CLASS).series if s.breakdown and s.breakdown[0] not in (None, "$other")]
    classes.sort(key=lambda c: (-c.students, c.class_id))
    return Supervision(**run.frame(NAME), card=Card(value=found.total, unit="count", label="packs.card.supervision"),
                       tag_ready=True, at_risk=found.total, classes=classes,
                       persons=[p.person_id for p in found.persons])


PACK = Pack(
    name=NAME, version=1, stage=Stage.learning, problem="8", headline=headline,
    needs=("lesson_scheduled", "lesson_attended"), reports=REPORTS, tags=(TAG,),
    dashboards=(DashboardPart("board", "分层督学 Tiered supervision", ("by_class", "attendance"),
                              refresh_seconds=None),),
)
