"""Journeys: how fast an event reaches a webhook, and how fast a scheduled journey reaches a big segment.

1. Trigger latency: events ingested at --rate events per second (each a new person) trigger a journey whose
   one step is a signed webhook to a receiver on loopback (in its own process). Latency is from the
   ingestion acknowledgement (the event is durable in the log) to the receiver getting the call; p50 and
   p99. Baseline: the same receiver called directly (one POST, same client settings), so the ratio says what
   the journey path adds to one webhook call on this machine.
2. A scheduled journey over a segment of --persons persons: the job queries the segment, lets everyone in
   (entering), the worker moves them on (claims one webhook each) and the outbox sends them all to the
   receiver. Figures as persons per second for entering and for sending; baselines: writing the same rows
   to a plain SQLite table (entering) and POSTing to the receiver from as many threads without journeys
   (sending).

    .venv/bin/python bench/journeys.py [--rate 1000] [--seconds 10] [--persons 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def _serve(port_out: Any, arrivals: Any) -> None:
    """The receiver process: answers 200 and reports (idempotency key, arrival time) of every call."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one small answer per call: do not wait for the delayed ACK

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            arrivals.put((self.headers.get("idempotency-key") or "", time.time()))
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


class Receiver:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.arrivals: Any = ctx.Queue()
        port: Any = ctx.Queue()
        self.proc = ctx.Process(target=_serve, args=(port, self.arrivals), daemon=True)
        self.proc.start()
        self.url = f"http://127.0.0.1:{port.get(timeout=60)}"
        self.seen: dict[str, float] = {}

    def drain(self, until: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < until and time.monotonic() < deadline:
            try:
                key, at = self.arrivals.get(timeout=0.5)
            except Exception:  # queue.Empty: keep waiting until the deadline
                continue
            self.seen.setdefault(key, at)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def runtime_for(root: Path, receiver: Receiver) -> tuple[Any, Any, Any, Any]:
    from edupulse.conf import Settings
    from edupulse.journeys.runtime import JourneyRuntime
    from edupulse.runtime import Platform

    settings = Settings(data_dir=root / "data", journeys={"allowed_hosts": "127.0.0.1/32", "tick_ms": 50})
    platform = Platform(settings).open()
    project = platform.meta.create_project("Bench School").project
    runtime = JourneyRuntime(platform.meta, platform.query_service(), settings, wal=platform.wal,
                             loader=platform.loader, ingestor=platform.ingestor)
    now = dt.datetime.now(dt.UTC)
    runtime.channels.save(project.id, {"name": "crm", "kind": "webhook", "secrets": {"signing_secret": "s"}},
                          "bench", now)
    return platform, runtime, project, now


def start(runtime: Any, project: Any, spec: dict[str, Any], now: dt.datetime) -> Any:
    from edupulse.journeys.service import Actor

    made = runtime.service.create(project, spec, Actor("bench"), now)
    return runtime.service.transition(project, made.id, "start", Actor("bench"), now)


def baseline_calls(url: str, count: int, threads: int) -> tuple[list[float], float]:
    """Direct POSTs to the receiver with the senders' own HTTP client: per-call seconds (one at a time) and calls
    per second (`threads` at once)."""
    from edupulse.journeys.http_client import Client

    body = b'{"who": "p"}'
    client = Client(10.0)
    single = []
    for i in range(min(count, 2000)):
        began = time.perf_counter()
        client.post(url, body, {"Content-Type": "application/json", "Idempotency-Key": f"b{i}"})
        single.append(time.perf_counter() - began)
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: client.post(url, body, {"Content-Type": "application/json",
                                                         "Idempotency-Key": f"c{i}"}), range(count)))
    rate = count / (time.perf_counter() - began)
    client.close()
    return single, rate


