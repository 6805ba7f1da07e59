"""A small client of ClickHouse's HTTP interface (the standard library's http.client, no driver).

A URL names the server: `clickhouse://user:password@host:8123/database` (plain HTTP),
`clickhouses://...` or `https://...` (TLS; port 8443 by default), `http://...`. Statements go in the body of
a POST; an insert's statement goes in the `query` parameter and its rows (Arrow IPC stream) in the body.
Settings (max_execution_time, insert_deduplication_token...) and the query id travel as URL parameters.
Each thread keeps its own keep-alive connection.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

DEFAULT_PORTS = {"http": 8123, "clickhouse": 8123, "https": 8443, "clickhouses": 8443}
_CODE = re.compile(r"Code:\s*(\d+)")


class ClickHouseError(RuntimeError):
    """The server refused or failed a statement; `code` is ClickHouse's error code (0 when unknown)."""

    def __init__(self, code: int, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class ServerAddress:
    scheme: str
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "clickhouses")

    def redacted(self) -> str:
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_url(url: str, default_database: str = "edupulse") -> ServerAddress:
    """Read a ClickHouse server URL; ValueError with the reason when it is not one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"events URL {url!r}: the scheme must be one of {', '.join(sorted(DEFAULT_PORTS))}")
    if not parts.hostname:
        raise ValueError(f"events URL {url!r} names no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ValueError(f"events URL {url!r}: {exc}") from None
    database = unquote(parts.path.strip("/")) or default_database
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"events URL {url!r}: database name {database!r} must be letters, digits and _")
    return ServerAddress(scheme, parts.hostname, port, unquote(parts.username or "default"),
                         unquote(parts.password or ""), database)


class ClickHouseHttp:
    """Statements to one server over HTTP; thread-safe (a connection per thread)."""

    def __init__(self, address: ServerAddress, timeout: float = 300.0, verify_tls: bool = True) -> None:
        self.address = address
        self.timeout = timeout
        self.verify_tls = verify_tls
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def connection(self) -> http.client.HTTPConnection:
        """This thread's connection (for `abort` from another thread)."""
        return self._connection()

    @staticmethod
    def abort(conn: http.client.HTTPConnection) -> None:
        """Drop a connection another thread waits on: its request fails at once."""
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            a = self.address
            if a.tls:
                context = ssl.create_default_context()
                if not self.verify_tls:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                conn = http.client.HTTPSConnection(a.host, a.port, timeout=self.timeout, context=context)
            else:
                conn = http.client.HTTPConnection(a.host, a.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, sql: str, data: bytes | None = None, settings: dict[str, Any] | None = None,
                query_id: str | None = None, database: str | None = None, timeout: float | None = None) -> bytes:
        """Run one statement; return the response body. With `data`, `sql` is an INSERT ... FORMAT whose rows
        are `data`. Raises ClickHouseError when the server reports an error."""
        params: dict[str, Any] = {}
        if database:
            params["database"] = database
        if query_id:
            params["query_id"] = query_id
        for key, value in (settings or {}).items():
            params[key] = int(value) if isinstance(value, bool) else value
        body = data if data is not None else sql.encode()
        if data is not None:
            params["query"] = sql
        elif len(body) > 200_000:
            params.setdefault("max_query_size", len(body) + 1024)
        a = self.address
        credentials = base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}", "Content-Length": str(len(body)),
                   "Content-Type": "application/octet-stream", "Connection": "keep-alive"}
        path = "/?" + urlencode(params)
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile is opened again once
            conn = self._connection()
            wanted = self.timeout if timeout is None else timeout
            if conn.timeout != wanted:
                conn.timeout = wanted
                if conn.sock is not None:
                    conn.sock.settimeout(wanted)
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop()
                if attempt == 2 or query_id is not None:
                    raise
                continue
            except (OSError, http.client.HTTPException):
                self._drop()
                raise
            if response.status != 200:
                text = payload.decode("utf-8", errors="replace").strip()
                code = response.getheader("X-ClickHouse-Exception-Code")
                found = _CODE.search(text)
                number = int(code) if code and code.isdigit() else int(found.group(1)) if found else 0
                raise ClickHouseError(number, text or f"HTTP {response.status}", response.status)
            return payload
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> bool:
        conn = self._connection()
        try:
            conn.request("GET", "/ping")
            response = conn.getresponse()
            return response.status == 200 and response.read().strip() == b"Ok."
        except OSError:
            self._drop()
            return False

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
