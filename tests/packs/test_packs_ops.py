"""The packs built on tags and journeys, on the small simulated school: lead tiering (the pool by the
lead_propensity tier, its filters, advisors' conversion, the assignment journey), automated SOPs (five draft
journeys that, switched on, enter people), tiered supervision (tiers, the "3 missed in a row" list with who came
back, the recall journey) and renewal intent (courses ending in the next 30 days, the renewal rate by tier), each
against the simulation's truth or an independent computation, and their empty state on a project without
events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pytest
from sqlalchemy import select

from edupulse.auth.permissions import Role
from edupulse.conf import Settings
from edupulse.journeys.runtime import JourneyRuntime
from edupulse.journeys.service import Actor
from edupulse.meta.journey_models import JourneyEntry
from edupulse.packs import automated_sops, lead_tiering, renewal
from edupulse.packs.headline import PackError
from edupulse.packs.service import PackService
from edupulse.runtime import Platform
from edupulse.store.base import TagWrite
from edupulse.tags.run import TagService
from pack_school import NOW, school_at

OURS = ("lead_tiering", "automated_sops", "supervision", "renewal")


def mobile(identities: dict[str, list[str]]) -> str:
    return identities["mobile"][0]


# lead tiering -----------------------------------------------------------------------------------


def lead_tiers(school: Any) -> Any:
    """The lead pack installed, with lead_propensity published: the model's own values when it passes its gate
    on the small school (it is close to the gate's spread limit), else values as a published model stores them
    for the pool's leads, tiered by person id. Returns the headline."""
    school.packs.install(school.project, "lead_tiering", "tester", now=NOW)
    found = school.packs.headline(school.project, "lead_tiering", date_range="all", now=NOW)
    if found.tag_ready:
        return found
    assert found.model_error, "a model without scores says why"
    _, pool = school.packs.tag_service().values(school.project, "lead_propensity", limit=1)
    assert pool == []
    # the model scores the leads only (the journey enters every person of the high tier): so do these values
    leads = sorted(int(r[0]) for r in school.platform.query_service().run(
        school.project, {"kind": "sql", "sql": lead_tiering.leads_sql()}, now=NOW).result.rows)
    assert leads
    _publish(school, "lead_propensity", {p: ("high", 0.9) if p % 10 == 0 else ("medium", 0.5) if p % 10 < 4
                                         else ("low", 0.1) for p in leads})
    return school.packs.headline(school.project, "lead_tiering", date_range="all", now=NOW)


def test_lead_tiering_tiers_the_whole_pool(school: Any) -> None:
    found = lead_tiers(school)
    assert not found.empty
    assert found.tag_ready
    assert found.model_error is None
    truth = school.truth["channels"]
    assert sum(t.leads for t in found.tiers) == found.leads_total == sum(c["leads"] for c in truth)
    assert sum(t.first_orders for t in found.tiers) == sum(c["first_orders"] for c in truth)
    assert [t.tier for t in found.tiers] == ["high", "medium", "low"]
    high = next(t for t in found.tiers if t.tier == "high")
    assert found.card.value == high.leads > 0
    scores = [lead.score for lead in found.leads]
    assert scores == sorted(scores, reverse=True)
    assert all(lead.reasons and lead.reasons_zh for lead in found.leads)
    assert set(found.channels) == {c["channel"] for c in truth}
    # the tag's values as the API shows them (the person page, the tag's page): reasons in both languages
    tags = school.packs.tag_service()
    _, shown = tags.values(school.project, "lead_propensity", limit=5)
    wire = [v.to_json(tags.tag(school.project, "lead_propensity")) for v in shown]
    assert wire
    assert all(len(v["reasons"]) == len(v["reasons_zh"]) > 0 for v in wire)
    assert all("分数" in text for v in wire for text in v["reasons_zh"])


def test_lead_tiering_filters_by_channel_and_age(school: Any) -> None:
    truth = {c["channel"]: c for c in school.truth["channels"]}
    for channel in ("douyin", "referral"):
        found = school.packs.headline(school.project, "lead_tiering", date_range="all", now=NOW, channel=channel)
        assert found.leads_total == truth[channel]["leads"]
        assert sum(t.first_orders for t in found.tiers) == truth[channel]["first_orders"]
        assert {lead.channel for lead in found.leads} == {channel}
    young = school.packs.headline(school.project, "lead_tiering", date_range="all", now=NOW, max_age_days=20)
    every = school.packs.headline(school.project, "lead_tiering", date_range="all", now=NOW)
    assert 0 < young.leads_total < every.leads_total
    assert all(lead.age_days <= 20 for lead in young.leads)
    assert young.leads_total == sum(t.leads for t in young.tiers)
    with pytest.raises(PackError, match="max_age_days"):
        school.packs.headline(school.project, "lead_tiering", max_age_days=-1)


def test_advisor_conversion_equals_a_funnel(school: Any) -> None:
    """Leads assigned → first order per advisor, against the funnel analysis (lead_assigned then a first
    order_paid, broken down by the advisor of the assignment)."""
    found = school.packs.headline(school.project, "lead_tiering", date_range="all", now=NOW)
    funnel = school.platform.query_service().run(school.project, {
        "kind": "funnel", "steps": [{"event": "lead_assigned"},
                                    {"event": "order_paid", "filters": [{"property": "order_type", "value": "first"}]}],
        "window": {"value": 3650, "unit": "day"},
        "date_range": {"date_from": found.date_from, "date_to": found.date_to},
        "breakdown": {"properties": ["advisor_id"], "limit": 50}}, now=NOW).to_wire()
    expected = {}
    for row in funnel["results"]:
        counts = [s["count"] for s in row["steps"]]
        expected[str(row["breakdown"][0])] = (counts[0], counts[1])
    assert {a.advisor_id: (a.leads, a.first_orders) for a in found.advisors} == expected
    assert {a.advisor_id for a in found.advisors} == {a["advisor_id"] for a in school.truth["advisors"]}


def test_the_assignment_journey_gives_advisors_the_high_tier(school: Any) -> None:
    """Switched on 20 days before the end of the data, the journey's first morning makes a task of each high-tier
    lead for the two advisors; each advisor's conversion counts the leads who paid a first order after their task
    (checked against the first orders in the store)."""
    found = lead_tiers(school)
    assert found.assign_journey is not None
    assert found.assign_journey.status == "draft"
    accounts = school.platform.meta.accounts
    for email in ("adv1@school.example", "adv2@school.example"):
        user = accounts.create_user(email, "correct horse battery staple")
        accounts.set_role(user.id, school.project.id, Role.advisor)
    service = school.packs.journey_service()
    started = NOW - dt.timedelta(days=20)
    service.transition(school.project, found.assign_journey.journey_id, "start", Actor("tester"), started)
    runtime = JourneyRuntime(school.platform.meta, school.platform.query_service(), school.platform.settings,
                             store=school.platform.store)
    morning = started + dt.timedelta(days=1)
    try:
        runtime.schedule_job().run(morning)  # the next 09:00 after the start
        runtime.worker.tick(morning)
    finally:
        runtime.close()
    journey = service.store.get(school.project.id, found.assign_journey.journey_id)
    assert journey is not None
    arms = service.results(school.project, journey)["arms"]
    high = next(t for t in found.tiers if t.tier == "high").leads
    assert arms["treatment"]["entered"] + arms["holdout"]["entered"] == high > 0
    after = school.packs.headline(school.project, "lead_tiering", date_range="all", now=NOW)
    assert {a.advisor for a in after.advisor_tasks} <= {"adv1@school.example", "adv2@school.example"}
    assert sum(a.tasks for a in after.advisor_tasks) == arms["treatment"]["entered"]
    assert all(a.open == a.tasks for a in after.advisor_tasks)
    firsts = dict(school.platform.store.query(
        "SELECT resolved_person_id, min(time) FROM events_resolved WHERE project_id = ? AND event = 'order_paid' "
        "AND prop_order_type = 'first' GROUP BY resolved_person_id", [school.project.id]).rows)
    treated = [lead for lead in found.leads if lead.tier == "high"]
    held = set()
    with school.platform.meta.session() as s:
        for (key,) in s.execute(select(JourneyEntry.person_key).where(JourneyEntry.journey_id == journey.id,
                                                                      JourneyEntry.arm == "holdout")):
            held.add(key.split(":", 1)[1])

    def paid_after(lead: Any) -> bool:
        moment = firsts.get(lead.person_id)
        if moment is None:
            return False
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)) >= morning

    expected = sum(1 for lead in treated
                   if not {i for ids in lead.identities.values() for i in ids} & held and paid_after(lead))
    assert sum(a.first_orders for a in after.advisor_tasks) == expected
    service.transition(school.project, journey.id, "pause", Actor("tester"), NOW)
    assert "journey:assign_high_intent" in school.packs.uninstall(school.project, "lead_tiering").kept  # it ran


