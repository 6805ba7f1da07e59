"""`edupulse import` on a ClickHouse server store: on one process (SQLite metadata), and beside other API
processes (PostgreSQL metadata), where the imported identities are decided under the project's lock and
logged, so another process resolves the same learners to the same persons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edupulse.conf import Settings
from edupulse.importer.run import ImportOptions, run_import
from edupulse.runtime import Platform
from engines import requires_chdb

pytestmark = requires_chdb
CSV = """event,distinct_id,time,event_id
page_view,d1,2026-09-01T08:00:00+08:00,i1
lesson_attended,d1,2026-09-01T09:00:00+08:00,i2
page_view,d9,2026-09-01T10:00:00+08:00,i3
page_view,d9,2026-09-01T10:00:00+08:00,i3
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ch_server import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("clickhouse"))
    yield proc
    proc.stop()


def test_import_events_into_a_server_store(tmp_path: Path, server: Any, metadata_url: str) -> None:
    url = server.url(f"imp_{tmp_path.name[-8:].replace('-', '_')}")
    with Platform(Settings(data_dir=tmp_path / "a", events_url=url, metadata_url=metadata_url)).open() as first:
        project = first.meta.create_project("Import School").project
        first.ingestor.ingest(project, [{"type": "track", "event": "signup", "distinct_id": "d1",
                                         "time": "2026-09-01T07:00:00+08:00", "event_id": "api-1"}])
        first.flush()
        path = tmp_path / "events.csv"
        path.write_text(CSV)
        summary = run_import(first, ImportOptions(kind="events", path=path, project="Import School"))
        assert (summary.imported, summary.duplicates, summary.rejected) == (3, 1, 0)
        persons = dict(first.store.query("SELECT insert_id, person_id FROM events").rows)
        assert persons["i1"] == persons["i2"] == persons["api-1"]
        assert persons["i3"] != persons["i1"]
        again = run_import(first, ImportOptions(kind="events", path=path, project="Import School"))
        assert again.imported == 0
        assert first.store.query("SELECT count() FROM events").rows[0][0] == 4
        shared = first.shared
    assert shared == metadata_url.startswith("postgresql")
    if not shared:
        return
    # another process: the imported learner d9 is a person it knows from the identity log
    with Platform(Settings(data_dir=tmp_path / "b", events_url=url, metadata_url=metadata_url)).open() as second:
        project = second.meta.project_by_name("Import School")
        assert project is not None
        second.ingestor.ingest(project, [{"type": "track", "event": "order_paid", "distinct_id": "d9",
                                          "time": "2026-09-02T07:00:00+08:00", "event_id": "api-2"}])
        second.flush()
        persons = dict(second.store.query("SELECT insert_id, person_id FROM events").rows)
        assert persons["api-2"] == persons["i3"]
