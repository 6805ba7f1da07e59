"""Scenario packs on a small simulated school: each pack's headline numbers equal the simulation's ground truth
(every day of the data), installing is idempotent and an upgrade leaves what a user changed, uninstalling
removes only what nobody changed, and a project without the pack's events gets the empty state, not an error."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from edupulse.conf import Settings
from edupulse.importer.run import ImportOptions, run_import
from edupulse.meta.catalogue import MetricCatalogue
from edupulse.meta.ui import UIStore
from edupulse.packs import channel_quality
from edupulse.packs.headline import PackError
from edupulse.packs.install import PackInstaller
from edupulse.packs.registry import PACKS, PROBLEMS
from edupulse.packs.service import PackService
from edupulse.runtime import Platform

NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)


def test_every_problem_has_a_pack_name_and_the_packs_are_its_problems() -> None:
    assert [p.name for p in PROBLEMS] == ["channel_quality", "front_back_join", "realtime_board", "one_person",
                                         "lead_tiering", "automated_sops", "learning_indicators", "supervision",
                                         "renewal", "referral", "b2b_health", "school_accounts"]
    assert set(PACKS) <= {p.name for p in PROBLEMS}


def test_channel_quality_equals_the_truth(school: Any) -> None:
    found = school.packs.headline(school.project, "channel_quality", date_range="all", now=NOW)
    assert not found.empty
    assert found.missing_events == []
    truth = {c["channel"]: c for c in school.truth["channels"]}
    assert {row.channel for row in found.channels} == set(truth)
    for row in found.channels:
        expected = truth[row.channel]
        assert row.leads == expected["leads"], row.channel
        assert row.first_orders == expected["first_orders"], row.channel
        assert row.first_order_rate == pytest.approx(expected["first_order_rate"], abs=5e-4), row.channel
        assert row.revenue == pytest.approx(expected["revenue"], abs=0.01), row.channel
        assert row.spend == pytest.approx(expected["spend"], abs=0.01), row.channel
        assert row.cost_per_lead == (None if expected["cost_per_lead"] is None
                                     else pytest.approx(expected["cost_per_lead"], abs=0.01)), row.channel
        assert row.cac == (None if expected["cac"] is None else pytest.approx(expected["cac"], abs=0.01)), row.channel
        assert row.roi == (None if expected["roi"] is None else pytest.approx(expected["roi"], abs=5e-4)), row.channel
        assert row.leads >= row.valid_leads >= 0
        assert row.trials_booked >= row.trials_attended
    # the planted best channel (best lead quality) is visibly best: the highest first-order rate
    planted = next(c["channel"] for c in school.truth["channels"] if c["quality_rank"] == 1)
    assert found.best_channel == planted
    paid = [c for c in school.truth["channels"] if c["roi"] is not None]
    assert found.best_roi_channel == max(paid, key=lambda c: c["roi"])["channel"]
    spend = sum(c["spend"] for c in school.truth["channels"])
    assert found.card.value == pytest.approx(sum(c["revenue"] for c in paid + [
        c for c in school.truth["channels"] if c["roi"] is None]) / spend, rel=1e-3)


def test_campaign_rows_add_up_to_their_channel(school: Any) -> None:
    found = school.packs.headline(school.project, "channel_quality", date_range="all", now=NOW)
    for row in found.channels:
        mine = [c for c in found.campaigns if c.channel == row.channel]
        assert sum(c.leads for c in mine) == row.leads
        assert sum(c.first_orders for c in mine) == row.first_orders
        # spend, CPL, CAC and ROI per campaign: the campaign of each person's first lead, its own spend
        assert sum(c.spend for c in mine) == pytest.approx(row.spend, abs=0.05)
        assert sum((c.first_order_rate or 0) * c.leads for c in mine) == pytest.approx(
            (row.first_order_rate or 0) * row.leads, abs=1e-3)
        for c in mine:
            assert c.cost_per_lead == (pytest.approx(c.spend / c.leads, abs=0.01) if c.spend and c.leads else None)
            assert c.cac == (pytest.approx(c.spend / c.first_orders, abs=0.01) if c.spend and c.first_orders
                             else None)
            assert c.roi == (pytest.approx(c.revenue / c.spend, abs=5e-4) if c.spend else None)
    assert len(found.campaigns) > len(found.channels)
    assert {c.campaign for c in found.campaigns if c.spend} <= {
        name for channel in school.truth["channels"] for name in channel["campaigns"]}


def test_roi_within_fewer_days_is_never_more(school: Any) -> None:
    rois = {days: {r.channel: r.roi for r in school.packs.headline(
        school.project, "channel_quality", date_range="all", now=NOW, roi_days=days).channels}
        for days in (30, 90, 365)}
    for channel, roi in rois[365].items():
        if roi is not None:
            assert rois[30][channel] <= rois[90][channel] <= roi


def test_the_dashboard_shows_the_headline_numbers(school: Any) -> None:
    """The installed reports are the headline's queries: run as saved (with the headline's period) they give
    the same numbers."""
    done = school.packs.install(school.project, "channel_quality", "tester")
    assert done.dashboard_id is not None
    found = school.packs.headline(school.project, "channel_quality", date_range="all", now=NOW)
    board = UIStore(school.platform.meta).dashboard(school.project.id, done.dashboard_id)
    reports = {i["report"]["name"]: i["report"]["query"] for i in board["items"]}
    roi = reports["各渠道 ROI ROI by channel"]
    answer = school.platform.query_service().run(
        school.project, {**roi, "date_range": {"date_from": found.date_from, "date_to": found.date_to}}, now=NOW)
    shown = {s["breakdown"][0]: s["aggregated_value"] for s in answer.to_wire()["series"]}
    by_channel = {r.channel: r.roi for r in found.channels if r.spend}
    assert roi["series"] == [{"metric": "roi"}]
    assert roi["breakdown"]["properties"] == ["channel"]  # one statement for every channel
    assert {c for c, v in shown.items() if v is not None} == set(by_channel)
    for channel, value in by_channel.items():
        assert shown[channel] == pytest.approx(value, abs=1e-6)


def test_install_is_idempotent_and_keeps_what_a_user_changed(school: Any) -> None:
    meta = school.platform.meta
    project = school.project
    first = school.packs.install(project, "channel_quality", "tester")
    again = school.packs.install(project, "channel_quality", "tester")
    assert again.created == []
    assert again.updated == []
    assert again.kept == []
    assert sorted(again.unchanged) == sorted(first.created + first.unchanged + first.updated)
    ui = UIStore(meta)
    record = school.packs.installs.get(project.id, "channel_quality")
    funnel_id = record["parts"]["report:funnel"]["id"]
    visitors_id = record["parts"]["report:visitors"]["id"]
    mine = ui.report(project.id, funnel_id)
    ui.save_report(project.id, "My channel funnel", mine["query"], "user", funnel_id)  # the user renames it
    # a new version of the pack changes both reports: the renamed one stays the user's
    pack = channel_quality.PACK
    changed = tuple(dataclasses.replace(r, query={**r.query, "granularity": "day"})
                    if r.key in ("funnel", "visitors") else r for r in pack.reports)
    upgraded = dataclasses.replace(pack, version=pack.version + 1, reports=changed)
    done = PackInstaller(meta).install(project.id, upgraded, "tester", lambda: ["douyin"])
    assert "report:funnel" in done.kept
    assert "report:visitors" in done.updated
    assert ui.report(project.id, funnel_id)["name"] == "My channel funnel"
    assert ui.report(project.id, funnel_id)["query"]["granularity"] == "week"
    assert ui.report(project.id, visitors_id)["query"]["granularity"] == "day"
    assert school.packs.installs.get(project.id, "channel_quality")["version"] == pack.version + 1
    # a user's own metric of a pack metric's name stays as it is
    assert MetricCatalogue(meta).get(project.id, "ad_spend") is not None
    gone = school.packs.uninstall(project, "channel_quality")
    assert "report:funnel" in gone.kept
    assert "report:visitors" in gone.removed
    assert "dashboard:board" in gone.removed
    assert ui.report(project.id, funnel_id)["name"] == "My channel funnel"
    assert all(r["id"] != visitors_id for r in ui.reports(project.id))
    assert school.packs.installs.get(project.id, "channel_quality") is None
    with pytest.raises(PackError, match="not installed"):
        school.packs.uninstall(project, "channel_quality")
    ui.delete_report(project.id, funnel_id)
    again = school.packs.install(project, "channel_quality", "tester")  # back to a fresh install
    assert "report:funnel" in again.created


def test_an_analyst_cannot_add_metrics_through_a_pack(tmp_path: Any) -> None:
    with Platform(Settings(data_dir=tmp_path / "data")).open() as platform:
        project = platform.meta.create_project("Empty School").project
        with pytest.raises(PackError, match="metrics:edit") as refused:
            PackService(platform).install(project, "channel_quality", "analyst", can_create_metrics=False)
        assert refused.value.status == 403


def test_a_project_without_the_events_gets_the_empty_state(tmp_path: Any) -> None:
    with Platform(Settings(data_dir=tmp_path / "data")).open() as platform:
        project = platform.meta.create_project("Empty School").project
        service = PackService(platform)
        for name in PACKS:
            found = service.headline(project, name)
            assert found.empty, name
            assert set(found.missing_events) == set(PACKS[name].needs), name
        done = service.install(project, "channel_quality", "tester")  # installs with the whole-project series
        board = UIStore(platform.meta).dashboard(project.id, done.dashboard_id)
        roi = next(i["report"] for i in board["items"] if i["report"]["name"] == "各渠道 ROI ROI by channel")
        assert roi["query"]["series"] == [{"metric": "roi"}]
        assert [p.installed for p in service.list(project)].count(True) == 1


@pytest.mark.parametrize(("options", "words"), [
    ({"date_range": "week"}, "use all"), ({"date_from": "2025-13-01"}, "YYYY-MM-DD"),
    ({"date_from": "2025-05-02", "date_to": "2025-05-01"}, "after"), ({"roi_days": 7}, "roi_days 7"),
])
def test_bad_periods_say_why(school: Any, options: dict[str, Any], words: str) -> None:
    with pytest.raises(PackError, match=words):
        school.packs.headline(school.project, "channel_quality", **options)


def test_unknown_and_unavailable_packs(school: Any) -> None:
    with pytest.raises(PackError, match="no pack named") as unknown:
        school.packs.headline(school.project, "nope")
    assert unknown.value.status == 404


def test_front_back_join_equals_the_truth(school: Any) -> None:
    found = school.packs.headline(school.project, "front_back_join", date_range="all", now=NOW)
    truth = {c["channel"]: c for c in school.truth["channels"]}
    assert found.has_spend
    assert found.spend == pytest.approx(school.truth["summary"]["spend"], abs=0.05)
    assert {row.channel for row in found.channels} == set(truth)
    for row in found.channels:
        expected = truth[row.channel]
        assert row.revenue == pytest.approx(expected["revenue"], abs=0.01)
        assert row.spend == pytest.approx(expected["spend"], abs=0.01)
        assert row.roi == (None if expected["roi"] is None else pytest.approx(expected["roi"], abs=5e-4))
        assert len(row.roi_by_week) == len(found.weeks)
        weekly_spend = sum(v or 0 for v in row.spend_by_week)
        assert weekly_spend == pytest.approx(expected["spend"], abs=0.05)


def test_the_import_guide_joins_spend_leads_and_orders(tmp_path: Any) -> None:
    """The guide's template files, imported as they are, make a channel's ROI: the order names the buyer by the
    phone of the CRM lead, One-ID joins them, and the revenue counts for the lead's channel."""
    templates = PACKS["front_back_join"].templates
    kinds = {"spend.csv": "spend", "leads.csv": "events", "lead_channels.csv": "profiles", "orders.csv": "events"}
    assert set(templates) == set(kinds)
    with Platform(Settings(data_dir=tmp_path / "data")).open() as platform:
        project = platform.meta.create_project("Import School").project
        for name, kind in kinds.items():
            path = tmp_path / name
            path.write_text(templates[name], encoding="utf-8")
            summary = run_import(platform, ImportOptions(kind=kind, path=path, project=project.name))
            assert summary.rejected == 0, (name, summary.first_rejections)
            assert summary.imported == summary.rows_read > 0, name
        found = PackService(platform).headline(project, "front_back_join", date_from="2026-09-01",
                                               date_to="2026-09-30")
    douyin = next(row for row in found.channels if row.channel == "douyin")
    assert douyin.revenue == 1999
    assert douyin.spend == pytest.approx(1280.5)
    assert douyin.roi == pytest.approx(1999 / 1280.5, abs=1e-6)


