"""Validation in worker processes (ingest.validator_processes): the same answers as in the server process,
a new group type handled by the server, and no worker left behind when the server is killed."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from conftest import ProjectKeys, ServerFactory


def post(url: str, key: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/ingest", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.add(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_workers_validate_like_the_server(server_factory: ServerFactory, project: ProjectKeys) -> None:
    server = server_factory({"EDUPULSE_INGEST__VALIDATOR_PROCESSES": "2"}).start()
    assert server.proc is not None
    workers = children(server.proc.pid)
    assert len(workers) >= 2
    batch = [
        {"type": "track", "event": "page_view", "distinct_id": "u1", "event_id": "e1", "groups": {"school": "S1"}},
        {"type": "track", "event": "order_paid", "distinct_id": "u1", "properties": {"amount": "lots"}},
        {"type": "identify", "distinct_id": "alice", "anonymous_id": "u1"},
    ]
    response = post(server.url, project.write_key, {"batch": batch})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][1]["field"] == "properties.amount"
    bad = post(server.url, project.write_key, {"records": []})
    assert bad.status_code == 400
    # a group type new to the project: validated by the server, which gives it a slot
    new_type = post(server.url, project.write_key, {"batch": [
        {"type": "track", "event": "page_view", "distinct_id": "u2", "groups": {"district": "D1"}}]})
    assert new_type.json()["accepted"] == 1
    assert post(server.url, project.write_key, {"batch": [{**batch[0], "event_id": "e2"}]}).json()["accepted"] == 1
    quarantined = httpx.get(f"{server.url}/api/v1/quarantine", headers={"Authorization": f"Bearer {project.api_key}"})
    assert quarantined.json()["total"] == 2

    server.kill()  # SIGKILL: the workers notice and leave
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in workers):
        time.sleep(0.2)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
    server.start()
    server.stop()
    rows = server.query("SELECT insert_id, group_0, group_3 FROM events ORDER BY insert_id NULLS LAST")
    assert rows == [("e1", "S1", None), ("e2", "S1", None), (None, None, "D1")]