# supervision ------------------------------------------------------------------------------------


def test_supervision_tiers_and_who_came_back(school: Any) -> None:
    done = school.packs.install(school.project, "supervision", "tester", now=NOW)
    assert {"tag:tiers", "journey:recall_missed_3"} <= set(done.created + done.unchanged)
    found = school.packs.headline(school.project, "supervision", date_range="all", now=NOW)
    at_risk = school.truth["learning"]["at_risk"]  # one entry per student and class
    # students: one who missed 3 in a row in two classes counts once, by the first such class (the tag's, whose
    # third miss came earliest; the truth lists a student's enrolments in order)
    by_student: dict[str, bool] = {}
    for entry in at_risk:
        by_student.setdefault(entry["mobile"], entry["came_back"])
    assert found.at_risk == len(by_student)
    assert {mobile(s.identities): s.came_back for s in found.students} == by_student
    assert found.came_back == sum(1 for back in by_student.values() if back)
    counts = {t.tier: t.students for t in found.tiers}
    assert list(counts) == ["steady", "slipping", "at_risk", "churned"]
    assert all(n > 0 for n in counts.values())
    tags = school.packs.tag_service()
    _, churned = tags.values(school.project, "supervision_tier", limit=1000)
    ids = tags.identities(school.project, [int(v.unit) for v in churned if v.value == "churned"])
    assert {mobile(i) for i in ids.values()} == {c["mobile"] for c in school.truth["learning"]["churned"]}
    # a student who missed 3 in a row and did not come back is never steady
    assert all(s.tier != "steady" for s in found.students if not s.came_back and s.tier)
    assert found.recall is not None
    assert found.recall.status == "draft"
    assert (found.recall.treated, found.recall.holdout) == (0, 0)


