"""xAPI statements over HTTP: acknowledged statements per second, as a ratio to native events per second.

Starts `edupulse serve` on a loopback port in a fresh data directory, then sends, from threads with keep-alive
connections, lists of statements to POST /xapi/statements (each statement stored whole and mapped to one
education event) for a while, and then the same number of connections sending native batches of the same
events to POST /api/v1/ingest (the baseline, measured in the same run): by default exactly the records the
statements become (`--baseline mapped`: the event with the statement's id, verb, activity, its type, course and
lesson), or with `--baseline plain` a smaller event of only lesson, course and duration, which the figures before
December 2026 used. An xAPI statement costs more than its native record: it is validated by the xAPI rules,
stored whole with its filter keys in the metadata database, and then takes the native path. The two loads take
turns for `--rounds` rounds (xAPI first in odd rounds, native first in even ones), so that a machine busy with
other work slows both alike. The server's CPU time per 1,000
records of each (from /proc, on Linux) is printed too: it hardly moves with what else the machine runs.

    .venv/bin/python bench/xapi_http.py [--seconds 10] [--rounds 2] [--connections 8] [--batch 100]
        [--baseline mapped|plain]
        [--metadata-url postgresql://...] [--json]

The metadata database is SQLite in the bench's data directory unless --metadata-url names another (an empty
database or schema: the bench creates its project there).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ADL = "http://adlnet.gov/expapi/verbs/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def statement(i: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()),
            "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example", "name": f"stu-{i % 5000}"}},
            "verb": {"id": ADL + "attended", "display": {"en-US": "attended"}},
            "object": {"id": f"https://school.example/course/math/lesson/{i % 40}",
                       "definition": {"type": "http://adlnet.gov/expapi/activities/lesson"}},
            "result": {"duration": "PT45M"},
            "context": {"contextActivities": {"parent": [{"id": "https://school.example/course/math"}]}}}


def mapped(i: int) -> dict[str, Any]:
    """The native record statement(i) becomes, as the server maps it (docs/xapi.md)."""
    from edupulse.ingest.xapi_events import to_records

    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return to_records({**statement(i), "timestamp": now, "stored": now})[0]


def native(i: int) -> dict[str, Any]:
    return {"type": "track", "event": "lesson_attended", "distinct_id": f"stu-{i % 5000}",
            "distinct_id_type": "login_id", "event_id": uuid.uuid4().hex,
            "properties": {"lesson_id": f"https://school.example/course/math/lesson/{i % 40}",
                           "course_id": "https://school.example/course/math", "duration_s": 2700}}


@contextlib.contextmanager
def running_server(tmp: str, metadata_url: str | None = None) -> Iterator[tuple[str, dict[str, Any], int]]:
    """`edupulse serve` on a free loopback port with a fresh data directory under `tmp` and a project "Bench":
    (its base URL, the project's keys, the server's process id), stopped at the end."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EDUPULSE_")},
           "EDUPULSE_DATA_DIR": str(Path(tmp) / "data"), "EDUPULSE_HOST": "127.0.0.1", "EDUPULSE_PORT": str(port)}
    if metadata_url:
        env["EDUPULSE_METADATA_URL"] = metadata_url
    created = subprocess.run([sys.executable, "-m", "edupulse", "project", "create", "Bench", "--json"],
                             env=env, check=True, capture_output=True, text=True)
    keys = json.loads(created.stdout)
    server = subprocess.Popen([sys.executable, "-m", "edupulse", "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v1/status").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        yield base, keys, server.pid
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (all its threads); 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, make: Any, wrap: Any, client_kwargs: dict[str, Any], args: argparse.Namespace,
         seconds: float) -> tuple[int, float]:
    """(records acknowledged with 200, seconds taken) by `connections` threads sending for `seconds`."""
    done = [0] * args.connections
    stop_at = time.monotonic() + seconds

    def worker(n: int) -> None:
        with httpx.Client(timeout=60, **client_kwargs) as client:
            i = 0
            while time.monotonic() < stop_at:
                body = wrap([make(i + k) for k in range(args.batch)])
                i += args.batch
                if client.post(url, json=body).status_code == 200:
                    done[n] += args.batch

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="seconds of each load, over all rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--metadata-url", help="metadata database (default: SQLite in the data directory)")
    parser.add_argument("--baseline", choices=("mapped", "plain"), default="mapped",
                        help="native events: the records the statements become (default), or smaller ones")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_server(tmp, args.metadata_url) as (base, keys, pid):
        loads = {
            "xapi": (f"{base}/xapi/statements", statement, lambda batch: batch,
                     {"auth": (keys["write_key"], ""), "headers": {"X-Experience-API-Version": "1.0.3"}}),
            "native": (f"{base}/api/v1/ingest", mapped if args.baseline == "mapped" else native,
                       lambda batch: {"batch": batch},
                       {"headers": {"Authorization": f"Bearer {keys['write_key']}"}}),
        }
        totals = {name: [0, 0.0, 0.0] for name in loads}  # records, seconds, server CPU seconds
        for round_ in range(args.rounds):
            for name in (("xapi", "native") if round_ % 2 == 0 else ("native", "xapi")):
                cpu = cpu_seconds(pid)
                records, took = load(*loads[name], args, args.seconds / args.rounds)
                totals[name][0] += records
                totals[name][1] += took
                totals[name][2] += cpu_seconds(pid) - cpu
        xapi, baseline = (totals[name][0] / totals[name][1] for name in ("xapi", "native"))
        cpu_ms = {name: round(1e6 * totals[name][2] / max(totals[name][0], 1), 1) for name in loads}
    result = {"xapi_statements_per_s": round(xapi), "native_events_per_s": round(baseline),
              "ratio": round(xapi / baseline, 3), "baseline": args.baseline, "connections": args.connections,
              "batch": args.batch,
              "rounds": args.rounds,
              "metadata": (args.metadata_url or "sqlite").split(":", 1)[0],
              "server_cpu_ms_per_1000_statements": cpu_ms["xapi"], "server_cpu_ms_per_1000_events": cpu_ms["native"]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"xAPI statements/s: {xapi:,.0f}   native events/s ({args.baseline} events, same run): {baseline:,.0f}   "
          f"ratio: {xapi / baseline:.3f}   ({args.connections} connections, lists of {args.batch})\n"
          f"server CPU ms per 1,000 statements: {cpu_ms['xapi']}   per 1,000 native events: {cpu_ms['native']}   "
          f"ratio: {cpu_ms['native'] / max(cpu_ms['xapi'], 1e-9):.3f}")


if __name__ == "__main__":
    main()
