"""Helpers of the tests of the collection protocols (Sensors, PostHog, Segment): one server per test module,
one project per test, and what a project ended up with in the store (read once the server is stopped)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ProjectKeys, Server, create_project, make_settings
from edupulse.meta.db import MetadataStore

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
NODE_MODULES = Path(__file__).parent / "browser" / "node_modules"


@dataclass
class Project:
    keys: ProjectKeys
    id: int


class ModuleServer:
    """A server shared by the tests of a module; each test has its own project, so they do not see each
    other's data. Reading the store stops the server; the next test starts it again."""

    def __init__(self, root: Path) -> None:
        self.settings = make_settings(root)
        self.server = Server(self.settings)
        self.count = 0

    def running(self) -> Server:
        if not self.server.running:
            self.server.start()
        return self.server

    def project(self) -> Project:
        self.count += 1
        keys = create_project(self.settings, f"Compat Project {self.count}")
        meta = MetadataStore(self.settings.resolved_metadata_url)
        try:
            found = meta.project_by_name(keys.name)
        finally:
            meta.close()
        assert found is not None
        return Project(keys, found.id)

    def quarantine(self, project: Project) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.running().url}/api/v1/quarantine", params={"limit": 1000}, timeout=30,
                             headers={"Authorization": f"Bearer {project.keys.api_key}"})
        assert response.status_code == 200, response.text
        return response.json()["records"]  # type: ignore[no-any-return]

    def stored(self, project: Project) -> Stored:
        """Stop the server (the loader catches up) and read what the project has in the store."""
        return self.stored_many([project])[project.id]

    def stored_many(self, projects: list[Project]) -> dict[int, Stored]:
        """Stop the server once and read what each project has in the store."""
        self.server.stop()
        return {project.id: self._read(project) for project in projects}

    def _read(self, project: Project) -> Stored:
        pid = [project.id]
        q = self.server.query
        events = q("SELECT event, distinct_id, epoch_ms(time), insert_id, properties, prop_url, prop_utm_source, "
                   "person_id FROM events WHERE project_id = ? ORDER BY time, received_at", pid)
        identities = q("SELECT id_type, id_value, person_id FROM identities WHERE project_id = ?", pid)
        persons = q("SELECT person_id, properties FROM persons WHERE project_id = ?", pid)
        entities = q("SELECT kind, entity_type, entity_key, properties FROM entities WHERE project_id = ?", pid)
        resolved = q("SELECT event, resolved_person_id FROM events_resolved WHERE project_id = ? "
                     "ORDER BY time, received_at", pid)
        return Stored(events, identities, {p: json.loads(props or "{}") for p, props in persons},
                      {(k, t, key): json.loads(props or "{}") for k, t, key, props in entities}, resolved)

    def close(self) -> None:
        self.server.kill()


@dataclass
class Stored:
    events: list[tuple[Any, ...]]
    identities: list[tuple[str, str, int]]
    persons: dict[int, dict[str, Any]]
    entities: dict[tuple[str, str, str], dict[str, Any]]
    resolved: list[tuple[str, int]]

    def person_of(self, id_type: str, value: str) -> int:
        """The person an identity ended up with (after merges)."""
        found = [p for t, v, p in self.identities if (t, v) == (id_type, value)]
        assert found, f"no identity {id_type}:{value} in {self.identities}"
        return found[0]  # merges update the identities' persons

    def persons_of(self, *ids: tuple[str, str]) -> set[int]:
        return {self.person_of(t, v) for t, v in ids}

    def properties_of(self, id_type: str, value: str) -> dict[str, Any]:
        return self.persons.get(self.person_of(id_type, value), {})

    def event_names(self) -> list[str]:
        return [e[0] for e in self.events]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleServer]:
    root = tmp_path_factory.mktemp("compat")
    holder = ModuleServer(root)
    yield holder
    holder.close()
    shutil.rmtree(root, ignore_errors=True)


def chromium_or_skip() -> None:
    """Browser tests need Debian's chromium and the SDKs from npm (make browser-deps)."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    if not NODE_MODULES.is_dir():
        pytest.skip("needs the npm packages of tests/browser (make browser-deps)")


class StaticSite:
    """A web site of an education organization on loopback (its own origin, not the server's): pages given as
    text, and the SDK files from tests/browser/node_modules."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in site.pages:
                    body, kind = site.pages[path].encode(), "text/html; charset=utf-8"
                else:
                    file = (NODE_MODULES / path.lstrip("/")).resolve()
                    if NODE_MODULES.resolve() not in file.parents or not file.is_file():
                        self.send_error(404)
                        return
                    body, kind = file.read_bytes(), "application/javascript"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        # "localhost" is another origin than the server's "127.0.0.1", so the SDKs send cross-origin as on a
        # real site, while both stay on loopback
        return f"http://localhost:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def browser_page(playwright: Any) -> tuple[Any, Any]:
    """A fresh headless Chromium (Debian's) and a page in it."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
    return browser, browser.new_page()
