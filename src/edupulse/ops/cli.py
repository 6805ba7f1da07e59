"""`edupulse segment create|list|show|delete`: saved segments of a project (see docs/queries.md, segments)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from edupulse.conf import Settings


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _catalog(ctx: click.Context, project_name: str) -> tuple[Any, Any, Any]:
    from edupulse.meta.db import MetadataStore
    from edupulse.ops.segments import SegmentCatalog

    settings: Settings = ctx.obj
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    meta = MetadataStore(settings.resolved_metadata_url)
    meta.migrate()
    project = meta.project_by_name(project_name)
    if project is None:
        names = ", ".join(p.name for p in meta.projects()) or "none"
        meta.close()
        _fail(f"no project named {project_name!r} (projects: {names})")
    return meta, SegmentCatalog(meta), project


def _definition(text: str) -> Any:
    """Inline JSON, a file, or - for standard input."""
    source: str = text
    if text == "-":
        source = sys.stdin.read()
    elif not text.lstrip().startswith("{"):
        try:
            source = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"--definition: {exc}") from None
    try:
        return json.loads(source)
    except ValueError as exc:
        _fail(f"--definition: not JSON: {exc}")


@click.group("segment")
def segment_group() -> None:
    """Saved segments: person definitions usable as filters in every analysis."""


_project = click.option("--project", "project_name", required=True, help="Project name.")


@segment_group.command("create")
@click.argument("name")
@_project
@click.option("--definition", "definition_text", required=True,
              help='The definition as JSON ({"condition": ...}), a file holding it, or - for standard input.')
@click.option("--description", default="", help="What the segment is for.")
@click.pass_context
def create(ctx: click.Context, name: str, project_name: str, definition_text: str, description: str) -> None:
    """Save a segment; prints it as JSON."""
    from edupulse.meta.db import MetadataError

    meta, catalog, project = _catalog(ctx, project_name)
    try:
        saved = catalog.create(project.id, name, _definition(definition_text), description)
    except MetadataError as exc:
        _fail(str(exc))
    finally:
        meta.close()
    click.echo(json.dumps(saved.to_json(), ensure_ascii=False))


@segment_group.command("list")
@_project
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def list_(ctx: click.Context, project_name: str, as_json: bool) -> None:
    """The project's segments, by name."""
    meta, catalog, project = _catalog(ctx, project_name)
    try:
        rows = catalog.all(project.id)
    finally:
        meta.close()
    for row in rows:
        if as_json:
            click.echo(json.dumps(row.to_json(), ensure_ascii=False))
        else:
            click.echo(f"{row.id}\t{row.name}\t{row.description}")
    if not rows and not as_json:
        click.echo(f"no segments in {project.name}")


@segment_group.command("show")
@click.argument("segment")
@_project
@click.pass_context
def show(ctx: click.Context, segment: str, project_name: str) -> None:
    """One segment (by name or id) as JSON."""
    meta, catalog, project = _catalog(ctx, project_name)
    try:
        found = catalog.get(project.id, segment)
    finally:
        meta.close()
    if found is None:
        _fail(f"segment {segment!r}: no such segment in {project.name}")
    click.echo(json.dumps(found.to_json(), ensure_ascii=False))


@segment_group.command("delete")
@click.argument("segment")
@_project
@click.pass_context
def delete(ctx: click.Context, segment: str, project_name: str) -> None:
    """Delete a segment (by name or id) that no other segment refers to."""
    from edupulse.meta.db import MetadataError

    meta, catalog, project = _catalog(ctx, project_name)
    try:
        gone = catalog.delete(project.id, segment)
    except MetadataError as exc:
        _fail(str(exc))
    finally:
        meta.close()
    click.echo(f"deleted segment {gone.name!r}")
