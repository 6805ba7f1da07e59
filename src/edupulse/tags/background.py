"""Tag runs computed beside the requests that start them: a run is recorded first (so it has an id to poll),
then computed by one of a few worker threads of the server process. The request waits a while for it and
answers the finished run, or 202 with the run to poll (`GET /api/v1/tags/NAME/runs/ID`), whose progress the
worker records as it goes.

At a clean stop the runs still waiting for a worker are recorded as failed, with the reason; runs being
computed finish first."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from edupulse.meta.tags import RunInfo, TagInfo
from edupulse.queries.metadata import ProjectRef
from edupulse.tags.run import TagService

log = logging.getLogger(__name__)
WORKERS = 2  # one long model training does not hold up a quick rule tag
STOPPED = "the server stopped before the run started; run the tag again"


class TagRunPool:
    """The worker threads of one server process that compute tag runs."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="tag-run")
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[TagService, Future[RunInfo]]] = {}

    def submit(self, service: TagService, project: ProjectRef, tag: TagInfo, run: RunInfo,
               now: dt.datetime) -> Future[RunInfo]:
        """Compute a started run in a worker; the future holds the finished (or failed) run."""

        def compute() -> RunInfo:
            with self._lock:
                self._waiting.pop(run.id, None)
            return service.execute(project, tag, run, now)

        with self._lock:  # held until the run is listed, so the worker's removal comes after
            future = self._pool.submit(compute)
            self._waiting[run.id] = (service, future)
        return future

    def close(self) -> None:
        """Record the runs no worker took as failed (with the reason), let the running ones finish."""
        with self._lock:
            waiting = list(self._waiting.items())
            self._waiting.clear()
        for run_id, (service, future) in waiting:
            if future.cancel():
                service.catalog.finish_run(run_id, error=STOPPED)
        self._pool.shutdown(wait=True, cancel_futures=True)