def test_realtime_board_counts_and_installs_its_alerts(school: Any) -> None:
    found = school.packs.headline(school.project, "realtime_board", date_range="all", now=NOW)
    truth = {c["channel"]: c for c in school.truth["channels"]}
    assert {row.channel: row.leads for row in found.channels} == {c: t["leads"] for c, t in truth.items()}
    assert found.orders == school.truth["summary"]["orders"]
    assert found.last_day == found.date_to
    assert found.leads_last_day == sum(row.leads_last_day for row in found.channels)
    assert found.card.value == found.leads_last_day
    done = school.packs.install(school.project, "realtime_board", "tester")
    assert {"alert:leads_band", "alert:orders_band"} <= set(done.created)
    board = UIStore(school.platform.meta).dashboard(school.project.id, done.dashboard_id)
    assert board["refresh_seconds"] == 10
    with_alerts = school.packs.headline(school.project, "realtime_board", now=NOW)
    assert sorted(a.name for a in with_alerts.alerts) == ["线索数异常 Leads outside their usual band",
                                                          "订单数异常 Orders outside their usual band"]
    gone = school.packs.uninstall(school.project, "realtime_board")
    assert {"alert:leads_band", "alert:orders_band"} <= set(gone.removed)
    assert school.packs.headline(school.project, "realtime_board", now=NOW).alerts == []


