"""Pack 8, tiered supervision (分层督学): students by tier — steady, slipping, at risk, churned — from a
custom-tiers tag the pack installs (`supervision_tier`, defined in docs/packs.md and below), the students who
missed three scheduled lessons of one class in a row (the built-in tag `missed_3_in_a_row`) with whether each
came back (attended a lesson after the third missed one), and the recall journey (the automated SOP "recall
after 3 missed lessons in a row", a task for an advisor) with its measured effect: came back within 14 days,
treatment against the journey's holdout.

The tiers (first match wins; "current" students had a lesson start in the last 30 days; a scheduled lesson counts
by its `starts_at`, once it has started, however early its `lesson_scheduled` was sent):
- churned: a lesson that started in the last 14 days and no `lesson_attended` in the last 14 days;
- at_risk: current, and missed 3 in a row with at most 1 lesson attended in the last 14 days, or
  `dropout_risk` high;
- slipping: current, and missed 3 in a row once (came back since), or `dropout_risk` medium, or at most 2
  lessons attended in the last 14 days out of at least 4 scheduled;
- steady: every other current student.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from edupulse.packs.automated_sops import SOPS
from edupulse.packs.headline import Card, Headline, PackRun, masked_people, ratio
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage, TagPart
from edupulse.packs.tagged import values_by_person
from edupulse.queries.results import Masker
from edupulse.tags.run import TagValue

NAME = "supervision"
TAG = "missed_3_in_a_row"
TIER_TAG = "supervision_tier"
TIERS = ("steady", "slipping", "at_risk", "churned")
LIST_LIMIT = 100
RECALL = next(p for p in SOPS if p.key == "recall_missed_3")


def _did(event: str, days: int, at_least: int | None = None, at_most: int | None = None) -> dict[str, Any]:
    """The event in the last `days` days; a scheduled lesson by when it starts (a schedule sent ahead counts a
    lesson once it has started, not when it was sent)."""
    found: dict[str, Any] = {"event": event, "window": {"last_days": days}}
    if event == "lesson_scheduled":
        found["time"] = "starts_at"
    if at_least is not None:
        found["at_least"] = at_least
    if at_most is not None:
        found["at_most"] = at_most
    return found


CURRENT = _did("lesson_scheduled", 30, at_least=1)
MISSED = {"tag": TAG, "op": "is_set"}
TIER_DEFINITION = {
    "name": TIER_TAG, "value_type": "string", "owner": "EduPulse",
    "description": "Supervision tier: steady, slipping, at_risk or churned, from lessons scheduled and attended "
                   "in the last 14 / 30 days, missed_3_in_a_row and dropout_risk (see docs/packs.md)",
    "definition": {"type": "custom_tiers", "tiers": [
        {"name": "churned", "condition": {"and": [_did("lesson_scheduled", 14, at_least=1),
                                                  _did("lesson_attended", 14, at_most=0)]}},
        {"name": "at_risk", "condition": {"and": [CURRENT, {"or": [
            {"and": [MISSED, _did("lesson_attended", 14, at_most=1)]},
            {"tag": "dropout_risk", "op": "eq", "value": "high"}]}]}},
        {"name": "slipping", "condition": {"and": [CURRENT, {"or": [
            MISSED, {"tag": "dropout_risk", "op": "eq", "value": "medium"},
            {"and": [_did("lesson_attended", 14, at_most=2), _did("lesson_scheduled", 14, at_least=4)]}]}]}},
        {"name": "steady", "condition": CURRENT}]}}
AT_RISK = [MISSED]
BY_CLASS = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-29d"},
            "series": [{"event": "lesson_scheduled", "math": "unique", "filters": AT_RISK}],
            "breakdown": {"properties": [f"tag.{TAG}"], "limit": 100}}
BY_TIER = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-29d"},
           "series": [{"event": "lesson_scheduled", "math": "unique"}],
           "breakdown": {"properties": [f"tag.{TIER_TAG}"], "limit": 10}}
ATTENDANCE = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-29d"},
              "series": [{"metric": "attendance_rate"}]}
REPORTS = (
    ReportPart("by_tier", "各督学层级的学员 Students by supervision tier", BY_TIER, view={"chart": "bar"}),
    ReportPart("by_class", "各班连续缺课 3 次的学员 Students with 3 missed in a row, by class", BY_CLASS,
               view={"chart": "bar"}, width=12),
    ReportPart("attendance", "到课率 Attendance rate", ATTENDANCE),
)


def attended_sql(persons: list[int], per_class: bool) -> str:
    """The last lesson attended by each of these persons (in each class, when lessons carry their class)."""
    ids = ", ".join(str(int(p)) for p in persons) or "NULL"
    klass = "group_class" if per_class else "''"
    return (f"SELECT person_id, {klass} AS class_id, max(time) AS last_attended FROM events "
            f"WHERE event = 'lesson_attended' AND person_id IN ({ids}) GROUP BY person_id, {klass}")


class ClassRisk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    class_id: str
    students: int


class TierCount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: str
    students: int


class MissedStudent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: int
    identities: dict[str, list[str]]
    class_id: str | None
    third_missed_at: str | None  # when the third missed lesson started
    came_back: bool  # attended a lesson after it
    tier: str | None


class RecallEffect(BaseModel):
    """The recall journey's result: came back (its goal, a lesson attended within 14 days) per arm."""

    model_config = ConfigDict(extra="forbid")
    journey_id: int
    status: str
    treated: int
    treated_came_back: int
    holdout: int
    holdout_came_back: int
    uplift: float | None
    ci: list[float] | None
    p_value: float | None


