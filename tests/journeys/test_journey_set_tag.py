"""The set_tag action (SQLite, and PostgreSQL with EDUPULSE_TEST_POSTGRES_URL): a journey triggered by an event sets
a person's value of an uploaded tag through the tag service, so it enters the tag's history (a run with trigger
`journey`, the value's `set_by`, an audit entry with the delivery's key); a later journey triggered by entering
that value lets the person in. A try sent again after a crash stores nothing twice. Definitions that name a
missing, computed or group tag, or a value of the wrong type, are refused at save time naming the field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from journey_app import JourneyApp, build
from sqlalchemy import select, update

from edupulse.meta.audit import AuditEntry
from edupulse.meta.journey_models import JourneyDelivery, JourneyEntry
from edupulse.tags.run import TagError, TagService, UnknownPerson

NAMES: list[str] = []


@pytest.fixture
def ja(metadata_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JourneyApp]:
    yield from build(tmp_path_factory.mktemp("settag"), metadata_url=metadata_url)


def tag(ja: JourneyApp, name: str, value_type: str = "string", **definition: Any) -> None:
    made = ja.client.post("/api/v1/tags", headers=ja.as_("analyst"), json={
        "name": name, "value_type": value_type, "definition": {"type": "uploaded", **definition}})
    assert made.status_code == 201, made.text


def save(ja: JourneyApp, spec: dict[str, Any]) -> Any:
    NAMES.append(f"j{len(NAMES)}")
    return ja.client.post("/api/v1/journeys", json={"name": NAMES[-1], "holdout": 0, **spec},
                          headers=ja.as_("analyst"))


def start(ja: JourneyApp, spec: dict[str, Any]) -> int:
    made = save(ja, spec)
    assert made.status_code == 201, made.text
    jid = int(made.json()["id"])
    assert ja.client.post(f"/api/v1/journeys/{jid}/start", headers=ja.as_("analyst")).status_code == 200
    return jid


def track(who: str, event: str, at: dt.datetime, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "distinct_id": who, "distinct_id_type": "login_id",
            "time": at.isoformat(), "properties": props, "insert_id": f"{who}-{event}-{at.isoformat()}"}


def ingest(ja: JourneyApp, *records: dict[str, Any]) -> None:
    outcome = ja.platform.ingestor.ingest(ja.project, list(records))
    assert outcome.rejected == 0, outcome.results
    assert ja.runtime.feed is not None
    ja.runtime.feed.step()


def values(ja: JourneyApp, name: str, as_of: str | None = None) -> dict[str, Any]:
    query = f"?as_of={as_of}" if as_of else ""
    answer = ja.client.get(f"/api/v1/tags/{name}/values{query}", headers=ja.as_("admin"))
    assert answer.status_code == 200, answer.text
    return {v["identities"]["login_id"][0]: v for v in answer.json()["values"]}


def deliveries(ja: JourneyApp, jid: int) -> list[JourneyDelivery]:
    with ja.platform.meta.session() as s:
        return list(s.scalars(select(JourneyDelivery).where(JourneyDelivery.journey_id == jid)))


def test_an_event_sets_a_tag_and_entering_the_value_starts_the_next_journey(ja: JourneyApp) -> None:
    tag(ja, "recall_status")
    now = dt.datetime.now(dt.UTC)
    setter = start(ja, {"trigger": {"event": "call_made"}, "steps": [
        {"action": "set_tag", "tag": "recall_status", "value": "{{event.properties.outcome}}"}]})
    follow = start(ja, {"trigger": {"tag_entered": {"tag": "recall_status", "value": "called"}},
                        "steps": [{"exit": True}]})
    job = ja.runtime.schedule_job()
    assert job.run(now) == {follow: 0}  # the first check takes note of who has the value (nobody)
    ingest(ja, track("s1", "call_made", now, outcome="called"), track("s2", "call_made", now, outcome="no_answer"))
    ja.runtime.worker.tick(now + dt.timedelta(seconds=1))
    sent = deliveries(ja, setter)
    assert sorted((d.person_key, d.status) for d in sent) == [("login_id:s1", "sent"), ("login_id:s2", "sent")]
    found = values(ja, "recall_status")
    assert {k: v["value"] for k, v in found.items()} == {"s1": "called", "s2": "no_answer"}
    assert found["s1"]["detail"] == {"set_by": f"journey:{setter}"}
    tag_info = ja.client.get("/api/v1/tags/recall_status", headers=ja.as_("analyst")).json()
    runs = tag_info["runs"]
    assert [r["trigger"] for r in runs] == ["journey", "journey"]
    assert all(r["changed"] == 1 for r in runs)
    with ja.platform.meta.session() as s:
        audit = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "tag.set")))
    assert sorted(a.detail["idempotency_key"] for a in audit) == sorted(d.idempotency_key for d in sent)
    assert {a.actor for a in audit} == {f"journey:{setter}"}
    # the loop: the next check of the tag_entered journey lets s1 in (s2 has another value)
    assert job.run(now + dt.timedelta(minutes=5))[follow] == 1
    with ja.platform.meta.session() as s:
        assert list(s.scalars(select(JourneyEntry.person_key).where(JourneyEntry.journey_id == follow))) == [
            "login_id:s1"]

    # a try in flight when the server died is sent again with the same key: it stores nothing twice
    first = next(d for d in sent if d.person_key == "login_id:s1")
    with ja.platform.meta.session() as s, s.begin():
        s.execute(update(JourneyDelivery).where(JourneyDelivery.id == first.id).values(
            status="sending", updated_at=now))
    ja.runtime.worker.tick(now + dt.timedelta(minutes=10))
    again = next(d for d in deliveries(ja, setter) if d.id == first.id)
    assert (again.status, again.attempts, again.idempotency_key) == ("sent", 2, first.idempotency_key)
    assert "0 changed" in again.response
    assert len(ja.client.get("/api/v1/tags/recall_status", headers=ja.as_("analyst")).json()["runs"]) == 3
    assert values(ja, "recall_status")["s1"]["since"] == found["s1"]["since"]


def test_refused_at_save_time_with_the_field_and_what_to_do(ja: JourneyApp) -> None:
    tag(ja, "lead_score", "number")
    tag(ja, "contacted", "boolean")

    def refused(step: dict[str, Any]) -> dict[str, Any]:
        branch = {"if": {"property": "person.grade", "op": "gte", "value": 5}, "then": [step]}
        answer = save(ja, {"trigger": {"event": "x"}, "steps": [branch]})
        assert answer.status_code in (400, 409), answer.text
        return dict(answer.json())

    missing = refused({"action": "set_tag", "tag": "vip", "value": "yes"})
    assert missing["field"] == "steps.0.then.0.tag"
    assert "create an uploaded tag" in missing["error"]
    computed = refused({"action": "set_tag", "tag": "missed_3_in_a_row", "value": "3"})
    assert computed["field"] == "steps.0.then.0.tag"
    assert "create an uploaded tag" in computed["error"]
    assert "missed_streak" in computed["error"]
    now = dt.datetime.now(dt.UTC)
    ingest(ja, {**track("s1", "visit", now), "groups": {"school": "k1"}})
    ja.platform.flush()
    made = ja.client.post("/api/v1/tags", headers=ja.as_("analyst"), json={
        "name": "school_grade", "unit": "school", "definition": {"type": "uploaded"}})
    assert made.status_code == 201, made.text
    grouped = refused({"action": "set_tag", "tag": "school_grade", "value": "A"})
    assert grouped["field"] == "steps.0.then.0.tag"
    assert "school groups, not persons" in grouped["error"]
    wrong = refused({"action": "set_tag", "tag": "lead_score", "value": "high"})
    assert wrong["field"] == "steps.0.then.0.value"
    assert "not a number" in wrong["error"]
    assert refused({"action": "set_tag", "tag": "contacted", "value": "maybe"})["field"] == "steps.0.then.0.value"
    assert refused({"action": "set_tag", "tag": "lead_score", "value": ""})["field"] == "steps.0.then.0.value"
    assert refused({"action": "set_tag", "tag": "lead_score"})["field"].startswith("steps.0.then.0")
    for value in (87, "87.5", "{{event.properties.score}}"):
        ok = save(ja, {"trigger": {"event": "x"}, "steps": [{"action": "set_tag", "tag": "lead_score",
                                                               "value": value}]})
        assert ok.status_code == 201, ok.text
    assert save(ja, {"trigger": {"event": "x"}, "steps": [{"action": "set_tag", "tag": "contacted",
                                                             "value": True}]}).status_code == 201


def test_a_templated_value_that_does_not_fit_fails_with_the_reason(ja: JourneyApp) -> None:
    tag(ja, "lead_score", "number")
    now = dt.datetime.now(dt.UTC)
    jid = start(ja, {"trigger": {"event": "scored"}, "steps": [
        {"action": "set_tag", "tag": "lead_score", "value": "{{event.properties.grade}}"}]})
    ingest(ja, track("s1", "scored", now, grade=87), track("s2", "scored", now, grade="high"))
    ja.runtime.worker.tick(now + dt.timedelta(seconds=1))
    done = {d.person_key: (d.status, d.reason) for d in deliveries(ja, jid)}
    assert done["login_id:s1"] == ("sent", "")
    assert done["login_id:s2"][0] == "dead"
    assert "not a number" in done["login_id:s2"][1]
    assert {k: v["value"] for k, v in values(ja, "lead_score").items()} == {"s1": 87.0}


def test_the_tag_service_keeps_each_days_value(ja: JourneyApp) -> None:
    tag(ja, "stage")
    service = TagService(ja.platform.meta, ja.platform.store, ja.platform.query_service())
    day1 = dt.datetime(2026, 11, 2, 4, tzinfo=dt.UTC)
    ids = [("login_id", "s3")]
    assert service.set_value(ja.project, "stage", ids, "trial", "journey:7", now=day1).changed == 1
    assert service.set_value(ja.project, "stage", ids, "trial", "journey:7", now=day1).changed == 0
    assert service.set_value(ja.project, "stage", ids, "paid", "journey:8",
                             now=day1 + dt.timedelta(days=3)).changed == 1
    service.set_value(ja.project, "stage", [("login_id", "s4")], "trial", "journey:7", now=day1 + dt.timedelta(days=3))
    assert values(ja, "stage", "2026-11-01") == {}
    assert {k: v["value"] for k, v in values(ja, "stage", "2026-11-03").items()} == {"s3": "trial"}
    assert {k: v["value"] for k, v in values(ja, "stage", "2026-11-05").items()} == {"s3": "paid", "s4": "trial"}
    with pytest.raises(UnknownPerson):
        service.set_value(ja.project, "stage", [("login_id", "nobody")], "x", "journey:7")
    with pytest.raises(TagError, match="computed"):
        service.set_value(ja.project, "missed_3_in_a_row", ids, "3", "journey:7")
