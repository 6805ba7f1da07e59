"""The HTTP client of the senders: POSTs over kept-alive connections (a pool per host), with no redirects
followed (the destination was checked, a redirect target was not).

Built on the standard library's http.client rather than a general client: a webhook costs a tenth of the
processor time (the request line, headers and body leave in one write), which is what lets one server keep up
with a thousand journey messages a second. An idle connection the server closed is noticed before it is
used again (it reads as ready), so a POST is never written to a dead connection and never sent twice."""

from __future__ import annotations

import http.client
import select
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

IDLE_PER_HOST = 64


class SendError(Exception):
    """The call did not get an answer (refused, reset, timed out, not HTTP)."""


@dataclass(frozen=True)
class Response:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def _tls() -> ssl.SSLContext:
    try:
        import certifi  # the same certificate authorities as before (a dependency of httpx)

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:
        return ssl.create_default_context()


def _closed(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection that reads as ready was closed by the server (or sent junk)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


class Client:
    """Thread-safe: each call takes an idle connection to its host (or opens one) and gives it back after."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None

    def _open(self, scheme: str, host: str, port: int, timeout: float) -> http.client.HTTPConnection:
        if scheme == "https":
            if self._context is None:
                self._context = _tls()
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _take(self, key: tuple[str, str, int], timeout: float) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                conn = idle.pop()
                if not _closed(conn):
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                    return conn
                conn.close()
        return self._open(*key, timeout)

    def _give(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float | None = None) -> Response:
        """POST `body`; raises SendError when there is no answer."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SendError(f"{url!r} is not an http(s) URL with a host")
        key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._take(key, timeout or self.timeout)
        try:
            conn.request("POST", target, body=body, headers=headers)
            answer = conn.getresponse()
            content = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise SendError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        if answer.will_close:
            conn.close()
        else:
            self._give(key, conn)
        return Response(answer.status, content)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
