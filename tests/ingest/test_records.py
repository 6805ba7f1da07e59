"""Validation of native records: the normalized form of each type, and errors that name the field."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edupulse.ingest.records import RecordError, ValidationContext, normalize, to_micros
from edupulse.store.schema import STANDARD_PROPERTIES

NOW = dt.datetime(2026, 9, 1, 12, tzinfo=dt.UTC)
CTX = ValidationContext(now_us=to_micros(NOW), timezone=ZoneInfo("Asia/Shanghai"),
                        typed_properties=STANDARD_PROPERTIES)


def us(text: str) -> int:
    return to_micros(dt.datetime.fromisoformat(text))


def test_track() -> None:
    out = normalize({"type": "track", "event": "lesson_attended", "distinct_id": 1001, "distinct_id_type": "login_id",
                     "time": "2026-09-01T19:05:00+08:00", "event_id": "att-1",
                     "properties": {"duration_s": "2710", "mode": "live"}, "groups": {"class": "C-1"}}, CTX)
    assert out == {"type": "track", "time": us("2026-09-01T19:05:00+08:00"), "insert_id": "att-1",
                   "event": "lesson_attended", "ids": [["login_id", "1001"]],
                   "properties": {"duration_s": 2710, "mode": "live"}, "groups": {"class": "C-1"}}


def test_times() -> None:
    def time_of(value: Any) -> int:
        return int(normalize({"type": "track", "event": "e", "distinct_id": "d", "time": value}, CTX)["time"])

    assert time_of("2026-09-01T08:00:00") == us("2026-09-01T08:00:00+08:00")  # no offset: project time zone
    assert time_of("2026-09-01T00:00:00Z") == us("2026-09-01T00:00:00+00:00")
    assert time_of(1_788_000_000_000) == 1_788_000_000_000_000  # milliseconds
    assert normalize({"type": "track", "event": "e", "distinct_id": "d"}, CTX)["time"] == CTX.now_us


def test_links_and_profiles() -> None:
    identify = normalize({"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-1",
                          "identities": {"mobile": "13800000001"}}, CTX)
    assert identify["ids"][0] == ["login_id", "alice"]
    assert sorted(identify["ids"][1:]) == [["anonymous_id", "dev-1"], ["mobile", "13800000001"]]
    alias = normalize({"type": "alias", "distinct_id": "dev-1", "alias": "L-9", "alias_type": "crm_lead_id"}, CTX)
    assert alias["ids"] == [["anonymous_id", "dev-1"], ["crm_lead_id", "L-9"]]
    unset = normalize({"type": "profile_unset", "distinct_id": "d", "properties": ["city", "grade"]}, CTX)
    assert unset["properties"] == {"city": True, "grade": True}
    append = normalize({"type": "profile_append", "distinct_id": "d", "properties": {"tags": "math"}}, CTX)
    assert append["properties"] == {"tags": ["math"]}
    group = normalize({"type": "group_set", "group_type": "school", "group_key": "S-1", "properties": {"n": 1}}, CTX)
    assert (group["entity_type"], group["entity_key"], group["properties"]) == ("school", "S-1", {"n": 1})
    item = normalize({"type": "item_set", "item_type": "course", "item_id": "C-1"}, CTX)
    assert (item["entity_type"], item["entity_key"]) == ("course", "C-1")


BAD: list[tuple[Any, str, str]] = [
    ([], "record", "must be an object"),
    ({"type": "teleport"}, "type", "not a record type"),
    ({"type": "track", "distinct_id": "d"}, "event", ""),
    ({"type": "track", "event": "", "distinct_id": "d"}, "event", ""),
    ({"type": "track", "event": "e" * 101, "distinct_id": "d"}, "event", ""),
    ({"type": "track", "event": "e"}, "distinct_id", "required"),
    ({"type": "track", "event": "e", "distinct_id": "  "}, "distinct_id", "empty"),
    ({"type": "track", "event": "e", "distinct_id": "x" * 300}, "distinct_id", "at most"),
    ({"type": "track", "event": "e", "distinct_id": {"a": 1}}, "distinct_id", "must be a string"),
    ({"type": "track", "event": "e", "distinct_id": "d", "distinct_id_type": "Bad Type"}, "distinct_id_type",
     "not an identity type"),
    ({"type": "track", "event": "e", "distinct_id": "d", "time": True}, "time", "true/false"),
    ({"type": "track", "event": "e", "distinct_id": "d", "time": "soon"}, "time", "ISO 8601"),
    ({"type": "track", "event": "e", "distinct_id": "d", "time": "2026-09-03T12:00:00Z"}, "time", "future"),
    ({"type": "track", "event": "e", "distinct_id": "d", "time": "1990-01-01T00:00:00Z"}, "time", "past"),
    ({"type": "track", "event": "e", "distinct_id": "d", "properties": "x"}, "properties", "object"),
    ({"type": "track", "event": "e", "distinct_id": "d", "properties": {"amount": "lots"}}, "properties.amount",
     "number"),
    ({"type": "track", "event": "e", "distinct_id": "d", "properties": {"correct": "maybe"}}, "properties.correct",
     ""),
    ({"type": "track", "event": "e", "distinct_id": "d", "event_id": ["x"]}, "event_id", "string"),
    ({"type": "track", "event": "e", "distinct_id": "d", "event_id": "x" * 200}, "event_id", "128"),
    ({"type": "track", "event": "e", "distinct_id": "d", "groups": ["s"]}, "groups", "object"),
    ({"type": "profile_increment", "distinct_id": "d", "properties": {"n": "two"}}, "properties.n", "numbers"),
    ({"type": "profile_append", "distinct_id": "d", "properties": {"n": {"a": 1}}}, "properties.n", "list"),
    ({"type": "alias", "distinct_id": "d"}, "", ""),
    ({"type": "group_set", "group_type": "school"}, "group_key", ""),
    ({"type": "item_set", "item_id": "C-1"}, "item_type", ""),
]


@pytest.mark.parametrize(("record", "field", "words"), BAD)
def test_errors_name_the_field(record: Any, field: str, words: str) -> None:
    with pytest.raises(RecordError) as raised:
        normalize(record, CTX)
    assert raised.value.field.startswith(field)
    assert words in raised.value.reason
    assert len(raised.value.reason) >= 8
