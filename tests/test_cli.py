"""The `edupulse` command: projects, quarantine, help, and what a person sees when something is wrong."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conftest import ProjectKeys, Server, cli, free_port
from edupulse.cli import main
from edupulse.conf import Settings
from edupulse.meta.db import MetadataStore

COMMANDS = ("project", "quarantine", "identity", "serve", "simulate", "demo", "import", "db-upgrade")


def run(settings: Settings, *args: str) -> Result:
    """The command in this process, on the test's data directory and metadata database."""
    return CliRunner().invoke(
        main, ["--data-dir", str(settings.data_dir), "--metadata-url", settings.resolved_metadata_url, *args],
        env={k: None for k in os.environ if k.startswith("EDUPULSE_")},
    )


def commands_in_help(text: str) -> list[str]:
    section = text.split("Commands:", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "EduPulse: data-driven operations for education organizations." in result.output
    assert "--data-dir" in result.output
    assert "--metadata-url" in result.output
    assert set(COMMANDS) <= set(commands_in_help(result.output))
    assert CliRunner().invoke(main, ["-h"]).output == result.output
    for group, subcommands in {"project": ("create", "list"), "quarantine": ("list",), "identity": ("warnings",),
                               "import": ("events", "profiles", "identities", "spend")}.items():
        sub = CliRunner().invoke(main, [group, "--help"])
        assert sub.exit_code == 0, sub.output
        assert set(subcommands) <= set(commands_in_help(sub.output)), (group, sub.output)


def test_console_script_and_module_are_the_same_command(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "edupulse"
    if not script.exists():
        pytest.skip("the edupulse console script is not installed next to this Python")
    outputs = []
    for command in ([str(script)], [sys.executable, "-m", "edupulse"]):
        done = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True, timeout=60,
                              cwd=tmp_path)
        assert done.stderr == ""
        outputs.append(done.stdout.replace("python -m edupulse", "edupulse"))
        version = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True, timeout=60)
        assert version.stdout.startswith("edupulse, version ")
    assert outputs[0] == outputs[1]
    assert set(COMMANDS) <= set(commands_in_help(outputs[0]))
    assert not (tmp_path / "edupulse-data").exists()  # help creates nothing


def test_project_create_prints_the_keys_as_json(settings: Settings) -> None:
    result = run(settings, "project", "create", "Spring English", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"project", "write_key", "api_key"} <= set(out)
    assert out["project"] == "Spring English"
    assert out["timezone"] == "Asia/Shanghai"
    assert out["write_key"].startswith("wk_")
    assert out["api_key"].startswith("sk_")
    meta = MetadataStore(settings.resolved_metadata_url)
    try:
        by_write_key = meta.project_by_write_key(out["write_key"])
        by_api_key = meta.project_by_api_key(out["api_key"])
        assert by_write_key is not None
        assert by_api_key == by_write_key
        assert by_write_key.name == "Spring English"
        assert meta.project_by_api_key(out["write_key"]) is None  # keys are not interchangeable
    finally:
        meta.close()
    # the metadata database is where --metadata-url says, not in the data directory
    assert not (settings.data_dir / "metadata.sqlite").exists()


