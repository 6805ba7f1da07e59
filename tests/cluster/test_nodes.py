"""Two real `edupulse serve` processes sharing PostgreSQL (a schema of their own) and a ClickHouse server
(tests/ch_server.py), receiving interleaved records of the same persons from concurrent clients, the same
event ids on both at once, and a kill -9 of one of them while it holds acknowledged records it has not
loaded: every acknowledged record is stored once, the persons are those of a single-process run, both
processes answer analyses alike (their caches follow each other's writes), one of them runs the scheduler."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from edupulse.conf import Settings
from edupulse.runtime import Platform
from engines import requires_chdb

POSTGRES_URL = os.environ.get("EDUPULSE_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.postgres, pytest.mark.slow, requires_chdb,
              pytest.mark.skipif(not POSTGRES_URL, reason="set EDUPULSE_TEST_POSTGRES_URL to run the scale-out "
                                                          "tests on PostgreSQL")]
START = dt.datetime(2026, 9, 1, 1, tzinfo=dt.UTC)
PEOPLE = 30


def at(minutes: int) -> str:
    return (START + dt.timedelta(minutes=minutes)).isoformat()


def person_records(i: int) -> list[dict[str, Any]]:
    """A learner on two devices who logs in on both (two anonymous persons merge into the logged-in one)."""
    return [
        {"type": "track", "event": "page_view", "distinct_id": f"d{i}", "time": at(i), "event_id": f"p{i}-1",
         "properties": {"utm_source": "douyin" if i % 2 else "baidu"}},
        {"type": "track", "event": "page_view", "distinct_id": f"e{i}", "time": at(i + 1), "event_id": f"p{i}-2"},
        {"type": "identify", "distinct_id": f"u{i}", "anonymous_id": f"d{i}", "time": at(i + 2), "event_id": f"p{i}-3"},
        {"type": "track", "event": "lesson_attended", "distinct_id": f"u{i}", "distinct_id_type": "login_id",
         "time": at(i + 3), "event_id": f"p{i}-4"},
        {"type": "identify", "distinct_id": f"u{i}", "anonymous_id": f"e{i}", "time": at(i + 4), "event_id": f"p{i}-5"},
        {"type": "profile_set", "distinct_id": f"u{i}", "distinct_id_type": "login_id", "time": at(i + 5),
         "properties": {"grade": f"G{i % 6 + 1}"}, "event_id": f"p{i}-6"},
        {"type": "track", "event": "order_paid", "distinct_id": f"e{i}", "time": at(i + 6), "event_id": f"p{i}-7",
         "properties": {"amount": 100 + i}},
    ]


RECORDS = [r for i in range(PEOPLE) for r in person_records(i)]
UNIQUE = {"kind": "trends", "series": [{"event": "page_view", "math": "unique"}, {"event": "order_paid",
          "math": "unique"}], "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-02"}}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    from cluster_support import Cluster

    assert POSTGRES_URL is not None
    with Cluster(tmp_path, POSTGRES_URL, env={"EDUPULSE_SCHEDULER__CHECK_SECONDS": "1"}) as made:
        yield made


def partition(rows: list[tuple[Any, ...]]) -> set[frozenset[tuple[str, str]]]:
    persons: dict[int, set[tuple[str, str]]] = {}
    for _, id_type, value, person in rows:
        persons.setdefault(person, set()).add((id_type, value))
    return {frozenset(ids) for ids in persons.values()}


def single_process_answer(root: Path) -> tuple[set[frozenset[tuple[str, str]]], dict[str, Any]]:
    with Platform(Settings(data_dir=root)).open() as platform:
        project = platform.meta.create_project("Chain School").project
        platform.ingestor.ingest(project, RECORDS)
        platform.flush()
        answer = platform.query_service().run(project, UNIQUE).to_wire()
        return partition(list(platform.store.identity_rows())), answer


class Clients:
    """Concurrent clients; `acked` collects the event ids the nodes acknowledged."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.acked: set[str] = set()
        self.lock = threading.Lock()

    def send(self, node: Any, batches: list[list[dict[str, Any]]]) -> None:
        for batch in batches:
            got = self.cluster.post(node, batch)
            with self.lock:
                self.acked.update(got)

    def at_once(self, work: list[tuple[Any, list[list[dict[str, Any]]]]]) -> None:
        threads = [threading.Thread(target=self.send, args=item) for item in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)


