"""The small simulated school every pinned case runs on (wire_cases.py): built once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wire_cases import WireSchool, build_wire_school


@pytest.fixture(scope="session")
def wire_school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireSchool]:
    school = build_wire_school(tmp_path_factory.mktemp("wire"))
    yield school
    school.platform.close()
