"""Scale-out figures: ingestion with one and with two API processes, and analyses through the ClickHouse
server store as a ratio to the in-process ClickHouse store on the same data.

Ingestion: `edupulse serve` processes on loopback sharing a PostgreSQL schema (EDUPULSE_TEST_POSTGRES_URL,
default postgresql://postgres@127.0.0.1:5432/test) and a ClickHouse server, loaded by one load-generator
process (bench/ingest_http.py's client: keep-alive connections, batches of 100 events, unique event ids)
whose connections are spread over the processes. Figures: acknowledged events per second (a 200 means the
batch is fsynced in that process's log), and loaded events per second (until ClickHouse holds every
acknowledged event, checked once each); the baseline is one process, measured in the same run.

Analyses: bench/query.py's synthetic organization (--events, default 1 million), copied into the in-process
ClickHouse store (chDB) and into the server store; each of bench/query.py's analyses runs --repeat times
after a warm-up on each (result cache off); the figure is the median seconds on the server store divided by
the median in-process.

The ClickHouse server here is tests/ch_server.py (ClickHouse's HTTP interface executed by chDB, one
statement at a time), not a ClickHouse server: no ClickHouse server package installs on these machines.
On 2 CPU cores the two API processes, the load generator, the ClickHouse and the PostgreSQL servers all
share them, so two processes cannot be faster than one here; the ratio shows what sharing costs.

    .venv/bin/python bench/scale_out.py [--seconds 15] [--connections 16] [--events 1000000] [--repeat 3]
                                         [--skip-ingest] [--skip-queries] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT.parent / "tests")]

POSTGRES = os.environ.get("EDUPULSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# ingestion --------------------------------------------------------------------------------------------


def load(ports: list[int], key: str, seconds: float, warmup: float, connections: int, batch: int) -> dict[str, Any]:
    """One load-generator process; connection c goes to ports[c % len(ports)]."""
    from ingest_http import body_template, connection

    template = body_template(batch)
    out: dict[str, Any] = {"latencies": [], "accepted": 0, "accepted_total": 0, "requests": 0, "errors": 0}
    now = time.perf_counter()
    warm_until, stop_at = now + warmup, now + warmup + seconds

    async def main() -> None:
        await asyncio.gather(*(connection(ports[c % len(ports)], key, template, f"{c:03d}", stop_at, warm_until, out)
                               for c in range(connections)))

    asyncio.run(main())
    lat = sorted(out.pop("latencies"))
    out.update(events_per_second=round(out["accepted"] / seconds),
               p50_ms=round(lat[len(lat) // 2] * 1000, 1) if lat else 0.0,
               p99_ms=round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 1) if lat else 0.0)
    return out


def ingest(nodes: int, args: argparse.Namespace, server: Any, root: Path) -> dict[str, Any]:
    from cluster_support import Cluster
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    with Cluster(root / f"nodes-{nodes}", POSTGRES, server) as cluster:
        started = [cluster.start_node(f"n{i}") for i in range(nodes)]
        began = time.perf_counter()
        cmd = [sys.executable, __file__, "--load", ",".join(str(n.port) for n in started), cluster.write_key,
               str(args.seconds), str(args.warmup), str(args.connections), "100"]
        figures = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        store = ClickHouseServerStore(cluster.events_url)
        store.open()
        try:
            deadline = time.monotonic() + 600
            stored = 0
            while time.monotonic() < deadline:
                stored = int(store.query("SELECT count() FROM events").rows[0][0])
                if stored >= figures["accepted_total"]:
                    break
                time.sleep(0.5)
            loaded_at = time.perf_counter()
            distinct = int(store.query("SELECT uniqExact(insert_id) FROM events").rows[0][0])
        finally:
            store.close()
        figures.update(nodes=nodes, stored=stored, stored_distinct=distinct,
                       loaded_events_per_second=round(stored / (loaded_at - began)),
                       all_acknowledged_stored_once=stored == distinct == figures["accepted_total"])
        return figures


# analyses ---------------------------------------------------------------------------------------------


def analyses(args: argparse.Namespace, server: Any) -> dict[str, Any]:
    import query as bench_query
    from edupulse.conf import QuerySettings
    from edupulse.meta.analysis import AnalysisMetadata
    from edupulse.queries.service import QueryService
    from edupulse.store.clickhouse import ClickHouseStore
    from edupulse.store.clickhouse_http import ClickHouseServerStore

    platform, project = bench_query.prepare(args.events)
    try:
        local = ClickHouseStore()
        local.open()
        remote = ClickHouseServerStore(server.url("bench"))
        remote.open()
        for store in (local, remote):
            started = time.perf_counter()
            store.copy_from(platform.store)
            print(f"  copied {args.events:,} events into {type(store).__name__} in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
        out: dict[str, Any] = {"events": args.events}
        for name, query in bench_query.QUERIES.items():
            seconds = {}
            for label, store in (("in_process", local), ("server", remote)):
                service = QueryService(store, AnalysisMetadata(platform.meta), None, QuerySettings())
                times = []
                service.run(project, query, now=bench_query.NOW)  # warm-up
                for _ in range(args.repeat):
                    began = time.perf_counter()
                    service.run(project, query, now=bench_query.NOW)
                    times.append(time.perf_counter() - began)
                seconds[label] = statistics.median(times)
            out[name] = {"in_process_s": round(seconds["in_process"], 4), "server_s": round(seconds["server"], 4),
                         "server_over_in_process": round(seconds["server"] / seconds["in_process"], 2)}
        local.close()
        remote.close()
        return out
    finally:
        platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--load", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        ports, key, seconds, warmup, connections, batch = args.load
        print(json.dumps(load([int(p) for p in ports.split(",")], key, float(seconds), float(warmup),
                              int(connections), int(batch))))
        return
    from ch_server import ServerProcess

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edupulse-scale-") as tmp:
        server = ServerProcess(Path(tmp) / "clickhouse")
        try:
            if not args.skip_ingest:
                one = ingest(1, args, server, Path(tmp))
                two = ingest(2, args, server, Path(tmp))
                figures["ingest"] = {
                    "one_node": one, "two_nodes": two,
                    "acknowledged_two_over_one": round(two["events_per_second"] / max(one["events_per_second"], 1), 2),
                    "loaded_two_over_one": round(two["loaded_events_per_second"]
                                                 / max(one["loaded_events_per_second"], 1), 2)}
            if not args.skip_queries:
                figures["analyses"] = analyses(args, server)
        finally:
            server.stop()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    if "ingest" in figures:
        ing = figures["ingest"]
        for label in ("one_node", "two_nodes"):
            f = ing[label]
            print(f"ingest {label:9}  acknowledged {f['events_per_second']:>7,}/s  loaded "
                  f"{f['loaded_events_per_second']:>7,}/s  p99 {f['p99_ms']} ms  stored once: "
                  f"{f['all_acknowledged_stored_once']}")
        print(f"two nodes / one node: acknowledged {ing['acknowledged_two_over_one']}x, "
              f"loaded {ing['loaded_two_over_one']}x")
    if "analyses" in figures:
        for name, f in figures["analyses"].items():
            if isinstance(f, dict):
                print(f"{name:20} in-process {f['in_process_s']:.3f} s  server {f['server_s']:.3f} s  "
                      f"server / in-process {f['server_over_in_process']}x")


if __name__ == "__main__":
    main()
