"""A simulated school of its own, for the tests that add events to it (the shared `school` of conftest.py
is never changed that way)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from edupulse.conf import Settings
from edupulse.packs.service import PackService
from edupulse.runtime import Platform
from edupulse.sim import SimulationConfig, simulate

END = dt.date(2025, 6, 1)
NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)


def school_at(root: Path, learners: int = 400, days: int = 120) -> Iterator[Any]:
    platform = Platform(Settings(data_dir=root / "data")).open()
    project = platform.meta.create_project("Pack School").project
    summary = simulate(platform, project, SimulationConfig(seed=11, learners=learners, days=days, end=END))
    assert summary.truth_path is not None
    truth = json.loads(summary.truth_path.read_text(encoding="utf-8"))
    yield SimpleNamespace(platform=platform, project=project, truth=truth, packs=PackService(platform))
    platform.close()
