"""Shared fixtures: settings in a temporary data directory, a project, and a real server process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from edupulse.conf import Settings


@dataclass
class ProjectKeys:
    name: str
    write_key: str
    api_key: str


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(data_dir: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
        ) -> subprocess.CompletedProcess[str]:
    """Run `python -m edupulse --data-dir DATA ARGS` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "edupulse", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, check=check, env={**os.environ, **(env or {})},
                          timeout=120)


class Server:
    """`edupulse serve` in its own process on a free loopback port; can be killed and started again."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_project(self, name: str = "Test School") -> ProjectKeys:
        out = json.loads(cli(self.data_dir, "project", "create", name, "--json").stdout)
        return ProjectKeys(out["project"], out["write_key"], out["api_key"])

    def start(self, timeout: float = 60.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edupulse", "--data-dir", str(self.data_dir), "serve", "--port",
                 str(self.port)], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/status", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        """A clean stop (Ctrl+C): the loader catches up and the store checkpoints."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self.proc = None

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read the event store directly; the server must be stopped."""
        assert self.proc is None, "stop the server before reading its store"
        con = duckdb.connect(str(self.data_dir / "events.duckdb"), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def make(env: dict[str, str] | None = None, name: str = "data") -> Server:
        server = Server(tmp_path / name, env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
def server(server_factory: Any) -> Server:
    return server_factory()
