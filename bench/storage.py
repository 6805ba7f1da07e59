"""Storage: bytes per event on disk for the simulated organization.

Baseline measured in the same run from the same events: the events table written as Parquet with
zstd, a compact columnar file that cannot be appended to or updated in place.

    .venv/bin/python bench/storage.py [--learners 20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from edupulse.conf import Settings
from edupulse.runtime import Platform
from edupulse.sim import SimulationConfig, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edupulse-storage-") as tmp:
        data_dir = Path(tmp) / "data"
        platform = Platform(Settings(data_dir=data_dir)).open()
        project = platform.meta.create_project("Storage bench").project
        started = time.perf_counter()
        summary = simulate(platform, project, SimulationConfig(seed=args.seed, learners=args.learners))
        seconds = time.perf_counter() - started
        platform.close()  # checkpoints DuckDB: its file holds everything, the log is released

        platform = Platform(Settings(data_dir=data_dir)).open(background_loader=False)
        store = platform.store
        events = store.query("SELECT count(*) FROM events").rows[0][0]
        db_bytes = store.storage_bytes()
        # the events table alone: the distinct storage blocks its columns use (256 KiB each)
        events_blocks = store.query(
            "SELECT count(DISTINCT block_id) FROM pragma_storage_info('events') WHERE block_id >= 0").rows[0][0]
        block_size = store.query("SELECT block_size FROM pragma_database_size()").rows[0][0]
        parquet = Path(tmp) / "events.parquet"
        store.query(f"COPY events TO '{parquet}' (FORMAT parquet, COMPRESSION zstd)")
        platform.close()
        parquet_bytes = parquet.stat().st_size

    figures = {
        "events": events,
        "simulated_events_per_second": round(summary.events / seconds),
        "duckdb_bytes": db_bytes,
        "bytes_per_event": round(db_bytes / events, 1),
        "events_table_bytes_per_event": round(events_blocks * block_size / events, 1),
        "parquet_zstd_bytes_per_event": round(parquet_bytes / events, 1),
        "ratio_to_parquet_zstd": round(db_bytes / parquet_bytes, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