def latency(rate: int, seconds: float) -> None:
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        platform, runtime, project, now = runtime_for(Path(tmp), receiver)
        start(runtime, project, {"name": "welcome", "holdout": 0, "trigger": {"event": "lead_created"},
                                 "steps": [{"action": "webhook", "url": receiver.url + "/lead", "channel": "crm",
                                            "body": {"lead": "{{person.crm_lead_id}}"}}]}, now)
        runtime.start()
        total = int(rate * seconds)
        per_batch = max(1, rate // 100)
        acked: dict[str, float] = {}
        began = time.perf_counter()
        for n in range(0, total, per_batch):
            due = began + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            records = [{"type": "track", "event": "lead_created", "distinct_id": f"L{i}",
                        "distinct_id_type": "crm_lead_id", "event_id": f"i{i}"} for i in range(n, n + per_batch)]
            platform.ingestor.ingest(project, records)
            stamp = time.time()
            for i in range(n, n + per_batch):
                acked[f"i{i}"] = stamp
        receiver.drain(total, timeout=120)
        runtime.close()
        with platform.meta.session() as s:
            from sqlalchemy import select

            from edupulse.meta.journey_models import JourneyDelivery, JourneyEntry

            entry_of = dict(s.execute(select(JourneyDelivery.idempotency_key, JourneyEntry.entry_key).join(
                JourneyEntry, JourneyEntry.id == JourneyDelivery.entry_id)).all())
        waits = [receiver.seen[k] - acked[entry_of[k]] for k in receiver.seen if k in entry_of]
        platform.close()
    single, _ = baseline_calls(receiver.url + "/direct", 1000, 1)
    receiver.close()
    p50, p99 = percentile(waits, 0.5), percentile(waits, 0.99)
    b50, b99 = percentile(single, 0.5), percentile(single, 0.99)
    print(f"trigger latency at {rate} events/s over {seconds:g} s: {len(waits)}/{total} webhooks arrived; "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(f"  baseline (one direct POST to the same receiver): p50 {b50 * 1000:.2f} ms, p99 {b99 * 1000:.2f} ms; "
          f"ratio p50 {p50 / b50:.0f}x, p99 {p99 / b99:.0f}x")


def seed_persons(platform: Any, project_id: int, persons: int) -> None:
    """Persons straight into the store (the bench measures journeys, not ingestion)."""
    con = platform.store.con
    con.execute("INSERT INTO identities (project_id, id_type, id_value, person_id) "
                "SELECT ?, 'login_id', 'p' || i, i + 1 FROM range(?) t(i)", [project_id, persons])
    con.execute("INSERT INTO persons (project_id, person_id, properties) "
                "SELECT ?, i + 1, '{\"cohort\": \"A\", \"grade\": ' || (i % 9 + 1) || '}' FROM range(?) t(i)",
                [project_id, persons])


def scheduled(persons: int) -> None:
    from zoneinfo import ZoneInfo

    from edupulse.ops.segments import SegmentCatalog

    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        platform, runtime, project, now = runtime_for(Path(tmp), receiver)
        seed_persons(platform, project.id, persons)
        SegmentCatalog(platform.meta).create(project.id, "cohort A", {"condition": {
            "property": "person.cohort", "op": "eq", "value": "A"}})
        local = now.astimezone(ZoneInfo(project.timezone))
        start(runtime, project, {"name": "renewal", "holdout": 0.1, "trigger": {
            "schedule": {"every": "once", "date": local.date().isoformat(), "at": local.strftime("%H:%M")},
            "audience": {"segment": "cohort A"}}, "steps": [{"action": "webhook", "url": receiver.url + "/renew",
                                                             "channel": "crm",
                                                             "body": {"who": "{{person.login_id}}"}}]}, now)
        began = time.perf_counter()
        entered = runtime.schedule_job().run(now + dt.timedelta(seconds=1))
        enter_s = time.perf_counter() - began
        count = sum(entered.values())
        began = time.perf_counter()
        moved = 0
        while True:
            step = runtime.engine.run_due(now + dt.timedelta(seconds=2), limit=5000)
            moved += step
            if not step:
                break
        claim_s = time.perf_counter() - began
        began = time.perf_counter()
        sent = 0
        while True:
            tried = runtime.outbox.send_due(now + dt.timedelta(seconds=3), limit=5000)
            sent += tried
            if not tried:
                break
        send_s = time.perf_counter() - began
        receiver.drain(sent, timeout=120)  # the receiver's record of the calls (each answered before it counted)
        threads = platform.settings.journeys.send_threads
        runtime.close()
        platform.close()
        rows = [(i, f"login_id:p{i}", "x" * 60) for i in range(count)]
        db = sqlite3.connect(Path(tmp) / "baseline.sqlite")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v TEXT, UNIQUE (k))")
        began = time.perf_counter()
        for low in range(0, len(rows), 1000):
            db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows[low:low + 1000])
            db.commit()
        insert_s = time.perf_counter() - began
        db.close()
    _, direct_rate = baseline_calls(receiver.url + "/direct", min(sent, 20_000), threads)
    receiver.close()
    print(f"scheduled journey over {persons:,} persons: {count:,} entered in {enter_s:.1f} s "
          f"({count / enter_s:,.0f} persons/s, segment query included); {moved:,} moved on and claimed in "
          f"{claim_s:.1f} s ({moved / claim_s:,.0f}/s); enqueued (entered and claimed) in {enter_s + claim_s:.1f} s "
          f"({count / (enter_s + claim_s):,.0f} persons/s); {sent:,} tried in {send_s:.1f} s "
          f"({sent / send_s:,.0f}/s; {len(receiver.seen):,} webhooks arrived, {sent - int(count * 0.9):+,} vs 90%"
          " of entrants outside the holdout)")
    print(f"  baselines: plain SQLite insert of as many rows {count / insert_s:,.0f} rows/s "
          f"(entering ratio {insert_s / enter_s:.2f}); direct POSTs from {threads} threads "
          f"{direct_rate:,.0f}/s (sending ratio {sent / send_s / direct_rate:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("latency", "scheduled"))
    args = parser.parse_args()
    if args.only != "scheduled":
        latency(args.rate, args.seconds)
    if args.only != "latency":
        scheduled(args.persons)


if __name__ == "__main__":
    sys.exit(main())
