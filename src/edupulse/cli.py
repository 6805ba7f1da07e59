"""The `edupulse` command: parses arguments and calls the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from edupulse import __version__
from edupulse.cli_support import fail as _fail
from edupulse.cli_support import find_project as _project
from edupulse.cli_support import open_meta as _meta
from edupulse.cli_support import opened_platform, serve_settings
from edupulse.conf import Settings
from edupulse.demo import demo
from edupulse.importer.cli import import_group
from edupulse.ops.cli import segment_group
from edupulse.packs.cli import pack_group
from edupulse.sim.cli import simulate
from edupulse.tags.cli import tag_group


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default ./edupulse-data, or EDUPULSE_DATA_DIR).",
)
@click.option("--metadata-url", default=None, help="Metadata database URL (default SQLite in the data directory).")
@click.option("--events-url", default=None,
              help="ClickHouse server holding the events, clickhouse://user:password@host:8123/database "
                   "(default: the embedded store in the data directory).")
@click.version_option(__version__, prog_name="edupulse")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, metadata_url: str | None, events_url: str | None) -> None:
    """EduPulse: data-driven operations for education organizations."""
    overrides: dict[str, Any] = {}
    if events_url is not None:
        overrides["events_url"] = events_url
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if metadata_url is not None:
        overrides["metadata_url"] = metadata_url
    ctx.obj = Settings(**overrides)


# projects ---------------------------------------------------------------------------------------


@main.group()
def project() -> None:
    """Create and list projects (one per school brand or app)."""


@project.command("create")
@click.argument("name")
@click.option("--timezone", default=None, help="IANA time zone for days, weeks and months (default Asia/Shanghai).")
@click.option("--json", "as_json", is_flag=True, help="Print the project and its keys as JSON.")
@click.pass_context
def project_create(ctx: click.Context, name: str, timezone: str | None, as_json: bool) -> None:
    """Create a project and print its write key and secret API key (shown once)."""
    from edupulse.meta.db import MetadataError

    settings = _settings(ctx)
    meta = _meta(settings)
    try:
        new = meta.create_project(name, timezone or settings.default_timezone)
    except MetadataError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "project": new.project.name,
                    "project_id": new.project.id,
                    "timezone": new.project.timezone,
                    "write_key": new.project.write_key,
                    "api_key": new.api_key,
                }
            )
        )
    else:
        click.echo(f"project   {new.project.name} (time zone {new.project.timezone})")
        click.echo(f"write key {new.project.write_key}   (ingestion only; safe to embed in apps)")
        click.echo(f"API key   {new.api_key}   (secret: query and admin; shown only now)")


@project.command("list")
@click.pass_context
def project_list(ctx: click.Context) -> None:
    """List projects with their write keys."""
    for p in _meta(_settings(ctx)).projects():
        click.echo(f"{p.id}\t{p.name}\t{p.timezone}\t{p.write_key}")


# quarantine -------------------------------------------------------------------------------------


@main.group()
def quarantine() -> None:
    """Records refused at ingestion."""


@quarantine.command("list")
@click.option("--project", "project_name", required=True, help="Project name.")
@click.option("--limit", default=50, show_default=True)
@click.option("--source", default=None, help="Only records of this source (native, xapi, sensors, posthog, ...).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def quarantine_list(ctx: click.Context, project_name: str, limit: int, source: str | None, as_json: bool) -> None:
    """Show refused records, newest first, with the reason and where in the input."""
    meta = _meta(_settings(ctx))
    proj = _project(meta, project_name)
    rows = meta.quarantine(proj.id, limit, source=source)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"nothing quarantined in {proj.name}" + (f" from {source}" if source else ""))
    for row in rows:
        click.echo(
            f"{row['received_at']}  {row['source']}  {row['location']}\n  reason: {row['reason']}\n"
            f"  record: {row['record'][:300]}"
        )


@main.group()
def identity() -> None:
    """One-ID: identity warnings."""


@identity.command("warnings")
@click.option("--project", "project_name", required=True)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def identity_warnings(ctx: click.Context, project_name: str, limit: int) -> None:
    """Links that were refused because they would join two different logged-in persons."""
    meta = _meta(_settings(ctx))
    proj = _project(meta, project_name)
    for row in meta.warnings(proj.id, limit):
        click.echo(f"{row['event_time']}  {row['kind']}  {row['message']}")


# server -----------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the API and pages."""
    settings = _settings(ctx)
    serve_settings(settings, host or settings.host, port or settings.port)


