"""The senders' HTTP client against real servers on loopback: connections kept alive and reused, a connection
the server closed while idle is not written to (the POST arrives once), redirects are not followed, and a call
without an answer is a SendError."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from edupulse.journeys.http_client import Client, SendError


@contextmanager
def keep_alive_server(close_after: int = 0, status: int = 200, delay: float = 0.0) -> Iterator[dict[str, Any]]:
    """An HTTP/1.1 server recording (client port, path, body) per request; `close_after` > 0 closes each
    connection after that many answers, as a server's idle timeout would."""
    seen: dict[str, Any] = {"calls": [], "url": ""}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            seen["calls"].append((self.client_address[1], self.path, body))
            if delay:
                time.sleep(delay)
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("location", "http://127.0.0.1:9/elsewhere")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            served = sum(1 for port, _, _ in seen["calls"] if port == self.client_address[1])
            if close_after and served >= close_after:
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    seen["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_connections_are_kept_alive_and_reused() -> None:
    client = Client(5.0)
    with keep_alive_server() as srv:
        answers = [client.post(srv["url"] + f"/h?n={i}", b'{"n": %d}' % i, {"Content-Type": "application/json"})
                   for i in range(5)]
    client.close()
    assert [a.status_code for a in answers] == [200] * 5
    assert [path for _, path, _ in srv["calls"]] == [f"/h?n={i}" for i in range(5)]
    assert len({port for port, _, _ in srv["calls"]}) == 1  # one connection for all five


def test_a_connection_the_server_closed_while_idle_is_not_written_to() -> None:
    client = Client(5.0)
    with keep_alive_server(close_after=1) as srv:
        for i in range(3):
            assert client.post(srv["url"] + "/h", b"%d" % i, {}).status_code == 200
            time.sleep(0.05)  # the server's close reaches the idle connection
    client.close()
    assert [body for _, _, body in srv["calls"]] == [b"0", b"1", b"2"]  # each POST arrived once
    assert len({port for port, _, _ in srv["calls"]}) == 3


def test_redirects_are_not_followed() -> None:
    client = Client(5.0)
    with keep_alive_server(status=307) as srv:
        answer = client.post(srv["url"] + "/moved", b"{}", {})
    client.close()
    assert answer.status_code == 307
    assert len(srv["calls"]) == 1


def test_no_answer_is_a_send_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Client(5.0)
    with pytest.raises(SendError):
        client.post(f"http://127.0.0.1:{port}/h", b"{}", {})
    with keep_alive_server(delay=1.0) as srv, pytest.raises(SendError, match="timed out"):
        client.post(srv["url"] + "/slow", b"{}", {}, timeout=0.2)
    with pytest.raises(SendError, match="not an http"):
        client.post("ftp://127.0.0.1/h", b"{}", {})
    client.close()
