"""Several real `edupulse serve` processes on loopback sharing one PostgreSQL schema and one ClickHouse
server (the test server, tests/ch_server.py), for the scale-out tests and bench/scale_out.py.

    with Cluster(root, postgres_url) as cluster:
        a, b = cluster.start_node("a"), cluster.start_node("b")
        cluster.post(a, records)              # POST /api/v1/ingest with the project's write key
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ch_server import ServerProcess


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    name: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path = field(default_factory=Path)


class Cluster:
    """A PostgreSQL schema and a ClickHouse database of their own, a project, and API processes."""

    def __init__(self, root: Path, postgres_url: str, server: ServerProcess | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.root = root
        self.schema = f"scale_{uuid.uuid4().hex[:10]}"
        self.admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with self.admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{self.schema}"'))
        joiner = "&" if "?" in postgres_url else "?"
        self.metadata_url = f"{postgres_url}{joiner}options=-csearch_path%3D{self.schema}"
        self.own_server = server is None
        self.server = server or ServerProcess(root / "clickhouse")
        self.events_url = self.server.url(f"db_{uuid.uuid4().hex[:10]}")
        self.env = {**os.environ, "EDUPULSE_INGEST__VALIDATOR_PROCESSES": "0", **(env or {})}
        self.nodes: dict[str, Node] = {}
        self._cli("db-upgrade")
        created = json.loads(self._cli("project", "create", "Chain School", "--json"))
        self.write_key, self.api_key = created["write_key"], created["api_key"]

    def _base(self, data_dir: Path) -> list[str]:
        return [sys.executable, "-m", "edupulse", "--data-dir", str(data_dir), "--metadata-url", self.metadata_url,
                "--events-url", self.events_url]

    def _cli(self, *args: str) -> str:
        done = subprocess.run([*self._base(self.root / "cli"), *args], capture_output=True, text=True, env=self.env,
                              timeout=300, check=False)
        if done.returncode:
            raise RuntimeError(f"edupulse {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def start_node(self, name: str, port: int | None = None) -> Node:
        """Start (or start again, on its own data directory) an API process."""
        data_dir = self.root / f"node-{name}"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        log = data_dir / "server.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen([*self._base(data_dir), "serve", "--port", str(port)], stdout=out, stderr=out,
                                    env={**self.env, "EDUPULSE_NODE__NAME": name})
        node = Node(name, port, data_dir, proc, log)
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"node {name} exited: {log.read_text()[-3000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {name} did not start: {log.read_text()[-3000:]}")
            time.sleep(0.1)
        self.nodes[name] = node
        return node

    def kill(self, node: Node) -> None:
        """kill -9: no clean stop, no final load."""
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(30)

    def stop(self, node: Node) -> None:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGINT)
            try:
                node.proc.wait(120)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(30)

    def request(self, node: Node, method: str, path: str, body: Any = None, key: str | None = None,
                timeout: float = 60) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{node.port}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {key or self.api_key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def post(self, node: Node, records: list[dict[str, Any]]) -> list[str]:
        """Send a batch; return the event ids acknowledged (a 200 and `accepted`)."""
        status, answer = self.request(node, "POST", "/api/v1/ingest", {"batch": records}, key=self.write_key)
        if status != 200:
            return []
        return [records[r["index"]]["event_id"] for r in answer["results"]
                if r["status"] == "accepted" and "event_id" in records[r["index"]]]

    def close(self) -> None:
        for node in self.nodes.values():
            self.stop(node)
        with self.admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        self.admin.dispose()
        if self.own_server:
            self.server.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