def test_project_create_in_words(settings: Settings) -> None:
    result = run(settings, "project", "create", "Summer Camp", "--timezone", "Europe/Berlin")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "project   Summer Camp (time zone Europe/Berlin)"
    assert lines[1].startswith("write key wk_")
    assert lines[2].startswith("API key   sk_")
    assert "shown only now" in lines[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Spring English",), "a project named 'Spring English' already exists"),
        ((" Spring English ",), "a project named 'Spring English' already exists"),
        (("   ",), "project name must be 1 to 100 characters"),
        (("x" * 101,), "project name must be 1 to 100 characters"),
        (("Autumn", "--timezone", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_project_create_refuses_with_a_reason(settings: Settings, project: ProjectKeys, args: tuple[str, ...],
                                              message: str) -> None:
    result = run(settings, "project", "create", *args, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n" or result.stderr.startswith(f"Error: {message};")
    listed = run(settings, "project", "list")
    assert [line.split("\t")[1] for line in listed.output.splitlines()] == ["Spring English"]


def test_duplicate_project_in_a_real_process(settings: Settings, project: ProjectKeys) -> None:
    done = cli(settings, "project", "create", project.name, "--json", check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"Error: a project named {project.name!r} already exists\n"


def test_project_list(settings: Settings) -> None:
    assert run(settings, "project", "list").output == ""
    created = [json.loads(run(settings, "project", "create", name, "--json").stdout)
               for name in ("Spring English", "Math Olympiad", "北京少儿编程")]
    result = run(settings, "project", "list")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert rows == [[str(c["project_id"]), c["project"], "Asia/Shanghai", c["write_key"]] for c in created]
    assert all(c["api_key"] not in result.output for c in created)  # the secret key is never shown again


def test_quarantine_list_for_an_unknown_project(settings: Settings, project: ProjectKeys) -> None:
    result = run(settings, "quarantine", "list", "--project", "Nope")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: no project named 'Nope' (projects: {project.name}); create it with "
                             "'edupulse project create Nope'\n")
    warnings = run(settings, "identity", "warnings", "--project", "Nope")
    assert warnings.exit_code == 1
    assert "no project named 'Nope'" in warnings.stderr
    missing = run(settings, "quarantine", "list")
    assert missing.exit_code == 2
    assert "Missing option '--project'" in missing.stderr


def test_quarantine_list_when_nothing_is_quarantined(settings: Settings, project: ProjectKeys) -> None:
    result = run(settings, "quarantine", "list", "--project", project.name)
    assert result.exit_code == 0, result.output
    assert result.output == f"nothing quarantined in {project.name}\n"
    assert run(settings, "quarantine", "list", "--project", project.name, "--json").output == ""
    assert run(settings, "identity", "warnings", "--project", project.name).output == ""


def test_quarantine_list_of_one_source(settings: Settings, project: ProjectKeys) -> None:
    from edupulse.meta.db import QuarantineEntry

    meta = MetadataStore(settings.resolved_metadata_url)
    found = meta.project_by_name(project.name)
    assert found is not None
    now = dt.datetime.now(dt.UTC)
    meta.add_quarantine([QuarantineEntry(project_id=found.id, received_at=now, source=source, location="statement.verb",
                                         reason="is required", record="{}", dedupe_key=f"cli-{source}")
                         for source in ("xapi", "native")])
    meta.engine.dispose()
    listed = run(settings, "quarantine", "list", "--project", project.name, "--source", "xapi", "--json")
    assert [json.loads(line)["source"] for line in listed.output.splitlines()] == ["xapi"]
    assert len(run(settings, "quarantine", "list", "--project", project.name, "--json").output.splitlines()) == 2
    none = run(settings, "quarantine", "list", "--project", project.name, "--source", "sensors")
    assert none.output == f"nothing quarantined in {project.name} from sensors\n"


def test_db_upgrade_is_idempotent(settings: Settings) -> None:
    for _ in range(2):
        result = run(settings, "db-upgrade")
        assert result.exit_code == 0, result.output
        assert result.output == "metadata schema is up to date\n"


def test_settings_come_from_the_environment(settings: Settings, project: ProjectKeys) -> None:
    """EDUPULSE_DATA_DIR and EDUPULSE_METADATA_URL configure a fresh process; flags override them."""
    listed = cli(settings, "project", "list").stdout
    assert f"\t{project.name}\t" in listed
    other = settings.data_dir.parent / "other.sqlite"
    overridden = cli(settings, "--metadata-url", f"sqlite:///{other}", "project", "list").stdout
    assert overridden == ""
    assert other.exists()


def test_second_server_on_the_same_data_directory_is_refused_clearly(server: Server) -> None:
    done = cli(server.settings, "serve", "--port", str(free_port()), check=False)
    assert done.returncode == 1, done.stderr
    assert "is in use by another EduPulse process (a running server?)" in done.stderr
    assert "Traceback" not in done.stderr
    assert server.running
    assert server.status()["loader_error"] is None
