"""The channel packs on an organization unlike the simulated school: Berlin time, other channels, the channel only
on the `lead_created` events (no person property of its own), leads without a channel, no `lead_qualified`. Each
number equals a count made here from the records sent."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edupulse.conf import Settings
from edupulse.packs.service import PackService
from edupulse.runtime import Platform

BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
CHANNELS = ("instagram", "google", "partner_school", None)


def _records() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A tutoring chain's leads, trials and orders over October and November, and what was sent, per channel."""
    rng = random.Random(11)
    records: list[dict[str, Any]] = []
    sent: dict[str, Any] = {"leads": Counter(), "trials": Counter(), "first_orders": Counter(),
                            "revenue": defaultdict(float), "all_leads": 0, "all_orders": 0}

    def track(who: str, event: str, when: dt.datetime, **properties: Any) -> None:
        records.append({"type": "track", "event": event, "distinct_id": who, "distinct_id_type": "login_id",
                        "time": when.isoformat(), "event_id": f"{who}-{event}-{len(records)}",
                        "properties": properties})

    for i in range(60):
        who, channel = f"s{i}", CHANNELS[i % len(CHANNELS)]
        start = dt.datetime(2026, 10, 1, 9, tzinfo=BERLIN) + dt.timedelta(days=rng.randrange(55),
                                                                           minutes=rng.randrange(600))
        lead = {"source_system": "hubspot", **({"channel": channel, "campaign": f"{channel}-herbst"}
                                               if channel else {})}
        track(who, "lead_created", start, **lead)
        sent["all_leads"] += 1
        if channel:
            sent["leads"][channel] += 1
        if rng.random() < 0.5:
            track(who, "trial_booked", start + dt.timedelta(days=1))
            if channel:
                sent["trials"][channel] += 1
            if rng.random() < 0.6:
                amount = rng.choice([399, 499.5])
                track(who, "order_paid", start + dt.timedelta(days=3), order_id=f"o{i}", amount=amount,
                      order_type="first", course_id="DE-A1")
                sent["all_orders"] += 1
                if channel:
                    sent["first_orders"][channel] += 1
                    sent["revenue"][channel] += amount
    return records, sent


def headline_of(tmp_path: Any, records: list[dict[str, Any]], pack: str, timezone: str = "Europe/Berlin",
                **options: Any) -> Any:
    """A pack's headline on a new project that holds `records` (all accepted)."""
    with Platform(Settings(data_dir=tmp_path / "data")).open() as platform:
        project = platform.meta.create_project("Unseen", timezone).project
        assert platform.ingestor.ingest(project, records).rejected == 0
        platform.flush()
        return PackService(platform).headline(project, pack, now=NOW, **options)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Any, dict[str, Any]]]:
    records, sent = _records()
    with Platform(Settings(data_dir=tmp_path_factory.mktemp("chain") / "data")).open() as platform:
        project = platform.meta.create_project("Lernwerk", "Europe/Berlin").project
        assert platform.ingestor.ingest(project, records).rejected == 0
        platform.flush()
        yield platform, project, sent


def test_channel_quality_counts_the_channel_of_each_lead(chain: Any) -> None:
    platform, project, sent = chain
    found = PackService(platform).headline(project, "channel_quality", date_range="all", now=NOW)
    assert set(found.missing_events) == {"lead_qualified", "trial_attended", "page_view"}  # said; the rest shown
    assert [row.channel for row in found.channels] == sorted(sent["leads"], key=lambda c: (-sent["leads"][c], c))
    for row in found.channels:
        assert row.leads == sent["leads"][row.channel], row.channel
        assert row.trials_booked == sent["trials"][row.channel], row.channel
        assert row.first_orders == sent["first_orders"][row.channel], row.channel
        assert row.revenue == pytest.approx(sent["revenue"][row.channel], abs=0.01), row.channel
        assert row.first_order_rate == pytest.approx(sent["first_orders"][row.channel] / sent["leads"][row.channel],
                                                     abs=1e-6), row.channel
        assert row.valid_leads is None  # never sent: unknown, not 0
    for campaign in found.campaigns:
        assert campaign.campaign == f"{campaign.channel}-herbst"
        assert campaign.leads == sent["leads"][campaign.channel]
        assert campaign.valid_leads is None


def test_front_back_join_revenue_per_channel(chain: Any) -> None:
    platform, project, sent = chain
    found = PackService(platform).headline(project, "front_back_join", date_range="all", now=NOW)
    assert {row.channel: row.revenue for row in found.channels} == pytest.approx(dict(sent["revenue"]), abs=0.01)


def test_realtime_board_totals_count_leads_without_a_channel(chain: Any) -> None:
    platform, project, sent = chain
    found = PackService(platform).headline(project, "realtime_board", date_range="all", now=NOW)
    assert found.leads == sent["all_leads"] > sum(sent["leads"].values())
    assert found.orders == sent["all_orders"]
    assert {row.channel: row.leads for row in found.channels} == dict(sent["leads"])


NEW_YORK = ZoneInfo("America/New_York")