def test_learning_indicators_equal_the_truth(school: Any) -> None:
    found = school.packs.headline(school.project, "learning_indicators", date_range="all", now=NOW)
    learning = school.truth["learning"]
    assert found.attendance_rate == pytest.approx(learning["attendance_rate"], abs=5e-4)
    assert found.card.value == found.attendance_rate
    truth = {k["knowledge_point"]: k for k in learning["knowledge_points"]}
    assert {k.knowledge_point for k in found.knowledge_points} == {k for k, v in truth.items() if v["answers"]}
    for point in found.knowledge_points:
        assert (point.answers, point.correct) == (truth[point.knowledge_point]["answers"],
                                                  truth[point.knowledge_point]["correct"])
    accuracies = [p.accuracy for p in found.knowledge_points]
    assert accuracies == sorted(accuracies)  # the hardest first
    assert found.scheduled_lessons == learning["scheduled_lessons"]
    for rows in (found.courses, found.classes, found.teachers):  # per course, class and teacher add up to the whole
        assert rows
        scheduled = sum(r.scheduled_lessons for r in rows)
        assert scheduled == learning["scheduled_lessons"]
        weighted = sum((r.attendance_rate or 0) * r.scheduled_lessons for r in rows) / scheduled
        assert weighted == pytest.approx(found.attendance_rate, abs=1e-4)
    assert {t.teacher_id for t in found.teachers} <= {t["teacher_id"] for t in learning["teachers"]}


