"""A simulated school served by one real server for the web UI's tests (HTTP and browser): a project
filled by `edupulse simulate` (a few hundred learners), an admin and an analyst who can sign in; and one
headless Chromium for the browser tests (Debian's /usr/bin/chromium driven by Playwright; no browser is
downloaded). Both are session fixtures that tests/conftest.py makes visible to every test."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ProjectKeys, Server, cli, create_project, make_settings
from edupulse.api.auth import PROJECT_HEADER
from edupulse.auth.permissions import Role
from edupulse.conf import Settings
from edupulse.meta.db import MetadataStore

ADMIN = ("admin@edupulse.local", "admin-password-1")
ANALYST = ("analyst@edupulse.local", "analyst-password-1")
PROJECT = "Demo School"
CHROMIUM = os.environ.get("EDUPULSE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
HAS_CHROMIUM = Path(CHROMIUM).exists() or bool(shutil.which("chromium"))
needs_chromium = pytest.mark.skipif(not HAS_CHROMIUM, reason="Chromium is not installed (apt-get install -y "
                                                             "chromium); the browser tests need it")


@dataclass
class Site:
    server: Server
    settings: Settings
    project: ProjectKeys
    simulate_log: str = ""  # what `edupulse simulate` wrote to standard error (not a terminal)

    @property
    def url(self) -> str:
        return self.server.url

    def api(self) -> httpx.Client:
        """A client with the project's secret API key."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.project.api_key}"},
                            timeout=60)

    def query(self, query: dict[str, Any]) -> dict[str, Any]:
        with self.api() as http:
            response = http.post("/api/v1/query", json=query)
        assert response.status_code == 200, response.text
        return response.json()

    def ingest(self, records: list[dict[str, Any]]) -> None:
        response = httpx.post(f"{self.url}/api/v1/ingest", json={"batch": records}, timeout=30,
                              headers={"Authorization": f"Bearer {self.project.write_key}"})
        assert response.status_code == 200, response.text

    @contextmanager
    def signed_in(self, who: tuple[str, str] = ADMIN) -> Iterator[tuple[httpx.Client, str]]:
        """A client signed in through the form, and its session's CSRF token."""
        with httpx.Client(base_url=self.url, timeout=60) as http:
            yield http, self._sign_in(http, who)

    def _sign_in(self, http: httpx.Client, who: tuple[str, str]) -> str:
        http.headers[PROJECT_HEADER] = PROJECT
        response = http.post("/login", data={"email": who[0], "password": who[1]})
        assert response.status_code == 303, response.text
        home = http.get("/")
        csrf = re.search(r'"csrf":"([^"]+)"', home.text)
        assert csrf, home.text
        return csrf.group(1)


def _add_users(settings: Settings, project: str) -> None:
    """A superuser (admin of every project) and an analyst of the project."""
    meta = MetadataStore(settings.resolved_metadata_url)
    try:
        meta.accounts.create_user(ADMIN[0], ADMIN[1], superuser=True)
        analyst = meta.accounts.create_user(ANALYST[0], ANALYST[1])
        found = meta.project_by_name(project)
        assert found is not None
        meta.accounts.set_role(analyst.id, found.id, Role.analyst)
    finally:
        meta.close()


@pytest.fixture(scope="session", name="site")
def site_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server for every web test of the run, on a simulated school."""
    root = tmp_path_factory.mktemp("web")
    settings = make_settings(root)
    keys = create_project(settings, PROJECT)
    simulated = cli(settings, "simulate", "--project", PROJECT, "--seed", "11", "--learners", "300", "--days", "60")
    _add_users(settings, PROJECT)
    # every web test of the run signs in from this one address: the per-address limit is tested on its own
    server = Server(settings, {"EDUPULSE_AUTH__LOGIN_ATTEMPTS_PER_IP": "1000000"}).start()
    try:
        yield Site(server, settings, keys, simulated.stderr)
    finally:
        server.kill()


@pytest.fixture(scope="session", name="browser")
def browser_fixture() -> Iterator[Any]:
    """One headless Chromium for every browser test of the run."""
    if not HAS_CHROMIUM:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); the browser tests need it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists()
                                              else shutil.which("chromium"), args=ARGS)
        yield chromium
        chromium.close()
