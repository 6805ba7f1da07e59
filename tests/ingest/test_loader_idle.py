"""The background loader waits for the log to grow instead of polling it in a loop, also on a fresh log that has
no frame yet (a fresh server otherwise kept a core busy until its first event)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edupulse.conf import Settings
from edupulse.ingest.pipeline import Loader
from edupulse.runtime import Platform


def test_an_idle_loader_waits_on_a_fresh_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [0]
    step = Loader.step

    def counted(self: Loader) -> int:
        steps[0] += 1
        return step(self)

    monkeypatch.setattr(Loader, "step", counted)
    platform = Platform(Settings(data_dir=tmp_path / "data")).open()
    try:
        before = steps[0]
        time.sleep(1.0)
        idle = steps[0] - before
        assert idle <= 12, f"{idle} loads in a second with nothing to load (one per load interval expected)"
        project = platform.meta.create_project("Idle").project
        platform.ingestor.ingest(project, [{"type": "track", "event": "page_view", "distinct_id": "u1"}])
        platform.flush()  # what arrives is still loaded at once
        assert platform.store.query("SELECT count(*) FROM events").rows[0][0] == 1
    finally:
        platform.close()
