"""The application factory: builds the FastAPI app around a Platform it opens and closes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from edupulse import __version__
from edupulse.api import (
    accounts,
    admin,
    alerts,
    catalog,
    collect_posthog,
    collect_segment,
    collect_sensors,
    compat,
    experiments,
    governance,
    ingest,
    journeys,
    pack_views,
    packs,
    query,
    reports,
    segments,
    signin,
    tags,
    tracker,
    ui_admin,
    xapi,
    xapi_documents,
    xapi_summary,
)
from edupulse.api.accounts import LoginLimiter
from edupulse.api.openapi import document_dependencies, install_error_handlers
from edupulse.api.xapi_alternate import AlternateRequestSyntax
from edupulse.conf import Settings
from edupulse.ingest.validate import warm_up, watch_parent
from edupulse.journeys.runtime import JourneyRuntime
from edupulse.meta.tags import TagCatalog
from edupulse.runtime import Platform
from edupulse.tags.background import TagRunPool
from edupulse.web import admin_pages, pages, scenarios
from edupulse.web import experiments as experiment_pages
from edupulse.web import journeys as journey_pages
from edupulse.web import tags as tag_pages


def _validator_pool(processes: int) -> ProcessPoolExecutor | None:
    """Worker processes for validating ingestion requests, started fresh (not forked from a process that
    has a database and threads open) and warmed up so the first requests do not wait for imports."""
    if processes <= 0:
        return None
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"), initializer=watch_parent,
                               initargs=(os.getpid(),))
    for future in [pool.submit(warm_up) for _ in range(processes)]:
        future.result(timeout=120)
    return pool


def mount_web(app: FastAPI) -> None:
    """The web UI: pages, our static files and the charting library installed by npm (`make install`)."""
    app.include_router(pages.router)
    app.include_router(admin_pages.router)
    app.include_router(experiment_pages.router)
    app.include_router(journey_pages.router)
    app.include_router(tag_pages.router)
    app.include_router(scenarios.router)
    vendor = pages.WEB_DIR / "node_modules" / "echarts" / "dist"
    app.mount("/static/vendor/echarts", StaticFiles(directory=vendor, check_dir=False), name="echarts")
    app.mount("/static", StaticFiles(directory=pages.WEB_DIR / "static"), name="static")

    @app.exception_handler(pages.LoginRequired)
    async def to_login(request: Request, exc: pages.LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)


def _background(plat: Platform, settings: Settings, journey_runtime: JourneyRuntime, run: bool) -> Any:
    """Start the journey worker and the scheduler (with the scheduled-journey job) unless turned off."""
    if settings.journeys.enabled and run:
        journey_runtime.start()
    if not (settings.scheduler.enabled and run):
        return None
    from edupulse.ops.scheduler import Scheduler

    # several API processes: only the one holding the lease in the metadata database runs the jobs
    scheduler = Scheduler(plat.meta, settings, platform=plat, lease=plat.scheduler_lease(),
                          alert_send=journey_runtime.senders if settings.journeys.enabled else None)
    if settings.journeys.enabled:
        scheduler.jobs.append(journey_runtime.schedule_job())
    scheduler.start()
    return scheduler


def create_app(settings: Settings, platform: Platform | None = None, run_scheduler: bool = True) -> FastAPI:
    """Build the app; the platform is opened at start-up unless one is passed in already open. The daily
    scheduler runs in the server process unless `run_scheduler` is False or settings turn it off."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = platform is None
        plat = platform or Platform(settings).open()
        app.state.platform = plat
        app.state.api_key_cache = {}
        app.state.activity_seen = set()
        app.state.login_limiter = LoginLimiter(settings.auth.login_attempts_per_ip)
        app.state.validators = _validator_pool(settings.ingest.validators())
        app.state.journeys = journey_runtime = JourneyRuntime(plat.meta, plat.query_service(), settings,
                                                              wal=plat.wal, loader=plat.loader,
                                                              ingestor=plat.ingestor, node=plat.node_name(),
                                                              store=plat.store)
        app.state.scheduler = scheduler = _background(plat, settings, journey_runtime, run_scheduler)
        app.state.tag_runs = tag_runs = TagRunPool()
        TagCatalog(plat.meta).fail_abandoned_runs()  # left running by a server killed while computing them
        stop_warm_up = catalog.start_warm_up(app)
        try:
            yield
        finally:
            stop_warm_up()  # before the store closes: a statement still running would keep it busy
            tag_runs.close()
            if scheduler is not None:
                scheduler.stop()
            journey_runtime.close()
            if app.state.validators is not None:
                app.state.validators.shutdown(wait=True, cancel_futures=True)
            if owned:
                plat.close()

    app = FastAPI(
        title="EduPulse",
        version=__version__,
        lifespan=lifespan,
        description="Data-driven operations platform for education organizations.",
    )
    for module in (ingest, admin, query, accounts, governance, signin, xapi, xapi_documents, tracker, segments,
                   tags, experiments, journeys, packs, alerts, collect_sensors, collect_posthog, collect_segment,
                   pack_views, xapi_summary):
        app.include_router(module.router)
    app.add_middleware(AlternateRequestSyntax, max_body_bytes=settings.ingest.max_body_bytes)
    app.add_middleware(compat.CollectionCORS)

    app.include_router(reports.router)
    app.include_router(catalog.router)
    app.include_router(ui_admin.router)
    mount_web(app)
    install_error_handlers(app)
    document_dependencies(app)  # last: every router is included
    return app
