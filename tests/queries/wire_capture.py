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
from edupulse.meta.analysis import AnalysisMetadata  # noqa: E402
from edupulse.ops.segments import SegmentCatalog  # noqa: E402
from edupulse.queries.errors import QueryError  # noqa: E402
from edupulse.queries.metrics import MetricDefinition, MetricRef  # noqa: E402
from edupulse.queries.service import QueryResult, QueryService  # noqa: E402
from edupulse.runtime import Platform  # noqa: E402
from edupulse.sim import SimulationConfig, simulate  # noqa: E402

WIRE, SQL = HERE / "wire", HERE / "sql"


def wire(answer: QueryResult[Any]) -> bytes:
    """The response as sent, with its timing zeroed and its SQL texts counted."""
    pinned = answer.to_wire()
    pinned["timings"] = {"seconds": 0}
    pinned["sql"] = len(pinned["sql"])
    return orjson.dumps(pinned, option=orjson.OPT_NON_STR_KEYS)


def refusal(exc: QueryError) -> bytes:
    return orjson.dumps({"status": exc.status, "error": str(exc)})


class WireMetadata(AnalysisMetadata):
    """The project's metadata, with the metrics the cases name fixed (not the catalogue's defaults)."""

    def metric(self, project_id: int, name: str) -> MetricRef | None:
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
                service = QueryService(store, WireMetadata(platform.meta))
                try:
                    answer = service.run(project, query, now=NOW)
                except QueryError as exc:
                    if dialect == "duckdb":
                        (WIRE / f"{name}.json").write_bytes(refusal(exc) + b"\n")
                    continue
                if dialect == "duckdb":
                    (WIRE / f"{name}.json").write_bytes(wire(answer) + b"\n")
                    (WIRE / f"{name}.csv").write_text(answer.to_csv(), encoding="utf-8")


if __name__ == "__main__":
    main()
