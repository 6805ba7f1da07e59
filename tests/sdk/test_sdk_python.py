"""The Python client (edupulse.sdk) against a real server: batching, flush, retries with backoff only where a retry
can help, the bounded queue, flush at interpreter exit, and retried batches stored once."""

from __future__ import annotations

import http.server
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ProjectKeys, Server, ServerFactory, create_project, free_port, make_settings
from edupulse.sdk import EduPulse


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ProjectKeys]]:
    settings = make_settings(tmp_path_factory.mktemp("sdk"))
    keys = create_project(settings, "SDK")
    server = Server(settings).start()
    yield server, keys
    server.kill()


class FlakyProxy:
    """A loopback HTTP proxy in front of the server that answers by a script: "fail" (503, not forwarded),
    "lose" (forwarded and stored, but answered 503 as if the answer were lost) or "pass"."""

    def __init__(self, upstream: str, script: list[str]) -> None:
        self.script = list(script)
        self.seen: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                action = proxy.script.pop(0) if proxy.script else "pass"
                proxy.seen.append(action)
                status, content = 503, b'{"error": "unavailable"}'
                if action != "fail":
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    answer = httpx.post(upstream + self.path, content=body, headers=headers, timeout=30)
                    if action == "pass":
                        status, content = answer.status_code, answer.content
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_batches_every_record_type(shared: tuple[Server, ProjectKeys]) -> None:
    server, keys = shared
    with EduPulse(keys.write_key, server.url, batch_size=50, flush_interval=5) as client:
        for i in range(230):
            assert client.track(f"dev-{i % 7}", "page_view", {"url": f"/p/{i}", "utm_source": "douyin"})
        client.identify("stu-1", anonymous_id="dev-1")
        client.profile_set("stu-1", {"grade": "G5"}, distinct_id_type="login_id")
        client.profile_set_once("stu-1", {"first_channel": "douyin"}, distinct_id_type="login_id")
        client.profile_increment("stu-1", {"lessons": 2}, distinct_id_type="login_id")
        client.profile("unset", "stu-1", ["grade"], distinct_id_type="login_id")
        client.alias("stu-1", "13800000000", alias_type="mobile", distinct_id_type="login_id")
        client.group_set("school", "S-1", {"name": "No. 1"})
        client.item_set("course", "C-1", {"title": "Math"})
        client.track("stu-1", "order_paid", {"amount": "not a number"}, is_login_id=True)
        assert client.flush(timeout=30)
        stats = client.stats
    assert stats.queued == 239
    assert stats.sent == 238
    assert stats.rejected == 1  # the order with a bad amount, now in the quarantine
    assert stats.failed == stats.refused == stats.retries == 0
    assert 5 <= stats.requests <= 8  # batches, not one request per record


def test_4xx_is_not_retried(shared: tuple[Server, ProjectKeys]) -> None:
    server, _ = shared
    client = EduPulse("wk_unknown", server.url, backoff_base=0.01)
    for i in range(3):
        client.track(f"dev-{i}", "page_view")
    client.close()
    assert (client.stats.failed, client.stats.requests, client.stats.retries) == (3, 1, 0)


def test_connection_errors_are_retried_with_backoff_then_counted() -> None:
    client = EduPulse("wk_x", f"http://127.0.0.1:{free_port()}", max_retries=3, backoff_base=0.01, timeout=2)
    client.track("dev-1", "page_view")
    assert client.flush(timeout=10)
    assert (client.stats.failed, client.stats.requests, client.stats.retries) == (1, 4, 3)
    client.close()


def test_a_full_queue_refuses_or_blocks_and_counts() -> None:
    port = free_port()  # nothing listens: records stay queued while the thread waits for a full batch
    refusing = EduPulse("wk_x", f"http://127.0.0.1:{port}", batch_size=1000, flush_interval=60, max_queue=10)
    results = [refusing.track(f"dev-{i}", "page_view") for i in range(15)]
    assert results == [True] * 10 + [False] * 5
    assert (refusing.stats.queued, refusing.stats.refused) == (10, 5)
    blocking = EduPulse("wk_x", f"http://127.0.0.1:{port}", batch_size=1000, flush_interval=60, max_queue=2,
                        on_full="block", block_timeout=0.2)
    assert [blocking.track("dev", "page_view") for _ in range(3)] == [True, True, False]
    assert blocking.stats.refused == 1
    for client in (refusing, blocking):
        client.close(timeout=0)
        assert client.stats.failed == client.stats.queued  # counted, not silently dropped


def test_retried_batches_are_stored_once_and_exit_flushes(server_factory: ServerFactory, project: ProjectKeys) -> None:
    server = server_factory().start()
    proxy = FlakyProxy(server.url, ["fail", "lose", "fail", "lose"])
    try:
        client = EduPulse(project.write_key, proxy.url, batch_size=20, backoff_base=0.01)
        for i in range(20):
            client.track(f"dev-{i}", "lesson_attended", {"lesson_id": f"L-{i}"})
        assert client.flush(timeout=30)
        assert proxy.seen == ["fail", "lose", "fail", "lose", "pass"]
        assert (client.stats.sent, client.stats.retries, client.stats.failed) == (20, 4, 0)
        client.close()
    finally:
        proxy.close()
    # A script that never calls flush(): the records are sent when the interpreter exits.
    script = textwrap.dedent(f"""
        from edupulse.sdk import EduPulse
        client = EduPulse({project.write_key!r}, {server.url!r}, flush_interval=60)
        for i in range(3):
            client.track("exit-" + str(i), "page_view")
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    server.stop()
    counts = dict(server.query("SELECT event, count(*) FROM events GROUP BY event"))
    assert counts == {"lesson_attended": 20, "page_view": 3}
