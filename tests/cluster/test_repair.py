"""A process that died after logging a batch's identity decisions in PostgreSQL but before ClickHouse held
the batch writes those identities when it starts again, and knows them; twice does not store them twice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from edupulse.conf import NodeSettings, Settings
from edupulse.meta.cluster import IdentityLogEntry
from edupulse.runtime import Platform
from engines import requires_chdb

pytestmark = [requires_chdb, pytest.mark.postgres,
              pytest.mark.skipif(not os.environ.get("EDUPULSE_TEST_POSTGRES_URL"),
                                 reason="set EDUPULSE_TEST_POSTGRES_URL to run the scale-out tests on PostgreSQL")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ch_server import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("clickhouse"))
    yield proc
    proc.stop()


@pytest.mark.parametrize("metadata_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_logged_identities_missing_in_the_store_are_written_on_start(tmp_path: Path, server: Any,
                                                                      metadata_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "n1", events_url=server.url(f"rep_{tmp_path.name[-6:]}"),
                        metadata_url=metadata_url, node=NodeSettings(name="n1"))
    with Platform(settings).open() as platform:
        project = platform.meta.create_project("Repair School").project
        platform.ingestor.ingest(project, [{"type": "track", "event": "a", "distinct_id": "d1", "event_id": "e1"}])
        platform.flush()
        checkpoint = platform.store.checkpoint("wal:n1")
        assert checkpoint is not None
        person = platform.graph.person_of(project.id, "anonymous_id", "d1")
        with platform.meta.engine.begin() as conn:  # logged, then the process died before the store write
            conn.execute(insert(IdentityLogEntry).values(
                project_id=project.id, kind="link", id_type="anonymous_id", id_value="ghost", person_id=9_999,
                node="wal:n1", position="999:0"))
            conn.execute(insert(IdentityLogEntry).values(
                project_id=project.id, kind="merge", person_id=person, loser_id=9_999, node="wal:n1",
                position="999:0"))
    for _ in range(2):
        with Platform(settings).open() as again:
            rows = again.store.query("SELECT id_value, person_id FROM identities WHERE id_value = 'ghost'").rows
            assert rows == [("ghost", person)]  # linked, then merged as logged
            assert again.store.query("SELECT count() FROM person_overrides WHERE old_person_id = 9999").rows == [(1,)]
            assert again.graph.person_of(project.id, "anonymous_id", "ghost") == person
