"""The ClickHouse server store over HTTP, against the test server (tests/ch_server.py: ClickHouse's HTTP
interface executed by chDB in a child process). The whole analysis conformance suite runs through this store
with EDUPULSE_TEST_CLICKHOUSE=server (`make test-server-store`); here: the platform on a server store answers
as the embedded one, schema versions, idempotent inserts, time limits, KILL QUERY, errors, cluster DDL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from edupulse.conf import Settings
from edupulse.runtime import Platform
from edupulse.store.base import QueryControl, QueryInterrupted, WriteBatch
from edupulse.store.clickhouse_client import ClickHouseError, parse_url
from edupulse.store.clickhouse_schema import Layout
from engines import NOW, normalized, requires_chdb

pytestmark = requires_chdb


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ch_server import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("clickhouse"), "edu", "s3cret")
    yield proc
    proc.stop()


@pytest.fixture
def url(server: Any) -> str:
    return str(server.url(f"t_{uuid.uuid4().hex[:12]}"))


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
    {"type": "track", "event": "page_view", "distinct_id": "yan", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T23:59:00"), "properties": {"utm_source": "baidu"}, "event_id": "e3"},  # a retry
]
WEEK = {"date_from": "2026-09-01", "date_to": "2026-09-03"}
QUERIES: list[dict[str, Any]] = [
    {"kind": "trends", "series": [{"event": "page_view", "math": "unique"}, {"event": "order_paid", "math": "sum",
     "property": "amount"}], "breakdown": {"properties": ["person.grade"]}, "date_range": WEEK},
    {"kind": "trends", "series": [{"event": "page_view"}], "breakdown": {"properties": ["utm_source"]},
     "date_range": WEEK},
    {"kind": "funnel", "steps": [{"event": "page_view"}, {"event": "order_paid"}], "date_range": WEEK},
]


def test_the_platform_on_a_server_store_answers_as_the_embedded_one(tmp_path: Path, url: str) -> None:
    answers = []
    for name, settings in (("embedded", Settings(data_dir=tmp_path / "a")),
                           ("server", Settings(data_dir=tmp_path / "b", events_url=url))):
        with Platform(settings).open() as platform:
            project = platform.meta.create_project("Twin School").project
            outcome = platform.ingestor.ingest(project, RECORDS)
            assert outcome.rejected == 0, name
            platform.flush()
            service = platform.query_service()
            answers.append([normalized({k: v for k, v in service.run(project, q, now=NOW).to_wire().items()
                                        if k != "sql"}) for q in QUERIES])
            assert platform.store.dialect == ("clickhouse" if name == "server" else "duckdb")
            counted = platform.store.query("SELECT count() AS n FROM events" if name == "server" else
                                           "SELECT count(*) AS n FROM events").rows[0][0]
            assert counted == 3  # the retried record once
    assert answers[0] == answers[1]
    # reopened: the log was checkpointed in the server, nothing is loaded twice
    with Platform(Settings(data_dir=tmp_path / "b", events_url=url)).open() as again:
        assert again.store.query("SELECT count() AS n FROM events").rows[0][0] == 3


def test_schema_versions_are_applied_once_and_reopening_changes_nothing(url: str) -> None:
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    first = ClickHouseServerStore(url)
    first.open()
    latest = Layout().versions()[-1][0]
    assert first.schema_version() == latest
    second = ClickHouseServerStore(url)
    second.open()
    assert second.schema_version() == latest
    engines = dict(first._rows(f"SELECT name, engine FROM system.tables WHERE database = '{first.layout.database}'"))
    assert engines["events"] == "MergeTree"
    assert engines["events_resolved"] == "View"
    first.close()
    second.close()


def test_a_batch_written_twice_is_stored_once(url: str) -> None:
    """Inserts carry deduplication tokens named after the batch's log position: applying a batch again (a
    crash between its tables) does not store its rows twice, even rows without an insert id."""
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    store = ClickHouseServerStore(url)
    store.open()
    t = 1_788_000_000_000_000
    events = pa.table({"project_id": pa.array([1, 1], pa.int32()), "event": ["a", "b"],
                       "time": pa.array([t, t + 1], pa.timestamp("us", tz="UTC")), "distinct_id": ["x", "x"],
                       "person_id": pa.array([1, 1], pa.int64()), "insert_id": [None, None],
                       "received_at": pa.array([t, t], pa.timestamp("us", tz="UTC")),
                       **{f"group_{i}": pa.array([None, None], pa.string()) for i in range(5)},
                       "properties": [None, None]})
    batch = WriteBatch(raw_events=events, identities=[(1, "anonymous_id", "x", 1)],
                       profile_ops=[(1, 1, t, 1, "set", "{}", None)], merges=[], checkpoint=("wal:n1", "0:100"))
    store.write(batch)
    store.write(batch)
    assert store.query("SELECT count() FROM events").rows[0][0] == 2
    assert store.query("SELECT count() FROM identities").rows[0][0] == 1
    assert store.query("SELECT count() FROM profile_ops").rows[0][0] == 1
    store.write(WriteBatch(raw_events=events, checkpoint=("wal:n1", "0:200")))  # another batch: stored
    assert store.query("SELECT count() FROM events").rows[0][0] == 4
    store.close()


def test_time_limits_cancellation_and_errors_reach_the_server(url: str) -> None:
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    store = ClickHouseServerStore(url)
    store.open()
    slow = "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 7"
    started = time.monotonic()
    with pytest.raises(QueryInterrupted) as timed_out:
        store.query(slow, control=QueryControl(1.0))
    assert timed_out.value.reason == "timeout"
    assert time.monotonic() - started < 20

    control = QueryControl(6.0)  # the test server's engine finishes a killed statement within its limit
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            store.query(slow, control=control)
        except QueryInterrupted as exc:
            outcome["reason"] = exc.reason

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    control.cancel()  # KILL QUERY by its id, and the request is dropped
    worker.join(20)
    assert outcome == {"reason": "cancelled"}
    assert time.monotonic() - started < 5

    with pytest.raises(ClickHouseError) as unknown:
        store.query("SELECT no_such_column FROM events")
    assert unknown.value.code == 47
    store.close()


def test_wrong_credentials_and_bad_urls_are_refused(server: Any) -> None:
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    wrong = ClickHouseServerStore(server.url("t_wrong").replace(":s3cret@", ":nope@"))
    with pytest.raises(ClickHouseError) as refused:
        wrong.open()
    wrong.close()
    assert refused.value.code == 516
    for bad, reason in (("mysql://h/db", "scheme"), ("clickhouse:///db", "no host"),
                        ("clickhouse://h/bad-name", "database name"), ("clickhouse://h:99999/db", "(?i)port")):
        with pytest.raises(ValueError, match=reason):
            parse_url(bad)
    address = parse_url("clickhouses://app:p%40ss@ch.example:9443/analytics")
    assert (address.tls, address.user, address.password, address.port, address.database) == (
        True, "app", "p@ss", 9443, "analytics")
    assert parse_url("http://ch.example").port == 8123
    assert parse_url("https://ch.example").port == 8443


def test_a_cluster_gets_replicated_tables_and_distributed_events() -> None:
    layout = Layout("analytics", "main")
    statements = [s for _, batch in layout.versions() for s in batch]
    text = "\n".join(statements)
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in text
    assert "Distributed(`main`, `analytics`, `events_local`, cityHash64(person_id))" in text
    assert all(" ON CLUSTER `main`" in s for s in statements)
    assert "MergeTree ORDER BY" not in text.replace("ReplicatedMergeTree", "")
    assert layout.mutable("events") == "`analytics`.`events_local` ON CLUSTER `main`"
    assert layout.mutable("persons") == "`analytics`.`persons`"  # replicated: a mutation reaches every replica
    assert len(layout.altered("events")) == 2
    single = "\n".join(s for _, batch in Layout("analytics").versions() for s in batch)
    assert "Replicated" not in single
    assert "ON CLUSTER" not in single
    assert "non_replicated_deduplication_window = 10000" in single
