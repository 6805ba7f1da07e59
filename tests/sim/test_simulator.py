"""The simulator: deterministic, written through the real write path, and its ground truth holds in the data."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from click.testing import CliRunner

from edupulse.cli import main
from edupulse.conf import Settings
from edupulse.meta.db import ProjectInfo
from edupulse.runtime import Platform
from edupulse.sim import SimulationConfig, SimulationError, SimulationSummary, generate, simulate
from edupulse.sim.config import default_truth_path

END = dt.date(2025, 6, 1)
TZ = ZoneInfo("Asia/Shanghai")
STANDARD_EVENTS = {
    "page_view", "ad_click", "lead_created", "lead_qualified", "lead_assigned", "call_connected", "wechat_added",
    "trial_booked", "trial_attended", "order_paid", "order_refunded", "course_enrolled", "lesson_scheduled",
    "lesson_attended", "lesson_completed", "homework_submitted", "quiz_answered", "course_completed",
    "referral_shared", "referral_signup", "staff_login", "student_enrolled",
}


def _generate(seed: int, learners: int = 120, days: int = 60) -> tuple[bytes, str]:
    records: list[dict[str, Any]] = []
    world = generate(SimulationConfig(seed=seed, learners=learners, days=days), END, TZ, records.extend)
    return orjson.dumps(records), json.dumps(world.truth, ensure_ascii=False)


def test_same_inputs_give_identical_records_and_truth() -> None:
    first, second = _generate(5), _generate(5)
    assert first[0] == second[0]
    assert first[1] == second[1]


def test_another_seed_gives_another_world() -> None:
    records, truth = _generate(5)
    other_records, other_truth = _generate(6)
    assert records != other_records
    assert truth != other_truth


def test_events_grow_linearly_with_learners() -> None:
    small = generate(SimulationConfig(seed=1, learners=1600), END, TZ, lambda _: None)
    large = generate(SimulationConfig(seed=1, learners=3200), END, TZ, lambda _: None)
    assert 1.6 < large.events / small.events < 2.4


def test_no_event_after_the_period() -> None:
    records: list[dict[str, Any]] = []
    generate(SimulationConfig(seed=3, learners=100, days=30), END, TZ, records.extend)
    end_ms = dt.datetime.combine(END, dt.time(0), tzinfo=TZ).timestamp() * 1000
    start_ms = end_ms - 30 * 86_400_000
    assert all(start_ms <= r["time"] < end_ms for r in records)


def test_end_after_today_is_refused() -> None:
    tomorrow = dt.datetime.now(TZ).date() + dt.timedelta(days=1)
    with pytest.raises(SimulationError, match="after today"):
        SimulationConfig(seed=1, learners=10, end=tomorrow).resolved_end(TZ)


# --- through the write path into the store -----------------------------------------------------


class Simulated:
    def __init__(self, platform: Platform, project: ProjectInfo, summary: SimulationSummary) -> None:
        self.platform = platform
        self.project = project
        self.summary = summary
        assert summary.truth_path is not None
        self.truth = json.loads(summary.truth_path.read_text(encoding="utf-8"))

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.platform.store.query(sql, list(params)).rows

    def slot(self, group_type: str) -> int:
        return self.platform.meta.group_types(self.project.id)[group_type]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulated]:
    data_dir = tmp_path_factory.mktemp("sim")
    with Platform(Settings(data_dir=data_dir)).open() as platform:
        project = platform.meta.create_project("Spring English").project
        summary = simulate(platform, project, SimulationConfig(seed=11, learners=400, days=90, end=END))
        yield Simulated(platform, project, summary)


def test_nothing_is_refused_and_every_event_is_stored(simulated: Simulated) -> None:
    s = simulated.summary
    assert s.rejected == 0
    assert s.events > 10_000
    stored = dict(simulated.rows("SELECT event, count(*) FROM events WHERE project_id = ? GROUP BY 1",
                                 simulated.project.id))
    assert stored == s.events_by_name
    assert set(stored) == STANDARD_EVENTS


def test_truth_file_is_written_where_documented(simulated: Simulated) -> None:
    path = default_truth_path(simulated.platform.settings.data_dir, "Spring English")
    assert simulated.summary.truth_path == path
    truth = simulated.truth
    assert truth["format"] == "edupulse-simulation-truth/1"
    assert truth["summary"]["events"] == simulated.summary.events
    assert {"channels", "lead_intent", "learning", "renewal", "referrals", "institutions", "schools"} <= set(truth)


def test_one_id_links_crm_lead_mobile_and_login_into_one_person(simulated: Simulated) -> None:
    learners = [e["referee"] for e in simulated.truth["referrals"]["edges"] if "login_id" in e["referee"]]
    learners += [p for p in simulated.truth["lead_intent"]["high_intent"] if "login_id" in p]
    assert learners
    for person in learners[:30]:
        owners = simulated.rows(
            "SELECT DISTINCT person_id FROM identities WHERE project_id = ? AND "
            "((id_type = 'crm_lead_id' AND id_value = ?) OR (id_type = 'mobile' AND id_value = ?) "
            "OR (id_type = 'login_id' AND id_value = ?))",
            simulated.project.id, person["crm_lead_id"], person["mobile"], person["login_id"],
        )
        assert len(owners) == 1
        # the CRM's lead and the app's events count as one person
        events = simulated.rows(
            "SELECT DISTINCT resolved_person_id FROM events_resolved WHERE project_id = ? AND distinct_id IN (?, ?)",
            simulated.project.id, person["crm_lead_id"], person["login_id"],
        )
        assert events == owners


def test_persons_are_as_planted(simulated: Simulated) -> None:
    truth = simulated.truth["summary"]
    (persons,) = simulated.rows(
        "SELECT count(DISTINCT resolved_person_id) FROM events_resolved WHERE project_id = ?", simulated.project.id
    )[0]
    assert persons == truth["persons"]
    assert simulated.rows("SELECT count(*) FROM person_overrides")[0][0] == 0


def test_at_risk_students_missed_three_scheduled_lessons_in_a_row(simulated: Simulated) -> None:
    at_risk = simulated.truth["learning"]["at_risk"]
    assert at_risk
    slot = simulated.slot("class")
    for student in at_risk:
        lessons = simulated.rows(
            f"""SELECT s.prop_lesson_id, EXISTS (
                    SELECT 1 FROM events a WHERE a.project_id = s.project_id AND a.event = 'lesson_attended'
                      AND a.distinct_id = s.distinct_id AND a.prop_lesson_id = s.prop_lesson_id)
                FROM events s WHERE s.project_id = ? AND s.event = 'lesson_scheduled' AND s.distinct_id = ?
                  AND s.group_{slot} = ? ORDER BY s.prop_starts_at""",
            simulated.project.id, student["login_id"], student["class_id"],
        )
        ids = [lesson for lesson, _ in lessons]
        third = ids.index(student["third_missed_lesson_id"])
        assert third >= 2
        assert not any(attended for _, attended in lessons[third - 2: third + 1]), student
        # and it is the first time it happened in that class
        streak = 0
        for _, attended in lessons[:third]:
            streak = 0 if attended else streak + 1
            assert streak < 3


def test_knowledge_points_differ_in_accuracy(simulated: Simulated) -> None:
    rows = simulated.rows(
        "SELECT prop_knowledge_point, avg(prop_correct::INTEGER) FROM events WHERE project_id = ? "
        "AND event = 'quiz_answered' GROUP BY 1", simulated.project.id,
    )
    accuracy = dict(rows)
    assert accuracy["phonics"] > accuracy["listening_detail"] + 0.2
    planted = {kp["knowledge_point"]: kp["accuracy"] for kp in simulated.truth["learning"]["knowledge_points"]}
    for name, value in accuracy.items():
        assert planted[name] == pytest.approx(value, abs=0.001)


def test_spend_rows_exist_per_day_channel_and_campaign(simulated: Simulated) -> None:
    rows = simulated.rows(
        "SELECT count(*), count(DISTINCT date), count(DISTINCT channel), sum(cost), min(clicks) FROM spend "
        "WHERE project_id = ?", simulated.project.id,
    )
    count, days, channels, cost, clicks = rows[0]
    assert count == simulated.summary.spend_rows
    assert days == 90
    assert channels == sum(1 for c in simulated.truth["channels"] if c["paid"])
    assert cost == pytest.approx(simulated.truth["summary"]["spend"])
    assert clicks >= 0


def test_groups_are_set_and_events_carry_them(simulated: Simulated) -> None:
    kinds = dict(simulated.rows(
        "SELECT entity_type, count(*) FROM entities WHERE project_id = ? GROUP BY 1", simulated.project.id))
    truth = simulated.truth["summary"]
    assert kinds["school"] == truth["schools"]
    assert kinds["institution"] == truth["institutions"]
    assert kinds["class"] == truth["classes"]
    school, institution = simulated.slot("school"), simulated.slot("institution")
    rows = simulated.rows(
        f"SELECT count(*) FILTER (WHERE event = 'staff_login' AND group_{institution} IS NULL), "
        f"count(*) FILTER (WHERE prop_platform = 'school_app' AND group_{school} IS NULL) "
        "FROM events WHERE project_id = ?", simulated.project.id,
    )
    assert rows == [(0, 0)]


def test_a_retried_run_adds_nothing(simulated: Simulated) -> None:
    before = simulated.rows("SELECT count(*) FROM events")[0][0]
    again = simulate(simulated.platform, simulated.project, SimulationConfig(seed=11, learners=400, days=90, end=END))
    assert again.events == simulated.summary.events
    assert simulated.rows("SELECT count(*) FROM events")[0][0] == before
    assert json.loads(again.truth_path.read_text(encoding="utf-8")) == simulated.truth  # type: ignore[union-attr]


# --- the command ---------------------------------------------------------------------------------


def test_cli_creates_the_project_and_reports(tmp_path: Path) -> None:
    truth = tmp_path / "truth.json"
    result = CliRunner().invoke(main, [
        "--data-dir", str(tmp_path / "data"), "simulate", "--project", "Demo", "--seed", "3", "--learners", "60",
        "--days", "30", "--end", "2025-06-01", "--truth", str(truth),
    ])
    assert result.exit_code == 0, result.output
    assert "write key wk_" in result.output
    assert "events/s" in result.output
    assert json.loads(truth.read_text(encoding="utf-8"))["config"]["learners"] == 60


def test_cli_refuses_cleanly_while_a_server_holds_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time, duckdb
            con = duckdb.connect({str(data / 'events.duckdb')!r})
            print('ready', flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        result = CliRunner().invoke(main, [
            "--data-dir", str(data), "simulate", "--project", "Demo", "--seed", "1", "--learners", "10",
        ])
    finally:
        holder.communicate("")
    assert result.exit_code == 1
    assert "in use by another EduPulse process" in result.output
    assert "Traceback" not in result.output


def test_churned_students_had_lessons_but_attended_none_in_the_last_days(simulated: Simulated) -> None:
    learning = simulated.truth["learning"]
    churned = {s["login_id"] for s in learning["churned"]}
    since = dt.datetime.combine(END, dt.time(0), tzinfo=TZ) - dt.timedelta(days=learning["churn_inactive_days"])
    rows = simulated.rows(
        """SELECT distinct_id,
                  count(*) FILTER (WHERE event = 'lesson_scheduled' AND prop_starts_at >= ?),
                  count(*) FILTER (WHERE event = 'lesson_attended' AND time >= ?)
           FROM events WHERE project_id = ? AND event IN ('lesson_scheduled', 'lesson_attended') GROUP BY 1""",
        since, since, simulated.project.id,
    )
    expected = {login for login, scheduled, attended in rows if scheduled and not attended}
    assert churned
    assert churned == expected


def test_planted_renewals_follow_the_learning_record() -> None:
    """Renewal depends on what the events show (attendance, homework, quiz accuracy) strongly enough that a
    model of the learning record can reach an AUC of 0.8: the planted propensity itself reaches more."""
    from sklearn.metrics import roc_auc_score

    world = generate(SimulationConfig(seed=3, learners=4000, days=180), END, TZ, lambda _: None)
    ends = [c for c in world.truth["renewal"]["candidates"] if c.get("propensity") is not None]
    assert len(ends) > 300
    renewed = [int(c["renewed"]) for c in ends]
    assert roc_auc_score(renewed, [c["propensity"] for c in ends]) >= 0.8
    assert roc_auc_score(renewed, [c["attendance_rate"] for c in ends]) >= 0.7  # attendance alone tells much
    low = [c["renewed"] for c in ends if c["attendance_rate"] < 0.5]
    high = [c["renewed"] for c in ends if c["attendance_rate"] >= 0.9]
    assert sum(high) / len(high) > 2 * sum(low) / len(low)
