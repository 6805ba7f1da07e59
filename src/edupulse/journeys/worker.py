"""The journey worker: a background thread of the server that moves due persons on (engine.py) and sends due
deliveries (outbox.py), every `tick_ms` or at once when woken (an event trigger let someone in). Scheduled
journeys are a job of the built-in scheduler instead (schedule.py)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from edupulse.journeys.engine import Engine
from edupulse.journeys.outbox import Outbox

log = logging.getLogger(__name__)


class JourneyWorker:
    def __init__(self, engine: Engine, outbox: Outbox, tick_seconds: float,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.engine, self.outbox, self.tick_seconds, self.clock = engine, outbox, tick_seconds, clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def tick(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Move due entries and send due deliveries until nothing more is due; (moved, tried)."""
        moved = tried = 0
        while True:
            at = now or self.clock()
            step_moved = self.engine.run_due(at)
            step_tried = self.outbox.send_due(at, clock=(lambda: now) if now else self.clock)
            moved, tried = moved + step_moved, tried + step_tried
            if not step_moved and not step_tried:
                return moved, tried

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="edupulse-journeys", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                self.last_error = None
            except Exception as exc:  # e.g. the metadata database is unreachable: try again at the next tick
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("the journey worker failed; it tries again")
            self._wake.wait(self.tick_seconds)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.outbox.close()
