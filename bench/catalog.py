"""Data catalogue: time to compute the catalogue of a simulated organization (the API caches it per data
version for 30 s), as a ratio to a baseline measured in the same run on the same store: one scan counting
events per event name (the least any catalogue needs).

    .venv/bin/python bench/catalog.py [--learners 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from edupulse.conf import Settings
from edupulse.runtime import Platform
from edupulse.sim import SimulationConfig, simulate
from edupulse.store.catalog import build_catalogue


def best(repeat: int, work: object) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edupulse-catalog-") as tmp:
        data_dir = Path(tmp) / "data"
        platform = Platform(Settings(data_dir=data_dir)).open()
        project = platform.meta.create_project("Catalogue bench").project
        simulate(platform, project, SimulationConfig(seed=args.seed, learners=args.learners))
        platform.close()
        platform = Platform(Settings(data_dir=data_dir)).open(background_loader=False)
        try:
            store = platform.store
            events = store.query("SELECT count(*) FROM events").rows[0][0]
            baseline = best(args.repeat, lambda: store.query(
                "SELECT event, count(*) FROM events WHERE project_id = ? GROUP BY event", [project.id]))
            catalogue = best(args.repeat, lambda: build_catalogue(store, project.id))
            found = build_catalogue(store, project.id)
        finally:
            platform.close()
    print(json.dumps({"events": events, "event_names": len(found.events), "properties": len(found.properties),
                      "catalogue_seconds": round(catalogue, 3), "baseline_seconds": round(baseline, 4),
                      "ratio_to_baseline": round(catalogue / baseline, 1),
                      "seconds_per_million_events": round(catalogue / events * 1e6, 3)}, indent=2))


if __name__ == "__main__":
    main()
