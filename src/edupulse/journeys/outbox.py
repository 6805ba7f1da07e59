"""The outbox: deliveries claimed by the engine are sent from here, retried with backoff, and kept as dead
letters (an admin can replay them) when they keep failing.

A try first marks the row `sending` and counts the attempt (committed), then sends, then records the outcome.
A server killed in between leaves the row `sending`; after `in_flight_seconds` it is sent again with the same
idempotency key, so the only message that can arrive twice is one that was in flight at the crash, and its
receiver can tell. Rows are claimed by compare-and-set, so two workers never send the same try."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from edupulse.conf import JourneySettings
from edupulse.journeys.model import SpecError
from edupulse.journeys.writes import Writes
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyDelivery
from edupulse.meta.journeys import aware

log = logging.getLogger(__name__)
SENDABLE = ("pending", "failed", "held")
CLAIM_GROUPS = 10  # groups of `send_batch` claimed together (only one group is sent at a time)
OUTCOME_COLUMNS = ("status", "reason", "response", "attempts", "next_attempt_at", "updated_at", "sent_at")


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
    def __init__(self, meta: MetadataStore, send: Send, settings: JourneySettings,
                 writes: Writes | None = None) -> None:
        self.meta, self.send, self.settings = meta, send, settings
        self.writes = writes or Writes(meta)
        self._pool: ThreadPoolExecutor | None = None
        self._ready: deque[tuple[float, Outgoing]] = deque()  # claimed as sending by the engine, not tried yet

    def dispatch(self, claimed: list[Outgoing]) -> None:
        """Tries the engine claimed in its own transaction (already `sending`): sent at the next `send_due`
        without a claiming transaction. One left waiting longer than half of `in_flight_seconds` is dropped
        here and sent by the usual path once it counts as lost, so no try is sent twice by this process."""
        stamp = time.monotonic()
        self._ready.extend((stamp, out) for out in claimed)

    def _take_ready(self, limit: int) -> list[Outgoing]:
        fresh = time.monotonic() - self.settings.in_flight_seconds / 2
        taken: list[Outgoing] = []
        while self._ready and len(taken) < limit:
            try:
                stamp, out = self._ready.popleft()
            except IndexError:
                break
            if stamp >= fresh:
                taken.append(out)
        return taken

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
        table = cast(Table, JourneyDelivery.__table__)
        with self.writes.transaction() as s:
            ids = self._due_ids(s, now, limit)
            if not ids:
                return []
            s.execute(update(JourneyDelivery).where(JourneyDelivery.id.in_(ids), self._due(now))
                      .values(status="sending", attempts=JourneyDelivery.attempts + 1, updated_at=now))
            rows = s.execute(select(table.c.id, table.c.project_id, table.c.journey_id, table.c.person_key,
                                    table.c.action, table.c.idempotency_key, table.c.request, table.c.attempts)
                             .where(table.c.id.in_(ids), table.c.status == "sending", table.c.updated_at == now)
                             .order_by(table.c.id))
            return [Outgoing(r[0], r[1], r[2], r[3], r[4], r[5], dict(r[6]), r[7]) for r in rows]

    def _due_ids(self, s: Session, now: dt.datetime, limit: int) -> list[int]:
        """The oldest due deliveries: one query per status (each an ordered range of the due index, stopping at
        the limit) rather than one over all of them, which would sort every due row to return the first few."""
        stuck = now - dt.timedelta(seconds=self.settings.in_flight_seconds)
        found: list[tuple[dt.datetime, int]] = []
        for status in SENDABLE:
            found += [(aware(at) or now, i) for i, at in s.execute(
                select(JourneyDelivery.id, JourneyDelivery.next_attempt_at)
                .where(JourneyDelivery.status == status, JourneyDelivery.next_attempt_at <= now)
                .order_by(JourneyDelivery.next_attempt_at, JourneyDelivery.id).limit(limit))]
        found += [(aware(at) or now, i) for i, at in s.execute(
            select(JourneyDelivery.id, JourneyDelivery.next_attempt_at)
            .where(JourneyDelivery.status == "sending", JourneyDelivery.updated_at <= stuck).limit(limit))]
        return [i for _, i in sorted(found)[:limit]]

    def backoff(self, attempt: int) -> dt.timedelta:
        seconds = min(self.settings.backoff_seconds * 2 ** (attempt - 1), self.settings.max_backoff_seconds)
        return dt.timedelta(seconds=seconds)

    def _record(self, results: list[tuple[Outgoing, Outcome]], now: dt.datetime) -> None:
        """The outcomes, in one executemany: each row changes only if it is still this try's (`sending`, the
        same attempt); a later try that took it over (this one was taken for lost) keeps it."""
        rows = [self._outcome(out, outcome, now) for out, outcome in results]
        table = cast(Table, JourneyDelivery.__table__)
        stmt = (update(table)
                .where(table.c.id == bindparam("b_id"), table.c.status == "sending",
                       table.c.attempts == bindparam("b_attempt"))
                .values({name: bindparam(name) for name in OUTCOME_COLUMNS}))
        with self.writes.transaction() as s:
            s.connection().execute(stmt, rows)

    def _outcome(self, out: Outgoing, outcome: Outcome, now: dt.datetime) -> dict[str, Any]:
        row: dict[str, Any] = {"b_id": out.id, "b_attempt": out.attempt, "response": outcome.detail[:2000],
                               "updated_at": now, "attempts": out.attempt, "sent_at": None}
        if outcome.defer_seconds is not None:
            row.update(status="held", reason=outcome.detail[:500], attempts=max(0, out.attempt - 1),
                       next_attempt_at=now + dt.timedelta(seconds=outcome.defer_seconds))
        elif outcome.ok:
            row.update(status="sent", sent_at=now, reason="", next_attempt_at=None)
        elif outcome.retry and out.attempt < self.settings.max_attempts:
            row.update(status="failed", reason=outcome.detail[:500], next_attempt_at=now + self.backoff(out.attempt))
        else:
            row.update(status="dead", next_attempt_at=None, reason=(
                outcome.detail if not outcome.retry else f"gave up after {out.attempt} tries: {outcome.detail}")[:500])
        return row

    def _try(self, out: Outgoing) -> Outcome:
        try:
            return self.send(out)
        except Exception as exc:  # a defect of a sender must not stop the others; the try counts as failed
            log.exception("sending delivery %s failed", out.id)
            return Outcome(False, f"{type(exc).__name__}: {exc}")

    def send_due(self, now: dt.datetime, clock: Callable[[], dt.datetime] | None = None, limit: int = 500) -> int:
        """Try due deliveries (up to `limit`) in groups of `send_batch`, `send_threads` at a time. Ten groups are
        claimed in one transaction and wait in the ready queue with those the engine handed over; each group is
        sent and recorded before the next is sent, so only the tries of one group can be in flight when the
        server dies (the claimed ones not tried yet are sent once after `in_flight_seconds`)."""
        tried = 0
        group = self.settings.send_batch
        while tried < limit:
            claimed = self._take_ready(min(group, limit - tried))
            if not claimed:  # claim several groups in one transaction; they wait their turn in the ready queue
                more = self.claim(now, min(group * CLAIM_GROUPS, limit - tried))
                if not more:
                    break
                self.dispatch(more)
                continue
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
