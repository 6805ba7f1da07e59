"""Shared fixtures: settings in a temporary directory, a project, and a real server process.

The server is `python -m edupulse serve` in its own process on a free loopback port, configured only through
EDUPULSE_ environment variables, so it can be SIGKILLed and started again on the same data directory.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest
import sqlalchemy as sa

from edupulse.conf import Settings
from edupulse.meta.db import MetadataStore


@dataclass(frozen=True)
class ProjectKeys:
    name: str
    write_key: str
    api_key: str


def make_settings(root: Path) -> Settings:
    """Data directory and SQLite metadata under `root`; the metadata deliberately outside the data directory."""
    return Settings(data_dir=root / "data", metadata_url=f"sqlite:///{root / 'metadata.sqlite'}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def create_project(settings: Settings, name: str = "Spring English") -> ProjectKeys:
    meta = MetadataStore(settings.resolved_metadata_url)
    try:
        meta.migrate()
        new = meta.create_project(name)
    finally:
        meta.close()
    return ProjectKeys(new.project.name, new.project.write_key, new.api_key)


@pytest.fixture
def project(settings: Settings) -> ProjectKeys:
    return create_project(settings)


def settings_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process that uses `settings` (and nothing inherited from EDUPULSE_ variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUPULSE_")}
    env["EDUPULSE_DATA_DIR"] = str(settings.data_dir)
    env["EDUPULSE_METADATA_URL"] = settings.resolved_metadata_url
    return {**env, **(extra or {})}


def cli(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python -m edupulse ARGS` in a fresh process configured by environment variables."""
    return subprocess.run([sys.executable, "-m", "edupulse", *args], capture_output=True, text=True, check=check,
                          env=settings_env(settings), timeout=120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`edupulse serve` in its own process on a free loopback port; can be killed and started again."""

    def __init__(self, settings: Settings, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = settings.data_dir.parent / f"server-{self.port}.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> Server:
        assert not self.running, "the server is running already"
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        env = settings_env(self.settings, {"EDUPULSE_HOST": "127.0.0.1", "EDUPULSE_PORT": str(self.port), **self.env})
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "edupulse", "serve"], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.starts += 1
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self.proc = None
                    raise RuntimeError(f"the server exited with {code}:\n{self.output()}")
                try:
                    if http.get(f"{self.url}/api/v1/status").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the server did not answer in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        """A clean stop (Ctrl+C): the loader catches up and the store checkpoints."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                code = self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
            self.proc = None
            assert code == 0, f"the server exited with {code} on SIGINT:\n{self.output()}"

    def status(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/api/v1/status", timeout=10).json()

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read the event store file directly (read-only); the server must be stopped."""
        assert not self.running, "stop the server before reading its store"
        con = duckdb.connect(str(self.settings.data_dir / "events.duckdb"), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


ServerFactory = Callable[..., Server]


@pytest.fixture
def server_factory(settings: Settings) -> Iterator[ServerFactory]:
    """make(env=None, settings=None) -> a Server, not started; every one made is killed at teardown."""
    servers: list[Server] = []

    def make(env: dict[str, str] | None = None, settings_: Settings | None = None) -> Server:
        server = Server(settings_ or settings, env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
def server(server_factory: ServerFactory, project: ProjectKeys) -> Server:
    """A started server on the `settings` data directory, with `project` in its metadata."""
    return server_factory().start()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> None:
    """argon2 at its lowest cost: the tests create many users; production keeps the library's defaults."""
    from edupulse.auth.passwords import set_cost

    set_cost(time_cost=1, memory_cost_kib=64)


@pytest.fixture(scope="session")
def chdb() -> None:
    """ClickHouse's engine in-process: tests that compare the engines fail, not skip, without it."""
    from engines import require_chdb

    require_chdb()


@pytest.fixture(scope="session")
def gov(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One app (TestClient) with two projects, a user and a personal key of every role: gov_fixtures.py."""
    from gov_fixtures import build

    yield from build(tmp_path_factory.mktemp("governance"))


# metadata on SQLite and PostgreSQL ----------------------------------------------------------------

POSTGRES_URL = os.environ.get("EDUPULSE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty metadata database: SQLite, and PostgreSQL (a fresh schema, dropped afterwards) when
    EDUPULSE_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip("set EDUPULSE_TEST_POSTGRES_URL to run the metadata tests on PostgreSQL")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    joiner = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def meta(metadata_url: str) -> Iterator[MetadataStore]:
    """A migrated metadata store on SQLite and (with EDUPULSE_TEST_POSTGRES_URL) on PostgreSQL."""
    store = MetadataStore(metadata_url)
    try:
        store.migrate()
        yield store
    finally:
        store.close()


# the documented examples ------------------------------------------------------------------------------

QUERIES_DOC = Path(__file__).resolve().parents[1] / "docs" / "queries.md"


def documented_queries() -> list[dict[str, Any]]:
    """Every JSON query example of docs/queries.md (a ```json block with a kind), in the order written."""
    blocks = re.findall(r"```json\n(.*?)```", QUERIES_DOC.read_text(encoding="utf-8"), re.S)
    return [q for q in (orjson.loads(b) for b in blocks) if isinstance(q, dict) and "kind" in q]


@pytest.fixture(scope="session")
def documented() -> dict[str, dict[str, Any]]:
    """The documented example of each kind (the first, where a section has several)."""
    out: dict[str, dict[str, Any]] = {}
    for query in documented_queries():
        out.setdefault(query["kind"], query)
    return out


@pytest.fixture(scope="session")
def wire_school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The small simulated school every pinned query case runs on (wire_cases.py), built once per session."""
    from wire_cases import build_wire_school  # it reads documented_queries from this module

    wire = build_wire_school(tmp_path_factory.mktemp("wire"))
    yield wire
    wire.platform.close()


# One server on a simulated school and one Chromium for every web test of the run (session fixtures made
# visible here, not imported into each test module, where each module would get its own).
from pack_school import school  # noqa: E402, F401  (the simulated school the pack tests share)
from web_site import browser_fixture, site_fixture  # noqa: E402, F401
