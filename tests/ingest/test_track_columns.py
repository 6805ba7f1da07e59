"""Track records of one identity go through the log as columns; the result is the same as for whole
records: group keys in their slots, properties split, duplicates stored once across both forms."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from edupulse.conf import Settings
from edupulse.runtime import Platform


def at(minute: int) -> str:
    return (dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)).isoformat()


def test_columns_and_whole_records_together(tmp_path: Path) -> None:
    platform = Platform(Settings(data_dir=tmp_path / "data")).open()
    try:
        project = platform.meta.create_project("Columns").project
        first = [
            {"type": "track", "event": "lesson_attended", "distinct_id": "u1", "time": at(0), "event_id": "a",
             "properties": {"lesson_id": "L1", "mood": "ok"}, "groups": {"school": "S1"}},
            {"type": "track", "event": "page_view", "distinct_id": "u2", "time": at(1), "event_id": "b"},
            {"type": "track", "event": "lesson_attended", "distinct_id": "u3", "time": at(2), "event_id": "c",
             "groups": {"class": "C9", "district": "D1"}},
            # a track that links identities travels whole; its id repeats a column record's: stored once
            {"type": "track", "event": "page_view", "distinct_id": "u2", "identities": {"mobile": "138"},
             "time": at(1), "event_id": "b"},
            {"type": "track", "event": "page_view", "distinct_id": "u4", "time": at(3)},
        ]
        outcome = platform.ingestor.ingest(project, first)
        assert outcome.accepted == 5
        outcome = platform.ingestor.ingest(project, first[:3])  # a retry of the column records
        platform.flush()
        rows = platform.store.query(
            "SELECT insert_id, event, distinct_id, group_0, group_2, group_3, prop_lesson_id, properties->>'mood' "
            "FROM events ORDER BY time, insert_id").rows
        assert rows == [
            ("a", "lesson_attended", "u1", "S1", None, None, "L1", "ok"),
            ("b", "page_view", "u2", None, None, None, None, None),
            ("c", "lesson_attended", "u3", None, "C9", "D1", None, None),
            (None, "page_view", "u4", None, None, None, None, None),
        ]
        u2 = platform.graph.person_of(project.id, "anonymous_id", "u2")
        assert platform.graph.person_of(project.id, "mobile", "138") == u2
        assert platform.loader is not None
        assert platform.loader.loaded_records == 4  # stored records; the repeats are not
    finally:
        platform.close()
