"""Conformance harness: one hand-built history written through the real write path into the DuckDB store,
the same rows copied into the ClickHouse store (chDB, in-process; or the ClickHouse server store over HTTP
with EDUPULSE_TEST_CLICKHOUSE=server, see server_mode), and every query run on both.

    history = History(tmp_path, RECORDS)             # ingests, flushes
    result = history.both({"kind": "funnel", ...})   # runs on DuckDB and on ClickHouse, asserts equal
    result = history.run(query, engine="duckdb")     # one engine

ClickHouse's engine is one per process (chDB), so the mirror holds one history at a time: running a query
of another history on ClickHouse reloads it. Without chDB installed, `both` and the tests marked
`requires_chdb` fail rather than skip: an agreement not checked is not an agreement (`make install` installs
chDB, the `clickhouse` extra, from the lock file).
"""

from __future__ import annotations

import atexit
import datetime as dt
import itertools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from edupulse.conf import QuerySettings, Settings
from edupulse.meta.analysis import AnalysisMetadata
from edupulse.meta.db import ProjectInfo
from edupulse.queries.registry import Registry
from edupulse.queries.results import Table, to_csv
from edupulse.queries.service import QueryResult, QueryService, ResultCache
from edupulse.runtime import Platform
from edupulse.sim import SimulationConfig, simulate
from edupulse.store.base import EventStore

NOW = dt.datetime(2026, 9, 10, 4, tzinfo=dt.UTC)  # 12:00 on 10 September in Asia/Shanghai
VOLATILE = ("sql", "timings", "cached")


MISSING_CHDB = ("chDB is not installed, so the ClickHouse half of the engine-agreement tests cannot run: "
                "pip install 'edupulse[clickhouse]' (make install does)")


def have_chdb() -> bool:
    try:
        import chdb  # noqa: F401
    except ImportError:
        return False
    return True


def require_chdb() -> None:
    if not have_chdb():
        pytest.fail(MISSING_CHDB)


_TOKENS = itertools.count(1)


class _Mirror:
    """The process's one ClickHouse store and which history it holds."""

    store: Any = None
    holder: int | None = None

    @classmethod
    def load(cls, history: History) -> EventStore:
        require_chdb()
        from edupulse.store.clickhouse import DB, RESOLVED_VIEW, ClickHouseStore

        if cls.store is None:
            if server_mode():
                cls.store = _server_store()
            else:
                cls.store = ClickHouseStore()
                cls.store.open()
        if cls.holder != history.token:
            # typed columns declared by other tests would make ClickHouse read NULL columns where DuckDB reads JSON
            source = history.platform.store.typed_properties()
            for name in set(cls.store.typed_properties()) - set(source):
                cls.store._execute(f"ALTER TABLE {DB}.events DROP COLUMN IF EXISTS `prop_{name}`")
                cls.store._execute(f"DELETE FROM {DB}.property_columns WHERE name = '{name}'")
                cls.store._typed.pop(name, None)
            cls.store._execute(RESOLVED_VIEW)
            for table in ("events", "identities", "person_overrides", "persons", "profile_ops", "entity_ops",
                          "entities", "spend", "checkpoints", "tag_values"):
                cls.store._execute(f"TRUNCATE TABLE {DB}.{table}")
            cls.store.copy_from(history.platform.store)
            cls.holder = history.token
        return cls.store


