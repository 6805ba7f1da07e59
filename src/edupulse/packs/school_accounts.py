"""School accounts (seed 004, 一校一台账): schools tiered A/B/C by size (more than 2000 students, 1000 to 2000,
fewer than 1000), with influence and relationship, and adoption: active parents of the school's students and
active teachers of its staff (persons with a `page_view` of the school app in the period, by their `role`).

A school's size, name, influence and relationship are properties of its group (`group_set`, type `school`:
`students`, `teachers`, `name`, `influence`, `relationship`). Its owner and backup (the A and B roles of seed
004) and its adoption targets are decided by people and kept in the metadata (meta/school_accounts.py); the
ledger of one school over time is school_ledger.py.

Every school is listed (一校一表: one ledger per school): those the project described with `group_set`, those with
school-app activity, and those someone gave an owner or a target, so a school nobody used the app at in the
period shows its adoption of 0 rather than dropping off the list."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from edupulse.meta.db import MetadataStore
from edupulse.meta.school_accounts import AccountInfo, SchoolAccounts
from edupulse.packs.headline import Card, Headline, PackRun, ratio, whole_number
from edupulse.packs.spec import DashboardPart, Pack, ReportPart, Stage

NAME = "school_accounts"
SCHOOL = "group.school"
APP = [{"property": "platform", "op": "eq", "value": "school_app"}]


def _active(role: str | None) -> dict[str, Any]:
    filters = [*APP, *([{"property": "role", "op": "eq", "value": role}] if role else [])]
    return {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-29d"},
            "series": [{"event": "page_view", "math": "unique", "filters": filters}],
            "breakdown": {"properties": [SCHOOL], "limit": 100}}


PARENTS = _active("parent")
TEACHERS = _active("teacher")
USED = _active(None)  # schools with any school-app use (their properties come from the roster)
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
    owner_id: int | None
    owner: str | None  # the owner's name (A role)
    backup_id: int | None
    backup: str | None  # the backup's name (B role)
    parent_target: float | None
    teacher_target: float | None
    target_date: str | None
    parent_progress: float | None  # parent adoption / its target (1 = reached)
    teacher_progress: float | None


class SchoolAccountsHeadline(Headline):
    schools: list[School]
    tiers: dict[str, int]


def tier_of(students: int | None) -> str | None:
    """A (more than 2000 students), B (1000 to 2000), C (fewer than 1000)."""
    if students is None:
        return None
    return "A" if students > 2000 else "B" if students >= 1000 else "C"


def _rows(run: PackRun, query: dict[str, Any]) -> dict[str, int]:
    """school -> the persons counted."""
    return {str(s.breakdown[0]): int(s.aggregated_value or 0) for s in run.trends(query).series
            if s.breakdown and s.breakdown[0] not in (None, "$other")}


ROSTER = ("SELECT entity_key, properties FROM entities WHERE kind = 'group' AND entity_type = 'school' "
          "ORDER BY entity_key")


def _roster(run: PackRun) -> dict[str, dict[str, Any]]:
    """Every school the project described (`group_set`), with its current properties."""
    rows = run.service.run(run.project, {"kind": "sql", "sql": ROSTER}, now=run.now, scope=run.scope).result.rows
    out: dict[str, dict[str, Any]] = {}
    for key, properties in rows:
        try:
            found = orjson.loads(properties) if isinstance(properties, str | bytes) else properties
        except orjson.JSONDecodeError:
            found = None
        out[str(key)] = found if isinstance(found, dict) else {}
    return out


def _text(value: Any) -> str | None:
    """A group property as a breakdown shows it: text as it is, other values as JSON writes them."""
    return None if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()


def _decided(meta: MetadataStore | None, project_id: int) -> tuple[dict[str, AccountInfo], dict[int, str]]:
    """The owners, backups and targets of the project's schools, and the names of those people."""
    if meta is None:
        return {}, {}
    accounts = SchoolAccounts(meta).of_project(project_id)
    people = {p for a in accounts.values() for p in (a.owner_id, a.backup_id) if p is not None}
    names = {}
    for person in sorted(people):
        user = meta.accounts.user(person)
        if user is not None:
            names[person] = user.name or user.email
    return accounts, names


def _decisions(account: AccountInfo, names: dict[int, str], parent_adoption: float | None,
               teacher_adoption: float | None) -> dict[str, Any]:
    return {"owner_id": account.owner_id, "owner": names.get(account.owner_id or 0),
            "backup_id": account.backup_id, "backup": names.get(account.backup_id or 0),
            "parent_target": account.parent_target, "teacher_target": account.teacher_target,
            "target_date": account.target_date.isoformat() if account.target_date else None,
            "parent_progress": ratio(parent_adoption, account.parent_target),
            "teacher_progress": ratio(teacher_adoption, account.teacher_target)}


def headline(run: PackRun) -> SchoolAccountsHeadline:
    parents, teachers, used = _rows(run, PARENTS), _rows(run, TEACHERS), _rows(run, USED)
    accounts, names = _decided(run.meta, run.project.id)
    roster = _roster(run)
    rows = []
    for school in sorted({*used, *roster, *accounts}):
        described = roster.get(school, {})
        students, staff = whole_number(described.get("students")), whole_number(described.get("teachers"))
        influence, relationship = _text(described.get("influence")), _text(described.get("relationship"))
        active_parents, active_teachers = parents.get(school, 0), teachers.get(school, 0)
        adoption = ratio(active_parents, students), ratio(active_teachers, staff)
        rows.append(School(school_id=school, tier=tier_of(students), students=students, teachers=staff,
                           influence=influence, relationship=relationship,
                           active_parents=active_parents, active_teachers=active_teachers,
                           parent_adoption=adoption[0], teacher_adoption=adoption[1],
                           **_decisions(accounts.get(school, AccountInfo(school)), names, *adoption)))
    tiers = {tier: sum(1 for r in rows if r.tier == tier) for tier in ("A", "B", "C")}
    overall = ratio(sum(r.active_parents for r in rows), sum(r.students or 0 for r in rows))
    card = Card(value=overall, unit="%", label="packs.card.school_accounts")
    return SchoolAccountsHeadline(**run.frame(NAME), card=card, schools=rows, tiers=tiers)


PACK = Pack(
    name=NAME, version=2, stage=Stage.beyond, problem="schools", headline=headline, needs=("page_view",),
    reports=REPORTS,
    dashboards=(DashboardPart("board", "学校客户 School accounts", ("parents", "teachers", "weekly"),
                              refresh_seconds=None),),
)
