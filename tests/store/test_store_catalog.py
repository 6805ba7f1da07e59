"""The data catalogue computed from the event store: volumes, first and last seen, typed and untyped
properties, person properties; the same on DuckDB and ClickHouse (chDB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edupulse.store.catalog import build_catalogue, group_names
from engines import History, _Mirror, requires_chdb

RECORDS = [
    {"type": "track", "event": "order_paid", "distinct_id": "u1", "time": "2026-09-01T10:00:00+08:00",
     "properties": {"amount": 99.5, "order_type": "first", "coupon \"x\"": "SPRING"}},
    {"type": "track", "event": "order_paid", "distinct_id": "u2", "time": "2026-09-03T10:00:00+08:00",
     "properties": {"amount": 10, "课程": "英语"}},
    {"type": "track", "event": "page_view", "distinct_id": "u1", "time": "2026-09-02T09:00:00+08:00",
     "properties": {"url": "/a"}},
    {"type": "profile_set", "distinct_id": "u1", "properties": {"grade": "G4", "city": "杭州"}},
    {"type": "profile_set", "distinct_id": "u2", "properties": {"grade": "G5"}},
    {"type": "group_set", "group_type": "school", "group_key": "s-001", "time": "2026-09-01T08:00:00+08:00",
     "properties": {"name": "杭州第一小学", "students": 1200}},
    {"type": "group_set", "group_type": "school", "group_key": "s-002", "time": "2026-09-01T08:00:00+08:00",
     "properties": {"students": 800}},
    {"type": "group_set", "group_type": "class", "group_key": "c-1", "time": "2026-09-01T08:00:00+08:00",
     "properties": {"name": "英语 1 班"}},
]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    found = History(Path(tmp_path_factory.mktemp("catalog")), RECORDS)
    yield found
    found.close()


def test_events_and_properties(history: History) -> None:
    catalogue = build_catalogue(history.platform.store, history.project.id).as_dict()
    events = {e["name"]: e for e in catalogue["events"]}
    assert [e["name"] for e in catalogue["events"]] == ["order_paid", "page_view"]  # by volume
    assert events["order_paid"]["volume"] == 2
    assert events["order_paid"]["first_seen"].startswith("2026-09-01T02:00:00")
    assert events["order_paid"]["last_seen"].startswith("2026-09-03T02:00:00")
    assert set(events["order_paid"]["properties"]) == {"amount", "order_type", 'coupon "x"', "课程"}
    props = {p["name"]: p for p in catalogue["properties"]}
    assert props["amount"] == {**props["amount"], "type": "number", "typed": True, "volume": 2,
                               "events": ["order_paid"]}
    assert props['coupon "x"']["typed"] is False
    assert props["课程"]["volume"] == 1
    assert props["url"]["events"] == ["page_view"]
    person = {p["name"]: p["volume"] for p in catalogue["person_properties"]}
    assert person == {"grade": 2, "city": 1}


def test_another_project_sees_nothing(history: History) -> None:
    other = history.platform.meta.create_project("Other School").project
    assert build_catalogue(history.platform.store, other.id).as_dict() == {
        "events": [], "properties": [], "person_properties": [], "groups": []}
    assert group_names(history.platform.store, other.id, "school", ["s-001"]) == {"s-001": None}


def test_group_types_their_properties_and_names(history: History) -> None:
    groups = {g["type"]: g for g in build_catalogue(history.platform.store, history.project.id).as_dict()["groups"]}
    assert groups["school"]["count"] == 2
    assert groups["school"]["properties"] == [{"name": "students", "volume": 2}, {"name": "name", "volume": 1}]
    assert groups["class"] == {"type": "class", "count": 1, "properties": [{"name": "name", "volume": 1}]}
    names = group_names(history.platform.store, history.project.id, "school", ["s-001", "s-002", "s-404"])
    assert names == {"s-001": "杭州第一小学", "s-002": None, "s-404": None}


@requires_chdb
def test_duckdb_and_clickhouse_agree(history: History) -> None:
    duck = build_catalogue(history.platform.store, history.project.id).as_dict()
    house = build_catalogue(_Mirror.load(history), history.project.id).as_dict()

    def comparable(catalogue: dict) -> dict:
        for entry in catalogue["events"] + catalogue["properties"]:  # instants compared to the second
            for key in ("first_seen", "last_seen"):
                if entry.get(key):
                    entry[key] = entry[key][:19]
            if "properties" in entry:
                entry["properties"] = sorted(entry["properties"])
        return catalogue

    assert comparable(house) == comparable(duck)
