"""What the pack tests share: one small simulated school (its platform, project, truth file and pack
service), made once per test session (`school`, never changed by a test), and `school_at` for the tests
that need a school of their own to add events to."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edupulse.conf import Settings
from edupulse.packs.service import PackService
from edupulse.runtime import Platform
from edupulse.sim import SimulationConfig, simulate

END = dt.date(2025, 6, 1)
NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)


def school_at(root: Path, learners: int = 400, days: int = 120) -> Iterator[Any]:
    """`learners` over `days` up to END (seed 11), with the truth file read."""
    platform = Platform(Settings(data_dir=root / "data")).open()
    project = platform.meta.create_project("Pack School").project
    summary = simulate(platform, project, SimulationConfig(seed=11, learners=learners, days=days, end=END))
    assert summary.truth_path is not None
    truth = json.loads(summary.truth_path.read_text(encoding="utf-8"))
    yield SimpleNamespace(platform=platform, project=project, truth=truth, packs=PackService(platform))
    platform.close()


@pytest.fixture(scope="session")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """400 learners over 120 days up to END (seed 11), shared by the pack tests."""
    yield from school_at(tmp_path_factory.mktemp("packs"))