def test_referral_equals_the_truth(school: Any) -> None:
    found = school.packs.headline(school.project, "referral", date_range="all", now=NOW)
    referrals = school.truth["referrals"]
    assert found.referral_rate == pytest.approx(referrals["referral_rate"], abs=5e-4)
    assert found.referred_signups == referrals["referred_leads"]
    referees: dict[str, int] = {}
    for edge in referrals["edges"]:
        referees[edge["referrer"]["login_id"]] = referees.get(edge["referrer"]["login_id"], 0) + 1
    assert found.top_referrers[0].referees == max(referees.values())
    for top in found.top_referrers:
        assert top.referees == referees[top.referrer_id]
    assert referrals["top_referrers"][0]["login_id"] == found.top_referrers[0].referrer_id


def test_b2b_health_warns_of_the_declining_institutions(school: Any) -> None:
    found = school.packs.headline(school.project, "b2b_health", date_range="all", now=NOW)
    truth = {i["institution_id"]: i for i in school.truth["institutions"]}
    assert set(found.declining) == {k for k, v in truth.items() if v["health"] == "declining"}
    assert found.card.value == len(found.declining)
    for row in found.institutions:
        expected = truth[row.institution_id]
        for key in ("login_days_7", "login_days_30", "staff_login_days_7", "staff_login_days_30", "enrolments_30",
                    "enrolments_prev_30", "enrolment_growth", "staff", "name"):
            assert getattr(row, key) == expected[key], (row.institution_id, key)


