"""The ClickHouse store (chDB in-process) is a second implementation of the event-store seam: fed the same
write batches as the DuckDB store, it holds the same rows, answers the loader's reads alike, and the
analysis queries agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edupulse.conf import Settings
from edupulse.meta.analysis import AnalysisMetadata
from edupulse.queries.service import QueryService
from edupulse.runtime import Platform
from edupulse.store.base import WriteBatch
from edupulse.store.schema import PropertyType
from engines import NOW, _Mirror, normalized, requires_chdb

pytestmark = requires_chdb


def sh(text: str) -> str:
    return f"{text}+08:00"


RECORDS: list[dict[str, Any]] = [
    {"type": "track", "event": "page_view", "distinct_id": "dev-9", "time": sh("2026-09-01T08:00:00"),
     "properties": {"utm_source": "douyin", "page": "/a"}, "event_id": "e1"},
    {"type": "identify", "distinct_id": "zoe", "anonymous_id": "dev-9", "time": sh("2026-09-01T08:05:00")},
    {"type": "profile_set", "distinct_id": "zoe", "distinct_id_type": "login_id", "time": sh("2026-09-01T08:06:00"),
     "properties": {"grade": "G7"}},
    {"type": "track", "event": "order_paid", "distinct_id": "zoe", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T21:00:00"), "properties": {"amount": 1999, "order_type": "first"}, "event_id": "e2",
     "groups": {"school": "S-1"}},
    {"type": "group_set", "group_type": "school", "group_key": "S-1", "properties": {"tier": "A"}},
    {"type": "track", "event": "page_view", "distinct_id": "yan", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T23:59:00"), "properties": {"utm_source": "baidu"}, "event_id": "e3"},
]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Platform, Any]]:
    from edupulse.store.clickhouse import DB, ClickHouseStore

    platform = Platform(Settings(data_dir=tmp_path / "data"))
    _Mirror.holder = None  # ClickHouse's engine is one per process: the harness's copy is about to go
    house = ClickHouseStore()
    house.open()
    for table in ("events", "identities", "person_overrides", "persons", "profile_ops", "entity_ops", "entities",
                  "spend", "checkpoints"):
        house._execute(f"TRUNCATE TABLE {DB}.{table}")
    write = platform.store.write

    def tee(batch: WriteBatch) -> None:  # every batch the loader writes goes to both stores
        write(batch)
        house.write(batch)

    platform.store.write = tee  # type: ignore[method-assign]
    platform.open()
    yield platform, house
    platform.close()
    # Columns declared here would outlive the test in the process's one ClickHouse engine (and turn other
    # histories' untyped properties into empty typed columns there): drop them.
    from edupulse.store.clickhouse import RESOLVED_VIEW
    from edupulse.store.schema import STANDARD_PROPERTIES, property_column

    for name in sorted(set(house.typed_properties()) - set(STANDARD_PROPERTIES)):
        house._execute(f"ALTER TABLE {DB}.events DROP COLUMN IF EXISTS `{property_column(name)}`")
        house._execute(f"DELETE FROM {DB}.property_columns WHERE name = '{name}'")
    house._execute(RESOLVED_VIEW)
    if _Mirror.store is not None:
        _Mirror.store._typed = {k: v for k, v in _Mirror.store._typed.items() if k in STANDARD_PROPERTIES}
    _Mirror.holder = None


def test_same_batches_same_rows_same_answers(pair: tuple[Platform, Any]) -> None:
    platform, house = pair
    project = platform.meta.create_project("Twin School").project
    outcome = platform.ingestor.ingest(project, RECORDS)
    assert outcome.rejected == 0, outcome.results
    platform.flush()
    duck = platform.store
    for sql in ("SELECT event, distinct_id, resolved_person_id, prop_amount, prop_utm_source FROM events_resolved "
                "ORDER BY event, distinct_id",
                "SELECT id_type, id_value, person_id FROM identities ORDER BY id_type, id_value",
                "SELECT old_person_id, person_id FROM person_overrides ORDER BY old_person_id",
                "SELECT person_id, properties FROM persons ORDER BY person_id",
                "SELECT entity_type, entity_key, properties FROM entities ORDER BY entity_key"):
        assert house.query(sql).rows == duck.query(sql).rows, sql
    assert house.max_ids() == duck.max_ids()
    assert house.existing_insert_ids("events", project.id, ["e1", "e2", "nope"], 0, 2**62) == {"e1", "e2"}
    assert sorted(house.person_ops(project.id, [2])) == sorted(duck.person_ops(project.id, [2]))
    query = {"kind": "trends", "series": [{"event": "page_view", "math": "unique"}, {"event": "order_paid",
             "math": "sum", "property": "amount"}], "breakdown": {"properties": ["person.grade"]},
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-03"}}
    on_duck = QueryService(duck, AnalysisMetadata(platform.meta)).run(project, query, now=NOW).to_wire()
    on_house = QueryService(house, AnalysisMetadata(platform.meta)).run(project, query, now=NOW).to_wire()
    assert normalized(on_house) == normalized(on_duck)
    assert house.data_version() > 0


def test_declared_property_is_filled_from_stored_json(pair: tuple[Platform, Any]) -> None:
    platform, house = pair
    project = platform.meta.create_project("Declared School").project
    platform.ingestor.ingest(project, RECORDS)
    platform.flush()
    house.declare_property("page", PropertyType.STRING)
    assert house.query("SELECT prop_page FROM events WHERE prop_page IS NOT NULL").rows == [("/a",)]
    with pytest.raises(ValueError, match="already typed"):
        house.declare_property("page", PropertyType.NUMBER)
