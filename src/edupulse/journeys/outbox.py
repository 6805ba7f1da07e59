"""The outbox: deliveries claimed by the engine are sent from here, retried with backoff, and kept as dead
letters (an admin can replay them) when they keep failing.

A try first marks the row `sending` and counts the attempt (committed), then sends, then records the outcome.
A server killed in between leaves the row `sending`; after `in_flight_seconds` it is sent again with the same
idempotency key, so the only message that can arrive twice is one that was in flight at the crash, and its
receiver can tell. Rows are claimed by compare-and-set, so two workers never send the same try."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update

from edupulse.conf import JourneySettings
from edupulse.journeys.model import SpecError
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyDelivery

log = logging.getLogger(__name__)
SENDABLE = ("pending", "failed", "held")


@dataclass(frozen=True)
class Outgoing:
    """One try of one delivery, as a sender sees it."""

    id: int
    project_id: int
    journey_id: int
    person_key: str
    action: str
    idempotency_key: str
    request: dict[str, Any]
    attempt: int


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str = ""
    retry: bool = True  # False: a permanent failure (a refused destination, a 4xx): no more tries
    defer_seconds: float | None = None  # not tried now (a channel's rate limit): held this long, no try counted


Send = Callable[[Outgoing], Outcome]


class Outbox:
    def __init__(self, meta: MetadataStore, send: Send, settings: JourneySettings) -> None:
        self.meta, self.send, self.settings = meta, send, settings
        self._pool: ThreadPoolExecutor | None = None

    def _due(self, now: dt.datetime) -> Any:
        stuck = now - dt.timedelta(seconds=self.settings.in_flight_seconds)
        return or_(and_(JourneyDelivery.status.in_(SENDABLE), JourneyDelivery.next_attempt_at <= now),
                   and_(JourneyDelivery.status == "sending", JourneyDelivery.updated_at <= stuck))

    def due(self, now: dt.datetime, limit: int = 500) -> list[int]:
        """Deliveries to try now: due ones and those in flight for too long."""
        with self.meta.session() as s:
            return list(s.scalars(select(JourneyDelivery.id).where(self._due(now))
                                  .order_by(JourneyDelivery.next_attempt_at, JourneyDelivery.id).limit(limit)))

    def claim(self, now: dt.datetime, limit: int = 500) -> list[Outgoing]:
        """Mark due deliveries `sending` and count their try, in one transaction. The update repeats the due
        condition, so a row another worker claimed meanwhile is not taken twice (compare and set)."""
        with self.meta.session() as s, s.begin():
            ids = list(s.scalars(select(JourneyDelivery.id).where(self._due(now))
                                 .order_by(JourneyDelivery.next_attempt_at, JourneyDelivery.id).limit(limit)))
            if not ids:
                return []
            s.execute(update(JourneyDelivery).where(JourneyDelivery.id.in_(ids), self._due(now))
                      .values(status="sending", attempts=JourneyDelivery.attempts + 1, updated_at=now))
            rows = s.scalars(select(JourneyDelivery).where(JourneyDelivery.id.in_(ids),
                                                           JourneyDelivery.status == "sending",
                                                           JourneyDelivery.updated_at == now))
            return [Outgoing(r.id, r.project_id, r.journey_id, r.person_key, r.action, r.idempotency_key,
                             dict(r.request), r.attempts) for r in rows]

    def backoff(self, attempt: int) -> dt.timedelta:
        seconds = min(self.settings.backoff_seconds * 2 ** (attempt - 1), self.settings.max_backoff_seconds)
        return dt.timedelta(seconds=seconds)

    def _record(self, results: list[tuple[Outgoing, Outcome]], now: dt.datetime) -> None:
        with self.meta.session() as s, s.begin():
            rows = {r.id: r for r in s.scalars(select(JourneyDelivery).where(
                JourneyDelivery.id.in_([out.id for out, _ in results])))}
            for out, outcome in results:
                row = rows.get(out.id)
                if row is None or row.status != "sending" or row.attempts != out.attempt:
                    continue  # a later try took it over (this one was taken for lost)
                self._outcome(row, out, outcome, now)

    def _outcome(self, row: JourneyDelivery, out: Outgoing, outcome: Outcome, now: dt.datetime) -> None:
        row.response, row.updated_at = outcome.detail[:2000], now
        if outcome.defer_seconds is not None:
            row.status, row.reason, row.attempts = "held", outcome.detail[:500], max(0, row.attempts - 1)
            row.next_attempt_at = now + dt.timedelta(seconds=outcome.defer_seconds)
        elif outcome.ok:
            row.status, row.sent_at, row.reason, row.next_attempt_at = "sent", now, "", None
        elif outcome.retry and out.attempt < self.settings.max_attempts:
            row.status, row.reason = "failed", outcome.detail[:500]
            row.next_attempt_at = now + self.backoff(out.attempt)
        else:
            row.status, row.next_attempt_at = "dead", None
            row.reason = (outcome.detail if not outcome.retry else
                          f"gave up after {out.attempt} tries: {outcome.detail}")[:500]

    def _try(self, out: Outgoing) -> Outcome:
        try:
            return self.send(out)
        except Exception as exc:  # a defect of a sender must not stop the others; the try counts as failed
            log.exception("sending delivery %s failed", out.id)
            return Outcome(False, f"{type(exc).__name__}: {exc}")

    def send_due(self, now: dt.datetime, clock: Callable[[], dt.datetime] | None = None, limit: int = 500) -> int:
        """Try due deliveries (up to `limit`) in groups of `send_batch`, `send_threads` at a time: each group is
        claimed, sent and recorded before the next is claimed, so that only the tries of one group can be in
        flight when the server dies."""
        tried = 0
        group = self.settings.send_batch
        while tried < limit:
            claimed = self.claim(now, min(group, limit - tried))
            if not claimed:
                break
            if len(claimed) == 1:
                outcomes = [self._try(claimed[0])]
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.settings.send_threads, thread_name_prefix="journey-send")
                outcomes = list(self._pool.map(self._try, claimed))
            self._record(list(zip(claimed, outcomes, strict=True)), clock() if clock else now)
            tried += len(claimed)
        return tried

    def replay(self, project_id: int, delivery_id: int, now: dt.datetime) -> None:
        """Send a dead letter again (its tries start afresh, with the same idempotency key)."""
        with self.meta.session() as s, s.begin():
            row = s.get(JourneyDelivery, delivery_id)
            if row is None or row.project_id != project_id:
                raise SpecError("delivery", f"no delivery with id {delivery_id} in this project", 404)
            if row.status != "dead":
                raise SpecError("delivery", f"delivery {delivery_id} is {row.status}; only dead letters are replayed",
                                409)
            row.status, row.attempts, row.next_attempt_at, row.updated_at = "pending", 0, now, now
            row.reason = "replayed"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