@main.command("db-upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or upgrade the metadata database schema."""
    _meta(_settings(ctx))
    click.echo("metadata schema is up to date")


@main.command("migrate-store")
@click.option("--to", "events_to", required=True,
              help="ClickHouse server to copy the events into: clickhouse://user:password@host:8123/database.")
@click.option("--metadata-to", default=None,
              help="PostgreSQL database to copy the metadata into (postgresql://...); leave out to keep it.")
@click.pass_context
def migrate_store(ctx: click.Context, events_to: str, metadata_to: str | None) -> None:
    """Copy this data directory's events (and, with --metadata-to, its metadata) to a ClickHouse server and
    PostgreSQL, with progress; run it again to resume; the counts are compared at the end. Stop the server
    first. See docs/scale-out.md."""
    from edupulse.cluster.migrate import migrate_events, migrate_metadata
    from edupulse.meta.db import MetadataStore
    from edupulse.runtime import Platform
    from edupulse.store.clickhouse_client import ClickHouseError
    from edupulse.store.clickhouse_http import ClickHouseServerStore
    from edupulse.store.duckdb import DuckDBStore, StoreLockedError

    settings = _settings(ctx)
    if settings.events_url:
        _fail("migrate-store copies the embedded store of the data directory: leave --events-url out")
    try:
        target = ClickHouseServerStore(events_to, settings.clickhouse.cluster, settings.clickhouse.timeout_seconds,
                                       settings.clickhouse.verify_tls)
    except ValueError as exc:
        _fail(str(exc))
    platform = Platform(settings)
    try:
        platform.open(background_loader=False)  # everything acknowledged is loaded first
    except StoreLockedError as exc:
        _fail(f"{exc}; stop the server, then migrate")
    try:
        target.open()
        assert isinstance(platform.store, DuckDBStore)
        report = migrate_events(platform.store, target, click.echo)
        checks = report.checks
        if metadata_to:
            destination = MetadataStore(metadata_to)
            try:
                checks += migrate_metadata(platform.meta, destination, click.echo)
            finally:
                destination.close()
    except (ClickHouseError, OSError) as exc:
        _fail(f"the ClickHouse server refused or failed: {exc}; run the command again to resume")
    finally:
        target.close()
        platform.close()
    click.echo(f"copied {report.events_copied:,} events ({report.chunks_skipped} days copied before were skipped)")
    for check in checks:
        click.echo(f"{'ok  ' if check.ok else 'DIFF'}  {check.what}: {check.source:,} here, {check.target:,} there")
    if not all(c.ok for c in checks):
        _fail("the counts differ: run the command again (copied parts are skipped) and check the server")
    click.echo("done: start the API processes with --events-url" + (" and --metadata-url" if metadata_to else "")
               + ", each with its own new data directory")


def run() -> None:  # pragma: no cover - console entry
    sys.exit(main())


main.add_command(simulate)
main.add_command(demo)
main.add_command(import_group)
main.add_command(segment_group)
main.add_command(tag_group)
main.add_command(pack_group)


@main.command("query")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--project", "project_name", required=True, help="Project to query.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the result as CSV instead of JSON.")
@click.pass_context
def query_command(ctx: click.Context, file: str, project_name: str, as_csv: bool) -> None:
    """Run an analysis described by a JSON file (- for standard input); print the result as JSON, the same
    as POST /api/v1/query. See docs/queries.md."""
    from edupulse.queries.errors import QueryError
    from edupulse.queries.service import InternalQueryError

    try:
        with click.open_file(file, encoding="utf-8") as stream:
            data = json.loads(stream.read())
    except (OSError, ValueError) as exc:
        _fail(f"{file}: {exc}")
    with opened_platform(_settings(ctx), "while the server runs, send the query to it: POST /api/v1/query") as platform:
        project_info = _project(platform.meta, project_name)
        try:
            answer = platform.query_service().run(project_info, data)
        except (QueryError, InternalQueryError) as exc:
            _fail(f"{file}: {exc}")
        click.echo(answer.to_csv() if as_csv else json.dumps(answer.to_wire(), ensure_ascii=False, default=str),
                   nl=not as_csv)


def _register_accounts() -> None:
    from edupulse.auth.cli import accounts_group, key_group, user_group

    for group in (user_group, key_group, accounts_group):
        main.add_command(group)


_register_accounts()
