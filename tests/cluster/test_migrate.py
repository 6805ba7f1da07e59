"""`edupulse migrate-store`: an embedded installation's events go to a ClickHouse server and its metadata to
another database (PostgreSQL, and SQLite here too); a run cut short resumes without copying twice; the
counts are checked; the platform on the new stores answers as before and keeps each person's identity."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edupulse.cli import main
from edupulse.conf import Settings
from edupulse.ingest.records import to_micros
from edupulse.ingest.xapi import complete, signature, validate_statement
from edupulse.meta.db import MetadataStore
from edupulse.meta.xapi import NewStatement, StatementStore
from edupulse.runtime import Platform
from engines import requires_chdb

pytestmark = requires_chdb
START = dt.datetime(2026, 9, 1, 1, tzinfo=dt.UTC)
QUERY = {"kind": "trends", "series": [{"event": "page_view", "math": "unique"}],
         "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"}}


def accept_a_statement(meta: MetadataStore, project_id: int) -> str:
    """A statement the server's store (SQLite) accepted and had not indexed when the server stopped."""
    raw = validate_statement({"id": str(uuid.uuid4()), "actor": {"mbox": "mailto:a@s.example"},
                              "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
                              "object": {"id": "https://s.example/lesson/1"}})
    now = dt.datetime.now(dt.UTC)
    authority = {"objectType": "Agent", "account": {"homePage": "http://127.0.0.1", "name": f"project:{project_id}"}}
    new = NewStatement(complete(raw, now, authority), signature(raw), to_micros(now), None)
    StatementStore(meta, deferred=True, index_seconds=3600).save(project_id, [new])
    with meta.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM xapi_pending_statements").scalar_one() == 1
    return str(raw["id"])


def records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(12):
        t = START + dt.timedelta(hours=7 * i)
        out += [
            {"type": "track", "event": "page_view", "distinct_id": f"d{i}", "time": t.isoformat(), "event_id": f"a{i}",
             "properties": {"utm_source": "douyin"}},
            {"type": "identify", "distinct_id": f"u{i}", "anonymous_id": f"d{i}", "time": t.isoformat()},
            {"type": "profile_set", "distinct_id": f"u{i}", "distinct_id_type": "login_id", "time": t.isoformat(),
             "properties": {"grade": "G5"}},
            {"type": "track", "event": "order_paid", "distinct_id": f"u{i}", "distinct_id_type": "login_id",
             "time": (t + dt.timedelta(minutes=5)).isoformat(), "event_id": f"b{i}", "properties": {"amount": 99}},
        ]
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ch_server import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("clickhouse"))
    yield proc
    proc.stop()


def test_migrate_store_copies_resumes_and_verifies(tmp_path: Path, server: Any, metadata_url: str) -> None:
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    data = tmp_path / "embedded"
    with Platform(Settings(data_dir=data)).open() as embedded:
        project = embedded.meta.create_project("Chain School").project
        embedded.ingestor.ingest(project, records())
        embedded.flush()
        before = embedded.query_service().run(project, QUERY).to_wire()
        persons = sorted(row[3] for row in embedded.store.identity_rows())
        accepted = accept_a_statement(embedded.meta, project.id)  # durable, not yet indexed
    url = server.url(f"m_{tmp_path.name[-8:].replace('-', '_')}")
    runner = CliRunner()
    args = ["--data-dir", str(data), "migrate-store", "--to", url, "--metadata-to", metadata_url]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "DIFF" not in first.output
    assert "ok    events of project 1: 24 here, 24 there" in first.output
    assert "ok    metadata projects: 1 here, 1 there" in first.output

    # runs cut short: a day never copied (no rows, no mark), a day copied but not marked, a day half copied;
    # the next run copies the first and the third again, whole, and marks the second
    target = ClickHouseServerStore(url)
    target.open()
    target._execute(f"DELETE FROM {target._t('events')} WHERE toDate(time) = '2026-09-02'")
    target._execute(f"DELETE FROM {target._t('events')} WHERE toDate(time) = '2026-09-03' AND insert_id LIKE 'a%'")
    target._execute(f"DELETE FROM {target._t('checkpoints')} WHERE source LIKE 'migrate:events:1/2026-09-0%'")
    again = runner.invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "copied 14 events (2 days copied before were skipped)" in again.output
    assert target.query("SELECT count() FROM events").rows[0][0] == 24
    target.close()

    # the platform on the new stores answers as before, and a returning learner is still the same person
    settings = Settings(data_dir=tmp_path / "node", events_url=url, metadata_url=metadata_url)
    with Platform(settings).open() as moved:
        project = moved.meta.project_by_name("Chain School")
        assert project is not None
        after = moved.query_service().run(project, QUERY).to_wire()
        assert after["series"] == before["series"]
        moved.ingestor.ingest(project, [{"type": "track", "event": "page_view", "distinct_id": "d3",
                                         "time": START.isoformat(), "event_id": "late"}])
        moved.flush()
        late = moved.store.query("SELECT person_id FROM events WHERE insert_id = 'late'").rows[0][0]
        first_visit = moved.store.query("SELECT person_id FROM events WHERE insert_id = 'a3'").rows[0][0]
        assert late == first_visit
        assert sorted(row[3] for row in moved.store.identity_rows()) == persons
        assert StatementStore(moved.meta).get(project.id, accepted, voided=False) is not None


def test_migrate_store_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["--data-dir", str(tmp_path), "migrate-store", "--to", "mysql://h/db"])
    assert bad.exit_code != 0
    assert "scheme" in bad.output
    twice = runner.invoke(main, ["--data-dir", str(tmp_path), "--events-url", "clickhouse://h/db", "migrate-store",
                                 "--to", "clickhouse://h/db"])
    assert twice.exit_code != 0
    assert "embedded store" in twice.output
