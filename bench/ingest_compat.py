"""Collection over other analytics protocols: durably acknowledged events per second of the Sensors Analytics
`/sa` data_list form and the PostHog `/batch/` endpoint, each as a ratio to the native `/api/v1/ingest`
measured in the same run, on the same server, with the same load (batches of 100 education events over
keep-alive HTTP/1.1 connections from a load generator in another process).

The bodies are what the official SDKs send:
- native: {"batch": [...]} JSON with an event_id per record (as bench/ingest_http.py);
- /sa: `data_list=<base64 of gzip of a JSON array>&gzip=1`, form-encoded, as the Python SDK's BatchConsumer
  sends (Sensors records carry no record ID, so nothing is looked up for duplicates);
- /batch/: {"api_key", "batch": [...], "sent_at"} JSON with a uuid and an ISO timestamp per event, as the
  posthog Python SDK sends.

After the load the server is stopped cleanly and the store is opened to check that it holds exactly the
acknowledged records.

    .venv/bin/python bench/ingest_compat.py [--seconds 15] [--connections 16] [--batch 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ingest_http import EVENTS, free_port, peak_rss_mib, wait_ready  # bench/ is on the path of a bench script

PROTOCOLS = ("native", "sensors_data_list", "posthog_batch")
ID = b"RRRRRRRRRR"
MILLIS = b"1111111111111"
ISO = b"2000-01-01T00:00:00.000000+00:00"


def native_body(batch: int) -> bytes:
    records = []
    for i in range(batch):
        event, props = EVENTS[i % len(EVENTS)]
        records.append({"type": "track", "event": event, "distinct_id": f"learner-{(i * 7919) % 5000}",
                        "distinct_id_type": "login_id", "time": int(MILLIS), "event_id": f"{ID.decode()}-{i}",
                        "properties": props, "groups": {"school": f"S-{i % 30}"}})
    return json.dumps({"batch": records}).encode()


def sensors_body(batch: int) -> bytes:
    """Compressed once: the time is the moment the body is built (the SDK's records carry their own times)."""
    now = int(time.time() * 1000)
    records = []
    for i in range(batch):
        event, props = EVENTS[i % len(EVENTS)]
        records.append({"type": "track", "event": event, "distinct_id": f"learner-{(i * 7919) % 5000}",
                        "time": now, "properties": {**props, "$is_login_id": True, "$lib": "python"},
                        "lib": {"$lib": "python", "$lib_method": "code"}})
    payload = base64.b64encode(gzip.compress(json.dumps(records, separators=(",", ":")).encode()))
    return b"data_list=" + quote(payload.decode(), safe="").encode() + b"&gzip=1"


def posthog_body(batch: int, key: str) -> bytes:
    events = []
    for i in range(batch):
        event, props = EVENTS[i % len(EVENTS)]
        events.append({"event": event, "distinct_id": f"learner-{(i * 7919) % 5000}", "timestamp": ISO.decode(),
                       "uuid": f"{ID.decode()}-{i}", "properties": {**props, "$groups": {"school": f"S-{i % 30}"}}})
    return json.dumps({"api_key": key, "batch": events, "sent_at": ISO.decode()}).encode()


def request_parts(protocol: str, key: str, batch: int) -> tuple[bytes, bytes]:
    """(request head without Content-Length, body template) of a protocol."""
    if protocol == "native":
        return (f"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                "Content-Type: application/json\r\n").encode(), native_body(batch)
    if protocol == "sensors_data_list":
        return (f"POST /sa?project=bench&token={key} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n").encode(), sensors_body(batch)
    return (b"POST /batch/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n",
            posthog_body(batch, key))


def fill(template: bytes, prefix: str, n: int) -> bytes:
    """Unique IDs and current times in a body template (templates without placeholders stay as they are)."""
    now = dt.datetime.now(dt.UTC)
    return (template.replace(ID, f"{prefix}{n:07d}".encode())
            .replace(MILLIS, str(int(now.timestamp() * 1000)).encode())
            .replace(ISO, now.isoformat(timespec="microseconds").encode()))


# the load generator (its own process) -----------------------------------------------------------


async def connection(port: int, head: bytes, template: bytes, prefix: str, stop_at: float, warm_until: float,
                     out: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    while True:
        started = time.perf_counter()
        if started >= stop_at:
            break
        n += 1
        body = fill(template, prefix, n)
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
        accepted = int(payload.split(b'"accepted":', 1)[1].split(b",", 1)[0].split(b"}", 1)[0]) if ok else 0
        if started >= warm_until:
            out["latencies"].append(elapsed)
            out["accepted"] += accepted
            out["requests"] += 1
            out["errors"] += 0 if ok else 1
        out["accepted_total"] += accepted
    writer.close()
    await writer.wait_closed()


def load(port: int, protocol: str, key: str, seconds: float, warmup: float, connections: int,
         batch: int) -> dict[str, Any]:
    head, template = request_parts(protocol, key, batch)
    out: dict[str, Any] = {"latencies": [], "accepted": 0, "accepted_total": 0, "requests": 0, "errors": 0}
    now = time.perf_counter()
    warm_until, stop_at = now + warmup, now + warmup + seconds

    async def main() -> None:
        await asyncio.gather(*(connection(port, head, template, f"{protocol[:2]}{c:03d}", stop_at, warm_until, out)
                               for c in range(connections)))

    asyncio.run(main())
    lat = sorted(out.pop("latencies"))

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else 0.0

    out.update(events_per_second=round(out["accepted"] / seconds), requests_per_second=round(out["requests"] / seconds),
               body_bytes=len(fill(template, "xx000", 0)), p50_ms=pct(0.50), p99_ms=pct(0.99))
    return out


def run_load(port: int, protocol: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--load", str(port), protocol, key, str(args.seconds), str(args.warmup),
           str(args.connections), str(args.batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# the server ------------------------------------------------------------------------------------------


def measure(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    data = root / "data"
    edupulse = [sys.executable, "-m", "edupulse", "--data-dir", str(data)]
    created = json.loads(subprocess.run([*edupulse, "project", "create", "Bench", "--json"], check=True,
                                        capture_output=True, text=True, env={**os.environ}).stdout)
    port = free_port()
    proc = subprocess.Popen([*edupulse, "serve", "--port", str(port)])
    figures: dict[str, Any] = {}
    try:
        wait_ready(port, proc)
        for protocol in PROTOCOLS:
            print(f"{protocol} ...", file=sys.stderr)
            figures[protocol] = run_load(port, protocol, created["write_key"], args)
        figures["server_peak_rss_mib"] = peak_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=180)

    from edupulse.store.duckdb import DuckDBStore

    store = DuckDBStore(data, read_only=True)
    store.open()
    stored = store.query("SELECT count(*) FROM events").rows[0][0]
    store.close()
    acknowledged = sum(figures[p]["accepted_total"] for p in PROTOCOLS)
    figures["stored_events"] = stored
    figures["durability_check"] = "ok" if stored == acknowledged else f"MISMATCH ({acknowledged} acknowledged)"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures")
    parser.add_argument("--load", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        port, protocol, key, seconds, warmup, connections, batch = args.load
        print(json.dumps(load(int(port), protocol, key, float(seconds), float(warmup), int(connections),
                              int(batch))))
        return
    with tempfile.TemporaryDirectory(prefix="edupulse-compat-") as tmp:
        figures = measure(Path(tmp), args)
    native = max(figures["native"]["events_per_second"], 1)
    summary = {
        "batch": args.batch, "connections": args.connections, "seconds": args.seconds, **figures,
        "ratio_to_native": {p: round(figures[p]["events_per_second"] / native, 2) for p in PROTOCOLS[1:]},
    }
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
