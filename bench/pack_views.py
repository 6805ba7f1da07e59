"""What the referral, school accounts and one-person packs show (headline and beyond), over the simulated school
of bench/packs.py (made there once, reused here): seconds and the ratio to one plain scan of the same events
measured in the same run (the machine is shared, so the ratio is the figure to compare).

    .venv/bin/python bench/pack_views.py [--learners 40000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
END = dt.date(2025, 6, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from edupulse.conf import QuerySettings, Settings
    from edupulse.packs import school_accounts
    from edupulse.packs.referral_tree import referral_tree
    from edupulse.packs.school_ledger import ledger
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
            simulate(platform, project, SimulationConfig(seed=1, learners=args.learners, days=120, end=END))
        events = platform.store.query("SELECT count(*) FROM events WHERE project_id = ?", [project.id]).rows[0][0]
        scan = "SELECT count(*), count(DISTINCT person_id), sum(length(event)) FROM events WHERE project_id = ?"
        baseline = min(_timed(lambda: platform.store.query(scan, [project.id])) for _ in range(args.repeat))
        print(f"{events:,} events; one scan: {baseline:.3f} s")
        service = PackService(platform)
        referral = service.headline(project, "referral", date_range="all")
        kol = referral.top_referrers[0].person_id  # type: ignore[attr-defined]
        schools = service.headline(project, "school_accounts", date_range="all")
        biggest = max(schools.schools, key=lambda s: s.active_parents).school_id  # type: ignore[attr-defined]
        run = service.run(project, school_accounts.PACK, date_range="all")
        views: dict[str, Callable[[], Any]] = {
            "referral headline": lambda: service.headline(project, "referral", date_range="all"),
            "referral tree (top KOL, 6 levels)": lambda: referral_tree(platform.query_service(), project, kol, 6),
            "school_accounts headline": lambda: service.headline(project, "school_accounts", date_range="all"),
            "school ledger (busiest, by week)": lambda: ledger(run, platform.store, biggest, "week"),
            "one_person headline (coverage)": lambda: service.headline(project, "one_person", date_range="all"),
            "person timeline with sources (KOL)": lambda: platform.query_service().run(
                project, {"kind": "person", "person_id": kol, "limit": 50}),
        }
        for name, view in views.items():
            best = min(_timed(view) for _ in range(args.repeat))
            print(f"{name:36s} {best:7.3f} s   {best / baseline:6.1f} × one scan")
    finally:
        platform.close()


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