# renewal ----------------------------------------------------------------------------------------


def test_renewal_without_a_published_model_lists_the_courses_ending(school: Any) -> None:
    school.packs.install(school.project, "renewal", "tester", now=NOW)
    found = school.packs.headline(school.project, "renewal", date_range="all", now=NOW)
    assert found.renewal_rate == pytest.approx(school.truth["renewal"]["renewal_rate"], abs=5e-4)
    assert not found.tag_ready
    assert "history" in (found.model_error or "")  # the small school has too few ended courses to learn from
    assert [t.renewal_rate for t in found.by_tier] == [None, None, None]
    assert found.ending_soon == len(found.ending) > 0
    end = dt.datetime.fromisoformat(found.date_to + "T00:00:00+08:00") + dt.timedelta(days=1)
    ends = [dt.datetime.fromisoformat(e.ends_at) for e in found.ending]
    assert ends == sorted(ends)
    assert all(end < moment <= end + dt.timedelta(days=30) for moment in ends)
    assert all(e.lessons_scheduled < e.lessons and e.estimated for e in found.ending)


def test_course_end_is_the_schedule_or_its_estimate() -> None:
    first = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    last = first + dt.timedelta(days=21)
    assert renewal.course_end(4, 4, first, last) == (last, False)
    assert renewal.course_end(4, 6, first, last) == (last + dt.timedelta(days=14), True)
    assert renewal.course_end(1, 3, first, first) == (first + dt.timedelta(days=14), True)


