"""The OpenAPI-driven fuzz run: schemathesis (its `st` command) reads /openapi.json of a real server and
generates requests for every operation, valid and invalid ones, once with the project's write key, once with
its secret API key and once with a signed-in session (cookie and CSRF token), the three runs side by side. No
answer may be a server error, a status or a content type the description does not list for the operation, a
body or header that breaks the documented schema, or a 405 whose Allow header is not the documented methods.

Bounded: FUZZ_EXAMPLES cases per operation and mode (positive and negative) in the fuzzing phase. Set
EDUPULSE_FUZZ_EXAMPLES to run longer and EDUPULSE_FUZZ_SEED to replay a run; a failure's report says how to
reproduce it with curl.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import ProjectKeys, Server, create_project, make_settings

pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = os.environ.get("EDUPULSE_FUZZ_EXAMPLES", "3")
FUZZ_SEED = os.environ.get("EDUPULSE_FUZZ_SEED", "13")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,allow_header_conformance,unsupported_method")
PASSWORD = "fuzzing is a way of life"
ST = Path(sys.executable).parent / "st"
# Operations that may end the session the signed-in run uses (sign-out, a password reset, disabling or
# demoting its user): fuzzed with the keys only.
SESSION_ENDERS = r"^/api/v1/(auth/logout|users/\{user_id\})"


@dataclass
class Target:
    server: Server
    keys: ProjectKeys
    session: dict[str, str]  # the cookie and the CSRF token of a signed-in admin


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("fuzz")
    settings = make_settings(root)
    keys = create_project(settings, "Fuzz School")
    server = Server(settings, {"EDUPULSE_AUTH__LOGIN_ATTEMPTS_PER_IP": "1000000",
                               "EDUPULSE_SCHEDULER__ENABLED": "false"}).start()
    try:
        api = {"Authorization": f"Bearer {keys.api_key}"}
        email = "fuzz.admin@school.example"
        made = httpx.post(f"{server.url}/api/v1/users", headers=api, timeout=30,
                          json={"email": email, "password": PASSWORD, "role": "admin"})
        assert made.status_code == 201, made.text
        # something to find: events, a report on a dashboard
        httpx.post(f"{server.url}/api/v1/ingest", headers={"Authorization": f"Bearer {keys.write_key}"}, timeout=30,
                   json={"batch": [{"type": "track", "event": "page_view", "distinct_id": f"u{i}", "event_id": f"e{i}"}
                                   for i in range(20)]})
        board = httpx.post(f"{server.url}/api/v1/dashboards", headers=api, json={"name": "Board"}, timeout=30).json()
        httpx.post(f"{server.url}/api/v1/reports", headers=api, timeout=30,
                   json={"name": "Views", "query": {"kind": "trends", "series": [{"event": "page_view"}]},
                         "dashboard_id": board["id"]})
        signed = httpx.post(f"{server.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
        assert signed.status_code == 200, signed.text
        session = {"Cookie": f"edupulse_session={signed.cookies['edupulse_session']}",
                   "X-CSRF-Token": signed.json()["csrf_token"]}
        yield Target(server, keys, session)
    finally:
        server.kill()


def st_run(target: Target, headers: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    command = [str(ST), "run", f"{target.server.url}/openapi.json", "--checks", CHECKS, "--phases", "fuzzing",
               "--max-examples", FUZZ_EXAMPLES, "--seed", FUZZ_SEED, "--no-shrink", "--workers", "1",
               "--generation-database", "none", "--no-color", "--request-timeout", "60",
               # the signed-in mode must not sign itself out halfway: those are fuzzed with the keys
               *(["--exclude-path-regex", SESSION_ENDERS] if "Cookie" in headers else [])]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with out.open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=out.parent)


def test_every_operation_keeps_its_description(target: Target, tmp_path: Path) -> None:
    modes = {"write key": {"Authorization": f"Bearer {target.keys.write_key}"},
             "secret API key": {"Authorization": f"Bearer {target.keys.api_key}"},
             "session": target.session}
    started = time.monotonic()
    runs = {name: (st_run(target, headers, tmp_path / f"{name.replace(' ', '_')}.log"),
                   tmp_path / f"{name.replace(' ', '_')}.log") for name, headers in modes.items()}
    failed = []
    for name, (proc, log) in runs.items():
        code = proc.wait(timeout=600)
        text = log.read_text(errors="replace")
        summary = text[text.rfind("SUMMARY"):] if "SUMMARY" in text else text[-3000:]
        print(f"\n--- {name} (exit {code}) ---\n{summary[-1500:]}")
        if code != 0:
            failed.append(f"{name}:\n{text[-20000:]}")
    print(f"OpenAPI fuzz: three runs in {time.monotonic() - started:.0f} s")
    assert not failed, "\n\n".join(failed)
    assert target.server.running
