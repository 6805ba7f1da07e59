"""A lead's channel on its person (ingest/first_touch.py): a `lead_created` with `channel` or `campaign` sets
them on its person once, so `person.channel` is the channel of the person's first lead, whatever order the leads
arrive in, on both engines; a person property the organization sets after the lead wins, and a lead without a
channel sets nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from edupulse.ingest.first_touch import first_touch
from edupulse.ingest.validate import Limits, ProjectRules, prepare_records
from engines import History, requires_chdb


def sh(text: str) -> str:
    return f"2026-{text}+08:00"


def track(who: str, event: str, time: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "distinct_id": who, "distinct_id_type": "login_id", "time": sh(time),
            "properties": properties}


@pytest.mark.parametrize(("properties", "implied"), [
    ({"channel": "douyin", "campaign": "c1", "source_system": "crm"}, {"channel": "douyin", "campaign": "c1"}),
    ({"channel": "douyin"}, {"channel": "douyin"}),
    ({"campaign": "c1", "channel": None}, {"campaign": "c1"}),
    ({"channel": ""}, None),
    ({"source_system": "crm"}, None),
])
def test_a_lead_implies_its_channel_and_campaign(properties: dict[str, Any], implied: dict[str, Any] | None) -> None:
    record = {"type": "track", "event": "lead_created", "time": 5, "insert_id": "e1",
              "ids": [["crm_lead_id", "L1"], ["mobile", "138"]], "properties": properties}
    found = first_touch(record)
    if implied is None:
        assert found is None
        return
    assert found == {"type": "profile_set_once", "time": 5, "insert_id": None,
                     "ids": [["crm_lead_id", "L1"], ["mobile", "138"]], "properties": implied}


def test_other_events_imply_nothing() -> None:
    assert first_touch({"type": "track", "event": "ad_click", "time": 1, "ids": [["login_id", "a"]],
                        "properties": {"channel": "douyin"}}) is None


def test_the_implied_operation_goes_to_the_log_and_the_answer_counts_the_records_sent() -> None:
    rules = ProjectRules(project_id=1, timezone="Asia/Shanghai", typed_properties={}, group_types=frozenset(),
                         limits=Limits(max_record_bytes=100_000, max_batch_records=100, max_future_seconds=86_400,
                                       max_past_days=3650))
    prepared = prepare_records(rules, [track("ann", "lead_created", "09-01T10:00:00", channel="douyin"),
                                       track("ann", "page_view", "09-01T10:01:00", utm_source="douyin")],
                               lambda name: None)
    assert prepared.outcome.as_response()["accepted"] == 2
    assert len(prepared.outcome.results) == 2
    assert prepared.payload is not None
    frame = orjson.loads(prepared.payload)
    assert [r["type"] for r in frame["recs"]] == ["profile_set_once"]
    assert frame["recs"][0]["properties"] == {"channel": "douyin"}


HISTORY = [
    # ann's later lead arrives first; the earlier one (another channel) is hers
    track("ann", "lead_created", "09-05T10:00:00", channel="baidu", campaign="b-2"),
    track("ann", "lead_created", "09-01T10:00:00", channel="douyin", campaign="d-1"),
    # bob's lead names a channel, and the CRM corrects it afterwards: the organization's value wins
    track("bob", "lead_created", "09-02T10:00:00", channel="douyin"),
    {"type": "profile_set", "distinct_id": "bob", "distinct_id_type": "login_id", "time": sh("09-03T10:00:00"),
     "properties": {"channel": "offline_event"}},
    # cat's lead has no channel; dan set his own channel before his lead, which keeps it
    track("cat", "lead_created", "09-02T11:00:00", source_system="crm"),
    {"type": "profile_set_once", "distinct_id": "dan", "distinct_id_type": "login_id",
     "time": sh("09-01T09:00:00"), "properties": {"channel": "wechat"}},
    track("dan", "lead_created", "09-02T12:00:00", channel="douyin"),
    *[track(who, "order_paid", "09-08T10:00:00", amount=100) for who in ("ann", "bob", "cat", "dan")],
]


@requires_chdb
def test_person_channel_is_the_first_leads_on_both_engines(tmp_path: Any) -> None:
    history = History(tmp_path, HISTORY)
    try:
        query = {"kind": "trends", "series": [{"event": "order_paid", "math": "unique"}], "granularity": "month",
                 "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-30"},
                 "breakdown": {"properties": ["person.channel", "person.campaign"]}}
        result = history.both(query)
        counts = {tuple(s["breakdown"]): s["aggregated_value"] for s in result["series"]}
        assert counts == {("douyin", "d-1"): 1, ("offline_event", None): 1, (None, None): 1, ("wechat", None): 1}
    finally:
        history.close()


def test_a_lead_arriving_later_with_an_earlier_time_takes_over(tmp_path: Any) -> None:
    history = History(tmp_path, [track("eve", "lead_created", "09-05T10:00:00", channel="baidu")])
    try:
        history.add([track("eve", "lead_created", "09-01T10:00:00", channel="douyin")])
        query = {"kind": "trends", "series": [{"event": "lead_created", "math": "unique"}], "granularity": "month",
                 "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-30"},
                 "breakdown": {"properties": ["person.channel"]}}
        result = history.run(query, now=dt.datetime(2026, 9, 10, tzinfo=dt.UTC))
        assert [(s["breakdown"], s["aggregated_value"]) for s in result["series"]] == [(["douyin"], 1)]
    finally:
        history.close()
