"""Event triggers on the durable ingestion log: a person enters when their event is acknowledged; "did A but not
B within T" (booked a trial, not attended within 2 hours) waits and is cancelled by B; a wait for an event moves on
when it arrives; exit events end a journey; goal events count as conversions within the goal's time; history
from before the start triggers nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from journey_app import JourneyApp, build
from receivers import receiver
from sqlalchemy import select

from edupulse.journeys.person import Person
from edupulse.meta.journey_models import JourneyEntry


@pytest.fixture
def ja(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JourneyApp]:
    yield from build(tmp_path_factory.mktemp("events"))


def track(who: str, event: str, at: dt.datetime, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "distinct_id": who, "distinct_id_type": "login_id",
            "time": at.isoformat(), "properties": props}


def ingest(ja: JourneyApp, *records: dict[str, Any]) -> int:
    outcome = ja.platform.ingestor.ingest(ja.project, list(records))
    assert outcome.rejected == 0, outcome.results
    assert ja.runtime.feed is not None
    return ja.runtime.feed.step()


def states(ja: JourneyApp, journey_id: int) -> dict[str, tuple[str, Any]]:
    with ja.platform.meta.session() as s:
        return {e.person_key: (e.state, e.converted_at) for e in s.scalars(
            select(JourneyEntry).where(JourneyEntry.journey_id == journey_id))}


def start(ja: JourneyApp, spec: dict[str, Any]) -> int:
    if not ja.client.get("/api/v1/journey-channels", headers=ja.as_("admin")).json()["channels"]:
        ja.client.put("/api/v1/journey-channels/crm", headers=ja.as_("admin"),
                      json={"kind": "webhook", "secrets": {"signing_secret": "s"}})
    made = ja.client.post("/api/v1/journeys", json=spec, headers=ja.as_("analyst"))
    assert made.status_code == 201, made.text
    jid = made.json()["id"]
    assert ja.client.post(f"/api/v1/journeys/{jid}/start", headers=ja.as_("analyst")).status_code == 200
    return int(jid)


def hook(url: str) -> dict[str, Any]:
    return {"action": "webhook", "url": url, "channel": "crm",
            "body": {"who": "{{person.login_id}}", "course": "{{event.properties.course_id}}"}}


def test_booked_but_not_attended_within_a_day(ja: JourneyApp) -> None:
    now = dt.datetime.now(dt.UTC)
    with receiver() as rx:
        jid = start(ja, {"name": "trial no-show", "holdout": 0,
                         "trigger": {"event": "trial_booked", "filters": [{"property": "course_id", "op": "neq",
                                                                           "value": "free"}],
                                     "not_followed_by": {"event": "trial_attended",
                                                         "within": {"value": 2, "unit": "hour"}}},
                         "goal": {"event": "order_paid", "within": {"value": 7, "unit": "day"}},
                         "steps": [hook(rx.url + "/noshow")]})
        earlier = now + dt.timedelta(seconds=1)
        assert ingest(ja, track("s1", "trial_booked", earlier, course_id="math"),
                      track("s2", "trial_booked", earlier, course_id="math"),
                      track("s3", "trial_booked", earlier, course_id="free")) == 3
        assert ingest(ja, track("s2", "trial_attended", now + dt.timedelta(hours=1))) == 1
        assert {k: v[0] for k, v in states(ja, jid).items()} == {"login_id:s1": "pending",
                                                                  "login_id:s2": "cancelled"}
        ja.runtime.worker.tick(earlier + dt.timedelta(minutes=119))
        assert rx.requests == []
        ja.runtime.worker.tick(earlier + dt.timedelta(hours=2))
        assert [r.json() for r in rx.requests] == [{"who": "s1", "course": "math"}]
        paid = earlier + dt.timedelta(hours=3)
        ingest(ja, track("s1", "order_paid", paid), track("s2", "order_paid", paid))  # s2 never entered
    assert states(ja, jid)["login_id:s1"][1] is not None
    results = ja.client.get(f"/api/v1/journeys/{jid}/results", headers=ja.as_("viewer")).json()
    assert results["arms"]["treatment"] == {"entered": 1, "sent": 1, "converted": 1}


def test_waits_for_an_event_and_exit_events(ja: JourneyApp) -> None:
    now = dt.datetime.now(dt.UTC)
    with receiver() as rx:
        remind = start(ja, {"name": "remind", "holdout": 0, "trigger": {"event": "lesson_scheduled"},
                            "steps": [{"wait": {"event": "lesson_attended", "max": {"value": 2, "unit": "hour"}}},
                                      {"if": {"received": "lesson_attended"}, "then": [{"exit": "came"}],
                                       "else": [hook(rx.url + "/missed")]}]})
        nurture = start(ja, {"name": "nurture", "holdout": 0, "trigger": {"event": "lead_created"},
                             "exit_on": ["trial_booked"],
                             "steps": [{"wait": {"value": 1, "unit": "day"}}, hook(rx.url + "/nurture")]})
        ingest(ja, track("a", "lesson_scheduled", now, course_id="c1"),
               track("b", "lesson_scheduled", now, course_id="c1"), track("c", "lead_created", now))
        ja.runtime.worker.tick(now + dt.timedelta(minutes=1))
        ingest(ja, track("a", "lesson_attended", now + dt.timedelta(minutes=5)),
               track("c", "trial_booked", now + dt.timedelta(minutes=6)))
        ja.runtime.worker.tick(now + dt.timedelta(minutes=6))
        assert states(ja, remind)["login_id:a"][0] == "exited"
        assert states(ja, remind)["login_id:b"][0] == "waiting"
        assert states(ja, nurture)["login_id:c"][0] == "exited"
        ja.runtime.worker.tick(now + dt.timedelta(hours=3))
        assert [(r.path, r.json()["who"]) for r in rx.requests] == [("/missed", "b")]
        ja.runtime.worker.tick(now + dt.timedelta(days=2))
        assert len(rx.requests) == 1


def test_history_from_before_the_start_triggers_nothing(ja: JourneyApp) -> None:
    jid = start(ja, {"name": "fresh only", "holdout": 0, "trigger": {"event": "trial_booked"},
                     "steps": [{"exit": True}]})
    ingest(ja, track("old", "trial_booked", dt.datetime.now(dt.UTC) - dt.timedelta(days=3)),
           track("new", "trial_booked", dt.datetime.now(dt.UTC)))
    assert list(states(ja, jid)) == ["login_id:new"]


def test_an_event_carries_its_persons_properties(ja: JourneyApp) -> None:
    now = dt.datetime.now(dt.UTC)
    with receiver() as rx:
        start(ja, {"name": "by grade", "holdout": 0, "trigger": {"event": "homework_late"},
                   "steps": [{"if": {"property": "person.grade", "op": "gte", "value": 5},
                              "then": [hook(rx.url + "/older")], "else": [hook(rx.url + "/younger")]}]})
        ingest(ja, track("s1", "homework_late", now), track("s4", "homework_late", now))
        ja.runtime.worker.tick(now + dt.timedelta(minutes=1))
        assert sorted((r.path, r.json()["who"]) for r in rx.requests) == [("/older", "s1"), ("/younger", "s4")]


def test_entering_and_leaving_a_segment(ja: JourneyApp) -> None:
    from edupulse.ops.segments import SegmentCatalog

    SegmentCatalog(ja.platform.meta).create(ja.project.id, "senior", {"condition": {
        "property": "person.grade", "op": "gte", "value": 5}})
    came = start(ja, {"name": "became senior", "holdout": 0, "trigger": {"segment_entered": "senior"},
                      "steps": [{"exit": True}]})
    went = start(ja, {"name": "left senior", "holdout": 0, "trigger": {"segment_left": "senior"},
                      "steps": [{"exit": True}]})
    job = ja.runtime.schedule_job()
    now = dt.datetime.now(dt.UTC)
    assert job.run(now) == {came: 0, went: 0}  # the first check takes note of who is in
    outcome = ja.platform.ingestor.ingest(ja.project, [
        {"type": "profile_set", "distinct_id": "s2", "distinct_id_type": "login_id", "properties": {"grade": 7}},
        {"type": "profile_set", "distinct_id": "s1", "distinct_id_type": "login_id", "properties": {"grade": 2}}])
    assert outcome.rejected == 0
    ja.platform.flush()
    assert job.run(now + dt.timedelta(minutes=5)) == {came: 1, went: 1}
    assert list(states(ja, came)) == ["login_id:s2"]
    assert list(states(ja, went)) == ["login_id:s1"]
    assert job.run(now + dt.timedelta(minutes=10)) == {came: 0, went: 0}


def test_tags_as_audience_condition_and_trigger(ja: JourneyApp) -> None:
    made = ja.client.post("/api/v1/tags", headers=ja.as_("analyst"), json={
        "name": "missed_in_a_row", "definition": {"type": "uploaded", "mode": "overwrite"}})
    assert made.status_code == 201, made.text

    def upload(csv: str) -> None:
        done = ja.client.post("/api/v1/tags/missed_in_a_row/upload", content=csv.encode(), headers=ja.as_("analyst"))
        assert done.json()["run"]["status"] == "finished", done.text

    upload("login_id,value\ns1,3\ns2,2\n")
    came = start(ja, {"name": "three missed", "holdout": 0, "trigger": {"tag_entered": {"tag": "missed_in_a_row",
                                                                                         "value": "3"}},
                      "steps": [{"exit": True}]})
    now = dt.datetime.now(dt.UTC)
    daily = start(ja, {"name": "tagged daily", "holdout": 0,
                       "trigger": {"schedule": {"every": "once", "date": now.astimezone(ZoneInfo(ja.project.timezone))
                                                .date().isoformat(), "at": "00:00"},
                                   "audience": {"tag": "missed_in_a_row"}},
                       "steps": [{"if": {"tag": "missed_in_a_row", "value": "3"}, "then": [{"exit": "three"}],
                                  "else": [{"exit": "fewer"}]}]})
    job = ja.runtime.schedule_job()
    assert job.run(now) == {came: 0}  # the first check notes who has the tag; the once-schedule passed before start
    ja.runtime.worker.tick(now + dt.timedelta(seconds=1))
    upload("login_id,value\ns1,3\ns2,3\ns4,1\n")
    assert job.run(now + dt.timedelta(minutes=5))[came] == 1
    assert list(states(ja, came)) == ["login_id:s2"]
    members = sorted(p.key for p in ja.runtime.audience.tags.members(ja.project.id, "missed_in_a_row", None))
    assert members == ["login_id:s1", "login_id:s2", "login_id:s4"]
    for trigger, persons in (({"tag_entered": {"tag": "missed_in_a_row", "value": "3"}}, 2),
                             ({"tag_left": {"tag": "missed_in_a_row"}}, 3),
                             ({"schedule": {"every": "day", "at": "09:00"}, "audience": {"tag": "missed_in_a_row",
                                                                                          "value": "1"}}, 1)):
        reach = ja.client.post("/api/v1/journeys/preview", headers=ja.as_("viewer"),
                               json={"name": "p", "trigger": trigger, "steps": [{"exit": True}]})
        assert reach.json() == {"persons": persons, "basis": "tag"}, trigger
    assert daily not in job.run(now + dt.timedelta(minutes=6))
    audience = ja.runtime.audience
    assert audience.has_tag(ja.project.id, Person.of([("login_id", "s1")]), "missed_in_a_row", "3")
    assert not audience.has_tag(ja.project.id, Person.of([("login_id", "s4")]), "missed_in_a_row", "3")
    assert not audience.has_tag(ja.project.id, Person.of([("login_id", "s4")]), "no_such_tag", None)


def test_a_repeated_event_lets_its_person_in_once(ja: JourneyApp) -> None:
    """A client that sends the same event again (the same `event_id`, a retry after a lost answer) is stored
    once, and lets its person in once: one entry, one message."""
    now = dt.datetime.now(dt.UTC)
    with receiver() as rx:
        jid = start(ja, {"name": "once per event", "holdout": 0, "trigger": {"event": "trial_booked"},
                         "steps": [hook(rx.url + "/call")]})
        event = {**track("twice", "trial_booked", now, course_id="c1"), "event_id": "evt-twice-1"}
        ingest(ja, event)
        ingest(ja, dict(event))
        ja.runtime.worker.tick(now + dt.timedelta(minutes=1))
        assert list(states(ja, jid)) == ["login_id:twice"]
        assert [r.json()["who"] for r in rx.requests] == ["twice"]