def _publish(school: Any, name: str, tiers: dict[int, tuple[str, float]]) -> None:
    """Values of a model tag as a published model stores them (a score, its tier and reasons)."""
    tags = TagService(school.platform.meta, school.platform.store, school.platform.query_service())
    tag = tags.tag(school.project, name)
    run = tags.catalog.start_run(tag, NOW.date(), "manual")
    staged = pa.table({"unit": pa.array(list(tiers), pa.int64()),
                       "value": pa.array([t for t, _ in tiers.values()], pa.string()),
                       "number": pa.array([s for _, s in tiers.values()], pa.float64()),
                       "detail": pa.array([orjson.dumps([["attendance", 0.9, 1.2]]).decode()] * len(tiers),
                                          pa.string())})
    school.platform.store.write_tag_values(TagWrite(
        project_id=school.project.id, tag_id=tag.id, run_id=run.id, day=NOW.date(), computed_at=NOW, person=True,
        select="SELECT unit, value, number, detail FROM tag_upload", staged=staged))
    tags.catalog.finish_run(run.id, changed=len(tiers), units=len(tiers))


def test_renewal_rate_by_tier_after_the_fact(school: Any) -> None:
    """With renewal propensity values in force, each tier's renewal rate is the truth's over the ended courses
    of that tier's students, and the students ending soon carry their tier, score and reasons."""
    tags = school.packs.tag_service()
    persons = tags.identities(school.project, list(range(1, 5000)))
    by_mobile = {mobile(i): p for p, i in persons.items() if "mobile" in i}
    candidates = school.truth["renewal"]["candidates"]
    tier_of = {by_mobile[c["mobile"]]: ("high", 0.8) if i % 2 else ("low", 0.2) for i, c in enumerate(candidates)}
    first = school.packs.headline(school.project, "renewal", date_range="all", now=NOW)
    for e in first.ending:
        tier_of.setdefault(e.person_id, ("medium", 0.5))
    _publish(school, "renewal_propensity", tier_of)
    found = school.packs.headline(school.project, "renewal", date_range="all", now=NOW)
    assert found.tag_ready, found.model_error
    for tier in ("high", "low"):
        mine = [c for c in candidates if tier_of[by_mobile[c["mobile"]]][0] == tier]
        rate = next(t.renewal_rate for t in found.by_tier if t.tier == tier)
        assert rate == pytest.approx(sum(c["renewed"] for c in mine) / len(mine), abs=5e-4), tier
    assert all(e.tier == tier_of[e.person_id][0] and e.score == tier_of[e.person_id][1] and e.reasons
               for e in found.ending)
    assert found.renewal_rate == pytest.approx(school.truth["renewal"]["renewal_rate"], abs=5e-4)


# automated SOPs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from school_at(tmp_path_factory.mktemp("sops"), learners=60, days=30)


def track(who: str, event: str, at: dt.datetime, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "distinct_id": who, "distinct_id_type": "login_id",
            "time": at.isoformat(), "properties": props}