def kill_while_unloaded(cluster: Any, clients: Clients, a: Any, b: Any) -> None:
    """While no node can load (the test holds the project's identity lock), b acknowledges records and is
    killed with kill -9: what it acknowledged is only in its log."""
    holder = sa.create_engine(cluster.metadata_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with holder.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(20931, 1)"))
        conn.commit()
        second = [person_records(i) for i in range(PEOPLE // 2, PEOPLE)]
        clients.send(b, [recs[:4] for recs in second])
        clients.send(a, [recs[4:] for recs in second])
        cluster.kill(b)
        conn.execute(sa.text("SELECT pg_advisory_unlock(20931, 1)"))
        conn.commit()
    holder.dispose()


def wait_loaded(store: Any, expected: int, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        loaded = store.query("SELECT (SELECT count() FROM events) + (SELECT count() FROM profile_ops)").rows[0][0]
        if loaded >= expected:
            return
        time.sleep(0.5)


def caches_follow_writes(cluster: Any, a: Any, b: Any, store: Any, single_answer: dict[str, Any]) -> None:
    """Both nodes answer as the single process; a write through one is seen by the other's cache."""
    answers = [cluster.request(node, "POST", "/api/v1/query", UNIQUE) for node in (a, b)]
    for status, answer in answers:
        assert status == 200, answer
        assert answer["series"] == single_answer["series"]
    late = {"type": "track", "event": "page_view", "distinct_id": "newcomer", "time": at(60), "event_id": "late-1"}
    assert cluster.post(b, [late]) == ["late-1"]
    # the shared data version moves right after the write is stored: a's cached answer stops being served
    deadline = time.monotonic() + 60
    while True:
        status, after = cluster.request(a, "POST", "/api/v1/query", UNIQUE)
        assert status == 200
        if after["series"] != answers[0][1]["series"]:
            break
        assert time.monotonic() < deadline, "node a kept serving its cached answer"
        time.sleep(0.2)
    assert after["cached"] is False


def test_two_nodes_store_each_acknowledged_record_once_with_the_persons_of_one(cluster: Any, tmp_path: Path) -> None:
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    a, b = cluster.start_node("a"), cluster.start_node("b")
    clients = Clients(cluster)
    # every person's records split between the two nodes, sent at once from two clients each, plus the same
    # records (same event ids) to both nodes at once
    first = [person_records(i) for i in range(PEOPLE // 2)]
    to_a = [recs[0::2] for recs in first] + [recs[:2] for recs in first[:5]]
    to_b = [recs[1::2] for recs in first] + [recs[:2] for recs in first[:5]]
    clients.at_once([(a, to_a[0::2]), (a, to_a[1::2]), (b, to_b[0::2]), (b, to_b[1::2])])
    kill_while_unloaded(cluster, clients, a, b)
    assert len(clients.acked) == len(RECORDS)
    b = cluster.start_node("b")  # its log is loaded on start

    store = ClickHouseServerStore(cluster.events_url)
    store.open()
    wait_loaded(store, len(RECORDS) - 2 * PEOPLE)  # identify records store no event
    time.sleep(1.0)
    tracks = {r["event_id"] for r in RECORDS if r["type"] == "track"}
    stored = store.query("SELECT insert_id, count() AS n FROM events GROUP BY insert_id").rows
    assert {i for i, _ in stored} == tracks
    assert [i for i, n in stored if n > 1] == []  # each acknowledged event once
    assert store.query("SELECT count() FROM profile_ops").rows[0][0] == PEOPLE

    # the persons are those of one process that received everything
    expected, single_answer = single_process_answer(tmp_path / "single")
    assert partition(list(store.identity_rows())) == expected
    assert len(expected) == PEOPLE
    assert store.query("SELECT count(DISTINCT resolved_person_id) FROM events_resolved").rows[0][0] == PEOPLE

    caches_follow_writes(cluster, a, b, store, single_answer)
    # one of the nodes holds the scheduler's lease
    engine = sa.create_engine(cluster.metadata_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        holders = conn.execute(sa.text("SELECT holder FROM leases WHERE name = 'scheduler'")).scalars().all()
    engine.dispose()
    assert holders in (["a"], ["b"])
    store.close()
