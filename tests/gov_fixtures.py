"""Shared set-up of the governance tests: one platform and one app (FastAPI TestClient, no server process)
with two projects, a user of every role and their personal keys, and a small history."""

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
from edupulse.meta.db import ProjectInfo
from edupulse.runtime import Platform

with warnings.catch_warnings():  # starlette warns about its httpx transport at import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
NOW = dt.datetime(2026, 9, 10, 4, tzinfo=dt.UTC)


def sh(text: str) -> str:
    return f"{text}+08:00"


HISTORY_A: list[dict[str, Any]] = [
    {"type": "profile_set", "distinct_id": "alice", "distinct_id_type": "login_id", "time": sh("2026-09-01T08:00:00"),
     "properties": {"phone": "13812345678", "name": "王小明", "grade": "G5"}},
    {"type": "profile_set", "distinct_id": "bob", "distinct_id_type": "login_id", "time": sh("2026-09-01T08:00:00"),
     "properties": {"phone": "13900001111", "name": "李雷", "grade": "G3"}},
    *[{"type": "track", "event": "lesson_scheduled", "distinct_id": who, "distinct_id_type": "login_id",
       "time": sh(f"2026-09-0{day}T10:00:00"), "properties": {"lesson_id": f"L{day}"}}
      for who in ("alice", "bob") for day in (2, 3)],
    {"type": "track", "event": "lesson_attended", "distinct_id": "alice", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T10:05:00"), "properties": {"lesson_id": "L2", "mode": "live"}},
    {"type": "track", "event": "lesson_attended", "distinct_id": "alice", "distinct_id_type": "login_id",
     "time": sh("2026-09-03T20:00:00"), "properties": {"lesson_id": "L3", "mode": "replay"}},
    {"type": "track", "event": "lesson_attended", "distinct_id": "bob", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T10:02:00"), "properties": {"lesson_id": "L2", "mode": "live"}},
]
HISTORY_B: list[dict[str, Any]] = [
    {"type": "track", "event": "lesson_scheduled", "distinct_id": "zoe", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T10:00:00"), "properties": {"secret": "only-in-B"}},
]


@dataclass
class Gov:
    platform: Platform
    client: TestClient
    a: ProjectInfo
    b: ProjectInfo
    a_api_key: str
    b_api_key: str
    users: dict[str, int] = field(default_factory=dict)  # role name (or "viewer_b", "superuser") -> user id
    keys: dict[str, str] = field(default_factory=dict)  # same names -> admin+query scoped personal key
    clock: list[dt.datetime] = field(default_factory=lambda: [dt.datetime.now(dt.UTC)])

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def email(self, who: str) -> str:
        return f"{who}@school.example"

    def session(self, who: str) -> tuple[TestClient, str]:
        """A new client signed in as `who`, with its CSRF token."""
        client = TestClient(self.client.app)
        response = client.post("/api/v1/auth/login", json={"email": self.email(who), "password": PASSWORD})
        assert response.status_code == 200, response.text
        return client, response.json()["csrf_token"]


def build(root: Path) -> Iterator[Gov]:
    # every test client signs in from the same address: the per-address limit is tested on its own
    settings = Settings(data_dir=root / "data", metadata_url=f"sqlite:///{root / 'metadata.sqlite'}",
                        auth={"login_attempts_per_ip": 100_000})
    platform = Platform(settings).open()
    a = platform.meta.create_project("School A")
    b = platform.meta.create_project("School B")
    for project, history in ((a, HISTORY_A), (b, HISTORY_B)):
        outcome = platform.ingestor.ingest(project.project, history)
        assert outcome.rejected == 0, outcome.results
    platform.flush()
    app = create_app(settings, platform, run_scheduler=False)
    with TestClient(app) as client:
        gov = Gov(platform, client, a.project, b.project, a.api_key, b.api_key)
        app.state.clock = lambda: gov.clock[0]
        accounts = platform.meta.accounts
        for role in Role:
            user = accounts.create_user(gov.email(role.value), PASSWORD)
            accounts.set_role(user.id, a.project.id, role)
            gov.users[role.value] = user.id
        viewer_b = accounts.create_user(gov.email("viewer_b"), PASSWORD)
        accounts.set_role(viewer_b.id, b.project.id, Role.viewer)
        gov.users["viewer_b"] = viewer_b.id
        superuser = accounts.create_user(gov.email("superuser"), PASSWORD, superuser=True)
        gov.users["superuser"] = superuser.id
        for who, user_id in gov.users.items():
            gov.keys[who] = accounts.create_key(user_id, "tests", frozenset(Scope))[0]
        accounts.assign(a.project.id, gov.users["advisor"], "login_id", "alice")
        yield gov
    platform.close()