def _vendor() -> list[dict[str, Any]]:
    """An edu SaaS vendor's customers, in New York time across the November clock change: `north` (4 staff, all
    logging in every working day), `east` (no staff property, 3 staff logging in every working day) and `west`
    (5 staff, who stopped logging in at the end of October; its enrolments stopped too)."""
    records: list[dict[str, Any]] = [
        {"type": "group_set", "group_type": "institution", "group_key": "north",
         "properties": {"name": "North Academy", "staff": 4}, "time": "2026-09-01T00:00:00-04:00"},
        {"type": "group_set", "group_type": "institution", "group_key": "east",
         "properties": {"name": "East School", "staff": "three or so"}, "time": "2026-09-01T00:00:00-04:00"},
        {"type": "group_set", "group_type": "institution", "group_key": "west",
         "properties": {"name": "West Tutoring", "staff": 5}, "time": "2026-09-01T00:00:00-04:00"}]
    staff = {"north": 4, "east": 3, "west": 5}
    day = dt.date(2026, 10, 1)
    while day <= dt.date(2026, 11, 30):
        for key, count in staff.items():
            if key == "west" and day > dt.date(2026, 10, 31):
                continue
            at = dt.datetime.combine(day, dt.time(9), NEW_YORK)
            if day.weekday() < 5:
                records += [{"type": "track", "event": "staff_login", "distinct_id": f"{key}-{j}",
                             "distinct_id_type": "login_id", "time": at.isoformat(), "groups": {"institution": key},
                             "properties": {}} for j in range(count)]
            if day.weekday() == 2:  # one enrolment each Wednesday
                records.append({"type": "track", "event": "student_enrolled", "distinct_id": f"{key}-0",
                                "distinct_id_type": "login_id", "time": (at + dt.timedelta(hours=2)).isoformat(),
                                "groups": {"institution": key}, "properties": {"student_id": f"{key}-{day}"}})
        day += dt.timedelta(days=1)
    return records


def test_b2b_health_lists_a_silent_customer_and_counts_staff_it_was_not_told(tmp_path: Any) -> None:
    found = headline_of(tmp_path, _vendor(), "b2b_health", "America/New_York", date_from="2026-11-01",
                        date_to="2026-11-30")
    rows = {r.institution_id: r for r in found.institutions}
    assert set(rows) == {"north", "east", "west"}
    # 30 November is a Monday: the last 7 days hold 5 working days; November 2026 has 21
    north, east, west = rows["north"], rows["east"], rows["west"]
    assert (north.staff, north.staff_estimated, north.staff_login_days_7, north.login_days_30) == (4, False, 20, 21)
    assert (north.enrolments_30, north.enrolments_prev_30, north.enrolment_growth) == (4, 4, 0.0)
    assert north.score == pytest.approx(round(100 * (0.5 + 0.2 * 21 / 22 + 0.3), 1))
    assert (east.staff, east.staff_estimated, east.staff_login_days_7) == (3, True, 15)
    assert east.score == north.score
    assert not north.warning
    assert not east.warning
    assert (west.staff, west.login_days_30, west.enrolments_30, west.enrolments_prev_30) == (5, 0, 0, 4)
    assert west.enrolment_growth == -1.0
    assert west.score == 0.0
    assert found.declining == ["west"]
    assert found.institutions[0].institution_id == "west"  # lowest score first


def test_installed_boards_cover_the_headlines_default_days(tmp_path: Any) -> None:
    """A dashboard opened as installed shows the same days as its pack's page: the last 30 days with today."""
    from edupulse.packs.headline import period
    from edupulse.packs.registry import PACKS
    from edupulse.queries.common import DateRange

    with Platform(Settings(data_dir=tmp_path / "data")).open() as platform:
        project = platform.meta.create_project("Days", "Europe/Berlin").project
        headline_days = period(platform.store, project, now=NOW)
    thirty = {board.date_from for pack in PACKS.values() for board in pack.dashboards} | {
        report.query["date_range"]["date_from"] for pack in PACKS.values() for report in pack.reports
        if "date_range" in report.query and report.query["date_range"].get("date_from") in ("-29d", "-30d")}
    assert "-30d" not in thirty
    assert DateRange(date_from="-29d", date_to="today").days(BERLIN, NOW) == headline_days


