"""The step engine: persons enter a journey and move through its steps, with their place kept in the metadata
database (journey_entries), so that a restart continues where it stopped.

Entering is idempotent: an entry is unique per (journey, person, entry key), the entry key naming what let
the person in (a schedule run, an ingested event). Each due entry moves in one transaction: its new place
and the deliveries its actions claim (unique per entry and step) are committed together, so a crash before
the commit repeats the move and claims the same rows, and a crash after it finds the deliveries in the outbox
(outbox.py). An action therefore acts at most once per entry and step, and is never lost.

Holdout entrants (a deterministic share per person) go through the same steps and waits, but their actions
are recorded as skipped ("holdout") instead of sent: they are the baseline of the journey's uplift.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from edupulse.journeys.actions import render_request
from edupulse.journeys.conditions import Membership, holds
from edupulse.journeys.model import (
    ExitStep,
    IfStep,
    JourneySpec,
    SplitStep,
    Status,
    Wait,
    WaitStep,
    first_in,
    next_path,
    step_at,
)
from edupulse.journeys.outbox import Outgoing
from edupulse.journeys.person import Person
from edupulse.journeys.writes import Writes
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyDelivery, JourneyEntry, JourneyRow
from edupulse.meta.journeys import Journey, aware, journey_of

CHUNK = 1000
CHUNKS_PER_COMMIT = 10  # entering a big audience: ten executemany of CHUNK rows per transaction
HOLDOUT, TREATMENT = "holdout", "treatment"
ENTERED_STATES = ("active", "waiting", "done", "exited")  # pending and cancelled persons have not entered


@dataclass(frozen=True)
class Entrant:
    """A person about to enter, and why: the entry key (unique per person and journey) and the trigger event."""

    person: Person
    entry_key: str
    event: dict[str, Any] | None = None
    pending_until: dt.datetime | None = None  # a "not followed by" trigger: enters at this time unless cancelled


def unit_hash(*parts: object) -> float:
    """A number in [0, 1) fixed by the parts (the same person always lands in the same arm or branch)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_of(journey_id: int, person_key: str, holdout: float) -> str:
    return HOLDOUT if unit_hash("holdout", journey_id, person_key) < holdout else TREATMENT


