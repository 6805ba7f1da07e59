"""`edupulse tag create|list|show|run|values|upload|delete`: tags of a project (see docs/tags.md). Commands that
compute or read values open the data directory, so they run while no server holds it; with a server
running, use the HTTP API (/api/v1/tags)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from edupulse.cli_support import fail, find_project, opened_platform
from edupulse.conf import Settings

_project = click.option("--project", "project_name", required=True, help="Project name.")


@contextmanager
def _service(ctx: click.Context, project_name: str) -> Iterator[tuple[Any, Any]]:
    from edupulse.tags.run import TagService

    settings: Settings = ctx.obj
    with opened_platform(settings, "while the server runs, use /api/v1/tags") as platform:
        project = find_project(platform.meta, project_name)
        yield TagService(platform.meta, platform.store, platform.query_service()), project


def _json_arg(text: str, what: str) -> Any:
    """Inline JSON, a file, or - for standard input."""
    source = text
    if text == "-":
        source = sys.stdin.read()
    elif not text.lstrip().startswith("{"):
        try:
            source = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"{what}: {exc}")
    try:
        return json.loads(source)
    except ValueError as exc:
        fail(f"{what}: not JSON: {exc}")


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


@click.group("tag")
def tag_group() -> None:
    """Tags, scores and tiers of persons and groups."""


@tag_group.command("create")
@_project
@click.option("--definition", "text", required=True,
              help='The tag as JSON ({"name": ..., "definition": {"type": ...}}), a file holding it, or -.')
@click.pass_context
def create(ctx: click.Context, project_name: str, text: str) -> None:
    """Define a tag; prints it as JSON."""
    from edupulse.meta.db import MetadataError
    from edupulse.meta.tags import check_spec

    with _service(ctx, project_name) as (svc, project):
        try:
            spec = check_spec(_json_arg(text, "--definition"))
            svc.check(project, spec)
            made = svc.catalog.create(project.id, spec, "cli")
        except MetadataError as exc:
            fail(str(exc))
        svc.meta.audit.record("tag.create", "cli", project_id=project.id, target=spec.name,
                              detail={"version": made.version})
        _echo(made.to_json())


@tag_group.command("list")
@_project
@click.pass_context
def list_(ctx: click.Context, project_name: str) -> None:
    """The project's tags: name, unit, type, units with a value, description."""
    with _service(ctx, project_name) as (svc, project):
        for tag in svc.tags(project):
            click.echo(f"{tag.name}\t{tag.spec.unit}\t{tag.spec.definition.type}\t{svc.count(project, tag)}\t"
                       f"{tag.spec.description}")


@tag_group.command("show")
@click.argument("name")
@_project
@click.pass_context
def show(ctx: click.Context, name: str, project_name: str) -> None:
    """One tag as JSON, with its versions, recent runs and distribution."""
    from edupulse.meta.db import MetadataError

    with _service(ctx, project_name) as (svc, project):
        try:
            tag = svc.tag(project, name)
        except MetadataError as exc:
            fail(str(exc))
        _echo({**tag.to_json(), "versions": svc.catalog.versions(tag.id),
               "runs": [r.to_json() for r in svc.catalog.runs(tag.id)],
               "distribution": svc.distribution(project, name)})


@tag_group.command("run")
@click.argument("name", required=False)
@_project
@click.option("--all", "every", is_flag=True, help="Every tag computed on a schedule.")
@click.option("--quiet", is_flag=True, help="Print no progress (on standard error) while a run goes.")
@click.pass_context
def run(ctx: click.Context, name: str | None, project_name: str, every: bool, quiet: bool) -> None:
    """Compute a tag (or --all) now; prints each stage on standard error as the run goes, then each run as JSON.
    Fails if a run failed."""
    from edupulse.meta.db import MetadataError

    if (name is None) == (not every):
        fail("give a tag name or --all")
    with _service(ctx, project_name) as (svc, project):
        runs = []
        try:
            for current in svc.scheduled(project) if every else [str(name)]:
                if not quiet:
                    svc.listener = _progress_printer(current)
                runs.append(svc.run(project, current))
        except MetadataError as exc:
            fail(str(exc))
        for r in runs:
            _echo(r.to_json())
        failed = [r for r in runs if r.status == "failed"]
        if failed:
            fail(f"{len(failed)} run(s) failed: " + "; ".join(r.error for r in failed))


def _progress_printer(name: str) -> Any:
    """Prints a run's stages on standard error: `tag: stage [done/total] (seconds)`."""
    started = time.monotonic()

    def show(stage: str, done: int | None, total: int | None) -> None:
        steps = f" [{done}/{total}]" if done is not None and total else ""
        click.echo(f"{name}: {stage}{steps} ({time.monotonic() - started:.1f} s)", err=True)

    return show


@tag_group.command("values")
@click.argument("name")
@_project
@click.option("--as-of", "as_of", default=None, help="The day (YYYY-MM-DD); default: now.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, type=click.IntRange(0))
@click.pass_context
def values(ctx: click.Context, name: str, project_name: str, as_of: str | None, limit: int, offset: int) -> None:
    """The values of a tag in force (now or on a day), one JSON object per line (for a CRM)."""
    from edupulse.meta.db import MetadataError

    day = None
    if as_of is not None:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)")
    with _service(ctx, project_name) as (svc, project):
        try:
            tag = svc.tag(project, name)
            _, rows = svc.values(project, name, day, limit, offset)
        except MetadataError as exc:
            fail(str(exc))
        for row in rows:
            _echo(row.to_json(tag))


@tag_group.command("upload")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@_project
@click.pass_context
def upload(ctx: click.Context, name: str, file: str, project_name: str) -> None:
    """Upload a CSV (identity,value with a header line) to an uploaded tag; bad lines are listed and skipped."""
    from edupulse.meta.db import MetadataError
    from edupulse.tags.run import TagError

    with click.open_file(file, encoding="utf-8-sig") as stream:
        text = stream.read()
    with _service(ctx, project_name) as (svc, project):
        try:
            done, problems = svc.upload(project, name, text)
        except (MetadataError, TagError) as exc:
            fail(str(exc))
        _echo({"run": done.to_json(), "problems": problems})


@tag_group.command("delete")
@click.argument("name")
@_project
@click.pass_context
def delete(ctx: click.Context, name: str, project_name: str) -> None:
    """Delete a tag (its recorded values stay in the store's history)."""
    from edupulse.meta.db import MetadataError

    with _service(ctx, project_name) as (svc, project):
        try:
            gone = svc.catalog.delete(project.id, name, "cli")
        except MetadataError as exc:
            fail(str(exc))
        svc.meta.audit.record("tag.delete", "cli", project_id=project.id, target=name,
                              detail={"version": gone.version})
        click.echo(f"deleted tag {name!r}")