def test_school_accounts_equal_the_truth(school: Any) -> None:
    found = school.packs.headline(school.project, "school_accounts", date_range="all", now=NOW)
    truth = {s["school_id"]: s for s in school.truth["schools"]}
    assert {s.school_id for s in found.schools} == set(truth)
    for row in found.schools:
        expected = truth[row.school_id]
        for key in ("tier", "students", "teachers", "influence", "relationship", "active_parents", "active_teachers"):
            assert getattr(row, key) == expected[key], (row.school_id, key)
        assert row.parent_adoption == pytest.approx(expected["parent_adoption"], abs=5e-4)
        assert row.teacher_adoption == pytest.approx(expected["teacher_adoption"], abs=5e-4)


@pytest.mark.parametrize("name", sorted(PACKS))
def test_every_pack_installs_idempotently_and_uninstalls(school: Any, name: str) -> None:
    first = school.packs.install(school.project, name, "tester")
    again = school.packs.install(school.project, name, "tester")
    assert again.created == []
    assert again.updated == []
    assert sorted(again.unchanged) == sorted(first.created + first.unchanged + first.updated)
    gone = school.packs.uninstall(school.project, name)
    assert {k for k in first.created if not k.startswith("metric:")} <= set(gone.removed)


def test_renewal_rate_equals_the_truth(school: Any) -> None:
    found = school.packs.headline(school.project, "renewal", date_range="all", now=NOW)
    assert found.renewal_rate == pytest.approx(school.truth["renewal"]["renewal_rate"], abs=5e-4)
    assert found.card.value == found.renewal_rate
    assert all(c.renewal_rate is None or 0 <= c.renewal_rate <= 1 for c in found.courses)


def test_one_person_counts_every_learner_by_linked_sources(school: Any) -> None:
    found = school.packs.headline(school.project, "one_person", date_range="all", now=NOW)
    kinds = school.truth["summary"]["persons_by_kind"]
    # each learner has CRM lead events; each active parent and teacher of a school uses the school app
    assert found.persons == kinds["learners"] + kinds["school_teachers_and_parents"]
    assert sum(c.persons for c in found.coverage) == found.persons
    assert found.linked_2_or_more == sum(c.persons for c in found.coverage if c.sources >= 2)
    # every learner who paid took part in lessons or trials besides the CRM: linked across at least 2 sources
    assert found.linked_2_or_more >= school.truth["summary"]["paying_students"]


def test_supervision_lists_the_students_at_risk(school: Any) -> None:
    done = school.packs.install(school.project, "supervision", "tester")  # runs missed_3_in_a_row
    assert done.dashboard_id is not None
    found = school.packs.headline(school.project, "supervision", date_range="all")
    at_risk = school.truth["learning"]["at_risk"]
    assert found.at_risk == len({entry["mobile"] for entry in at_risk})
    assert found.card.value == found.at_risk
    assert len(found.persons) == min(found.at_risk, 100)
    assert sum(c.students for c in found.classes) >= found.at_risk
