"""What the `edupulse` commands share (the main command and the command groups of each module): failing with
a message, opening the metadata, finding a project, serving the platform."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from edupulse.conf import Settings


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def open_meta(settings: Settings) -> Any:
    """The metadata store of these settings, migrated."""
    from edupulse.meta.db import MetadataStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    meta = MetadataStore(settings.resolved_metadata_url)
    meta.migrate()
    return meta


def find_project(meta: Any, name: str) -> Any:
    project = meta.project_by_name(name)
    if project is None:
        names = ", ".join(p.name for p in meta.projects()) or "none"
        fail(f"no project named {name!r} (projects: {names}); create it with 'edupulse project create {name}'")
    return project


@contextmanager
def opened_platform(settings: Settings, while_serving: str) -> Iterator[Any]:
    """The platform of these settings, opened for one command (everything acknowledged loaded first) and closed
    after it; a data directory a running server holds fails with `while_serving` said after the reason."""
    from edupulse.runtime import Platform
    from edupulse.store.duckdb import StoreLockedError

    platform = Platform(settings)
    try:
        platform.open(background_loader=False)
    except StoreLockedError as exc:
        platform.close()
        fail(f"{exc}; {while_serving}")
    try:
        yield platform
    finally:
        platform.close()


def serve_settings(settings: Settings, host: str, port: int, banner: str | None = None) -> None:
    import uvicorn

    from edupulse.api.app import create_app
    from edupulse.runtime import Platform
    from edupulse.store.duckdb import StoreLockedError

    # Opened here, not at application start-up, where uvicorn would turn a held data directory into a traceback.
    platform = Platform(settings)
    try:
        platform.open()
    except StoreLockedError as exc:
        platform.close()
        fail(str(exc))
    try:
        app = create_app(settings, platform)
        if banner:
            click.echo(banner)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, loop="uvloop", http="httptools")
    finally:
        platform.close()