class Supervision(Headline):
    tag_ready: bool  # the project has the tag (installing the pack sets it up and computes it)
    at_risk: int
    came_back: int
    came_back_rate: float | None
    classes: list[ClassRisk]
    persons: list[int]  # the first LIST_LIMIT at-risk persons' ids (their pages have the timeline)
    students: list[MissedStudent]
    tiers: list[TierCount]
    recall: RecallEffect | None

    def masked(self, masker: Masker) -> Self:
        """The listed persons' personal identities (a mobile number) masked, in the same order."""
        return self.model_copy(update={"students": masked_people(self.students, masker)})


def _came_back(run: PackRun, missed: dict[int, TagValue]) -> dict[int, bool]:
    """Whether each person attended a lesson after their third missed one: of the same class when lessons carry
    their class (the group type `class`, as the tag counts streaks), else of any class."""
    meta = run.service.metadata
    per_class = meta is not None and "class" in meta.group_types(run.project.id)
    latest: dict[tuple[int, str], float] = {}
    persons = sorted(missed)
    for start in range(0, len(persons), 1000):
        query = {"kind": "sql", "sql": attended_sql(persons[start:start + 1000], per_class)}
        for person, klass, moment in run.service.run(run.project, query, now=run.now, scope=run.scope).result.rows:
            found = moment if isinstance(moment, dt.datetime) else dt.datetime.fromisoformat(str(moment))
            aware = found if found.tzinfo else found.replace(tzinfo=dt.UTC)
            latest[(int(person), str(klass or ""))] = aware.timestamp()
    return {p: v.number is not None and latest.get((p, str(v.value or "") if per_class else ""), 0.0) > v.number
            for p, v in missed.items()}


def _recall(run: PackRun) -> RecallEffect | None:
    journeys = run.journeys
    if journeys is None:
        return None
    found = next((j for j in journeys.store.all(run.project.id) if j.name == RECALL.spec["name"]), None)
    if found is None:
        return None
    result = journeys.results(run.project, found)  # type: ignore[arg-type]
    treated, held, uplift = result["arms"]["treatment"], result["arms"]["holdout"], result["uplift"]
    return RecallEffect(journey_id=found.id, status=found.status.value, treated=treated["entered"],
                        treated_came_back=treated["converted"], holdout=held["entered"],
                        holdout_came_back=held["converted"], uplift=uplift["absolute"], ci=uplift["ci"],
                        p_value=uplift["p_value"])


def headline(run: PackRun) -> Supervision:
    meta = run.service.metadata
    if meta is None or TAG not in meta.tags(run.project.id):  # the tags were never set up: install the pack
        return Supervision(**run.frame(NAME), card=Card(value=None, unit="count", label="packs.card.supervision"),
                           tag_ready=False, at_risk=0, came_back=0, came_back_rate=None, classes=[], persons=[],
                           students=[], tiers=[], recall=_recall(run))
    missed = values_by_person(run, TAG)
    tiers = values_by_person(run, TIER_TAG) if TIER_TAG in meta.tags(run.project.id) else {}
    back = _came_back(run, missed)
    ordered = sorted(missed.values(), key=lambda v: (-(v.number or 0), int(v.unit)))
    assert run.tags is not None
    shown = ordered[:LIST_LIMIT]
    identities = run.tags.identities(run.project, [int(v.unit) for v in shown])
    students = [MissedStudent(
        person_id=int(v.unit), identities=identities.get(int(v.unit), {}), class_id=v.value,
        third_missed_at=dt.datetime.fromtimestamp(v.number, dt.UTC).isoformat() if v.number is not None else None,
        came_back=back.get(int(v.unit), False), tier=tiers[int(v.unit)].value if int(v.unit) in tiers else None)
        for v in shown]
    classes = [ClassRisk(class_id=str(s.breakdown[0]), students=int(s.aggregated_value or 0))
               for s in run.trends(BY_CLASS).series if s.breakdown and s.breakdown[0] not in (None, "$other")]
    classes.sort(key=lambda c: (-c.students, c.class_id))
    counts = dict.fromkeys(TIERS, 0)
    for value in tiers.values():
        if value.value in counts:
            counts[value.value] += 1
    came = sum(1 for ok in back.values() if ok)
    return Supervision(**run.frame(NAME), card=Card(value=len(missed), unit="count", label="packs.card.supervision"),
                       tag_ready=True, at_risk=len(missed), came_back=came, came_back_rate=ratio(came, len(missed)),
                       classes=classes, persons=[s.person_id for s in students], students=students,
                       tiers=[TierCount(tier=t, students=n) for t, n in counts.items()], recall=_recall(run))


PACK = Pack(
    name=NAME, version=3, stage=Stage.learning, problem="8", headline=headline,
    needs=("lesson_scheduled", "lesson_attended"), reports=REPORTS, tags=(TAG, "dropout_risk"),
    own_tags=(TagPart("tiers", TIER_DEFINITION),), journeys=(RECALL,),
    dashboards=(DashboardPart("board", "分层督学 Tiered supervision", ("by_tier", "by_class", "attendance"),
                              refresh_seconds=None),),
)
