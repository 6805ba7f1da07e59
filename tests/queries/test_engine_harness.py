"""The engine-agreement harness fails, not skips, when ClickHouse's engine (chDB) is missing: a comparison that
did not run must not look like one that passed."""

from __future__ import annotations

import sys

import pytest

from engines import MISSING_CHDB, require_chdb


def test_a_missing_chdb_fails_the_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chdb", None)  # import chdb now raises ImportError
    with pytest.raises(pytest.fail.Exception, match="chDB is not installed"):
        require_chdb()
    assert "pip install 'edupulse[clickhouse]'" in MISSING_CHDB


def test_chdb_is_here() -> None:
    require_chdb()
