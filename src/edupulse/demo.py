"""`edupulse demo`: simulate an education organization once, create an admin, and serve it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edupulse.cli_support import serve_settings
from edupulse.conf import Settings

if TYPE_CHECKING:
    from edupulse.runtime import Platform

DEMO_PROJECT = "Demo School"
ADMIN_EMAIL = "admin@edupulse.local"


def _has_events(platform: Platform, project_id: int) -> bool:
    rows = platform.store.query(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE project_id = ? LIMIT 1)", [project_id]
    ).rows
    return bool(rows[0][0])


@click.command()
@click.option("--project", "project_name", default=DEMO_PROJECT, show_default=True, help="Project to fill and serve.")
@click.option("--learners", default=120_000, show_default=True, type=click.IntRange(min=1),
              help="Learners to simulate (about 25 events each: some 3 million events, two minutes on two cores).")
@click.option("--seed", default=2026, show_default=True, type=int, help="Simulation seed.")
@click.option("--days", default=120, show_default=True, type=int, help="Simulated period in days.")
@click.option("--fresh", is_flag=True, help="Simulate again even if the project already has data.")
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.pass_context
def demo(ctx: click.Context, project_name: str, learners: int, seed: int, days: int, fresh: bool,
         host: str | None, port: int | None) -> None:
    """Simulate an education organization into a project (once), create an admin and serve the platform."""
    from edupulse.packs.service import PackService
    from edupulse.runtime import Platform
    from edupulse.sim.cli import _report, _run
    from edupulse.sim.config import SimulationConfig, SimulationError
    from edupulse.store.duckdb import StoreLockedError

    settings: Settings = ctx.find_root().obj
    host, port = host or settings.host, port or settings.port
    platform = Platform(settings)
    try:
        platform.open()
    except StoreLockedError as exc:
        raise click.ClickException(f"{exc} (is a demo already running on port {port}?)") from None
    try:
        project = platform.meta.project_by_name(project_name)
        if project is None:
            project = platform.meta.create_project(project_name, settings.default_timezone).project
        if fresh or not _has_events(platform, project.id):
            click.echo(f"simulating {learners:,} learners over {days} days into {project_name!r} (seed {seed})...")
            try:
                _report(_run(platform, project, SimulationConfig(seed=seed, learners=learners, days=days)))
            except SimulationError as exc:
                raise click.ClickException(str(exc)) from None
        else:
            click.echo(f"{project_name!r} already has data in {Path(settings.data_dir).resolve()}; "
                       "use --fresh to simulate again")
        for info in PackService(platform).list(project):  # every available scenario pack, installed or upgraded
            if info.available:
                PackService(platform).install(project, info.name, "edupulse demo")
        api_key = platform.meta.rotate_api_key(project.id)
        password = secrets.token_urlsafe(9)
        platform.meta.ensure_admin(ADMIN_EMAIL, password)
    finally:
        platform.close()
    banner = "\n".join([
        "",
        f"EduPulse is running at http://{host}:{port}/   (API docs: http://{host}:{port}/docs)",
        f"sign in:   {ADMIN_EMAIL} / {password}",
        f"project:   {project.name}",
        f"write key: {project.write_key}   (send events: POST /api/v1/ingest)",
        f"API key:   {api_key}   (query and admin API; a new one each demo start)",
        "stop with Ctrl+C; run 'make demo' again to restart on the same data",
        "",
    ])
    serve_settings(settings, host, port, banner=banner)
