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
