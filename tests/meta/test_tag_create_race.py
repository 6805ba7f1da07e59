"""Two requests creating the same tag at once (the first requests of a project both creating the built-in
tags): the one that loses is told the name is taken (MetadataError, a 4xx), never an IntegrityError (a 500)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.meta.tags import TagCatalog, check_spec

SPEC = {"name": "lead_tier", "definition": {"type": "custom_tiers",
                                            "tiers": [{"name": "A", "condition": {"event": "page_view"}}]}}


def test_a_tag_inserted_between_the_look_and_the_insert_is_a_taken_name(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite"
    meta = MetadataStore(f"sqlite:///{path}")
    meta.migrate()
    project = meta.create_project("Race School").project
    catalog = TagCatalog(meta)
    other = sqlite3.connect(path, isolation_level=None, timeout=10)
    other.execute("BEGIN IMMEDIATE")  # the other request: its row is not visible until it commits
    other.execute("INSERT INTO tags (project_id, name, unit, version, spec, built_in, created_by, created_at, "
                  "updated_at) VALUES (?, 'lead_tier', 'person', 1, ?, 0, 'other', '2026-01-01', '2026-01-01')",
                  (project.id, json.dumps(check_spec(SPEC).model_dump(mode="json", by_alias=True, exclude_none=True))))
    outcome: list[BaseException | str] = []

    def create() -> None:
        try:
            catalog.create(project.id, check_spec(SPEC), "me")
            outcome.append("created")
        except BaseException as exc:  # the test reports what escaped
            outcome.append(exc)

    thread = threading.Thread(target=create)
    thread.start()
    time.sleep(0.5)  # it looks (no such tag yet), then waits for the write lock
    other.execute("COMMIT")
    other.close()
    thread.join(timeout=30)
    meta.close()
    assert len(outcome) == 1
    assert isinstance(outcome[0], MetadataError), outcome
    with pytest.raises(MetadataError, match="already exists"):
        raise outcome[0]
