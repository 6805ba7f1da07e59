"""The ledger of one school (一校一台账, seed 004): week by week or month by month in the project's time zone, its
students and staff as they stood at the end of the period (the `students` and `teachers` properties of its
group, from the history of its `group_set` operations), its active parents and teachers (persons with a page
view of the school app in the period, by `role`), adoption (active parents / students, active teachers /
teachers) and usage (page views of the school app); with its owner, backup and targets."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel, ConfigDict, Field

from edupulse.packs.headline import PackError, PackRun, ratio, whole_number
from edupulse.queries.common import local_midnight
from edupulse.store.base import EventStore

GRANULARITIES = ("week", "month")
APP = [{"property": "platform", "op": "eq", "value": "school_app"}]


class LedgerPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(description="the first day of the week or month (YYYY-MM-DD)")
    students: int | None
    teachers: int | None
    active_parents: int
    active_teachers: int
    parent_adoption: float | None
    teacher_adoption: float | None
    page_views: int


class SchoolLedger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    school_id: str
    name: str | None
    date_from: str
    date_to: str
    granularity: str
    periods: list[LedgerPeriod]


def _usage(school: str) -> dict[str, Any]:
    mine = [*APP, {"property": "group.school", "op": "eq", "value": school}]

    def role(name: str) -> list[dict[str, Any]]:
        return [*mine, {"property": "role", "op": "eq", "value": name}]

    return {"kind": "trends", "series": [
        {"event": "page_view", "math": "unique", "filters": role("parent")},
        {"event": "page_view", "math": "unique", "filters": role("teacher")},
        {"event": "page_view", "filters": mine}]}


def size_history(store: EventStore, project_id: int, school: str) -> list[tuple[int, int | None, int | None, Any]]:
    """(time µs, students, teachers, name) of each `group_set` of the school that set any of them, in order."""
    ops = sorted(store.entity_ops(project_id, [("group", "school", school)]), key=lambda op: (op[3], op[4]))
    out = []
    for _kind, _type, _key, time_us, _seq, text in ops:
        props = orjson.loads(text) if text else {}
        if isinstance(props, dict) and {"students", "teachers", "name"} & set(props):
            out.append((time_us, whole_number(props.get("students")), whole_number(props.get("teachers")),
                        props.get("name")))
    return out


def as_of(history: list[tuple[int, int | None, int | None, Any]], before_us: int) -> tuple[int | None, int | None]:
    """The students and teachers as the operations before `before_us` left them (a later value wins)."""
    students = teachers = None
    for time_us, s, t, _ in history:
        if time_us >= before_us:
            break
        students = s if s is not None else students
        teachers = t if t is not None else teachers
    return students, teachers


def ledger(run: PackRun, store: EventStore, school: str, granularity: str = "week") -> SchoolLedger:
    """The ledger of `school` over the run's period."""
    if granularity not in GRANULARITIES:
        raise PackError(f"granularity {granularity!r}: use week or month")
    history = size_history(store, run.project.id, school)
    if not history:
        raise PackError(f"no school {school!r} in this project (no group of type school with that key)", 404)
    found = run.trends({**_usage(school), "granularity": granularity})
    tz = ZoneInfo(run.project.timezone)
    starts = [dt.date.fromisoformat(b[:10]) for b in found.buckets]
    ends = [*starts[1:], run.end + dt.timedelta(days=1)]
    parents, teachers, views = (s.data for s in found.series)
    periods = []
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        until = int(local_midnight(min(end, run.end + dt.timedelta(days=1)), tz).timestamp() * 1_000_000)
        students, staff = as_of(history, until)
        active_p, active_t = int(parents[i] or 0), int(teachers[i] or 0)
        periods.append(LedgerPeriod(period=start.isoformat(), students=students, teachers=staff,
                                    active_parents=active_p, active_teachers=active_t,
                                    parent_adoption=ratio(active_p, students), teacher_adoption=ratio(active_t, staff),
                                    page_views=int(views[i] or 0)))
    name = next((str(h[3]) for h in reversed(history) if h[3] is not None), None)
    return SchoolLedger(school_id=school, name=name, granularity=granularity, periods=periods, **run.date_range)
