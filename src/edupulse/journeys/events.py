"""Event triggers read the durable ingestion log, not the event store: a frame is read as soon as it is on disk
(when the ingestion request is acknowledged), so a journey acts seconds after an event arrives without any
query polling. The feed keeps its log position in journey_cursors and holds back the deletion of log segments
it has not read (runtime.py registers it with the loader).

For every track event of a frame, in order:

1. running journeys triggered by the event (and its filters) let the person in, once per event (the insert
   id, else the log position, is the entry key); with `not_followed_by`, they wait as pending until the
   event's time plus the window;
2. a pending entry is cancelled when the follow-up event arrives within the window;
3. a person waiting for the event moves on at once (the event is noted for `received` conditions);
4. `exit_on` events end the person's journey; goal events mark entries converted (within the goal's time).

The effects of a read, the first moves of the persons it let in (their first messages claimed in the outbox)
and the new log position are committed in one transaction: a crash before the commit reads the same frames
again, and every effect is idempotent besides, so nothing is lost and nothing happens twice."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from edupulse.ingest.records import BUILTIN_ID_TYPES, TRACK
from edupulse.ingest.wal import Position, WriteAheadLog
from edupulse.journeys.conditions import event_matches
from edupulse.journeys.engine import CHUNK, Engine, Entrant
from edupulse.journeys.model import EventTrigger, Status
from edupulse.journeys.outbox import Outgoing
from edupulse.journeys.person import Person, identity_key
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyCursor, JourneyEntry
from edupulse.meta.journeys import Journey, JourneyStore, aware

log = logging.getLogger(__name__)
CURSOR = "log"  # one per API process (each has its own log): "log:<node name>"
JOURNEYS_TTL = 1.0  # seconds the feed trusts its list of running journeys (the API changes them)
# While no journey runs, the position is saved at most this often: after a crash the feed reads again at most this
# much of the log, which is as much as a journey just started may see or miss anyway (JOURNEYS_TTL).
IDLE_SAVE_SECONDS = JOURNEYS_TTL
ACTIVE = ("pending", "active", "waiting")


@dataclass(frozen=True)
class Arrival:
    """One track event as it arrived."""

    project_id: int
    event: str
    time: dt.datetime
    ids: tuple[tuple[str, str], ...]
    properties: dict[str, Any]
    insert_id: str | None
    position: str

    @property
    def keys(self) -> list[str]:
        return [identity_key(t, v) for t, v in self.ids]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "time": self.time.isoformat(), "properties": self.properties,
                "insert_id": self.insert_id}


def _moment(micros: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)


def arrivals(payload: bytes, position: Position) -> list[Arrival]:
    """The track events of one log frame (whole records and track columns)."""
    frame = orjson.loads(payload)
    project_id, out = int(frame["p"]), []
    for i, rec in enumerate(frame.get("recs", [])):
        if rec.get("type") == TRACK:
            out.append(Arrival(project_id, rec["event"], _moment(rec["time"]), tuple((t, v) for t, v in rec["ids"]),
                               rec.get("properties") or {}, rec.get("insert_id"), f"{position}:r{i}"))
    columns = frame.get("tc")
    if columns:
        for i, name in enumerate(columns["e"]):
            props = columns["pj"][i]
            out.append(Arrival(project_id, name, _moment(columns["t"][i]), ((columns["it"][i], columns["iv"][i]),),
                               orjson.loads(props) if props else {}, columns["iid"][i], f"{position}:c{i}"))
    return out


_PERSON_REF = re.compile(r"person\.(?:properties\.)?([A-Za-z_][\w$-]*)")


def reads_person_properties(journey: Journey) -> bool:
    """Whether a journey reads its entrants' stored properties (a condition, filter or template naming a person
    property, or a message channel that needs their language, e-mail or time zone): only then are they looked
    up when an event lets someone in."""
    text = orjson.dumps(journey.spec.model_dump(mode="json", by_alias=True, exclude_none=True)).decode()
    names = set(_PERSON_REF.findall(text)) - set(BUILTIN_ID_TYPES) - {"key"}
    if names:
        return True
    return bool(journey.spec.quiet_hours) or '"action":"email"' in text or '"timezone":"recipient"' in text


class PersonLookup(Protocol):
    def properties(self, project_id: int, ids: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]: ...


class EventFeed:
    """Reads the log after its saved position and applies what each event means to the running journeys."""

    def __init__(self, wal: WriteAheadLog, meta: MetadataStore, engine: Engine, lookup: PersonLookup | None,
                 wake: Callable[[], None] = lambda: None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC), node: str = "",
                 dispatch: Callable[[list[Outgoing]], None] | None = None) -> None:
        self.wal, self.meta, self.engine, self.lookup, self.wake, self.clock = wal, meta, engine, lookup, wake, clock
        self.dispatch = dispatch  # hands the messages claimed while reading to the outbox (None: it finds them)
        self.cursor = f"{CURSOR}:{node}" if node else CURSOR
        self.position = Position(0, 0)
        self._journeys: tuple[float, list[Journey]] = (0.0, [])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.read_events = 0
        self.last_error: str | None = None
        self._saved_at = 0.0  # time.monotonic() of the last save of the position

    def open(self) -> EventFeed:
        """Start from the saved position; the first time, from the end of the log (history does not trigger)."""
        with self.meta.session() as s:
            row = s.get(JourneyCursor, self.cursor)
            saved = row.position if row else None
        self.position = Position.parse(saved) if saved else self.wal.durable
        if saved is None:
            with self.meta.session() as s, s.begin():
                self._save(s, self.position)
        return self

    def held(self) -> Position:
        """The oldest log position the feed still needs (the loader keeps segments from here on)."""
        return self.position

    def running(self) -> list[Journey]:
        stamp, found = self._journeys
        if time.monotonic() - stamp > JOURNEYS_TTL:
            found = JourneyStore(self.meta).all(status=Status.running)
            self._journeys = (time.monotonic(), found)
        return found

    def forget(self) -> None:
        """Read the running journeys again (one was started or changed in this process)."""
        self._journeys = (0.0, [])

    def step(self, max_frames: int = 1000) -> int:
        """Read and apply the next frames; returns how many events were read. Their effects, the moves of the
        persons they let in (up to their first wait, claiming their first messages) and the new log position
        are committed together: one transaction for the whole read, however many events it holds. With no
        journey running, nothing would be applied: the frames are passed over without being read, and it
        returns how many; the position is then saved at most once in IDLE_SAVE_SECONDS (and at a clean stop)."""
        batch: list[Arrival] = []
        last: Position | None = None
        reading = bool(self.running())
        frames = 0
        for frames, (position, payload) in enumerate(self.wal.read(self.position), 1):
            if reading:
                batch += arrivals(payload, position)
            last = position
            if frames >= max_frames:
                break
        if last is None:
            return 0
        if not reading and time.monotonic() - self._saved_at < IDLE_SAVE_SECONDS:
            self.position = last
            return frames
        claimed: list[Outgoing] | None = [] if self.dispatch is not None else None
        with self.engine.writes.transaction() as s:
            acted = self.apply(s, batch, self.clock(), claimed) if batch else False
            self._save(s, last)
        self._saved_at = time.monotonic()
        if claimed and self.dispatch is not None:
            self.dispatch(claimed)
        if acted:
            self.wake()
        self.position = last
        self.read_events += len(batch)
        return len(batch) if reading else frames

    def apply(self, s: Session, batch: list[Arrival], now: dt.datetime, claimed: list[Outgoing] | None) -> bool:
        """What the events mean to the running journeys, in the caller's transaction; whether any journey runs."""
        journeys = self.running()
        if not journeys:
            return False
        entered = self._enter(s, journeys, batch, now)
        events = {a.event for a in batch}
        by_event: dict[str, list[Arrival]] = {}
        for a in batch:
            by_event.setdefault(a.event, []).append(a)
        for journey in journeys:
            trigger = journey.spec.trigger
            follow = trigger.not_followed_by if isinstance(trigger, EventTrigger) else None
            if follow is not None and follow.event in events:
                self._cancel(s, journey, by_event[follow.event], follow.within.delta())
            for name in set(journey.spec.exit_on) & events:
                self._exit(s, journey, by_event[name], now)
            goal = journey.spec.goal
            if goal is not None and goal.event in events:
                self._convert(s, journey, by_event[goal.event], goal.within.delta())
        self._received(s, batch, now)
        if entered:  # after the exits above: a person who left in the same read is not messaged
            self.engine.advance_in(s, entered, now, {j.id: j for j in journeys}, claimed)
        return True

    def _enter(self, s: Session, journeys: list[Journey], batch: list[Arrival], now: dt.datetime) -> list[int]:
        wanted = [(j, j.spec.trigger) for j in journeys if isinstance(j.spec.trigger, EventTrigger)]
        if not wanted:
            return []
        matched: list[tuple[Journey, EventTrigger, Arrival]] = [
            (j, t, a) for a in batch for j, t in wanted
            if j.project_id == a.project_id and t.event == a.event and self._after_start(j, a)]
        if not matched:
            return []
        properties = self._properties([a for j, _, a in matched if reads_person_properties(j)])
        entrants: dict[int, tuple[Journey, list[Entrant]]] = {}
        for journey, trigger, arrival in matched:
            person = Person.of(arrival.ids, properties.get(arrival.position, {}))
            if not event_matches(list(trigger.filters), arrival.to_json(), person):
                continue
            follow = trigger.not_followed_by
            entrants.setdefault(journey.id, (journey, []))[1].append(Entrant(
                person, arrival.insert_id or arrival.position, arrival.to_json(),
                arrival.time + follow.within.delta() if follow else None))
        entered: list[int] = []
        for journey, group in entrants.values():
            for low in range(0, len(group), CHUNK):
                entered += self.engine.enter_in(s, journey, group[low:low + CHUNK], now)
        return entered

    @staticmethod
    def _after_start(journey: Journey, arrival: Arrival) -> bool:
        """Events that happened before the journey started (imported history) do not trigger it."""
        return journey.started_at is None or arrival.time >= journey.started_at - dt.timedelta(minutes=5)

    def _properties(self, found: Iterable[Arrival]) -> dict[str, dict[str, Any]]:
        """Person properties of the arriving persons the store knows (new persons have none yet)."""
        if self.lookup is None:
            return {}
        by_project: dict[int, list[Arrival]] = {}
        for a in found:
            by_project.setdefault(a.project_id, []).append(a)
        out: dict[str, dict[str, Any]] = {}
        for project_id, group in by_project.items():
            try:
                known = self.lookup.properties(project_id, sorted({p for a in group for p in a.ids}))
            except Exception:  # the store is busy or closing: enter without properties rather than not at all
                log.exception("person properties could not be read for journey entrants")
                continue
            for a in group:
                merged: dict[str, Any] = {}
                for pair in a.ids:
                    merged.update(known.get(pair, {}))
                out[a.position] = merged
        return out

    def _cancel(self, s: Session, journey: Journey, follow_ups: list[Arrival], window: dt.timedelta) -> None:
        keys = {k for a in follow_ups for k in a.keys}
        pending = s.scalars(select(JourneyEntry).where(
            JourneyEntry.journey_id == journey.id, JourneyEntry.state == "pending",
            JourneyEntry.person_key.in_(keys)))
        for entry in pending:
            due = aware(entry.due_at)
            started = due - window if due else None
            if due is not None and started is not None and any(
                    entry.person_key in a.keys and started <= a.time <= due for a in follow_ups):
                entry.state, entry.due_at, entry.exit_reason = "cancelled", None, "followed in time"

    def _exit(self, s: Session, journey: Journey, found: list[Arrival], now: dt.datetime) -> None:
        keys = {k for a in found for k in a.keys}
        s.execute(update(JourneyEntry).where(
            JourneyEntry.journey_id == journey.id, JourneyEntry.state.in_(ACTIVE),
            JourneyEntry.person_key.in_(keys)).values(
            state="exited", due_at=None, finished_at=now, exit_reason=f"{found[0].event} arrived"))

    def _convert(self, s: Session, journey: Journey, found: list[Arrival], within: dt.timedelta) -> None:
        keys = {k for a in found for k in a.keys}
        rows = s.scalars(select(JourneyEntry).where(
            JourneyEntry.journey_id == journey.id, JourneyEntry.converted_at.is_(None),
            JourneyEntry.state.in_(("active", "waiting", "done", "exited")),
            JourneyEntry.person_key.in_(keys)))
        for entry in rows:
            entered = aware(entry.entered_at)
            assert entered is not None
            hits = [a.time for a in found if entry.person_key in a.keys and entered <= a.time <= entered + within
                    and entry.entry_key not in (a.insert_id, a.position)]  # not the event that let them in
            if hits:
                entry.converted_at = min(hits)

    def _received(self, s: Session, batch: list[Arrival], now: dt.datetime) -> None:
        keys = {k for a in batch for k in a.keys}
        waiting = s.scalars(select(JourneyEntry).where(
            JourneyEntry.state == "waiting", JourneyEntry.wait_event.in_({a.event for a in batch}),
            JourneyEntry.person_key.in_(keys)))
        for entry in waiting:
            if any(a.event == entry.wait_event and entry.person_key in a.keys and a.project_id == entry.project_id
                   for a in batch):
                entry.received = [*(entry.received or []), str(entry.wait_event)]
                entry.due_at = now

    def _save(self, s: Session, position: Position) -> None:
        row = s.get(JourneyCursor, self.cursor)
        if row is None:
            s.add(JourneyCursor(name=self.cursor, position=str(position), updated_at=dt.datetime.now(dt.UTC)))
        else:
            row.position, row.updated_at = str(position), dt.datetime.now(dt.UTC)

    # the thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edupulse-journey-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.step()
                self.last_error = None
            except Exception as exc:  # e.g. the metadata database is unreachable: read the same frames again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("the journey event feed failed; it reads again")
                self._stop.wait(1.0)
                continue
            if not moved:
                with self.wal.durable_changed:
                    if self.wal.durable <= self.position and not self._stop.is_set():
                        self.wal.durable_changed.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        with self.wal.durable_changed:
            self.wal.durable_changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            if not self._thread.is_alive():
                self._save_quietly()
            self._thread = None

    def _save_quietly(self) -> None:
        """Save the position passed over while no journey ran (at a clean stop)."""
        try:
            with self.meta.session() as s, s.begin():
                self._save(s, self.position)
        except Exception:
            log.exception("the journey event feed could not save its position")
