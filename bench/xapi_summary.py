"""The LRS summary of the ingestion page on a large statement store: milliseconds per summary, as a ratio to
counting the project's statements (the cheapest read of all of them, through the project's index) in the same run.

Fills a fresh SQLite metadata database with `--statements` statements (nine in ten of project A, the rest of
project B, interleaved as they would arrive; 15 verbs of skewed use), then times the summary of A, of A with a verb
filter, of B, and of a project with no statement (the worst case: the latest statements are looked for in the
whole table).

    .venv/bin/python bench/xapi_summary.py [--statements 1000000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from edupulse.meta.db import MetadataStore
from edupulse.meta.models import XapiStatement
from edupulse.meta.xapi_summary import summarize

sys.path.insert(0, str(Path(__file__).parent))
from catalog import best  # the best of `repeat` timings, in seconds

COLUMNS = "id, project_id, statement_id, stored_us, verb_id, registration, ref_id, voids, voided, signature, document"


def fill(meta: MetadataStore, projects: tuple[int, int], count: int) -> None:
    verbs = [f"http://adlnet.gov/expapi/verbs/v{i}" for i in range(15)]
    rng = random.Random(7)
    connection = meta.engine.raw_connection()
    try:
        cursor = connection.cursor()
        rows: list[tuple[Any, ...]] = []
        for i in range(count):
            verb = verbs[int(rng.paretovariate(1.2)) % len(verbs)]
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            document = json.dumps({
                "id": sid, "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example",
                                                                        "name": f"stu-{i % 5000}"}},
                "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[1]}},
                "object": {"id": f"https://school.example/lesson/{i % 40}"}, "stored": "2026-12-01T00:00:00.000Z"})
            rows.append((i + 1, projects[1] if i % 10 == 9 else projects[0], sid, 1_800_000_000_000_000 + i, verb,
                         None, None, None, 0, "", document))
            if len(rows) == 50_000 or i == count - 1:
                cursor.executemany(f"INSERT INTO xapi_statements ({COLUMNS}) VALUES ({', '.join('?' * 11)})", rows)
                rows = []
        connection.commit()
    finally:
        connection.close()


def best_ms(run: Callable[[], object], repeat: int) -> float:
    return 1000 * best(repeat, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        meta = MetadataStore(f"sqlite:///{tmp}/metadata.sqlite")
        meta.migrate()
        a, b, empty = (meta.create_project(name).project.id for name in ("A", "B", "Empty"))
        fill(meta, (a, b), args.statements)

        def count() -> int:
            with meta.session() as s:
                return int(s.execute(select(func.count()).where(XapiStatement.project_id == a)).scalar_one())

        baseline = best_ms(count, args.repeat)
        verb = summarize(meta, a).verbs[3].verb
        loads = {"A (9 in 10 statements)": lambda: summarize(meta, a),
                 "A, one verb's latest": lambda: summarize(meta, a, verb=verb),
                 "B (1 in 10)": lambda: summarize(meta, b),
                 "a project with no statement": lambda: summarize(meta, empty)}
        figures = {name: best_ms(run, args.repeat) for name, run in loads.items()}
        meta.engine.dispose()
    if args.json:
        print(json.dumps({"statements": args.statements, "baseline_ms": round(baseline, 1),
                          "summary_ms": {k: round(v, 1) for k, v in figures.items()}}))
        return
    print(f"{args.statements:,} statements; counting project A's: {baseline:.1f} ms (baseline)")
    for name, ms in figures.items():
        print(f"  summary of {name}: {ms:.1f} ms   ratio to the count: {ms / baseline:.2f}")


if __name__ == "__main__":
    main()
