"""docs/journeys.md kept honest: every journey written in it is a valid definition."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from edupulse.journeys.model import parse_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "journeys.md"
EXAMPLES = [orjson.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)]


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "trigger" in e], ids=lambda e: e["name"])
def test_documented_journeys_are_valid(example: dict) -> None:
    assert parse_spec(example).name == example["name"]


def test_the_doc_has_the_examples_the_issue_asks_for() -> None:
    names = {e.get("name") for e in EXAMPLES}
    assert {"Trial booked, not attended", "Recall after three missed lessons", "Renewal reminder"} <= names
