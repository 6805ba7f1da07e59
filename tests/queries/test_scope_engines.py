"""The advisor person scope and metrics by name on both engines (DuckDB, and ClickHouse through chDB): the
scope follows merged identities, and the results are the same on both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.queries.service import PersonScope
from engines import NOW, History, normalized, requires_chdb


def sh(text: str) -> str:
    return f"{text}+08:00"


RECORDS: list[dict[str, Any]] = [
    # dev-9 is anonymous until it signs in as alice: the same person, assigned through her login id
    {"type": "track", "event": "lesson_scheduled", "distinct_id": "dev-9", "time": sh("2026-09-02T09:00:00")},
    {"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-9", "time": sh("2026-09-02T09:30:00")},
    {"type": "track", "event": "lesson_attended", "distinct_id": "alice", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T10:00:00")},
    {"type": "track", "event": "lesson_scheduled", "distinct_id": "bob", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T09:00:00")},
    {"type": "track", "event": "lesson_scheduled", "distinct_id": "carol", "distinct_id_type": "login_id",
     "time": sh("2026-09-03T09:00:00")},
    {"type": "track", "event": "lesson_attended", "distinct_id": "carol", "distinct_id_type": "login_id",
     "time": sh("2026-09-03T10:00:00")},
]
QUERY = {"kind": "trends", "series": [{"event": "lesson_scheduled"}, {"metric": "attendance_rate"}],
         "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-03"}}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    h = History(tmp_path_factory.mktemp("scope"), RECORDS, name="Scope School")
    yield h
    h.close()


def scoped(history: History, engine: str, identities: list[tuple[str, str]]) -> dict[str, Any]:
    return history.service(engine).run(history.project, QUERY, now=NOW, scope=PersonScope(tuple(identities))).to_wire()


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_scope_follows_merges_on_both_engines(history: History, engine: str) -> None:
    everyone = history.run(QUERY, engine)
    assert everyone["series"][0]["aggregated_value"] == 3
    assert everyone["series"][1]["aggregated_value"] == pytest.approx(2 / 3 * 100)
    alice = scoped(history, engine, [("login_id", "alice")])
    assert alice["series"][0]["aggregated_value"] == 1  # her anonymous event counts as hers
    assert alice["series"][1]["aggregated_value"] == pytest.approx(100.0)
    two = scoped(history, engine, [("login_id", "alice"), ("login_id", "bob")])
    assert two["series"][0]["data"] == [0, 2, 0]
    nobody = scoped(history, engine, [])
    assert nobody["series"][0]["aggregated_value"] == 0
    assert nobody["series"][1]["aggregated_value"] is None


@requires_chdb
def test_engines_agree(history: History) -> None:
    identities = [("login_id", "carol")]
    assert normalized(scoped(history, "clickhouse", identities)) == normalized(scoped(history, "duckdb", identities))
