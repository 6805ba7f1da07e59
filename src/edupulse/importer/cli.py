"""`edupulse import events|profiles|identities|spend FILE`: bulk import of history and business data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edupulse.conf import Settings

if TYPE_CHECKING:
    from edupulse.importer.run import ImportOptions, ImportSummary, Progress

KIND_HELP = {
    "events": "Events: columns event, distinct_id, time, optional distinct_id_type, event_id (or insert_id) and "
              "properties (JSON); every other column is a property.",
    "profiles": "Person properties: columns distinct_id, optional distinct_id_type, op (set, set_once, increment, "
                "append, unset; default set) and time; every other column is a property.",
    "identities": "Identity links: every column is an identity type (login_id, mobile, crm_lead_id, "
                  "wechat_unionid, anonymous_id, device_id, email or your own); each row's identities become "
                  "one person.",
    "spend": "Ad spend: columns date, channel, campaign, cost, impressions, clicks; a row replaces the stored row "
             "of the same date, channel and campaign.",
}


@click.group("import")
def import_group() -> None:
    """Import history and business data from CSV, JSON Lines, Parquet or Excel (.xlsx) files (see docs/import.md)."""


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    decorators: list[Callable[[Any], Any]] = [
        click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option("--project", "project_name", required=True, help="Project to import into."),
        click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet", "xlsx"]), default=None,
                     help="File format (default: from the file name)."),
        click.option("--map", "maps", multiple=True, metavar="TARGET=COLUMN",
                     help="Read TARGET from COLUMN, e.g. --map distinct_id=user_id (repeatable)."),
        click.option("--value", "values", multiple=True, metavar="TARGET=TEXT",
                     help="The same TEXT for every row, e.g. --value event=order_paid (repeatable)."),
        click.option("--skip", "skips", multiple=True, metavar="COLUMN", help="Leave a column out (repeatable)."),
        click.option("--mapping", "mapping_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     default=None, help='JSON file {"map": {...}, "value": {...}, "skip": [...]}; options win.'),
        click.option("--strict", is_flag=True, help="Stop at the first bad row instead of quarantining it."),
        click.option("--max-rejected", type=click.IntRange(min=0), default=10_000, show_default=True,
                     help="Stop when more rows than this were rejected (a wrong mapping, a wrong file)."),
        click.option("--encoding", default="utf-8", show_default=True,
                     help="Text encoding of CSV and JSON Lines files, e.g. gbk."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
        click.pass_context,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _command(kind: str) -> None:
    @import_group.command(kind, help=KIND_HELP[kind])
    @_options
    def command(ctx: click.Context, file: Path, project_name: str, fmt: str | None, maps: tuple[str, ...],
                values: tuple[str, ...], skips: tuple[str, ...], mapping_file: Path | None, strict: bool,
                max_rejected: int, encoding: str, as_json: bool) -> None:
        from edupulse.importer.mapping import MappingError, load_mapping
        from edupulse.importer.run import ImportOptions

        try:
            mapping = load_mapping(mapping_file, maps, values, skips)
        except MappingError as exc:
            raise click.UsageError(str(exc)) from None
        options = ImportOptions(kind=kind, path=file, project=project_name, format=fmt, mapping=mapping,
                                strict=strict, max_rejected=max_rejected, encoding=encoding)
        root = ctx.find_root().obj
        _run(root if isinstance(root, Settings) else Settings(), options, as_json)


for _kind in KIND_HELP:
    _command(_kind)


def _run(settings: Settings, options: ImportOptions, as_json: bool) -> None:
    from edupulse.importer.job import ImportProblem
    from edupulse.importer.mapping import MappingError
    from edupulse.importer.run import ImportStopped, run_import
    from edupulse.importer.sources import SourceError
    from edupulse.runtime import Platform
    from edupulse.store.duckdb import StoreLockedError

    platform = Platform(settings)
    try:
        try:
            platform.open(background_loader=False)
        except StoreLockedError as exc:
            raise click.ClickException(str(exc)) from None
        with _progress_bar(options) as progress:
            summary = run_import(platform, options, progress)
    except ImportStopped as exc:
        _report(exc.summary, options, as_json)
        raise click.ClickException(str(exc)) from None
    except (ImportProblem, MappingError, SourceError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        platform.close()
    _report(summary, options, as_json)


@contextmanager
def _progress_bar(options: ImportOptions) -> Iterator[Progress]:
    """A rich progress bar on stderr (rows and rows/s) when stderr is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")

    console = Console(stderr=True)
    bar = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} rows"),
              RowsPerSecond(), TimeElapsedColumn(), console=console, disable=not console.is_terminal)
    task = bar.add_task(f"importing {options.path.name}", total=None)

    def progress(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield progress


def _report(summary: ImportSummary, options: ImportOptions, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    click.echo(f"{summary.kind} from {Path(summary.file).name} ({summary.format}) into {options.project}: "
               f"{summary.seconds:.1f} s, {summary.rows_per_second:,.0f} rows/s")
    click.echo(f"  rows read           {summary.rows_read:>12,}")
    click.echo(f"  imported            {summary.imported:>12,}")
    click.echo(f"  duplicates skipped  {summary.duplicates:>12,}")
    click.echo(f"  rejected            {summary.rejected:>12,}")
    if summary.warnings:
        click.echo(f"  identity warnings   {summary.warnings:>12,}   "
                   f"(edupulse identity warnings --project {json.dumps(options.project, ensure_ascii=False)})")
    if summary.rejected:
        click.echo(f"rejected rows are in the quarantine: edupulse quarantine list --project "
                   f"{json.dumps(options.project, ensure_ascii=False)}", err=True)
        for line in summary.first_rejections:
            click.echo(f"  {line}", err=True)
