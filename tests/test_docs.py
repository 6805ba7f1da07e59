"""Docs kept honest: every setting of conf.py is documented in docs/settings.md, and every EDUPULSE_ variable the
docs name is a setting (or one of the test suite's own)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from edupulse.conf import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_DOC = ROOT / "docs" / "settings.md"
TEST_ONLY = {"EDUPULSE_TEST_POSTGRES_URL", "EDUPULSE_TEST_CLICKHOUSE", "EDUPULSE_TEST_CLICKHOUSE_URL",
             "EDUPULSE_TEST_CHROMIUM", "EDUPULSE_UPDATE_SNAPSHOTS"}


def variables(model: type[BaseModel] = Settings, prefix: str = "EDUPULSE_") -> Iterator[str]:
    """The environment variable of every setting, nested groups included."""
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from variables(kind, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}"


@pytest.mark.parametrize("variable", sorted(variables()))
def test_every_setting_is_documented(variable: str) -> None:
    assert f"| `{variable}` |" in SETTINGS_DOC.read_text(encoding="utf-8"), \
        f"{variable} is not in docs/settings.md: add a row for it"


def test_the_docs_name_only_settings_that_exist() -> None:
    known = set(variables()) | TEST_ONLY
    groups = {v.rsplit("__", 1)[0] + "__" for v in known if "__" in v}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for found in re.findall(r"EDUPULSE_[A-Z_]*[A-Z]_?_?", path.read_text(encoding="utf-8")):
            assert found in known or found in groups or found == "EDUPULSE_", f"{path.name}: {found} is no setting"
