"""The first look-ups of a project's metrics may come at once (a page that loads two numbers): each finds every
default metric, none fails on the other adding them."""

from __future__ import annotations

import threading
from pathlib import Path

from edupulse.meta.catalogue import MetricCatalogue
from edupulse.meta.db import MetadataStore


def test_concurrent_first_lookups_find_every_default(tmp_path: Path) -> None:
    meta = MetadataStore(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    meta.migrate()
    try:
        for trial in range(4):
            project = meta.create_project(f"School {trial}").project
            missing: list[str] = []
            failed: list[BaseException] = []

            def look(project_id: int = project.id, missing: list[str] = missing,
                     failed: list[BaseException] = failed) -> None:
                try:
                    for name in ("roi", "first_order_conversion", "cac", "attendance_rate"):
                        if MetricCatalogue(meta).get(project_id, name) is None:
                            missing.append(name)
                except BaseException as exc:  # reported by the assertion below
                    failed.append(exc)

            threads = [threading.Thread(target=look) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert failed == []
            assert missing == []
    finally:
        meta.close()
