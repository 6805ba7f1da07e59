"""The step engine and the outbox on the metadata database (SQLite, and PostgreSQL with
EDUPULSE_TEST_POSTGRES_URL), on a simulated clock, sending to real HTTP receivers on loopback: waits, branches,
splits and exits; entering and claiming once; holdout within its bounds; signed webhooks retried with the same
idempotency key, dead letters and replay; refused destinations; a try lost in flight sent again."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from receivers import receiver
from sqlalchemy import select

from edupulse.conf import JourneySettings
from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.conditions import NoTags
from edupulse.journeys.engine import HOLDOUT, Engine, Entrant, arm_of, wait_until
from edupulse.journeys.model import Wait, parse_spec
from edupulse.journeys.outbox import Outbox
from edupulse.journeys.person import Person
from edupulse.journeys.senders import Senders
from edupulse.journeys.vault import SecretBox
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyDelivery, JourneyEntry
from edupulse.meta.journeys import Journey, JourneyStore

T0 = dt.datetime(2026, 9, 1, 1, 0, tzinfo=dt.UTC)
SECRET = "whsec-test-1"


@pytest.fixture
def parts(meta: MetadataStore, tmp_path: Path) -> Iterator[dict[str, Any]]:
    project = meta.create_project("Journeys").project
    box = SecretBox.open("", tmp_path / "data")
    channels = ChannelStore(meta, box)
    channels.save(project.id, {"name": "crm", "kind": "webhook", "secrets": {"signing_secret": SECRET}}, "ann", T0)
    settings = JourneySettings(allowed_hosts="127.0.0.1/32", backoff_seconds=1, timeout_seconds=0.5, send_threads=1,
                               max_attempts=3, in_flight_seconds=30)
    senders = Senders(channels, settings)
    outbox = Outbox(meta, senders, settings)
    yield {"meta": meta, "project": project, "engine": Engine(meta, NoTags()), "outbox": outbox,
           "channels": channels}
    outbox.close()
    senders.close()


def started(meta: MetadataStore, project_id: int, spec: dict[str, Any]) -> Journey:
    store = JourneyStore(meta)
    made = store.create(project_id, parse_spec(spec), "ann", T0)
    return store.transition(project_id, made.id, "start", "ann", T0)


def hook(url: str, **body: Any) -> dict[str, Any]:
    return {"action": "webhook", "url": url + "/hook", "channel": "crm",
            "body": body or {"who": "{{person.login_id}}", "grade": "{{person.grade}}"}}


def schedule() -> dict[str, Any]:
    return {"schedule": {"every": "day", "at": "09:00"}, "audience": {"segment": "all"}}


def entries(meta: MetadataStore, journey_id: int) -> dict[str, JourneyEntry]:
    with meta.session() as s:
        return {e.person_key: e for e in s.scalars(select(JourneyEntry).where(JourneyEntry.journey_id == journey_id))}


def deliveries(meta: MetadataStore, journey_id: int) -> list[JourneyDelivery]:
    with meta.session() as s:
        return list(s.scalars(select(JourneyDelivery).where(JourneyDelivery.journey_id == journey_id)
                              .order_by(JourneyDelivery.id)))


def person(name: str, **props: Any) -> Person:
    return Person.of([("anonymous_id", f"anon-{name}"), ("login_id", name)], props)


def test_waits_branches_and_exit_on_a_simulated_clock(parts: dict[str, Any]) -> None:
    meta, engine, outbox = parts["meta"], parts["engine"], parts["outbox"]
    with receiver() as rx:
        journey = started(meta, parts["project"].id, {
            "name": "recall", "trigger": schedule(), "holdout": 0,
            "steps": [{"wait": {"value": 1, "unit": "hour"}},
                      {"if": {"property": "person.grade", "op": "gte", "value": 5},
                       "then": [hook(rx.url)], "else": [{"exit": "too young"}]},
                      {"wait": {"until": "09:00"}},
                      hook(rx.url, step="second", who="{{person.login_id}}")]})
        assert engine.enter(journey, [Entrant(person("ann", grade=6), "r1"), Entrant(person("bo", grade=2), "r1")],
                            T0) == 2
        assert engine.run_due(T0) == 2
        assert {k: e.state for k, e in entries(meta, journey.id).items()} == {"login_id:ann": "waiting",
                                                                              "login_id:bo": "waiting"}
        assert engine.run_due(T0 + dt.timedelta(minutes=59)) == 0
        assert engine.run_due(T0 + dt.timedelta(hours=1)) == 2
        state = entries(meta, journey.id)
        assert (state["login_id:bo"].state, state["login_id:bo"].exit_reason) == ("exited", "too young")
        ann = state["login_id:ann"]
        # 09:00 in Shanghai after 02:00 UTC (10:00 local) is the next day's 01:00 UTC
        assert (ann.state, ann.step) == ("waiting", "2")
        assert ann.due_at is not None
        assert ann.due_at.replace(tzinfo=dt.UTC) == dt.datetime(2026, 9, 2, 1,
                                                                                         tzinfo=dt.UTC)
        assert outbox.send_due(T0 + dt.timedelta(hours=1)) == 1
        assert engine.run_due(dt.datetime(2026, 9, 2, 1, tzinfo=dt.UTC)) == 1
        assert outbox.send_due(dt.datetime(2026, 9, 2, 1, tzinfo=dt.UTC)) == 1
        assert entries(meta, journey.id)["login_id:ann"].state == "done"
        bodies = [r.json() for r in rx.requests]
        assert bodies == [{"who": "ann", "grade": 6}, {"step": "second", "who": "ann"}]
        assert [d.status for d in deliveries(meta, journey.id)] == ["sent", "sent"]


def test_entering_and_claiming_happen_once(parts: dict[str, Any]) -> None:
    meta, engine = parts["meta"], parts["engine"]
    journey = started(meta, parts["project"].id, {"name": "once", "trigger": schedule(), "holdout": 0,
                                                  "steps": [hook("http://127.0.0.1:9")]})
    crowd = [Entrant(person(f"p{i}"), "run-1") for i in range(30)]
    assert engine.enter(journey, crowd, T0) == 30
    assert engine.enter(journey, crowd, T0) == 0  # the same run again: nobody twice
    assert engine.enter(journey, crowd[:5], T0, ) == 0
    assert engine.run_due(T0) == 30
    ids = [e.id for e in entries(meta, journey.id).values()]
    assert all(engine.advance(i, T0) == 0 for i in ids)  # done: moving again claims nothing
    claimed = deliveries(meta, journey.id)
    assert len(claimed) == 30
    assert len({d.idempotency_key for d in claimed}) == 30
    assert engine.enter(journey, crowd[:3], T0, ) == 0
    assert engine.enter(journey, [Entrant(person("p0"), "run-2")], T0) == 1  # a new run: a new entry


def test_entry_limit_and_pending_entries(parts: dict[str, Any]) -> None:
    meta, engine = parts["meta"], parts["engine"]
    journey = started(meta, parts["project"].id, {"name": "limited", "trigger": schedule(), "holdout": 0,
                                                  "entry_limit": 2, "steps": [{"exit": True}]})
    assert sum(engine.enter(journey, [Entrant(person("x"), f"run-{i}")], T0) for i in range(5)) == 2
    later = T0 + dt.timedelta(hours=24)
    assert engine.enter(journey, [Entrant(person("y"), "e1")], T0, pending_until=later) == 1
    assert entries(meta, journey.id)["login_id:y"].state == "pending"
    engine.run_due(T0 + dt.timedelta(hours=23))
    assert entries(meta, journey.id)["login_id:y"].state == "pending"
    engine.run_due(later)
    assert entries(meta, journey.id)["login_id:y"].state == "exited"


def test_holdout_share_is_within_its_bounds_and_receives_nothing(parts: dict[str, Any]) -> None:
    n, share = 20_000, 0.1
    held = sum(arm_of(7, f"login_id:s{i}", share) == HOLDOUT for i in range(n))
    sd = math.sqrt(share * (1 - share) / n)
    assert abs(held / n - share) < 4 * sd
    assert all(arm_of(7, f"login_id:s{i}", share) == arm_of(7, f"login_id:s{i}", share) for i in range(100))
    meta, engine = parts["meta"], parts["engine"]
    journey = started(meta, parts["project"].id, {"name": "holdout", "trigger": schedule(), "holdout": 0.5,
                                                  "steps": [hook("http://127.0.0.1:9")]})
    engine.enter(journey, [Entrant(person(f"h{i}"), "r") for i in range(200)], T0)
    engine.run_due(T0)
    arms = {k: e.arm for k, e in entries(meta, journey.id).items()}
    for d in deliveries(meta, journey.id):
        assert (d.status == "skipped") == (arms[d.person_key] == HOLDOUT)
        assert d.reason == ("holdout" if arms[d.person_key] == HOLDOUT else "")
    assert 60 < sum(a == HOLDOUT for a in arms.values()) < 140


def test_split_is_deterministic_per_person(parts: dict[str, Any]) -> None:
    meta, engine = parts["meta"], parts["engine"]
    journey = started(meta, parts["project"].id, {
        "name": "split", "trigger": schedule(), "holdout": 0,
        "steps": [{"split": [{"weight": 0.3, "steps": [{"exit": "a"}]}, {"weight": 0.7, "steps": [{"exit": "b"}]}]}]})
    engine.enter(journey, [Entrant(person(f"s{i}"), "r") for i in range(400)], T0)
    engine.run_due(T0)
    first = {k: e.exit_reason for k, e in entries(meta, journey.id).items()}
    assert 80 < sum(r == "a" for r in first.values()) < 160
    engine.enter(journey, [Entrant(person(f"s{i}"), "r2") for i in range(50)], T0)
    engine.run_due(T0)
    with meta.session() as s:
        again = s.execute(select(JourneyEntry.person_key, JourneyEntry.exit_reason).where(
            JourneyEntry.journey_id == journey.id, JourneyEntry.entry_key == "r2")).all()
    assert all(first[k] == reason for k, reason in again)


def test_signed_webhook_retried_with_the_same_key(parts: dict[str, Any]) -> None:
    meta, engine, outbox = parts["meta"], parts["engine"], parts["outbox"]
    with receiver(fail_first=2) as rx:
        journey = started(meta, parts["project"].id, {"name": "retry", "trigger": schedule(), "holdout": 0,
                                                      "steps": [hook(rx.url)]})
        engine.enter(journey, [Entrant(person("r", grade=1), "r")], T0)
        engine.run_due(T0)
        assert outbox.send_due(T0) == 1
        (d,) = deliveries(meta, journey.id)
        assert (d.status, d.attempts) == ("failed", 1)
        assert d.next_attempt_at is not None
        assert outbox.send_due(T0 + dt.timedelta(milliseconds=900)) == 0  # backoff: 1 s, then 2 s
        assert outbox.send_due(T0 + dt.timedelta(seconds=1)) == 1
        assert outbox.send_due(T0 + dt.timedelta(seconds=2)) == 0
        assert outbox.send_due(T0 + dt.timedelta(seconds=3)) == 1
        (d,) = deliveries(meta, journey.id)
        assert (d.status, d.attempts) == ("sent", 3)
        assert rx.keys() == [d.idempotency_key] * 3
        for got in rx.requests:
            stamp = got.headers["x-edupulse-timestamp"]
            expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + got.body, hashlib.sha256).hexdigest()
            assert got.headers["x-edupulse-signature"] == f"sha256={expected}"


def test_dead_letters_and_replay(parts: dict[str, Any]) -> None:
    meta, engine, outbox = parts["meta"], parts["engine"], parts["outbox"]
    with receiver(status=500) as down, receiver(status=400) as refusing:
        journey = started(meta, parts["project"].id, {"name": "dead", "trigger": schedule(), "holdout": 0,
                                                      "steps": [hook(down.url), hook(refusing.url)]})
        engine.enter(journey, [Entrant(person("d"), "r")], T0)
        engine.run_due(T0)
        for seconds in (0, 1, 3, 7):
            outbox.send_due(T0 + dt.timedelta(seconds=seconds))
        first, second = deliveries(meta, journey.id)
        assert (first.status, first.attempts) == ("dead", 3)
        assert first.reason.startswith("gave up after 3 tries: HTTP 500")
        assert (second.status, second.attempts) == ("dead", 1)  # a 4xx is not retried
        assert second.reason.startswith("HTTP 400")
        down.status = 200
        outbox.replay(parts["project"].id, first.id, T0 + dt.timedelta(seconds=10))
        assert outbox.send_due(T0 + dt.timedelta(seconds=10)) == 1
        assert deliveries(meta, journey.id)[0].status == "sent"
        assert set(down.keys()) == {first.idempotency_key}


def test_slow_receiver_times_out_and_is_retried(parts: dict[str, Any]) -> None:
    meta, engine, outbox = parts["meta"], parts["engine"], parts["outbox"]
    with receiver(delay=1.5) as slow:
        journey = started(meta, parts["project"].id, {"name": "slow", "trigger": schedule(), "holdout": 0,
                                                      "steps": [hook(slow.url)]})
        engine.enter(journey, [Entrant(person("s"), "r")], T0)
        engine.run_due(T0)
        outbox.send_due(T0)
        (d,) = deliveries(meta, journey.id)
        assert (d.status, d.attempts) == ("failed", 1)
        assert "Timeout" in d.reason


def test_private_destinations_are_refused_unless_allowed(parts: dict[str, Any], meta: MetadataStore) -> None:
    engine, project = parts["engine"], parts["project"]
    settings = JourneySettings(backoff_seconds=1, send_threads=1)
    senders = Senders(parts["channels"], settings)
    outbox = Outbox(meta, senders, settings)
    with receiver() as rx:
        journey = started(meta, project.id, {"name": "private", "trigger": schedule(), "holdout": 0,
                                             "steps": [hook(rx.url), hook("http://169.254.169.254")]})
        engine.enter(journey, [Entrant(person("p"), "r")], T0)
        engine.run_due(T0)
        outbox.send_due(T0)
        refused = deliveries(meta, journey.id)
        assert [d.status for d in refused] == ["dead", "dead"]
        assert "resolves to 127.0.0.1, which is not a public address" in refused[0].reason
        assert "169.254.169.254" in refused[1].reason
        assert rx.requests == []
        parts["channels"].save_settings(project.id, {"allowed_hosts": ["127.0.0.0/8"]}, T0)
        senders.forget()
        outbox.replay(project.id, refused[0].id, T0)
        outbox.send_due(T0)
        assert len(rx.requests) == 1
    outbox.close()
    senders.close()


def test_a_try_lost_in_flight_is_sent_again_with_the_same_key(parts: dict[str, Any]) -> None:
    meta, engine, outbox = parts["meta"], parts["engine"], parts["outbox"]
    with receiver() as rx:
        journey = started(meta, parts["project"].id, {"name": "flight", "trigger": schedule(), "holdout": 0,
                                                      "steps": [hook(rx.url)]})
        engine.enter(journey, [Entrant(person("f"), "r")], T0)
        engine.run_due(T0)
        (lost,) = outbox.claim(T0)  # the server dies after claiming the try
        assert outbox.send_due(T0 + dt.timedelta(seconds=29)) == 0
        assert outbox.send_due(T0 + dt.timedelta(seconds=30)) == 1
        (d,) = deliveries(meta, journey.id)
        assert (d.status, d.attempts) == ("sent", 2)
        assert rx.keys() == [lost.idempotency_key]


def test_wait_until_a_time_of_day_in_two_time_zones() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    at_nine = Wait(until="09:00")
    local_nine = Wait(until="09:00", timezone="recipient")
    now = dt.datetime(2026, 9, 1, 0, 30, tzinfo=dt.UTC)  # 08:30 in Shanghai, 20:30 the day before in New York
    nobody = Person.of([("login_id", "a")])
    new_yorker = Person.of([("login_id", "b")], {"timezone": "America/New_York"})
    assert wait_until(at_nine, now, shanghai, nobody) == dt.datetime(2026, 9, 1, 1, tzinfo=dt.UTC)
    assert wait_until(local_nine, now, shanghai, new_yorker) == dt.datetime(2026, 9, 1, 13, tzinfo=dt.UTC)
    assert wait_until(local_nine, now, shanghai, Person.of([("login_id", "c")], {"timezone": "Mars/Base"})) == \
        dt.datetime(2026, 9, 1, 1, tzinfo=dt.UTC)
