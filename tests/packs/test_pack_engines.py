"""The scenario packs on ClickHouse: every pack installed on a small simulated school, then each pack's `sql` reports,
the SQL its headline runs, and its whole headline computed on DuckDB and on ClickHouse (chDB, the engines
harness) must agree. A pack's SQL is read in the store's dialect, as a user's is: an ISO 8601 text compared with
`time`, an outer join's missing side tested with IS NULL, an alias that names a column of the subquery, or a
UNION ALL without an order each worked on DuckDB and failed or differed on ClickHouse."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.conf import QuerySettings
from edupulse.meta.analysis import AnalysisMetadata
from edupulse.packs import lead_tiering, one_person, referral, supervision
from edupulse.packs.headline import MetricFallback
from edupulse.packs.registry import PACKS
from edupulse.packs.service import PackService
from edupulse.queries.service import QueryService
from edupulse.sim import SimulationConfig
from engines import History, _Mirror, normalized, require_chdb, simulated_school

END = dt.date(2025, 6, 1)
NOW = dt.datetime(2025, 6, 1, 4, tzinfo=dt.UTC)
SQL_REPORTS = [(name, part.key) for name, pack in PACKS.items() for part in pack.reports
               if part.query.get("kind") == "sql"]


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[History, PackService]]:
    """200 learners over 90 days (seed 11) with every pack installed (their tags computed) before the ClickHouse
    copy is made, so the copy holds the tag values too."""
    require_chdb()
    history = simulated_school(tmp_path_factory.mktemp("pack_engines"), "Engines School",
                               SimulationConfig(seed=11, learners=200, days=90, end=END))
    packs = PackService(history.platform)
    for name in PACKS:
        packs.install(history.project, name, "tester", now=NOW)
    _Mirror.holder = None  # copied again, with what the installs added
    yield history, packs
    history.close()


def test_there_are_sql_reports_to_compare() -> None:
    assert {name for name, _ in SQL_REPORTS} >= {"one_person", "lead_tiering", "referral", "renewal"}


@pytest.mark.parametrize(("pack", "key"), SQL_REPORTS)
def test_a_pack_sql_report_agrees_on_both_engines(school: tuple[History, PackService], pack: str, key: str) -> None:
    history, _ = school
    query = next(p.query for p in PACKS[pack].reports if p.key == key)
    answer = history.both(query, NOW)
    assert answer["rows"], f"{pack}/{key} has rows on the simulated school"


def _rows(history: History, sql: str, engine: str) -> list[Any]:
    return history.run({"kind": "sql", "sql": sql, "limit": 100_000}, engine, NOW)["rows"]


def test_the_sql_of_the_headlines_agrees_on_both_engines(school: tuple[History, PackService]) -> None:
    """Compared as sets where a headline reads the rows into a mapping; a lead without a first order has none on
    both (ClickHouse's outer join would give 1970-01-01), and the revenue parts come in one order."""
    history, _ = school
    store = history.platform.store
    persons = [int(r[0]) for r in store.query(
        "SELECT DISTINCT resolved_person_id FROM events_resolved WHERE project_id = ? ORDER BY 1 LIMIT 80",
        [history.project.id]).rows]
    ids = [str(r[0]) for r in store.query(
        "SELECT DISTINCT distinct_id FROM events_resolved WHERE project_id = ? AND event = 'lead_created' "
        "ORDER BY 1 LIMIT 80", [history.project.id]).rows]
    low = "CAST('2025-04-01 00:00:00+00' AS TIMESTAMPTZ)"
    cases = {"leads": lead_tiering.leads_sql(), "paid_after": lead_tiering.paid_after_sql(ids),
             "advisors": lead_tiering.advisors_sql(), "attended": supervision.attended_sql(persons, False),
             "attended_by_class": supervision.attended_sql(persons, True)}
    for name, sql in cases.items():
        duck, house = _rows(history, sql, "duckdb"), _rows(history, sql, "clickhouse")
        assert duck, name
        assert sorted(map(repr, normalized(house))) == sorted(map(repr, normalized(duck))), name
    leads = _rows(history, lead_tiering.leads_sql(), "clickhouse")
    assert {r[3] is None for r in leads} == {True, False}  # leads with and without a first order
    assert _rows(history, lead_tiering.leads_sql(), "duckdb") == leads  # ordered by lead time, then person
    paid = dict(_rows(history, lead_tiering.paid_after_sql(ids), "clickhouse"))
    assert None in paid.values()
    assert any(v is not None for v in paid.values())
    # the literal of an instant differs by dialect; one_person and referral get theirs from the pack's run
    assert _rows(history, one_person.coverage_sql(f" WHERE time >= {low}"), "duckdb")
    revenue = history.both({"kind": "sql", "sql": referral.revenue_sql()}, NOW)["rows"]
    assert [r[0] for r in revenue] == sorted((r[0] for r in revenue), key=["referrer", "referred", "all"].index)


@pytest.mark.parametrize("pack", list(PACKS))
def test_a_pack_headline_agrees_on_both_engines(school: tuple[History, PackService], pack: str) -> None:
    """The headline as the pack computes it, once over DuckDB and once with the same run's queries on ClickHouse."""
    history, packs = school
    spec = PACKS[pack]
    run = packs.run(history.project, spec, date_range="all", now=NOW)
    duck = spec.headline(run).model_dump(mode="json")
    metadata = MetricFallback(AnalysisMetadata(history.platform.meta), {m.name: m.definition for m in spec.metrics})
    house = spec.headline(dataclasses.replace(run, service=QueryService(
        _Mirror.load(history), metadata, None, QuerySettings()))).model_dump(mode="json")
    assert normalized(house) == normalized(duck)
    assert not duck.get("empty"), f"{pack} has something to show on the simulated school"
