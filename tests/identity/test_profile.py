"""Person properties: set / set_once / increment / append / unset / delete in event-time order, whatever
order the operations arrive in."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

from edupulse.conf import Settings
from edupulse.identity.profile import fold
from edupulse.runtime import Platform

OPS = [
    (1, 1, "set", {"grade": "G4", "city": "Hangzhou"}),
    (2, 2, "set_once", {"first_channel": "douyin"}),
    (3, 3, "increment", {"lessons": 10}),
    (4, 4, "set", {"grade": "G5"}),
    (5, 5, "set_once", {"first_channel": "baidu"}),
    (6, 6, "increment", {"lessons": 5}),
    (7, 7, "append", {"tags": ["math"]}),
    (8, 8, "append", {"tags": ["english"]}),
    (9, 9, "unset", {"city": None}),
]
EXPECTED = {"grade": "G5", "first_channel": "douyin", "lessons": 15, "tags": ["math", "english"]}


def test_fold_in_time_order() -> None:
    assert fold(OPS) == EXPECTED


def test_fold_does_not_depend_on_arrival_order() -> None:
    for permutation in itertools.islice(itertools.permutations(OPS), 0, 40320, 97):
        assert fold(permutation) == EXPECTED


def test_delete_and_set_again_and_ties() -> None:
    ops: list[tuple[int, int, str, dict[str, Any]]] = [
        (1, 1, "set", {"a": 1, "b": 2}), (2, 2, "delete", {}), (3, 3, "set", {"c": 3}),
        (3, 4, "set", {"c": 4}),  # the same time: the later sequence number wins
        (4, 5, "increment", {"n": 1.5}), (5, 6, "set", {"s": "x"}), (6, 7, "increment", {"s": 2}),
    ]
    assert fold(ops) == {"c": 4, "n": 1.5, "s": 2}
    assert fold([(1, 1, "append", {"t": "one"}), (2, 2, "append", {"t": ["two"]})]) == {"t": ["one", "two"]}


def at(minute: int) -> str:
    return (dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)).isoformat()


def test_out_of_order_records_through_the_write_path(tmp_path: Path) -> None:
    platform = Platform(Settings(data_dir=tmp_path / "data")).open()
    try:
        project = platform.meta.create_project("Profiles").project
        who = {"distinct_id": "alice", "distinct_id_type": "login_id"}
        late_first = [
            {"type": "profile_set", **who, "time": at(10), "properties": {"grade": "G5"}},
            {"type": "profile_set_once", **who, "time": at(9), "properties": {"first_channel": "baidu"}},
            {"type": "profile_increment", **who, "time": at(8), "properties": {"lessons": 5}},
        ]
        early_later = [
            {"type": "profile_set", **who, "time": at(1), "properties": {"grade": "G4", "city": "Hangzhou"}},
            {"type": "profile_set_once", **who, "time": at(2), "properties": {"first_channel": "douyin"}},
            {"type": "profile_increment", **who, "time": at(3), "properties": {"lessons": 10}},
            {"type": "profile_unset", **who, "time": at(11), "properties": ["city"]},
        ]
        for batch in (late_first, early_later):
            outcome = platform.ingestor.ingest(project, batch)
            assert outcome.rejected == 0, outcome.results
            platform.flush()
        person = platform.graph.person_of(project.id, "login_id", "alice")
        [(props,)] = platform.store.query("SELECT properties FROM persons WHERE person_id = ?", [person]).rows
        assert json.loads(props) == {"grade": "G5", "first_channel": "douyin", "lessons": 15}
    finally:
        platform.close()