def test_every_school_has_its_ledger_row_even_without_app_use(tmp_path: Any) -> None:
    """One ledger per school (seed 004): a school nobody used the app at in the period is listed with 0 active
    parents and teachers, not left out."""
    at = dt.datetime(2026, 11, 20, 19, tzinfo=BERLIN).isoformat()
    schools = {"gs-mitte": {"name": "Grundschule Mitte", "students": 1500, "teachers": 80, "influence": "high"},
               "gs-nord": {"name": "Grundschule Nord", "students": 300, "teachers": 20},
               "gs-sued": {"name": "Grundschule Süd", "students": "about 400", "teachers": "inf"}}
    records: list[dict[str, Any]] = [{"type": "group_set", "group_type": "school", "group_key": key,
                                      "properties": props, "time": "2026-09-01T00:00:00+02:00"}
                                     for key, props in schools.items()]
    for key, parents, teachers in (("gs-mitte", 6, 2), ("gs-nord", 3, 1)):
        records += [{"type": "track", "event": "page_view", "distinct_id": f"{key}-{role}{j}",
                     "distinct_id_type": "login_id", "time": at, "groups": {"school": key},
                     "properties": {"platform": "school_app", "role": role}}
                    for role, n in (("parent", parents), ("teacher", teachers)) for j in range(n)]
    found = headline_of(tmp_path, records, "school_accounts", date_from="2026-11-01", date_to="2026-11-30")
    rows = {r.school_id: r for r in found.schools}
    assert set(rows) == set(schools)
    mitte, nord, sued = rows["gs-mitte"], rows["gs-nord"], rows["gs-sued"]
    assert (mitte.tier, mitte.active_parents, mitte.active_teachers, mitte.influence) == ("B", 6, 2, "high")
    assert mitte.parent_adoption == pytest.approx(6 / 1500, abs=1e-6)
    assert (nord.tier, nord.active_parents, nord.teacher_adoption) == ("C", 3, pytest.approx(1 / 20))
    # no app use in November: listed, with nobody active; its size was sent as words, so its tier is unknown
    assert (sued.active_parents, sued.active_teachers, sued.students, sued.tier) == (0, 0, None, None)
    assert (sued.teachers, sued.teacher_adoption) == (None, None)


def test_an_advisors_school_ledger_lists_the_schools_too(tmp_path: Any) -> None:
    """With an advisor's person scope the headline still runs (the roster of schools is not personal)."""
    from edupulse.queries.service import PersonScope

    records = [{"type": "group_set", "group_type": "school", "group_key": "gs-ost", "time": "2026-09-01T00:00:00Z",
                "properties": {"students": 500, "teachers": 30}}]
    found = headline_of(tmp_path, records, "school_accounts", scope=PersonScope((("login_id", "nobody"),)))
    assert [(r.school_id, r.tier, r.active_parents) for r in found.schools] == [("gs-ost", "C", 0)]


def test_a_moved_lesson_counts_once_in_a_students_course(tmp_path: Any) -> None:
    """A lesson scheduled again (moved to another day) is one lesson of the course, so a student who has had it
    moved is not taken for one whose schedule is complete."""
    def lesson(who: str, lesson_id: str, starts: dt.datetime) -> dict[str, Any]:
        return {"type": "track", "event": "lesson_scheduled", "distinct_id": who, "distinct_id_type": "login_id",
                "time": (starts - dt.timedelta(days=1)).isoformat(), "properties": {
                    "lesson_id": lesson_id, "course_id": "py-kids", "starts_at": starts.isoformat()}}

    def day(month: int, of_month: int) -> dt.datetime:
        return dt.datetime(2026, month, of_month, 17, tzinfo=BERLIN)

    records = [lesson("amy", "L1", day(11, 10)), lesson("amy", "L2", day(11, 17)), lesson("amy", "L2", day(11, 18)),
               lesson("amy", "L3", day(12, 8)),
               *[lesson("ben", f"L{i + 1}", day(11, 10) + dt.timedelta(days=7 * i)) for i in range(4)]]
    found = headline_of(tmp_path, records, "renewal")
    ending = {e.identities["login_id"][0]: e for e in found.ending}
    assert (ending["amy"].lessons_scheduled, ending["amy"].lessons, ending["amy"].estimated) == (3, 4, True)
    assert ending["amy"].ends_at.startswith("2026-12-22")  # 8 December and the 14-day pace of her lessons
    assert (ending["ben"].lessons_scheduled, ending["ben"].lessons, ending["ben"].estimated) == (4, 4, False)


def test_courses_come_from_the_lessons_when_classes_do_not_name_theirs(tmp_path: Any) -> None:
    """Lessons carry their class as a group, but the classes were never described (no course_id property): the
    per-course table reads the lessons' own course_id instead of coming out empty."""
    at = dt.datetime(2026, 11, 20, 17, tzinfo=BERLIN)
    records: list[dict[str, Any]] = []
    for course, klass, students in (("DE-A1", "DE-A1-K0", 3), ("MATH-7", "MATH-7-K1", 2)):
        for j in range(students):
            who = f"{klass}-{j}"
            base = {"distinct_id": who, "distinct_id_type": "login_id", "groups": {"class": klass}, "type": "track"}
            records += [{**base, "event": "lesson_scheduled", "time": (at - dt.timedelta(days=1)).isoformat(),
                         "properties": {"lesson_id": f"{klass}-L1", "course_id": course, "starts_at": at.isoformat()}},
                        {**base, "event": "lesson_attended", "time": at.isoformat(),
                         "properties": {"lesson_id": f"{klass}-L1"}}]
    found = headline_of(tmp_path, records, "learning_indicators", date_from="2026-11-01", date_to="2026-11-30")
    assert {(c.course_id, c.scheduled_lessons, c.attendance_rate) for c in found.courses} == {
        ("DE-A1", 3, 1.0), ("MATH-7", 2, 1.0)}
    assert {c.class_id for c in found.classes} == {"DE-A1-K0", "MATH-7-K1"}
