from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pack_school import school_at


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from school_at(tmp_path_factory.mktemp("packs"))
