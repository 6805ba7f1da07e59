"""Guard rails of the analysis engine on both stores: time limits and cancellation interrupt a running
statement, row limits refuse oversized results, the result cache follows the data version."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.conf import QuerySettings
from edupulse.queries.errors import QueryCancelled, QueryTimeout, QueryTooLarge
from edupulse.queries.service import QueryService, ResultCache
from edupulse.store.base import QueryControl, QueryInterrupted
from engines import NOW, History

SLOW = {"duckdb": "SELECT count(*) FROM range(100000000000) a",
        "clickhouse": "SELECT count() FROM numbers(100000000000)"}
RECORDS = [{"type": "track", "event": "page_view", "distinct_id": f"u{i}", "distinct_id_type": "login_id",
            "time": f"2026-09-0{1 + i % 3}T10:00:00+08:00", "properties": {"page": f"/p/{i}"}} for i in range(30)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    h = History(tmp_path_factory.mktemp("guards"), RECORDS, name="Guarded School")
    yield h
    h.close()


ENGINES = ["duckdb", "clickhouse"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_statement_past_its_time_limit_is_interrupted(history: History, engine: str) -> None:
    store = history.service(engine).store
    started = time.monotonic()
    with pytest.raises(QueryInterrupted) as caught:
        store.query(SLOW[engine], control=QueryControl(timeout=0.5))
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 10


def test_cancel_from_another_thread(history: History) -> None:
    control = QueryControl(timeout=60)
    threading.Timer(0.3, control.cancel).start()
    with pytest.raises(QueryInterrupted) as caught:
        history.platform.store.query(SLOW["duckdb"], control=control)
    assert caught.value.reason == "cancelled"


def test_runner_errors_name_the_guard(history: History) -> None:
    limited = history.service(limits=QuerySettings(max_result_rows=5))
    query: dict[str, Any] = {"kind": "trends", "series": [{"event": "page_view"}],
                             "breakdown": {"properties": ["page"], "limit": 50},
                             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-03"}}
    with pytest.raises(QueryTooLarge, match="more than 5 rows"):
        limited.run(history.project, query, now=NOW)
    cancelled = QueryControl(timeout=60)
    cancelled.cancel()
    with pytest.raises(QueryCancelled):
        QueryService(history.platform.store).run(history.project, query, now=NOW, control=cancelled)
    expired = QueryControl(timeout=0.001)
    time.sleep(0.01)
    with pytest.raises(QueryTimeout):
        QueryService(history.platform.store).run(history.project, query, now=NOW, control=expired)


def test_cache_serves_until_the_data_changes(history: History) -> None:
    cache = ResultCache(entries=8)
    service = history.service(cache=cache)
    query = {"kind": "trends", "series": [{"event": "page_view"}],
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-03"}}
    first = service.run(history.project, query, now=NOW).to_wire()
    second = service.run(history.project, query, now=NOW).to_wire()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["series"] == first["series"]
    history.add([{"type": "track", "event": "page_view", "distinct_id": "late", "time": "2026-09-02T11:00:00+08:00"}])
    third = service.run(history.project, query, now=NOW).to_wire()
    assert third["cached"] is False
    assert third["series"][0]["aggregated_value"] == first["series"][0]["aggregated_value"] + 1


@pytest.mark.parametrize("engine", ENGINES)
def test_a_limit_over_the_person_view_is_kept(history: History, engine: str) -> None:
    # DuckDB 2.0.0 can drop a LIMIT over the events view's two-key LEFT JOIN; the runner keeps it
    result = history.run({"kind": "sql", "sql": "SELECT person_id FROM events LIMIT 2"}, engine)
    assert len(result["rows"]) == 2
    assert result["truncated"] is False
