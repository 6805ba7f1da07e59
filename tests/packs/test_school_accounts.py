"""School accounts beyond the headline: the ledger of a school (一校一台账) on a hand-built history whose size
changes, and on the simulated school against an independent reading of the raw tables; owners, backups and
targets (the A and B roles of seed 004, at most 5 schools per person) with the progress the headline shows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from edupulse.meta.db import MetadataError
from edupulse.meta.school_accounts import AccountInfo, SchoolAccount, SchoolAccounts
from edupulse.packs import school_accounts
from edupulse.packs.headline import PackError
from edupulse.packs.school_ledger import ledger
from edupulse.packs.service import PackService
from engines import History

NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)  # the simulated school's
ROLE = "json_extract_string(properties, '$.role')"


def sh(text: str) -> str:
    return f"{text}+08:00"


def view(who: str, role: str, at: str, school: str = "s1") -> dict[str, Any]:
    return {"type": "track", "event": "page_view", "distinct_id": who, "distinct_id_type": "login_id",
            "time": sh(at), "groups": {"school": school},
            "properties": {"platform": "school_app", "role": role, "url": "app://school/home"}}


def size(students: int | None, teachers: int | None, at: str) -> dict[str, Any]:
    props = {k: v for k, v in (("students", students), ("teachers", teachers), ("name", "一中")) if v is not None}
    return {"type": "group_set", "group_type": "school", "group_key": "s1", "time": sh(at), "properties": props}


# weeks from Monday 2026-08-31: the school grows from 1000 to 1200 students on 09-15 (week 3) local time
HISTORY = [size(1000, 50, "2026-08-30T09:00:00"), size(1200, None, "2026-09-15T00:30:00"),
           view("p1", "parent", "2026-08-31T00:10:00"), view("p2", "parent", "2026-09-06T23:50:00"),
           view("p1", "parent", "2026-09-01T20:00:00"), view("p1", "parent", "2026-09-16T20:00:00"),
           view("t1", "teacher", "2026-09-17T08:00:00"), view("p9", "parent", "2026-09-17T08:00:00", "s2"),
           {"type": "track", "event": "page_view", "distinct_id": "p3", "distinct_id_type": "login_id",
            "time": sh("2026-09-08T08:00:00"), "groups": {"school": "s1"},
            "properties": {"platform": "web", "role": "parent"}}]  # not the school app


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    found = History(tmp_path_factory.mktemp("schools"), HISTORY, name="Ledger School")
    yield found
    found.close()


def test_the_ledger_of_a_hand_built_school_week_by_week(history: History) -> None:
    packs = PackService(history.platform)
    run = packs.run(history.project, school_accounts.PACK, date_from="2026-08-31", date_to="2026-09-20")
    found = ledger(run, history.platform.store, "s1", "week")
    assert found.name == "一中"
    rows = [(p.period, p.students, p.teachers, p.active_parents, p.active_teachers, p.page_views)
            for p in found.periods]
    assert rows == [("2026-08-31", 1000, 50, 2, 0, 3), ("2026-09-07", 1000, 50, 0, 0, 0),
                    ("2026-09-14", 1200, 50, 1, 1, 2)]
    assert found.periods[0].parent_adoption == pytest.approx(2 / 1000)
    assert found.periods[2].teacher_adoption == pytest.approx(1 / 50)
    monthly = ledger(run, history.platform.store, "s1", "month")
    assert [(p.period, p.students, p.active_parents) for p in monthly.periods] == [
        ("2026-08-01", 1000, 1), ("2026-09-01", 1200, 2)]
    with pytest.raises(PackError, match="granularity"):
        ledger(run, history.platform.store, "s1", "day")
    with pytest.raises(PackError, match="no school") as missing:
        ledger(run, history.platform.store, "nope", "week")
    assert missing.value.status == 404


def test_the_simulated_ledger_against_the_raw_tables(school: Any) -> None:
    """Per school and month: students as the truth says, active parents and teachers and page views as an
    independent count of the raw events (the school's group slot, the month in Asia/Shanghai)."""
    platform, project = school.platform, school.project
    slot = platform.meta.group_types(project.id)["school"]
    run = school.packs.run(project, school_accounts.PACK, date_range="all", now=NOW)
    truth = {s["school_id"]: s for s in school.truth["schools"]}
    for school_id, expected in truth.items():
        found = ledger(run, platform.store, school_id, "month")
        raw = platform.store.query(
            "SELECT strftime(timezone('Asia/Shanghai', time), '%Y-%m-01') AS month, "
            f"count(DISTINCT CASE WHEN {ROLE} = 'parent' THEN resolved_person_id END),"
            f" count(DISTINCT CASE WHEN {ROLE} = 'teacher' THEN resolved_person_id END),"
            f" count(*) FROM events_resolved WHERE project_id = ? AND event = 'page_view' AND group_{slot} = ? "
            "AND prop_platform = 'school_app' GROUP BY month", [project.id, school_id]).rows
        counted = {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in raw}
        assert sum(v[2] for v in counted.values()) > 0
        for period in found.periods:
            assert (period.students, period.teachers) == (expected["students"], expected["teachers"])
            assert (period.active_parents, period.active_teachers, period.page_views) == counted.get(
                period.period, (0, 0, 0)), (school_id, period.period)
        assert max(p.active_parents for p in found.periods) <= expected["active_parents"]


def test_owners_backups_and_targets(school: Any) -> None:
    platform, project = school.platform, school.project
    accounts = platform.meta.accounts
    people = []
    for n in ("Wang", "Li", "Zhang"):
        user = accounts.user_by_email(f"{n.lower()}@school.test") or accounts.create_user(
            f"{n.lower()}@school.test", "a long password 1", name=n)
        people.append(user.id)
    wang, li, zhang = people
    store = SchoolAccounts(platform.meta)
    truth = {s["school_id"]: s for s in school.truth["schools"]}
    first = sorted(truth)[0]
    store.save(project.id, AccountInfo(first, wang, li, parent_target=0.5, teacher_target=0.8,
                                       target_date=dt.date(2025, 9, 1)), "tester")
    found = school.packs.headline(project, "school_accounts", date_range="all", now=NOW)
    row = next(r for r in found.schools if r.school_id == first)
    assert (row.owner, row.backup, row.owner_id, row.backup_id) == ("Wang", "Li", wang, li)
    assert row.parent_target == 0.5
    assert row.target_date == "2025-09-01"
    assert row.parent_progress == pytest.approx(truth[first]["parent_adoption"] / 0.5, abs=2e-3)
    assert row.teacher_progress == pytest.approx(truth[first]["teacher_adoption"] / 0.8, abs=2e-3)
    others = [r for r in found.schools if r.school_id != first]
    assert all(r.owner is None and r.parent_progress is None for r in others)
    # the truth's numbers are unchanged by the decisions
    assert row.active_parents == truth[first]["active_parents"]
    with pytest.raises(MetadataError, match="two people"):
        store.save(project.id, AccountInfo(first, wang, wang), "tester")
    with pytest.raises(MetadataError, match="parent_target"):
        store.save(project.id, AccountInfo(first, wang, li, parent_target=1.5), "tester")
    try:
        for k in range(1, 5):
            store.save(project.id, AccountInfo(f"extra-{k}", wang, zhang), "tester")
        with pytest.raises(MetadataError, match="at most 5"):
            store.save(project.id, AccountInfo("extra-5", wang, zhang), "tester")
        store.save(project.id, AccountInfo("extra-5", zhang, wang), "tester")  # Wang backs up a 1st school
        store.save(project.id, AccountInfo(first, wang, li, parent_target=0.6), "tester")  # his own school again
        assert store.get(project.id, first).parent_target == 0.6
        assert store.get(project.id, first).teacher_target is None  # left out: cleared
    finally:  # the made-up schools leave the shared school (an owned school is listed in its headline)
        with platform.meta.session() as s, s.begin():
            s.execute(delete(SchoolAccount).where(SchoolAccount.project_id == project.id,
                                                  SchoolAccount.school_id.like("extra-%")))
