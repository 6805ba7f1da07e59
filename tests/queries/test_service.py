"""The query service: one way every analysis runs. Errors are mapped by whose they are (the caller's: 4xx with
what to change; ours: 500 with an error id and the trace in the log), kinds are an explicit list, results are
typed, and the analysis package stands on its own (no metadata, API or web imports)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import pytest

from edupulse.queries.errors import QueryError
from edupulse.queries.funnel import FunnelQuery, FunnelResponse, FunnelRunner
from edupulse.queries.registry import BUILT_IN, Registry
from edupulse.queries.service import InternalQueryError
from edupulse.queries.trends import TrendsQuery, TrendsResponse
from gov_fixtures import Gov
from wire_cases import NOW, WireSchool

QUERIES = Path(__file__).resolve().parents[2] / "src" / "edupulse" / "queries"
FUNNEL = {"kind": "funnel", "steps": [{"event": "lead_created"}, {"event": "order_paid"}],
          "date_range": {"date_from": "2025-04-15", "date_to": "2025-05-31"}}


def _broken(self: Any) -> Any:
    raise ValueError("a defect: this is no user's mistake")


def test_a_defect_is_an_internal_error_with_an_id_and_a_logged_trace(
        wire_school: WireSchool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(FunnelRunner, "calculate", _broken)
    with caplog.at_level(logging.ERROR, logger="edupulse.queries.service"), \
            pytest.raises(InternalQueryError) as caught:
        wire_school.service.run(wire_school.project, FUNNEL, now=NOW)
    error_id = caught.value.error_id
    assert error_id in str(caught.value)
    assert "internal error" in str(caught.value)
    (record,) = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None  # the trace is in the log
    assert "a defect" in str(record.exc_info[1])


def test_the_api_answers_a_defect_with_500_and_its_id(gov: Gov, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FunnelRunner, "calculate", _broken)
    response = gov.client.post("/api/v1/query", json={**FUNNEL, "date_range": {"date_from": "2026-09-01"}},
                               headers=gov.bearer("analyst"))
    assert response.status_code == 500
    body = response.json()
    assert body["error_id"] in body["error"]
    assert "a defect" not in body["error"]  # the details stay in the log


def test_the_caller_s_mistakes_stay_400(wire_school: WireSchool, gov: Gov) -> None:
    with pytest.raises(QueryError, match="date_from 2025-05-31 is after date_to 2025-04-15"):
        wire_school.service.run(wire_school.project, {**FUNNEL, "date_range": {"date_from": "2025-05-31",
                                                                                "date_to": "2025-04-15"}}, now=NOW)
    response = gov.client.post("/api/v1/query", json={**FUNNEL, "unit": "planet"}, headers=gov.bearer("analyst"))
    assert response.status_code == 400
    assert "unit 'planet'" in response.json()["error"]


def test_typed_results_for_code_built_on_analyses(wire_school: WireSchool) -> None:
    funnel = wire_school.service.calculate(wire_school.project, FunnelQuery.model_validate(FUNNEL), FunnelResponse,
                                           now=NOW)
    assert funnel.results[0].steps[0].count > 0
    with pytest.raises(TypeError, match="not TrendsResponse"):
        wire_school.service.calculate(wire_school.project, FunnelQuery.model_validate(FUNNEL), TrendsResponse,
                                      now=NOW)
    trends = wire_school.service.calculate(
        wire_school.project, TrendsQuery.model_validate({"kind": "trends", "series": [{"event": "lead_created"}],
                                                         "date_range": {"date_from": "2025-04-01"}}),
        TrendsResponse, now=NOW)
    assert trends.series[0].aggregated_value == 300  # every learner's lead, in the whole simulated period


def test_kinds_are_an_explicit_list() -> None:
    assert Registry().kinds == sorted(runner.kind for runner in BUILT_IN)
    only = Registry([FunnelRunner])
    assert only.kinds == ["funnel"]
    with pytest.raises(QueryError, match="use one of funnel"):
        only.parse({"kind": "trends", "series": [{"event": "x"}]})
    with pytest.raises(ValueError, match="two runners"):
        Registry([FunnelRunner, FunnelRunner])


def test_the_analysis_package_imports_no_metadata_api_or_web() -> None:
    for path in sorted(QUERIES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("edupulse.meta", "edupulse.api", "edupulse.web")), f"{path.name}: {name}"
