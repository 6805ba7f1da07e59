"""One platform and app (TestClient, no background threads) for the journey API tests: a project with a few
persons in the event store, a segment of them, users of every role with personal keys. The tests drive the
journey worker and the scheduled-journey job themselves, on a simulated clock."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edupulse.api.app import create_app
from edupulse.auth.permissions import Role, Scope
from edupulse.conf import Settings
from edupulse.journeys.runtime import JourneyRuntime
from edupulse.meta.db import ProjectInfo
from edupulse.ops.segments import SegmentCatalog
from edupulse.runtime import Platform

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
STUDENTS = [("s1", 6, "zh"), ("s2", 3, "en"), ("s3", 5, "zh"), ("s4", 1, "zh")]


@dataclass
class JourneyApp:
    platform: Platform
    client: TestClient
    project: ProjectInfo
    api_key: str
    keys: dict[str, str] = field(default_factory=dict)
    clock: list[dt.datetime] = field(default_factory=lambda: [dt.datetime.now(dt.UTC)])

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    @property
    def runtime(self) -> JourneyRuntime:
        return self.client.app.state.journeys  # type: ignore[attr-defined,no-any-return]


def history() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, grade, language in STUDENTS:
        out.append({"type": "profile_set", "distinct_id": name, "distinct_id_type": "login_id",
                    "properties": {"grade": grade, "language": language, "email": f"{name}@family.example"}})
        out.append({"type": "track", "event": "lesson_missed", "distinct_id": name, "distinct_id_type": "login_id",
                    "properties": {"lesson_id": "L1"}})
    return out


def build(root: Path, allowed_hosts: str = "127.0.0.1/32", metadata_url: str | None = None) -> Iterator[JourneyApp]:
    settings = Settings(data_dir=root / "data", metadata_url=metadata_url or f"sqlite:///{root / 'metadata.sqlite'}",
                        journeys={"allowed_hosts": allowed_hosts, "backoff_seconds": 1, "send_threads": 2,
                                  "timeout_seconds": 2})
    platform = Platform(settings).open()
    made = platform.meta.create_project("Recall School")
    outcome = platform.ingestor.ingest(made.project, history())
    assert outcome.rejected == 0, outcome.results
    platform.flush()
    SegmentCatalog(platform.meta).create(made.project.id, "missed", {"condition": {"event": "lesson_missed"}})
    app = create_app(settings, platform, run_scheduler=False)
    with TestClient(app) as client:
        ja = JourneyApp(platform, client, made.project, made.api_key)
        app.state.clock = lambda: ja.clock[0]
        accounts = platform.meta.accounts
        for role in Role:
            user = accounts.create_user(f"{role.value}@school.example", PASSWORD)
            accounts.set_role(user.id, made.project.id, role)
            ja.keys[role.value] = accounts.create_key(user.id, "tests", frozenset(Scope))[0]
        yield ja
    platform.close()
