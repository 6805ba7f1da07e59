"""A ClickHouse server for tests: the part of ClickHouse's HTTP interface the server store uses, executed by
chDB (ClickHouse's own engine, in this process). No ClickHouse server package installs on these machines
(Debian's is from 2018, without DateTime64 or lightweight deletes), so the server store is tested here.

    python tests/ch_server.py --path DIR [--port 0] [--user U --password P] [--port-file F]

What it speaks: POST / (and GET /?query=) with the statement in the body or the `query` parameter;
`database`, `query_id`, `default_format` and any other parameter as a setting (max_execution_time,
insert_deduplication_token, max_result_rows...); INSERT ... FORMAT with the rows in the body (ArrowStream,
Arrow, Parquet through pyarrow; text formats inline); `FORMAT` in the statement or `default_format` for the
answer (TabSeparated by default); HTTP basic or X-ClickHouse-User/-Key authentication; GET /ping; errors as
ClickHouse sends them (a status other than 200, `Code: N. DB::Exception: ...` in the body and
X-ClickHouse-Exception-Code); KILL QUERY WHERE query_id = '...'.

Where it differs from a ClickHouse server: one statement runs at a time (chDB has one engine per process);
a killed statement that is waiting does not start and fails with code 394 (QUERY_WAS_CANCELLED), one already
inside the engine runs to its end (or its max_execution_time) there and its answer is replaced by that error.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa

RESERVED = {"query", "database", "query_id", "default_format", "user", "password", "compress", "decompress"}
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+(?P<fmt>\w+)\s*$", re.I | re.S)
_KILL = re.compile(r"^\s*KILL\s+QUERY\s+WHERE\s+query_id\s*=\s*'(?P<id>[^']*)'", re.I)
_COLUMNS = re.compile(r"^(?P<table>.+?)\s*\((?P<cols>[^()]*)\)\s*$", re.S)
_CODE = re.compile(r"Code:\s*(\d+)")
ARROW_READERS = {"arrowstream": lambda b: pa.ipc.open_stream(b).read_all(),
                 "arrow": lambda b: pa.ipc.open_file(pa.BufferReader(b)).read_all()}


class Failure(Exception):
    def __init__(self, code: int, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class Engine:
    """chDB, one statement at a time, with a registry of running query ids for KILL QUERY."""

    def __init__(self, path: str | None) -> None:
        from chdb import session

        self.session = session.Session(path) if path else session.Session()
        self.lock = threading.Lock()
        self.running: dict[str, dict[str, bool]] = {}
        self.registry = threading.Lock()

    def kill(self, query_id: str) -> list[str]:
        with self.registry:
            state = self.running.get(query_id)
            if state is None:
                return []
            state["killed"] = True
            return [query_id]

    def run(self, sql: str, database: str | None, settings: dict[str, str], query_id: str, data: bytes | None,
            default_format: str) -> bytes:
        with self.registry:
            if query_id in self.running:
                raise Failure(216, f"Query with id = {query_id} is already running.", 400)
            state = self.running[query_id] = {"killed": False}
        try:
            while not self.lock.acquire(timeout=0.05):
                if state["killed"]:
                    raise Failure(394, "Query was cancelled.")
            try:
                if state["killed"]:
                    raise Failure(394, "Query was cancelled.")
                out = self._locked(sql, database, settings, data, default_format)
            finally:
                self.lock.release()
            if state["killed"]:
                raise Failure(394, "Query was cancelled.")
            return out
        finally:
            with self.registry:
                self.running.pop(query_id, None)

    def _locked(self, sql: str, database: str | None, settings: dict[str, str], data: bytes | None,
                default_format: str) -> bytes:
        s = self.session
        s.query(f"USE `{database or 'default'}`")
        for key, value in settings.items():
            s.query(f"SET {key} = {_setting(value)}")
        try:
            insert = _INSERT.match(sql)
            if insert and insert["fmt"].lower() in ARROW_READERS:
                rows = ARROW_READERS[insert["fmt"].lower()](data or b"")  # noqa: F841 (read by chDB by name)
                target = _COLUMNS.match(insert["target"])
                names = target["cols"] if target else "*"
                table = target["table"] if target else insert["target"]
                s.query(f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(rows)" if target
                        else f"INSERT INTO {table} SELECT * FROM Python(rows)")
                return b""
            if insert:  # a text format: the rows follow the statement, as clickhouse-client sends them
                s.query(sql + "\n" + (data or b"").decode())
                return b""
            result = s.query(sql, default_format)
            return bytes(result.bytes()) if result is not None else b""
        finally:
            for key in settings:
                s.query(f"SET {key} = DEFAULT")


def _setting(value: str) -> str:
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def make_handler(engine: Engine, user: str, password: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self, params: dict[str, str]) -> bool:
            given_user = self.headers.get("X-ClickHouse-User") or params.get("user")
            given_key = self.headers.get("X-ClickHouse-Key") or params.get("password")
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                given_user, _, given_key = base64.b64decode(auth[6:]).decode().partition(":")
            return (given_user or "default") == user and (given_key or "") == password

        def do_GET(self) -> None:
            self._handle(b"")

        def do_POST(self) -> None:
            self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _handle(self, body: bytes) -> None:
            url = urlsplit(self.path)
            if url.path == "/ping":
                self._send(200, b"Ok.\n")
                return
            params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            query_id = params.get("query_id") or str(uuid.uuid4())
            headers = {"X-ClickHouse-Query-Id": query_id}
            try:
                if not self._authorized(params):
                    raise Failure(516, f"{params.get('user', 'default')}: Authentication failed: password is "
                                       "incorrect, or there is no user with such name.", 401)
                sql, data = params.get("query", ""), None
                if sql and _INSERT.match(sql):
                    data = body
                elif body:
                    sql = (sql + "\n" + body.decode()) if sql else body.decode()
                if not sql.strip():
                    raise Failure(62, "Empty query.", 400)
                killed = _KILL.match(sql)
                if killed:
                    found = engine.kill(killed["id"])
                    self._send(200, "".join(f"{q}\n" for q in found).encode(), headers)
                    return
                settings = {k: v for k, v in params.items() if k not in RESERVED}
                out = engine.run(sql, params.get("database"), settings, query_id, data,
                                 params.get("default_format", "TabSeparated"))
                self._send(200, out, headers)
            except Failure as exc:
                self._send(exc.status, f"Code: {exc.code}. DB::Exception: {exc}\n".encode(),
                           {**headers, "X-ClickHouse-Exception-Code": str(exc.code)})
            except Exception as exc:  # an engine error: ClickHouse's own message and code
                text = str(exc)
                found = _CODE.search(text)
                code = int(found.group(1)) if found else 1001
                status = 400 if code == 62 else 404 if code in (60, 81) else 500
                self._send(status, (text if found else f"Code: {code}. DB::Exception: {text}").encode() + b"\n",
                           {**headers, "X-ClickHouse-Exception-Code": str(code)})

    return Handler


def serve(path: str | None, port: int = 0, user: str = "default", password: str = "") -> ThreadingHTTPServer:
    engine = Engine(path)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(engine, user, password))
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=None, help="data directory (default: in memory)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--port-file", default=None, help="write the port here once listening")
    args = parser.parse_args()
    server = serve(args.path, args.port, args.user, args.password)
    port = server.server_address[1]
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(port))
        tmp.replace(args.port_file)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(0.2)


class ServerProcess:
    """The test server in a child process (its own chDB engine), for a test session or a benchmark."""

    def __init__(self, root: Path, user: str = "default", password: str = "") -> None:
        import subprocess

        root.mkdir(parents=True, exist_ok=True)
        port_file = root / "port"
        port_file.unlink(missing_ok=True)
        with open(root / "server.log", "wb") as errors:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--path", str(root / "data"), "--user", user,
                 "--password", password, "--port-file", str(port_file)],
                stdout=subprocess.DEVNULL, stderr=errors)
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the test ClickHouse server did not start: {(root / 'server.log').read_text()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.user, self.password = user, password

    def url(self, database: str) -> str:
        return f"clickhouse://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
                self.proc.wait(10)


if __name__ == "__main__":
    main()
