"""School accounts (seed 004, 一校一台账): schools tiered A/B/C by size (more than 2000 students, 1000 to 2000,
fewer than 1000), with influence and relationship, and adoption: active parents of the school's students and
active teachers of its staff (persons with a `page_view` of the school app in the period, by their `role`).

A school's size, name, influence and relationship are properties of its group (`group_set`, type `school`:
`students`, `teachers`, `name`, `influence`, `relationship`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, ratio
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage

NAME = "school_accounts"
SCHOOL = "group.school"
APP = [{"property": "platform", "op": "eq", "value": "school_app"}]


def _active(role: str | None, extra: list[str] | None = None) -> dict[str, Any]:
    filters = [*APP, *([{"property": "role", "op": "eq", "value": role}] if role else [])]
    return {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-30d"},
            "series": [{"event": "page_view", "math": "unique", "filters": filters}],
            "breakdown": {"properties": [SCHOOL, *(extra or [])], "limit": 100}}


PARENTS = _active("parent")
TEACHERS = _active("teacher")
SIZES = _active(None, ["group.school.students", "group.school.teachers"])
STANDING = _active(None, ["group.school.influence", "group.school.relationship"])
REPORTS = (
    ReportPart("parents", "各校活跃家长 Active parents per school", PARENTS, view={"chart": "bar"}, width=12),
    ReportPart("teachers", "各校活跃老师 Active teachers per school", TEACHERS, view={"chart": "bar"}, width=12),
    ReportPart("weekly", "学校端每周活跃 School app users per week",
               {**_active(None), "granularity": "week", "breakdown": None}),
)


class School(BaseModel):
    model_config = ConfigDict(extra="forbid")
    school_id: str
    tier: str | None
    students: int | None
    teachers: int | None
    influence: str | None
    relationship: str | None
    active_parents: int
    active_teachers: int
    parent_adoption: float | None
    teacher_adoption: float | None


class SchoolAccounts(Headline):
    schools: list[School]
    tiers: dict[str, int]


def tier_of(students: int | None) -> str | None:
    """A (more than 2000 students), B (1000 to 2000), C (fewer than 1000)."""
    if students is None:
        return None
    return "A" if students > 2000 else "B" if students >= 1000 else "C"


def _rows(run: PackRun, query: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """school -> (count, the breakdown's other values...)."""
    out: dict[str, tuple[Any, ...]] = {}
    for s in run.trends(query).series:
        if s.breakdown and s.breakdown[0] not in (None, "$other"):
            out[str(s.breakdown[0])] = (int(s.aggregated_value or 0), *s.breakdown[1:])
    return out


def _int(value: Any) -> int | None:
    return None if value is None else int(float(str(value)))


def headline(run: PackRun) -> SchoolAccounts:
    parents, teachers = _rows(run, PARENTS), _rows(run, TEACHERS)
    sizes, standing = _rows(run, SIZES), _rows(run, STANDING)
    rows = []
    for school in sorted(sizes):
        students, staff = _int(sizes[school][1]), _int(sizes[school][2])
        influence, relationship = standing.get(school, (0, None, None))[1:]
        active_parents, active_teachers = parents.get(school, (0,))[0], teachers.get(school, (0,))[0]
        rows.append(School(school_id=school, tier=tier_of(students), students=students, teachers=staff,
                           influence=None if influence is None else str(influence),
                           relationship=None if relationship is None else str(relationship),
                           active_parents=active_parents, active_teachers=active_teachers,
                           parent_adoption=ratio(active_parents, students),
                           teacher_adoption=ratio(active_teachers, staff)))
    tiers = {tier: sum(1 for r in rows if r.tier == tier) for tier in ("A", "B", "C")}
    overall = ratio(sum(r.active_parents for r in rows), sum(r.students or 0 for r in rows))
    return SchoolAccounts(**run.frame(NAME), card=Card(value=overall, unit="%", label="packs.card.school_accounts"),
                          schools=rows, tiers=tiers)


PACK = Pack(
    name=NAME, version=1, stage=Stage.beyond, problem="schools", headline=headline, needs=("page_view",),
    reports=REPORTS,
    dashboards=(DashboardPart("board", "学校客户 School accounts", ("parents", "teachers", "weekly"),
                              refresh_seconds=None),),
)