def test_every_sop_is_a_valid_journey_that_enters_people(small: Any) -> None:
    packs, project, platform = small.packs, small.project, small.platform
    first = packs.install(project, "automated_sops", "tester", now=NOW)
    assert {f"journey:{p.key}" for p in automated_sops.SOPS} <= set(first.created)
    again = packs.install(project, "automated_sops", "tester", now=NOW)
    assert again.created == []
    assert again.updated == []
    before = packs.headline(project, "automated_sops", now=NOW)
    assert before.installed
    assert before.running == 0
    assert [s.status for s in before.sops] == ["draft"] * 5
    service = packs.journey_service()
    for sop in before.sops:
        assert sop.journey_id is not None
        service.transition(project, sop.journey_id, "start", Actor("tester"), NOW)
    runtime = JourneyRuntime(platform.meta, platform.query_service(), platform.settings, wal=platform.wal,
                             loader=platform.loader, ingestor=platform.ingestor, store=platform.store,
                             clock=lambda: NOW)
    try:
        runtime.schedule_job().run(NOW)  # the tag and segment journeys take note of who is in now
        soon = NOW + dt.timedelta(minutes=5)
        records = []
        for i in range(20):
            who = f"sop{i}"
            records += [track(who, "lead_created", soon, channel="douyin"),
                        track(who, "trial_booked", soon, trial_at=(soon + dt.timedelta(days=1)).isoformat()),
                        track(who, "order_paid", soon, order_type="first", amount=100, order_id=f"sop-o{i}")]
            for k in range(3):  # three lessons of a new class, missed
                starts = NOW - dt.timedelta(days=3 - k)
                records.append({**track(who, "lesson_scheduled", starts - dt.timedelta(days=1), lesson_id=f"sop{i}-{k}",
                                        course_id="sop-course", starts_at=starts.isoformat()),
                                "groups": {"class": f"sop-class-{i}"}})
            records += [track(who, "quiz_answered", soon + dt.timedelta(minutes=q), question_id=f"q{q}", correct=True,
                              lesson_id=f"sop{i}-2") for q in range(5)]
        outcome = platform.ingestor.ingest(project, records, source="test")
        assert outcome.rejected == 0, outcome.results[:3]
        assert runtime.feed is not None
        runtime.feed.forget()
        assert runtime.feed.step() > 0
        platform.flush()
        later = NOW + dt.timedelta(hours=2)
        packs.tag_service().run(project, "missed_3_in_a_row", later)
        runtime.schedule_job().run(later)
    finally:
        runtime.close()
    found = packs.headline(project, "automated_sops", now=NOW)
    assert found.running == found.card.value == 5
    for sop in found.sops:
        assert sop.treatment is not None
        assert sop.holdout is not None
        assert sop.treatment.entered + sop.holdout.entered == 20, sop.key
        assert sop.holdout.entered <= 8, sop.key  # a 10% holdout of 20
    gone = packs.uninstall(project, "automated_sops")
    assert {f"journey:{p.key}" for p in automated_sops.SOPS} <= set(gone.kept)  # running: they stay


def test_installing_journeys_needs_journeys_edit(small: Any) -> None:
    with pytest.raises(PackError, match="journeys:edit") as refused:
        small.packs.install(small.project, "lead_tiering", "viewer", can_edit_journeys=False)
    assert refused.value.status == 403


# empty state ------------------------------------------------------------------------------------


def test_a_project_without_events_gets_the_empty_state(tmp_path: Any) -> None:
    with Platform(Settings(data_dir=tmp_path / "data")).open() as platform:
        project = platform.meta.create_project("Empty School").project
        service = PackService(platform)
        for name in OURS:
            service.install(project, name, "tester")
            found = service.headline(project, name)
            assert found.empty, name
            assert set(found.missing_events) == set(service.pack(name).needs), name
        lead = service.headline(project, "lead_tiering")
        assert not lead.tag_ready
        assert lead.model_error
        assert lead.leads == []
        assert lead.card.value is None
        supervision = service.headline(project, "supervision")
        assert supervision.at_risk == 0
        assert supervision.students == []
        assert [t.students for t in supervision.tiers] == [0, 0, 0, 0]
        renewing = service.headline(project, "renewal")
        assert not renewing.tag_ready
        assert renewing.ending == []
        sops = service.headline(project, "automated_sops")
        assert sops.installed
        assert sops.running == 0
        assert all(s.status == "draft" for s in sops.sops)
