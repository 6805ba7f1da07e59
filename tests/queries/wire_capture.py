"""Writes the pinned wire files of tests/queries/test_wire.py: for every case of wire_cases.py its response as
sent (`wire/<case>.json`, timings zeroed and the SQL texts replaced by their count: the SQL is pinned per
dialect in `sql/<dialect>/<case>.sql`) and its CSV (`wire/<case>.csv`).

    .venv/bin/python tests/queries/wire_capture.py     # only when a change of the wire is intended
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from wire_cases import DAYS, END, ERRORS, LEARNERS, METRICS, NOW, SEED, SEGMENTS, cases  # noqa: E402

from edupulse.conf import Settings  # noqa: E402
from edupulse.queries import QueryError, run_query  # noqa: E402
from edupulse.queries.base import QueryEnv, to_csv  # noqa: E402
from edupulse.queries.metrics import MetricDefinition, MetricRef  # noqa: E402
from edupulse.ops.segments import SegmentCatalog  # noqa: E402
from edupulse.runtime import Platform  # noqa: E402
from edupulse.sim import SimulationConfig, simulate  # noqa: E402

WIRE, SQL = HERE / "wire", HERE / "sql"


def wire(result: dict[str, Any]) -> bytes:
    pinned = {**result, "timings": {"seconds": 0}} if "timings" in result else dict(result)
    if "sql" in pinned:
        pinned["sql"] = len(pinned["sql"])
    return orjson.dumps(pinned, option=orjson.OPT_NON_STR_KEYS)


def lookup(name: str) -> MetricRef | None:
    found = METRICS.get(name)
    return MetricRef(name, 1, MetricDefinition.model_validate(found)) if found is not None else None


def main() -> None:
    WIRE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as root, Platform(Settings(data_dir=Path(root) / "data")).open() as platform:
        project = platform.meta.create_project("Wire School").project
        simulate(platform, project, SimulationConfig(seed=SEED, learners=LEARNERS, days=DAYS, end=END))
        for name, definition in SEGMENTS.items():
            SegmentCatalog(platform.meta).create(project.id, name, definition)
        stores = {"duckdb": platform.store}
        try:
            from edupulse.store.clickhouse import ClickHouseStore

            house = ClickHouseStore()
            house.open()
            house.copy_from(platform.store)
            stores["clickhouse"] = house
        except ImportError:
            print("chDB is not installed: ClickHouse SQL not written")
        for name, query in {**cases(), **ERRORS}.items():
            for dialect, store in stores.items():
                env = QueryEnv(store, platform.meta)
                try:
                    result = run_query(env, project, query, now=NOW, metrics=lookup)
                except QueryError as exc:
                    refused = orjson.dumps({"status": exc.status, "error": str(exc)}) + b"\n"
                    if dialect == "duckdb":
                        (WIRE / f"{name}.json").write_bytes(refused)
                    continue
                (SQL / dialect).mkdir(parents=True, exist_ok=True)
                (SQL / dialect / f"{name}.sql").write_text(";\n\n".join(result["sql"]) + ";\n", encoding="utf-8")
                if dialect == "duckdb":
                    (WIRE / f"{name}.json").write_bytes(wire(result) + b"\n")
                    (WIRE / f"{name}.csv").write_text(to_csv(result), encoding="utf-8")


if __name__ == "__main__":
    main()
