"""Every available scenario pack's headline (what its page and dashboard show) over a simulated school: seconds,
and the ratio to one plain scan of the same events measured in the same run (the machine is shared, so the ratio
is the figure to compare). The target (issue 18): a pack within 2 s at 1 million events, 5 s at 10 million.

The school is `edupulse simulate`'s (40,000 learners give about one million events, 400,000 about ten million),
made once under bench/out/packs-N; headlines run with the result cache off, over every day of the data
(`date_range=all`). `--events` picks the number of learners for about that many events. The packs that read
tags or start journeys are installed first (their tags computed, models trained: the install's seconds are
printed too), so their headlines read real tag values.

    .venv/bin/python bench/packs.py [--learners 40000 | --events 10000000] [--repeat 3] [--packs a,b]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
END = dt.date(2025, 6, 1)
EVENTS_PER_LEARNER = 24.3  # of the simulation over 120 days (973,447 events for 40,000 learners)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=40_000)
    parser.add_argument("--events", type=float, default=None, help="about this many events (sets --learners)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--packs", default=None, help="only these packs (comma-separated)")
    args = parser.parse_args()
    if args.events is not None:
        args.learners = round(args.events / EVENTS_PER_LEARNER / 40_000) * 40_000  # 1e7 events: 400,000

    from edupulse.conf import QuerySettings, Settings
    from edupulse.packs.registry import PACKS
    from edupulse.packs.service import PackService
    from edupulse.runtime import Platform
    from edupulse.sim import SimulationConfig, simulate

    directory = ROOT / "out" / f"packs-{args.learners}"
    settings = Settings(data_dir=directory, query=QuerySettings(cache_entries=0))
    platform = Platform(settings).open()
    try:
        project = platform.meta.project_by_name("Bench School")
        if project is None:
            project = platform.meta.create_project("Bench School").project
            started = time.perf_counter()
            simulate(platform, project, SimulationConfig(seed=1, learners=args.learners, days=120, end=END))
            print(f"simulated {args.learners:,} learners in {time.perf_counter() - started:.0f} s", flush=True)
        events = platform.store.query("SELECT count(*) FROM events WHERE project_id = ?", [project.id]).rows[0][0]
        scan = "SELECT count(*), count(DISTINCT person_id), sum(length(event)) FROM events WHERE project_id = ?"
        baseline = min(_timed(lambda: platform.store.query(scan, [project.id])) for _ in range(args.repeat))
        print(f"{events:,} events; one scan: {baseline:.3f} s")
        service = PackService(platform)
        chosen = args.packs.split(",") if args.packs else list(PACKS)
        for name in chosen:
            pack = PACKS[name]
            if pack.tags or pack.own_tags or pack.journeys:
                took = _timed(lambda n=name: service.install(project, n, "bench"))
                print(f"{name:22s} install {took:7.3f} s   {took / baseline:6.1f} × one scan", flush=True)
        for name in chosen:
            best = min(_timed(lambda n=name: service.headline(project, n, date_range="all"))
                       for _ in range(args.repeat))
            print(f"{name:22s} {best:7.3f} s   {best / baseline:6.1f} × one scan", flush=True)
    finally:
        platform.close()


def _timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
