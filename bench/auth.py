"""Authentication cost per request: GET /api/v1/metrics with each kind of credential, against the public
GET /api/v1/status measured in the same run (in-process ASGI client, SQLite metadata), as a ratio and as
extra milliseconds per request.

    .venv/bin/python bench/auth.py [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from edupulse.api.app import create_app
from edupulse.auth.permissions import Role, Scope
from edupulse.conf import Settings
from edupulse.runtime import Platform

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def timed(client: TestClient, path: str, n: int, headers: dict[str, str] | None = None) -> float:
    for _ in range(20):  # warm up
        assert client.get(path, headers=headers).status_code == 200
    started = time.perf_counter()
    for _ in range(n):
        client.get(path, headers=headers)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edupulse-auth-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", scheduler={"enabled": False})
        platform = Platform(settings).open()
        try:
            new = platform.meta.create_project("Bench School")
            user = platform.meta.accounts.create_user("bench@school.example", "a long bench password")
            platform.meta.accounts.set_role(user.id, new.project.id, Role.analyst)
            personal, _ = platform.meta.accounts.create_key(user.id, "bench", frozenset({Scope.query}))
            with TestClient(create_app(settings, platform)) as client:
                login = client.post("/api/v1/auth/login", json={"email": "bench@school.example",
                                                                "password": "a long bench password"})
                assert login.status_code == 200
                baseline = timed(client, "/api/v1/status", args.requests)
                figures = {
                    "project_key": timed(client, "/api/v1/metrics", args.requests,
                                         {"Authorization": f"Bearer {new.api_key}"}),
                    "personal_key": timed(client, "/api/v1/metrics", args.requests,
                                          {"Authorization": f"Bearer {personal}"}),
                    "session": timed(client, "/api/v1/metrics", args.requests),
                }
        finally:
            platform.close()
    report = {"baseline_status_ms": round(baseline * 1000, 3)}
    for name, seconds in figures.items():
        report[f"{name}_ratio"] = round(seconds / baseline, 2)
        report[f"{name}_ms"] = round(seconds * 1000, 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