class History:
    """A project with these records, stored through the real write path (and mirrored on ClickHouse)."""

    truth: dict[str, Any]  # a simulated school's ground truth (simulated_school)

    def __init__(self, root: Path, records: Sequence[dict[str, Any]], timezone: str = "Asia/Shanghai",
                 name: str = "Conformance School", expect_rejected: int = 0, platform: Platform | None = None) -> None:
        # not id(self): a collected history's id can come back for a new one while the mirror holds the old
        self.token = next(_TOKENS)
        # a platform given is shared (a new project in it per history; many small histories open faster)
        self.owned = platform is None
        self.platform = platform or Platform(Settings(data_dir=root / "data")).open()
        self.project: ProjectInfo = self.platform.meta.create_project(name, timezone).project
        if records:
            outcome = self.platform.ingestor.ingest(self.project, list(records))
            assert outcome.rejected == expect_rejected, outcome.results
        self.platform.flush()

    def add(self, records: Sequence[dict[str, Any]]) -> None:
        outcome = self.platform.ingestor.ingest(self.project, list(records))
        assert outcome.rejected == 0, outcome.results
        self.platform.flush()
        if _Mirror.holder == self.token:
            _Mirror.holder = None

    def service(self, engine: str = "duckdb", cache: ResultCache | None = None,
                limits: QuerySettings | None = None) -> QueryService:
        store = self.platform.store if engine == "duckdb" else _Mirror.load(self)
        return QueryService(store, AnalysisMetadata(self.platform.meta), cache, limits or QuerySettings())

    def answer(self, query: dict[str, Any], engine: str = "duckdb", now: dt.datetime = NOW) -> QueryResult[Any]:
        """The typed result (with its frame), on one engine."""
        return self.service(engine).run(self.project, query, now=now)

    def run(self, query: dict[str, Any], engine: str = "duckdb", now: dt.datetime = NOW) -> dict[str, Any]:
        """The response as the API sends it (JSON-like)."""
        return self.answer(query, engine, now).to_wire()

    def both(self, query: dict[str, Any], now: dt.datetime = NOW) -> dict[str, Any]:
        """Run on DuckDB and on ClickHouse; assert the results are equal; return DuckDB's."""
        duck = self.run(query, "duckdb", now)
        require_chdb()
        house = self.run(query, "clickhouse", now)
        assert normalized(house) == normalized(duck), f"DuckDB and ClickHouse differ for {query}"
        return duck

    def close(self) -> None:
        if _Mirror.holder == self.token:
            _Mirror.holder = None
        if self.owned:
            self.platform.close()


def simulated_school(root: Path, name: str, config: SimulationConfig) -> History:
    """A History whose project is a simulated school, with the simulation's ground truth as `truth`."""
    history = History(root, [], name=name)
    summary = simulate(history.platform, history.project, config)
    assert summary.truth_path is not None
    history.truth = json.loads(summary.truth_path.read_text(encoding="utf-8"))
    return history


def table_of(wire: dict[str, Any]) -> Table:
    """The table (for CSV) of a response as sent: it is read back into its kind's response model."""
    model = Registry().runner(wire["kind"]).response_model
    return model.model_validate({k: v for k, v in wire.items() if k in model.model_fields}).to_table()


def csv_of(wire: dict[str, Any]) -> str:
    return to_csv(table_of(wire))


def normalized(value: Any) -> Any:
    """A result without what may differ between engines (SQL text, timings), floats to 9 significant digits."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return float(f"{value:.9g}")
    return value


requires_chdb = pytest.mark.usefixtures("chdb")


def server_mode() -> bool:
    """EDUPULSE_TEST_CLICKHOUSE=server runs the ClickHouse half through the server store (over HTTP) against
    the test server (tests/ch_server.py), or against EDUPULSE_TEST_CLICKHOUSE_URL when it names a server."""
    return os.environ.get("EDUPULSE_TEST_CLICKHOUSE", "") == "server" or bool(os.environ.get(
        "EDUPULSE_TEST_CLICKHOUSE_URL"))


def _server_store() -> EventStore:
    from ch_server import ServerProcess
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    url = os.environ.get("EDUPULSE_TEST_CLICKHOUSE_URL")
    if not url:
        root = Path(tempfile.mkdtemp(prefix="edupulse-ch-"))
        server = ServerProcess(root)
        atexit.register(server.stop)
        atexit.register(shutil.rmtree, root, True)
        url = server.url("edupulse")
    store = ClickHouseServerStore(url)
    store.open()
    return store  # the fixture (conftest.py) fails without chDB
