"""`edupulse pack list|install|uninstall|headline`: scenario packs of a project (see docs/packs.md). These open
the data directory (channels are read from the events), so they refuse to run while a server holds it: use
the API then (POST /api/v1/packs/NAME/install)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from edupulse.cli_support import fail, find_project, opened_platform
from edupulse.conf import Settings

PROJECT = click.option("--project", "project_name", required=True, help="Project name.")


@click.group("pack")
def pack_group() -> None:
    """Education scenario packs: install the dashboards, reports and metrics that answer one problem."""


@contextmanager
def _opened(ctx: click.Context, project_name: str) -> Iterator[tuple[Any, Any]]:
    from edupulse.packs.service import PackService

    settings: Settings = ctx.obj
    with opened_platform(settings, "while the server runs, use the API: POST /api/v1/packs/NAME/install") as platform:
        yield PackService(platform), find_project(platform.meta, project_name)


def _checked(action: Any) -> Any:
    from edupulse.packs.headline import PackError
    from edupulse.queries.errors import QueryError

    try:
        return action()
    except (PackError, QueryError) as exc:
        fail(str(exc))


@pack_group.command("list")
@PROJECT
@click.pass_context
def list_(ctx: click.Context, project_name: str) -> None:
    """Every pack with its stage, whether it is available and whether the project has it installed."""
    with _opened(ctx, project_name) as (service, project):
        for info in service.list(project):
            state = "installed" if info.installed else ("available" if info.available else "not yet available")
            click.echo(f"{info.name}\t{info.stage}\t{state}")


@pack_group.command("install")
@click.argument("name")
@PROJECT
@click.pass_context
def install(ctx: click.Context, name: str, project_name: str) -> None:
    """Install (or upgrade) a pack; running it again changes nothing that is current. Prints what it did."""
    with _opened(ctx, project_name) as (service, project):
        done = _checked(lambda: service.install(project, name, "edupulse pack install"))
        service.platform.meta.audit.record("pack.install", "cli", project_id=project.id, target=name,
                                           detail=done.to_json())
        click.echo(json.dumps(done.to_json(), ensure_ascii=False))


@pack_group.command("uninstall")
@click.argument("name")
@PROJECT
@click.pass_context
def uninstall(ctx: click.Context, name: str, project_name: str) -> None:
    """Remove what a pack installed and nobody changed since."""
    with _opened(ctx, project_name) as (service, project):
        done = _checked(lambda: service.uninstall(project, name))
        service.platform.meta.audit.record("pack.uninstall", "cli", project_id=project.id, target=name,
                                           detail=done.to_json())
        click.echo(json.dumps(done.to_json(), ensure_ascii=False))


@pack_group.command("headline")
@click.argument("name")
@PROJECT
@click.option("--all-days", is_flag=True, help="Every day of the data (default: the last 30 days).")
@click.option("--date-from", default=None, help="YYYY-MM-DD")
@click.option("--date-to", default=None, help="YYYY-MM-DD (default today)")
@click.pass_context
def headline(ctx: click.Context, name: str, project_name: str, all_days: bool, date_from: str | None,
             date_to: str | None) -> None:
    """A pack's headline numbers as JSON."""
    with _opened(ctx, project_name) as (service, project):
        found = _checked(lambda: service.headline(project, name, date_range="all" if all_days else None,
                                                  date_from=date_from, date_to=date_to))
        click.echo(json.dumps(found.model_dump(), ensure_ascii=False))
