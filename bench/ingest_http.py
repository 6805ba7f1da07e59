"""Ingestion over HTTP: durably acknowledged events per second and latency, with batches of 100 records.

Starts `edupulse serve` on a loopback port in a fresh data directory, and a load generator in another
process: keep-alive HTTP/1.1 connections sending POST /api/v1/ingest with pre-built bodies of 100
education events (each with a unique event_id). Only records accepted in a 200 response are counted.

Baseline, measured in the same run with the same load: a minimal app on the same server stack (uvicorn,
uvloop, httptools, FastAPI) that parses the JSON body and answers without storing anything. The ratio
says how much of the server's capacity the ingestion work (validation, the log, fsync) takes.

After the load the server is stopped cleanly and the store is opened to check that it holds exactly the
acknowledged records.

The server is measured twice: as configured (with the index of recent insert IDs that stores a retry once
whatever time it carries, `ingest.retry_window_days`), and with that index off (retry_window_days=0, the
store searched by the records' times only), in turns (`--rounds`); `retry_index_ratio` is the median over
the rounds of the first throughput over the second.

    .venv/bin/python bench/ingest_http.py [--seconds 20] [--connections 16] [--batch 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET = 50_000
EVENTS = [("page_view", {"url": "/courses/math-g5", "utm_source": "douyin", "platform": "mini_program"}),
          ("lesson_attended", {"lesson_id": "L-1024", "course_id": "C-MATH-5", "mode": "live", "duration_s": 2710}),
          ("quiz_answered", {"question_id": "Q-88", "knowledge_point": "fractions", "correct": True, "score": 8}),
          ("homework_submitted", {"lesson_id": "L-1024", "course_id": "C-MATH-5", "score": 92})]
BASELINE_APP = '''
import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/api/v1/ingest")
async def ingest(request: Request) -> Response:
    batch = orjson.loads(await request.body())["batch"]
    results = [{"index": i, "status": "accepted"} for i in range(len(batch))]
    return Response(orjson.dumps({"accepted": len(batch), "rejected": 0, "results": results}),
                    media_type="application/json")
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body_template(batch: int) -> bytes:
    """A request body whose event ids carry the placeholder RRRRRRRRRR and whose times (milliseconds) the
    placeholder 1111111111111, both replaced per request: ids are unique and times advance as in live traffic."""
    now = 1111111111111
    records = []
    for i in range(batch):
        event, props = EVENTS[i % len(EVENTS)]
        records.append({"type": "track", "event": event, "distinct_id": f"learner-{(i * 7919) % 5000}",
                        "distinct_id_type": "login_id", "time": now, "event_id": f"RRRRRRRRRR-{i}",
                        "properties": props, "groups": {"school": f"S-{i % 30}"}})
    return json.dumps({"batch": records}).encode()


# the load generator (its own process) -----------------------------------------------------------


async def connection(port: int, key: str, template: bytes, prefix: str, stop_at: float, warm_until: float,
                     out: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\n").encode()
    n = 0
    while True:
        started = time.perf_counter()
        if started >= stop_at:
            break
        n += 1
        body = template.replace(b"RRRRRRRRRR", f"{prefix}{n:07d}".encode()).replace(
            b"1111111111111", str(int(time.time() * 1000)).encode())
        writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await reader.readexactly(length)
        elapsed = time.perf_counter() - started
        ok = status_line.split(b" ")[1] == b"200"
        accepted = int(payload.split(b'"accepted":', 1)[1].split(b",", 1)[0]) if ok else 0
        if started >= warm_until:
            out["latencies"].append(elapsed)
            out["accepted"] += accepted
            out["requests"] += 1
            out["errors"] += 0 if ok else 1
        out["accepted_total"] += accepted
    writer.close()
    await writer.wait_closed()


def load(port: int, key: str, seconds: float, warmup: float, connections: int, batch: int) -> dict[str, Any]:
    template = body_template(batch)
    out: dict[str, Any] = {"latencies": [], "accepted": 0, "accepted_total": 0, "requests": 0, "errors": 0}
    now = time.perf_counter()
    warm_until, stop_at = now + warmup, now + warmup + seconds

    async def main() -> None:
        await asyncio.gather(*(connection(port, key, template, f"{c:03d}", stop_at, warm_until, out)
                               for c in range(connections)))

    asyncio.run(main())
    lat = sorted(out.pop("latencies"))

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else 0.0

    out.update(seconds=seconds, events_per_second=round(out["accepted"] / seconds),
               requests_per_second=round(out["requests"] / seconds), p50_ms=pct(0.50), p95_ms=pct(0.95),
               p99_ms=pct(0.99))
    return out


def run_load(port: int, key: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--load", str(port), key, str(args.seconds), str(args.warmup),
           str(args.connections), str(args.batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# servers --------------------------------------------------------------------------------------------


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def status(port: int, api_key: str) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/status",
                                     headers={"Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def measure_edupulse(root: Path, args: argparse.Namespace, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    data = root / "data"
    env = {**os.environ, **(extra_env or {})}
    edupulse = [sys.executable, "-m", "edupulse", "--data-dir", str(data)]
    created = json.loads(subprocess.run([*edupulse, "project", "create", "Bench", "--json"], check=True,
                                        capture_output=True, text=True, env=env).stdout)
    port = free_port()
    proc = subprocess.Popen([*edupulse, "serve", "--port", str(port)], env=env)
    try:
        wait_ready(port, proc)
        figures = run_load(port, created["write_key"], args)
        figures["server_peak_rss_mib"] = peak_rss_mib(proc.pid)
        log = status(port, created["api_key"])
        figures["log_fsyncs"] = log["log_fsyncs"]
        figures["log_frames_per_fsync"] = round(log["log_frames_written"] / max(log["log_fsyncs"], 1), 1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)

    from edupulse.store.duckdb import DuckDBStore

    store = DuckDBStore(data, read_only=True)
    store.open()
    stored = store.query("SELECT count(*), count(DISTINCT insert_id) FROM events").rows[0]
    store.close()
    figures["stored_events"] = stored[0]
    figures["durability_check"] = "ok" if stored[0] == stored[1] == figures["accepted_total"] else "MISMATCH"
    return figures


def measure_baseline(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    (root / "baseline_app.py").write_text(BASELINE_APP, encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "baseline_app:app", "--port", str(port), "--loop",
                             "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"],
                            cwd=root)
    try:
        wait_ready(port, proc)
        figures = run_load(port, "none", args)
        figures["server_peak_rss_mib"] = peak_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="turns of with / without the retry index")
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures")
    parser.add_argument("--load", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        port, key, seconds, warmup, connections, batch = args.load
        print(json.dumps(load(int(port), key, float(seconds), float(warmup), int(connections), int(batch))))
        return
    with tempfile.TemporaryDirectory(prefix="edupulse-http-") as tmp:
        root = Path(tmp)
        print("baseline: minimal app on the same server stack ...", file=sys.stderr)
        baseline = measure_baseline(root, args)
        # With and without the index in turns, so that load from elsewhere falls on both alike.
        rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for n in range(args.rounds):
            print(f"edupulse serve (round {n + 1}) ...", file=sys.stderr)
            with_index = measure_edupulse(root / f"with_index_{n}", args)
            print("edupulse serve without the recent insert-ID index ...", file=sys.stderr)
            rounds.append((with_index, measure_edupulse(root / f"without_index_{n}", args,
                                                         {"EDUPULSE_INGEST__RETRY_WINDOW_DAYS": "0"})))
        ours, no_index = max(rounds, key=lambda r: r[0]["events_per_second"])
        ratios = sorted(a["events_per_second"] / max(b["events_per_second"], 1) for a, b in rounds)
    figures = {
        "batch": args.batch, "connections": args.connections, "seconds": args.seconds,
        "edupulse": ours, "edupulse_without_retry_index": no_index, "baseline_parse_only": baseline,
        "ratio_to_baseline": round(ours["events_per_second"] / max(baseline["events_per_second"], 1), 2),
        "retry_index_ratio": round(ratios[len(ratios) // 2], 3),
        "retry_index_ratio_per_round": [round(r, 3) for r in ratios],
        "target_events_per_second": TARGET, "target_met": ours["events_per_second"] >= TARGET,
    }
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
