"""The SQL of every pinned query (wire_cases.py), per engine, from the runners' `to_queries()` alone: no store,
no data. A change of a model's SQL shows here as a diff of `sql/<dialect>/<case>.sql`, to be read in review.

    EDUPULSE_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/queries/test_sql_snapshots.py   # write them anew
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edupulse.queries.compile import Context
from edupulse.queries.dialect import DIALECTS
from edupulse.queries.metadata import SavedSegment
from edupulse.queries.metrics import expand
from edupulse.queries.registry import Registry
from edupulse.queries.segments import segment_resolver
from edupulse.queries.service import statements
from edupulse.queries.trends import TrendsQuery
from edupulse.store.schema import STANDARD_PROPERTIES
from wire_cases import NOW, SEGMENTS, cases, metric

SNAPSHOTS = Path(__file__).parent / "sql"
GROUPS = {"school": 0, "institution": 1, "class": 2}  # as the simulation declares them
SAVED = {name: SavedSegment(id=i, name=name, definition=d) for i, (name, d) in enumerate(SEGMENTS.items(), 1)}
UPDATE = os.environ.get("EDUPULSE_UPDATE_SNAPSHOTS") == "1"
REGISTRY = Registry()
RUNNABLE = {name: query for name, query in cases().items() if not name.startswith("doc_08")}  # its person is absent


def context(dialect: str) -> Context:
    return Context(project_id=1, timezone=ZoneInfo("Asia/Shanghai"), typed=dict(STANDARD_PROPERTIES),
                   dialect=DIALECTS[dialect], groups=dict(GROUPS), segments=segment_resolver(SAVED.get), now=NOW)


def rendered(query: dict[str, Any], dialect: str) -> str:
    parsed = REGISTRY.parse(query)
    if isinstance(parsed, TrendsQuery) and parsed.names_metrics():
        parsed = expand(parsed, metric).query
    runner = REGISTRY.runner_for(parsed)(parsed, context(dialect))
    return "".join(f"-- {name}\n{sql};\n\n" for name, sql in statements(runner, dialect).items())


@pytest.mark.parametrize("dialect", ["duckdb", "clickhouse"])
@pytest.mark.parametrize("case", sorted(RUNNABLE))
def test_sql_of_every_case_and_engine(case: str, dialect: str) -> None:
    text = rendered(RUNNABLE[case], dialect)
    path = SNAPSHOTS / dialect / f"{case}.sql"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}: run with EDUPULSE_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), f"the SQL of {case} on {dialect} changed: if intended, " \
                                                      "run with EDUPULSE_UPDATE_SNAPSHOTS=1 and review the diff"


def test_every_kind_has_a_snapshot() -> None:
    assert {q["kind"] for q in RUNNABLE.values()} == set(REGISTRY.kinds)


def test_no_snapshot_without_a_case() -> None:
    for dialect in ("duckdb", "clickhouse"):
        stale = {p.stem for p in (SNAPSHOTS / dialect).glob("*.sql")} - set(RUNNABLE)
        assert not stale, f"snapshots of cases that no longer exist: {sorted(stale)}"
