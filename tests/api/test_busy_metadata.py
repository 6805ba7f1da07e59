"""A metadata database held by another writer: the request waits its busy timeout, then is answered 503 with
Retry-After and the reason (never 500), as the OpenAPI description of every route says; once the lock is
gone the same request succeeds."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ProjectKeys, Server, create_project, make_settings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ProjectKeys, Path]]:
    root = tmp_path_factory.mktemp("busy")
    settings = make_settings(root)
    keys = create_project(settings, "Busy School")
    server = Server(settings, {"EDUPULSE_METADATA_BUSY_TIMEOUT_SECONDS": "0.3",
                               "EDUPULSE_SCHEDULER__ENABLED": "false"}).start()
    try:
        yield server, keys, root / "metadata.sqlite"
    finally:
        server.kill()


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection that has begun writing (holds SQLite's write lock until it commits)."""
    other = sqlite3.connect(path, isolation_level=None, timeout=5)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_locked_metadata_database_is_503_with_retry_after(site: tuple[Server, ProjectKeys, Path]) -> None:
    server, keys, path = site
    api = {"Authorization": f"Bearer {keys.api_key}"}
    assert httpx.get(f"{server.url}/api/v1/dashboards", headers=api, timeout=30).status_code == 200  # key known
    other = hold_write_lock(path)
    try:
        busy = httpx.post(f"{server.url}/api/v1/dashboards", headers=api, json={"name": "Board"}, timeout=30)
    finally:
        other.rollback()
        other.close()
    assert busy.status_code == 503, busy.text
    assert busy.headers["Retry-After"] == "2"
    assert "metadata database" in busy.json()["detail"]
    assert "locked" in busy.json()["detail"]
    made = httpx.post(f"{server.url}/api/v1/dashboards", headers=api, json={"name": "Board"}, timeout=30)
    assert made.is_success, made.text


def test_every_api_route_documents_the_busy_answer(site: tuple[Server, ProjectKeys, Path]) -> None:
    server, _, _ = site
    described = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    missing = [f"{method.upper()} {path}" for path, methods in described["paths"].items()
               for method, operation in methods.items() if "503" not in operation.get("responses", {})]
    assert not missing, missing
    dashboards = described["paths"]["/api/v1/dashboards"]["post"]["responses"]["503"]
    assert "Retry-After" in dashboards.get("headers", {})


def test_a_uniqueness_race_lost_is_503_to_retry() -> None:
    from sqlalchemy.exc import IntegrityError

    from edupulse.api.busy import busy_error

    lost = IntegrityError("INSERT INTO users ...", {}, Exception("UNIQUE constraint failed: users.email"))
    answer = asyncio.run(busy_error(None, lost))  # type: ignore[arg-type]
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert b"same moment" in answer.body
