"""Guard rails on a simulated clock in two time zones (SQLite, and PostgreSQL with EDUPULSE_TEST_POSTGRES_URL):
quiet hours hold a message until they end in the recipient's time zone (never drop it), frequency caps count
messages per person across every journey per local day, a channel's rate limit holds what is over it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from receivers import receiver
from sqlalchemy import select

from edupulse.conf import JourneySettings
from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.conditions import NoTags
from edupulse.journeys.engine import Engine, Entrant
from edupulse.journeys.guards import Guard
from edupulse.journeys.model import parse_spec
from edupulse.journeys.outbox import Outbox
from edupulse.journeys.person import Person
from edupulse.journeys.senders import Senders
from edupulse.journeys.vault import SecretBox
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyDelivery
from edupulse.meta.journeys import Journey, JourneyStore

EVENING = dt.datetime(2026, 9, 1, 14, 0, tzinfo=dt.UTC)  # 22:00 in Shanghai, 10:00 in New York


@pytest.fixture
def rig(meta: MetadataStore, tmp_path: Path) -> Iterator[dict[str, Any]]:
    project = meta.create_project("Guards", timezone="Asia/Shanghai").project
    channels = ChannelStore(meta, SecretBox.open("", tmp_path))
    channels.save(project.id, {"name": "crm", "kind": "webhook", "secrets": {"signing_secret": "s"}}, "a", EVENING)
    settings = JourneySettings(allowed_hosts="127.0.0.1/32", send_threads=1)
    senders = Senders(channels, settings)
    outbox = Outbox(meta, senders, settings)
    engine = Engine(meta, NoTags())
    engine.guard = Guard(channels.settings, engine.zone, NoTags())
    yield {"meta": meta, "project": project, "channels": channels, "engine": engine, "outbox": outbox}
    outbox.close()
    senders.close()


def journey(rig: dict[str, Any], name: str, url: str, **extra: Any) -> Journey:
    store = JourneyStore(rig["meta"])
    spec = {"name": name, "holdout": 0, "trigger": {"event": "x"},
            "steps": [{"action": "webhook", "url": url, "channel": "crm", "body": {"who": "{{person.login_id}}"}}],
            **extra}
    made = store.create(rig["project"].id, parse_spec(spec), "a", EVENING)
    return store.transition(rig["project"].id, made.id, "start", "a", EVENING)


def statuses(meta: MetadataStore) -> list[tuple[str, str, str]]:
    with meta.session() as s:
        return [(d.person_key, d.status, d.reason) for d in s.scalars(select(JourneyDelivery).order_by(
            JourneyDelivery.id))]


SHANGHAI = Person.of([("login_id", "sh")])
NEW_YORK = Person.of([("login_id", "ny")], {"timezone": "America/New_York"})


def test_quiet_hours_hold_messages_in_the_recipients_time_zone(rig: dict[str, Any]) -> None:
    rig["channels"].save_settings(rig["project"].id, {"quiet_hours": {"start": "21:00", "end": "08:00"}}, EVENING)
    with receiver() as rx:
        j = journey(rig, "quiet", rx.url)
        rig["engine"].enter(j, [Entrant(SHANGHAI, "1"), Entrant(NEW_YORK, "1")], EVENING)
        rig["engine"].run_due(EVENING)
        assert statuses(rig["meta"]) == [("login_id:sh", "held", "quiet hours"), ("login_id:ny", "pending", "")]
        rig["outbox"].send_due(EVENING)
        assert [r.json()["who"] for r in rx.requests] == ["ny"]
        rig["outbox"].send_due(dt.datetime(2026, 9, 1, 23, 59, tzinfo=dt.UTC))
        assert len(rx.requests) == 1  # still 07:59 in Shanghai
        rig["outbox"].send_due(dt.datetime(2026, 9, 2, 0, 0, tzinfo=dt.UTC))  # 08:00 in Shanghai
        assert [r.json()["who"] for r in rx.requests] == ["ny", "sh"]
    assert [s[1] for s in statuses(rig["meta"])] == ["sent", "sent"]


def test_a_journeys_own_quiet_hours(rig: dict[str, Any]) -> None:
    j = journey(rig, "own quiet", "http://127.0.0.1:9/x", quiet_hours={"start": "09:00", "end": "11:00"})
    rig["engine"].enter(j, [Entrant(SHANGHAI, "1"), Entrant(NEW_YORK, "1")], EVENING)
    rig["engine"].run_due(EVENING)
    assert [s[1] for s in statuses(rig["meta"])] == ["pending", "held"]


def test_frequency_caps_count_every_journey_per_local_day(rig: dict[str, Any]) -> None:
    rig["channels"].save_settings(rig["project"].id, {"caps": {"per_day": 2}}, EVENING)
    journeys = [journey(rig, f"cap {i}", "http://127.0.0.1:9/x") for i in range(3)]
    for j in journeys:
        rig["engine"].enter(j, [Entrant(SHANGHAI, "1")], EVENING)
    rig["engine"].run_due(EVENING)
    assert [s[1:] for s in statuses(rig["meta"])] == [("pending", ""), ("pending", ""),
                                                      ("skipped", "frequency cap: 2 per day")]
    tomorrow = dt.datetime(2026, 9, 1, 16, 30, tzinfo=dt.UTC)  # 00:30 the next day in Shanghai
    rig["engine"].enter(journeys[0], [Entrant(SHANGHAI, "2")], tomorrow)
    rig["engine"].run_due(tomorrow)
    assert statuses(rig["meta"])[-1][1] == "pending"


def test_a_channels_rate_limit_holds_what_is_over_it(rig: dict[str, Any]) -> None:
    rig["channels"].save_settings(rig["project"].id, {"per_minute": {"webhook": 2}}, EVENING)
    with receiver() as rx:
        j = journey(rig, "limited", rx.url)
        rig["engine"].enter(j, [Entrant(Person.of([("login_id", f"p{i}")]), "1") for i in range(3)], EVENING)
        rig["engine"].run_due(EVENING)
        rig["outbox"].send_due(EVENING)
        assert len(rx.requests) == 2
    with rig["meta"].session() as s:
        held = [d for d in s.scalars(select(JourneyDelivery)) if d.status == "held"]
    assert [(d.reason, d.attempts) for d in held] == [("rate limit: 2 webhook messages per minute", 0)]
