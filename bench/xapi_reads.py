"""xAPI reads over HTTP at once from many connections: requests per second of GET statement by id and GET of a
State document, as ratios to GET /xapi/about (no database) measured in the same run.

Starts `edupulse serve` on a loopback port in a fresh data directory, stores `--statements` statements and as many
State documents, then runs each load in turn for `--seconds` from `--connections` threads with keep-alive
connections. Reads by many clients at once are what a metadata database's connection pool has to carry (each
request holds a connection while it reads).

    .venv/bin/python bench/xapi_reads.py [--seconds 10] [--connections 16] [--statements 1000]
        [--metadata-url postgresql://...] [--json]

The metadata database is SQLite in the bench's data directory unless --metadata-url names another (an empty
database or schema: the bench creates its project there).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from xapi_http import running_server, statement  # the server and statements of the write bench

HEADERS = {"X-Experience-API-Version": "1.0.3"}
STATE = "https://school.example/course/math/lesson/1"


def agent(i: int) -> str:
    return json.dumps({"account": {"homePage": "https://lms.example", "name": f"stu-{i}"}})


def load(base: str, auth: tuple[str, str], connections: int, seconds: float, request: Any) -> float:
    """Requests answered 200 per second by `connections` threads, each calling request(client, i)."""
    done = [0] * connections
    stop_at = time.monotonic() + seconds

    def worker(n: int) -> None:
        with httpx.Client(base_url=base, auth=auth, headers=HEADERS, timeout=60) as client:
            i = n
            while time.monotonic() < stop_at:
                if request(client, i).status_code == 200:
                    done[n] += 1
                i += connections

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="seconds of each load")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--metadata-url", help="metadata database (default: SQLite in the data directory)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_server(tmp, args.metadata_url) as (base, keys, _):
        auth = (keys["write_key"], keys["api_key"])
        statements = [statement(i) for i in range(args.statements)]
        ids = [s["id"] for s in statements]
        with httpx.Client(base_url=base, auth=auth, headers=HEADERS, timeout=60) as client:
            for start in range(0, len(statements), 100):
                client.post("/xapi/statements", json=statements[start:start + 100]).raise_for_status()
            for i in range(args.statements):
                params = {"activityId": STATE, "agent": agent(i), "stateId": "bookmark"}
                client.put("/xapi/activities/state", json={"page": i}, params=params).raise_for_status()
        loads = {
            "about": lambda c, i: c.get("/xapi/about"),
            "statement_by_id": lambda c, i: c.get("/xapi/statements", params={"statementId": ids[i % len(ids)]}),
            "state_document": lambda c, i: c.get("/xapi/activities/state", params={
                "activityId": STATE, "agent": agent(i % args.statements), "stateId": "bookmark"}),
        }
        rates = {name: load(base, auth, args.connections, args.seconds, request) for name, request in loads.items()}
    result = {**{f"{name}_per_s": round(rate) for name, rate in rates.items()},
              **{f"{name}_ratio": round(rate / rates["about"], 3) for name, rate in rates.items() if name != "about"},
              "connections": args.connections, "metadata": (args.metadata_url or "sqlite").split(":", 1)[0]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"GET /xapi/about (baseline): {rates['about']:,.0f}/s   statement by id: {rates['statement_by_id']:,.0f}/s "
          f"(ratio {result['statement_by_id_ratio']})   State document: {rates['state_document']:,.0f}/s "
          f"(ratio {result['state_document_ratio']})   ({args.connections} connections)")


if __name__ == "__main__":
    main()
