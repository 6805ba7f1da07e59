"""`edupulse simulate`: generate an education organization into a project, with its ground truth."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edupulse.conf import Settings
from edupulse.sim.config import MAX_DAYS, MIN_DAYS, SimulationConfig, SimulationError

if TYPE_CHECKING:
    from edupulse.meta.db import ProjectInfo
    from edupulse.runtime import Platform
    from edupulse.sim.config import SimulationSummary


@click.command()
@click.option("--project", "project_name", required=True, help="Project to fill; created if it does not exist.")
@click.option("--seed", type=int, required=True, help="Random seed: the same inputs give the same data and truth.")
@click.option("--learners", type=click.IntRange(min=1), required=True,
              help="Prospective learners (leads) to simulate; events grow linearly with it (about 45 each).")
@click.option("--days", type=click.IntRange(MIN_DAYS, MAX_DAYS), default=120, show_default=True,
              help="Length of the simulated period in days.")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The period ends at the start of this date (not included). Default: today in the project's "
                   "time zone, so every event lies in the past.")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the ground truth JSON (default <data-dir>/simulation-truth-<project>.json).")
@click.pass_context
def simulate(
    ctx: click.Context, project_name: str, seed: int, learners: int, days: int, end: dt.datetime | None,
    truth_path: Path | None,
) -> None:
    """Simulate an education organization (leads, advisors, orders, classes, referrals, institutions and
    schools) into a project through the ingestion write path, and write the ground truth it planted."""
    from edupulse.runtime import Platform
    from edupulse.store.duckdb import StoreLockedError

    root = ctx.find_root().obj
    settings = root if isinstance(root, Settings) else Settings()
    config = SimulationConfig(seed=seed, learners=learners, days=days, end=end.date() if end else None,
                              truth_path=truth_path)
    platform = Platform(settings)
    try:
        try:
            platform.open()
        except StoreLockedError as exc:
            raise click.ClickException(str(exc)) from None
        project = _project(platform, project_name, settings)
        summary = _run(platform, project, config)
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        platform.close()
    _report(summary)


def _project(platform: Platform, name: str, settings: Settings) -> ProjectInfo:
    from edupulse.meta.db import MetadataError

    project = platform.meta.project_by_name(name)
    if project is not None:
        return project
    try:
        new = platform.meta.create_project(name, settings.default_timezone)
    except MetadataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created project {new.project.name} (time zone {new.project.timezone})")
    click.echo(f"write key {new.project.write_key}   (ingestion only; safe to embed in apps)")
    click.echo(f"API key   {new.api_key}   (secret: query and admin; shown only now)")
    return new.project


def _run(platform: Platform, project: ProjectInfo, config: SimulationConfig) -> SimulationSummary:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edupulse.sim.runner import simulate as run_simulation

    console = Console(stderr=True)
    labels = {"generate": "simulating learners, institutions, schools", "load": "loading records into the store"}
    if not console.is_terminal:  # a log, CI, a container: plain progress lines instead of a bar
        return run_simulation(platform, project, config, ProgressLines(labels))
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(labels.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        return run_simulation(platform, project, config, progress)


class ProgressLines:
    """Progress as lines on standard error, for output that is not a terminal: one line per phase when it
    starts, then one each 10 % of it (and at least every `seconds`), and one when it is done."""

    def __init__(self, labels: dict[str, str], seconds: float = 15.0) -> None:
        self.labels, self.seconds = labels, seconds
        self.started: dict[str, float] = {}
        self.shown: dict[str, tuple[int, float]] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        step = 10 * done // total if total else 10
        if phase not in self.started:
            self.started[phase] = now
        last = self.shown.get(phase)
        if last is not None and ((step == last[0] and now - last[1] < self.seconds) or last[0] == 10):
            return
        self.shown[phase] = (step, now)
        share = f"{100 * done // total} %" if total else "done"
        click.echo(f"{self.labels.get(phase, phase)}: {done:,} of {total:,} ({share}, "
                   f"{now - self.started[phase]:.0f} s)", err=True)


def _report(s: SimulationSummary) -> None:
    click.echo(f"simulated {s.project}: {s.start.isoformat()} to {s.end.isoformat()} (end excluded), seed {s.seed}")
    click.echo(f"{s.events:,} events ({s.records:,} records) in {s.seconds:.1f} s "
               f"= {s.events_per_second:,.0f} events/s")
    click.echo(f"{s.persons:,} persons, {s.orders:,} orders, revenue {s.revenue:,.0f}, {s.spend_rows:,} spend rows")
    top = sorted(s.events_by_name.items(), key=lambda kv: -kv[1])[:8]
    click.echo("top events: " + ", ".join(f"{name} {count:,}" for name, count in top))
    click.echo(f"ground truth: {s.truth_path}")
    if s.rejected:
        click.echo(f"warning: {s.rejected} records were refused (see 'edupulse quarantine list'): "
                   + "; ".join(s.rejections), err=True)