def _zone(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    if not name:
        return fallback
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def wait_until(wait: Wait, now: dt.datetime, zone: ZoneInfo, person: Person) -> dt.datetime:
    """When a wait step ends (or, waiting for an event, when it gives up)."""
    duration = wait.duration()
    if duration is not None:
        return now + duration
    if wait.max is not None:
        return now + wait.max.delta()
    assert wait.until is not None
    local_zone = _zone(person.properties.get("timezone"), zone) if wait.timezone == "recipient" else zone
    local = now.astimezone(local_zone)
    hour, minute = (int(x) for x in wait.until.split(":"))
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target = (local + dt.timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return target.astimezone(dt.UTC)


PLACE_FIELDS = ("id", "journey_id", "person_key", "arm", "person", "event", "state", "step", "due_at",
                "wait_event", "received", "exit_reason")
MOVED_FIELDS = ("state", "step", "due_at", "wait_event", "received", "entered_at", "finished_at", "exit_reason")
KEPT_UNLESS_SET = frozenset({"entered_at", "finished_at"})  # not read for a move: None keeps the stored value


@dataclass
class Place:
    """Where an entry is (the columns of journey_entries a move reads and writes): plain values, so that moving
    many entries costs no ORM bookkeeping; written back with one executemany."""

    id: int
    journey_id: int
    person_key: str
    arm: str
    person: dict[str, Any]
    event: dict[str, Any] | None
    state: str
    step: str | None
    due_at: dt.datetime | None
    wait_event: str | None
    received: list[str]
    exit_reason: str
    entered_at: dt.datetime | None = None  # set when a pending entry enters (else the row keeps its own)
    finished_at: dt.datetime | None = None  # set when it ends

    def changes(self) -> dict[str, Any]:
        return {"b_id": self.id, **{name: getattr(self, name) for name in MOVED_FIELDS}}


@dataclass
class Claim:
    """A delivery being claimed, as the guard rails see it (they may hold or skip it)."""

    action: str
    status: str
    reason: str
    next_attempt_at: dt.datetime | None


class ClaimGuard(Protocol):
    """Guard rails of a claimed delivery (guards.py): may hold or skip it."""

    def __call__(self, s: Session, claim: Claim, person: Person, journey: Journey, now: dt.datetime) -> None: ...

    def counts(self, journey: Journey) -> bool:
        """Whether the guard counts earlier deliveries (frequency caps) for this journey."""
        ...


class Engine:
    """Enters persons and moves due entries on; `membership` answers segment and tag conditions."""

    def __init__(self, meta: MetadataStore, membership: Membership,
                 guard: ClaimGuard | None = None) -> None:
        self.meta = meta
        self.writes = Writes(meta)
        self.membership = membership
        self.guard = guard  # guard rails (quiet hours, caps) may hold or skip a claimed delivery
        self._zones: dict[int, ZoneInfo] = {}

    def zone(self, project_id: int) -> ZoneInfo:
        zone = self._zones.get(project_id)
        if zone is None:
            found = {p.id: p.timezone for p in self.meta.projects()}
            zone = self._zones[project_id] = ZoneInfo(found.get(project_id, "UTC"))
        return zone

    # entering ------------------------------------------------------------------------------------

    def enter(self, journey: Journey, entrants: Sequence[Entrant], now: dt.datetime,
              pending_until: dt.datetime | None = None) -> int:
        """Let persons in (each once per entry key); returns how many entered now. With `pending_until`, they
        wait as pending until then (a "not followed by" trigger) and enter only if nothing cancelled them."""
        added, group = 0, CHUNK * CHUNKS_PER_COMMIT
        for start in range(0, len(entrants), group):
            with self.writes.transaction() as s:
                for low in range(start, min(len(entrants), start + group), CHUNK):
                    rows = self._rows(s, journey, entrants[low:low + CHUNK], now, pending_until)
                    added += self._insert_ignore(s, rows, returning=False) if rows else 0
        return added

    def enter_in(self, s: Session, journey: Journey, chunk: Sequence[Entrant], now: dt.datetime,
                 pending_until: dt.datetime | None = None) -> list[int]:
        """`enter` within the caller's transaction; returns the ids of the entries made now."""
        rows = self._rows(s, journey, chunk, now, pending_until)
        return self._insert_ignore(s, rows, returning=True) if rows else []

    def _rows(self, s: Session, journey: Journey, chunk: Sequence[Entrant], now: dt.datetime,
              pending_until: dt.datetime | None) -> list[dict[str, Any]]:
        spec = journey.spec
        allowed = self._within_limit(s, journey, [e.person.key for e in chunk])
        rows: list[dict[str, Any]] = [
            {"journey_id": journey.id, "project_id": journey.project_id, "person_key": e.person.key,
             "entry_key": e.entry_key[:200], "arm": arm_of(journey.id, e.person.key, spec.holdout),
             "person": e.person.to_json(), "event": e.event,
             "state": "pending" if (e.pending_until or pending_until) else "active", "step": "0",
             "due_at": e.pending_until or pending_until or now, "wait_event": None, "received": [],
             "entered_at": now, "exit_reason": ""}
            for e in chunk if e.person.key in allowed]
        return rows

    def _within_limit(self, s: Session, journey: Journey, keys: list[str]) -> set[str]:
        limit = journey.spec.entry_limit
        if limit is None:
            return set(keys)
        counts = dict(s.execute(
            select(JourneyEntry.person_key, func.count()).where(
                JourneyEntry.journey_id == journey.id, JourneyEntry.person_key.in_(set(keys)),
                JourneyEntry.state != "cancelled").group_by(JourneyEntry.person_key)).all())
        allowed, seen = set(), dict(counts)
        for key in keys:
            if seen.get(key, 0) < limit:
                allowed.add(key)
                seen[key] = seen.get(key, 0) + 1
        return allowed

    @overload
    def _insert_ignore(self, s: Session, rows: list[dict[str, Any]], returning: Literal[True]) -> list[int]: ...

    @overload
    def _insert_ignore(self, s: Session, rows: list[dict[str, Any]], returning: Literal[False]) -> int: ...

    def _insert_ignore(self, s: Session, rows: list[dict[str, Any]], returning: bool) -> list[int] | int:
        """Insert the entries a unique key does not refuse: their ids, or (cheaper) how many."""
        if self.meta.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        # executemany of one small statement: a VALUES list of a thousand rows costs more to compile than to run
        stmt = insert(JourneyEntry).on_conflict_do_nothing(index_elements=["journey_id", "person_key", "entry_key"])
        connection = s.connection()
        if not returning and connection.dialect.name == "sqlite":  # sums an executemany's rows (psycopg's: -1)
            return int(connection.execute(stmt, rows).rowcount)
        ids = [int(i) for i in connection.execute(stmt.returning(JourneyEntry.id), rows).scalars()]
        return ids if returning else len(ids)

    # moving on -----------------------------------------------------------------------------------

    def due(self, now: dt.datetime, limit: int = 500) -> list[int]:
        """Entries of running journeys whose time has come, oldest first: one query per state, each an ordered
        range of the due index that stops at the limit (one query over the three states would sort every due
        entry to return the first few, which made a big audience quadratic)."""
        found: list[tuple[dt.datetime, int]] = []
        with self.meta.session() as s:
            for state in ("pending", "active", "waiting"):
                found += [(aware(at) or now, int(i)) for i, at in s.execute(
                    select(JourneyEntry.id, JourneyEntry.due_at)
                    .join(JourneyRow, JourneyRow.id == JourneyEntry.journey_id)
                    .where(JourneyEntry.state == state, JourneyEntry.due_at <= now,
                           JourneyRow.status == Status.running.value)
                    .order_by(JourneyEntry.due_at, JourneyEntry.id).limit(limit))]
        return [i for _, i in sorted(found)[:limit]]

    def run_due(self, now: dt.datetime, limit: int = 500) -> int:
        """Move every due entry (up to `limit`), many in one transaction; returns how many moved."""
        journeys: dict[int, Journey] = {}
        ids = self.due(now, limit)
        try:
            return self._advance(ids, now, journeys)
        except IntegrityError:  # another worker moved some of them: go one by one, skipping those
            return sum(self.advance(i, now, journeys) for i in ids)

    def advance(self, entry_id: int, now: dt.datetime, journeys: dict[int, Journey] | None = None) -> int:
        """Move one entry as far as it goes now; 0 if it is not due (or another worker moved it first)."""
        try:
            return self._advance([entry_id], now, journeys if journeys is not None else {})
        except IntegrityError:
            return 0

    def _advance(self, ids: list[int], now: dt.datetime, journeys: dict[int, Journey]) -> int:
        if not ids:
            return 0
        with self.writes.transaction() as s:
            return self.advance_in(s, ids, now, journeys)

    def advance_in(self, s: Session, ids: list[int], now: dt.datetime, journeys: dict[int, Journey],
                   dispatch: list[Outgoing] | None = None) -> int:
        """Move these entries, those that are due, within the caller's transaction; returns how many moved.
        With `dispatch`, the messages due now are claimed as already being sent (status `sending`, first try
        counted) and listed there for the caller to hand to the outbox after its commit: no second transaction
        to claim them, and if the process dies first, the outbox sends them after `in_flight_seconds`."""
        moved = 0
        claims: list[dict[str, Any]] = []
        s.flush()  # what the caller changed in this transaction, before the rows are read
        table = cast(Table, JourneyEntry.__table__)
        for low in range(0, len(ids), CHUNK):
            found = s.execute(select(*[table.c[name] for name in PLACE_FIELDS])
                              .where(table.c.id.in_(ids[low:low + CHUNK])).order_by(table.c.id).with_for_update())
            changed: list[dict[str, Any]] = []
            for values in found:
                entry = Place(*values)
                due_at = aware(entry.due_at)
                if entry.state not in ("pending", "active", "waiting") or due_at is None or due_at > now:
                    continue
                journey = journeys.get(entry.journey_id)
                if journey is None:
                    row = s.get(JourneyRow, entry.journey_id)
                    assert row is not None
                    journey = journeys[entry.journey_id] = journey_of(row)
                self._move(s, entry, journey, now, claims)
                changed.append(entry.changes())
                moved += 1
            if changed:  # the moved places in one executemany, before the claims that refer to them
                s.execute(update(table).where(table.c.id == bindparam("b_id")).values(
                    {name: func.coalesce(bindparam(name), table.c[name]) if name in KEPT_UNLESS_SET else bindparam(name)
                     for name in MOVED_FIELDS}), changed)
            self._store_claims(s, claims, now, dispatch)
        return moved

    @staticmethod
    def _store_claims(s: Session, claims: list[dict[str, Any]], now: dt.datetime,
                      dispatch: list[Outgoing] | None) -> None:
        """Insert the claimed deliveries in one statement (executemany; the unique (entry, step) key still
        refuses a second claim) and empty the list."""
        if not claims:
            return
        if dispatch is not None:
            for row in claims:
                if row["status"] == "pending" and row["next_attempt_at"] is not None and row["next_attempt_at"] <= now:
                    row.update(status="sending", attempts=1, updated_at=now)
        s.connection().execute(insert(JourneyDelivery), claims)
        if dispatch is not None:
            sending = {row["idempotency_key"]: row for row in claims if row["status"] == "sending"}
            for low in range(0, len(sending), CHUNK):
                keys = list(sending)[low:low + CHUNK]
                for delivery_id, key in s.execute(select(JourneyDelivery.id, JourneyDelivery.idempotency_key)
                                                  .where(JourneyDelivery.idempotency_key.in_(keys))):
                    row = sending[key]
                    dispatch.append(Outgoing(int(delivery_id), row["project_id"], row["journey_id"],
                                             row["person_key"], row["action"], key, dict(row["request"]), 1))
        claims.clear()

    def _move(self, s: Session, entry: Place, journey: Journey, now: dt.datetime,
              claims: list[dict[str, Any]]) -> None:
        spec = journey.spec
        person = Person.from_json(entry.person_key, entry.person)
        resuming = entry.state == "waiting"
        if entry.state == "pending":
            entry.entered_at = now
        entry.state = "active"
        path: str | None = entry.step or "0"
        while path is not None:
            try:
                step = step_at(list(spec.steps), path)
            except (KeyError, ValueError):
                self._finish(entry, "exited", now, f"step {path} no longer exists (version {journey.version})")
                return
            if isinstance(step, WaitStep):
                if not resuming:
                    entry.state, entry.step, entry.wait_event = "waiting", path, step.wait.event
                    entry.due_at = wait_until(step.wait, now, self.zone(journey.project_id), person)
                    return
                entry.wait_event = None
                path = next_path(list(spec.steps), path)
            elif isinstance(step, IfStep):
                branch = holds(step.condition, person, entry.event, list(entry.received or []),
                               journey.project_id, self.membership)
                path = first_in(list(spec.steps), path, "then" if branch else "else")
            elif isinstance(step, SplitStep):
                path = first_in(list(spec.steps), path, str(self._branch(step, journey.id, person.key, path)))
            elif isinstance(step, ExitStep):
                reason = step.exit if isinstance(step.exit, str) else "exit step"
                self._finish(entry, "exited", now, reason)
                return
            else:
                self._claim(s, entry, journey, person, path, step, now, claims)
                path = next_path(list(spec.steps), path)
            resuming = False
        self._finish(entry, "done", now)

    @staticmethod
    def _branch(step: SplitStep, journey_id: int, person_key: str, path: str) -> int:
        point, total = unit_hash("split", journey_id, path, person_key), 0.0
        for index, branch in enumerate(step.split):
            total += branch.weight
            if point < total:
                return index
        return len(step.split) - 1

    @staticmethod
    def _finish(entry: Place, state: str, now: dt.datetime, reason: str = "") -> None:
        entry.state, entry.finished_at, entry.due_at, entry.exit_reason = state, now, None, reason[:200]

    def _claim(self, s: Session, entry: Place, journey: Journey, person: Person, path: str, step: Any,
               now: dt.datetime, claims: list[dict[str, Any]]) -> None:
        spec: JourneySpec = journey.spec
        claim = Claim(step.action, "pending", "", now)
        if entry.arm == HOLDOUT:
            claim.status, claim.reason, claim.next_attempt_at = "skipped", "holdout", None
        elif self.guard is not None:
            if claims and self.guard.counts(journey):  # caps count this transaction's claims too
                self._store_claims(s, claims, now, None)
            self.guard(s, claim, person, journey, now)
        claims.append({
            "journey_id": journey.id, "entry_id": entry.id, "project_id": journey.project_id,
            "person_key": entry.person_key, "step": path, "action": step.action,
            "idempotency_key": f"j{journey.id}-e{entry.id}-s{path}", "status": claim.status, "reason": claim.reason,
            "attempts": 0, "next_attempt_at": claim.next_attempt_at,
            "request": render_request(step, person, entry.event, journey.id, spec.name, entry.id, spec.language),
            "response": "", "created_at": now, "updated_at": now, "sent_at": None})
