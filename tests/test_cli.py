"""The command line: projects and keys, quarantine and warnings listings, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from conftest import cli
from edupulse.cli import main


def test_project_create_json_and_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = json.loads(cli(data, "project", "create", "Spring English", "--json").stdout)
    assert out["project"] == "Spring English"
    assert out["write_key"].startswith("wk_")
    assert out["api_key"].startswith("sk_")
    listed = cli(data, "project", "list").stdout
    assert "Spring English" in listed
    assert out["write_key"] in listed
    assert out["api_key"] not in listed  # the secret key is shown once, at creation


def test_project_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(main, [*data, "project", "create", "A"]).exit_code == 0
    again = runner.invoke(main, [*data, "project", "create", "A"])
    assert again.exit_code != 0
    assert "already exists" in again.output
    zone = runner.invoke(main, [*data, "project", "create", "B", "--timezone", "Nowhere/City"])
    assert zone.exit_code != 0
    assert "time zone" in zone.output


def test_listings(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    runner.invoke(main, [*data, "project", "create", "A"])
    empty = runner.invoke(main, [*data, "quarantine", "list", "--project", "A"])
    assert empty.exit_code == 0
    assert "nothing quarantined" in empty.output
    assert runner.invoke(main, [*data, "identity", "warnings", "--project", "A"]).exit_code == 0
    unknown = runner.invoke(main, [*data, "quarantine", "list", "--project", "Nope"])
    assert unknown.exit_code != 0
    assert "Nope" in unknown.output
    assert runner.invoke(main, [*data, "db-upgrade"]).exit_code == 0


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("project", "quarantine", "identity", "serve", "simulate", "demo", "import", "db-upgrade"):
        assert command in result.output
