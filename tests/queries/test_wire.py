"""The JSON on the wire of every documented query example (and of richer cases of each model) is byte-identical
to the pinned files: the typed responses serialize exactly as the API always answered (keys, their order,
integers and floats, nulls). Floats are compared to 12 significant digits: a mean added up in parallel by
the engine may differ in its last bits from run to run. Also the CSV of each result, and the errors of
refused queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from edupulse.queries.errors import QueryError
from wire_cases import ERRORS, NOW, WireSchool, cases, refusal, wire

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
    assert steady(wire(answer)) == steady(pinned), \
        f"the wire of {case} changed (tests/queries/wire_capture.py writes it anew, if intended)"
    assert steady_csv(answer.to_csv()) == steady_csv((WIRE / f"{case}.csv").read_text(encoding="utf-8"))


def steady(raw: bytes) -> bytes:
    """The JSON as bytes again, every float to 12 significant digits (still a float: 3.0 stays 3.0)."""
    def walk(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.12g}")
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return orjson.dumps(walk(orjson.loads(raw)))


def steady_csv(text: str) -> list[list[str]]:
    def cell(value: str) -> str:
        try:
            number = float(value)
        except ValueError:
            return value
        return f"{number:.12g}" if "." in value or "e" in value else value

    return [[cell(v) for v in line.split(",")] for line in text.splitlines()]


def test_every_pinned_file_has_its_case() -> None:
    assert {p.stem for p in WIRE.glob("*.json")} == set(ALL)
    assert {p.stem for p in WIRE.glob("*.csv")} <= set(ALL)


def test_documented_examples_are_all_pinned() -> None:
    kinds = {query["kind"] for name, query in cases().items() if name.startswith("doc_")}
    assert {"trends", "funnel", "retention", "distribution", "paths", "attribution", "interval", "ltv", "person",
            "persons", "segments", "sql"} <= kinds
