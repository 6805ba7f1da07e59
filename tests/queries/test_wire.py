"""The JSON on the wire of every documented query example (and of richer cases of each model) is byte-identical
to the pinned files: the typed responses serialize exactly as the API always answered. Also the CSV of each
result, and the errors of refused queries."""

from __future__ import annotations

from pathlib import Path

import pytest
from wire_cases import ERRORS, NOW, WireSchool, cases, refusal, wire

from edupulse.queries.errors import QueryError

WIRE = Path(__file__).parent / "wire"
ALL = {**cases(), **ERRORS}


@pytest.mark.parametrize("case", sorted(ALL))
def test_wire_is_byte_identical(wire_school: WireSchool, case: str) -> None:
    pinned = (WIRE / f"{case}.json").read_bytes()
    if pinned.startswith(b'{"status":'):
        with pytest.raises(QueryError) as refused:
            wire_school.service.run(wire_school.project, ALL[case], now=NOW)
        assert refusal(refused.value) + b"\n" == pinned
        return
    answer = wire_school.service.run(wire_school.project, ALL[case], now=NOW)
    assert wire(answer) + b"\n" == (WIRE / f"{case}.json").read_bytes(), \
        f"the wire of {case} changed (tests/queries/wire_capture.py writes it anew, if intended)"
    assert answer.to_csv() == (WIRE / f"{case}.csv").read_text(encoding="utf-8")


def test_every_pinned_file_has_its_case() -> None:
    assert {p.stem for p in WIRE.glob("*.json")} == set(ALL)
    assert {p.stem for p in WIRE.glob("*.csv")} <= set(ALL)


def test_documented_examples_are_all_pinned() -> None:
    kinds = {query["kind"] for name, query in cases().items() if name.startswith("doc_")}
    assert {"trends", "funnel", "retention", "distribution", "paths", "attribution", "interval", "ltv", "person",
            "persons", "segments", "sql"} <= kinds
