"""Validating a request's records into a log frame: pure work that needs no store, so the server can run it
in worker processes (`ingest.validator_processes`) while its own process answers requests and loads the
store. Kept light to import: a worker imports this module and the record rules only."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from edupulse.ingest import jsontext
from edupulse.ingest.exposure import EXPOSURE_EVENT, KnownExperiments, check_exposure
from edupulse.ingest.first_touch import LEAD_EVENT, first_touch
from edupulse.ingest.records import RecordError, ValidationContext, normalize, to_micros
from edupulse.store.schema import PropertyType


@dataclass(frozen=True)
class Rejection:
    """A refused record, for the quarantine."""

    location: str
    reason: str
    record: str
    dedupe_key: str


@dataclass
class IngestOutcome:
    """Per-record results of one request, in request order."""

    results: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0

    def as_response(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected, "results": self.results}


@dataclass
class PreparedBatch:
    outcome: IngestOutcome
    payload: bytes | None
    rejections: list[Rejection]
    received_at: dt.datetime


@dataclass(frozen=True)
class Limits:
    max_record_bytes: int
    max_batch_records: int
    max_future_seconds: int
    max_past_days: int


@dataclass(frozen=True)
class ProjectRules:
    """What validating a project's records needs to know, small enough to send to a worker per request."""

    project_id: int
    timezone: str
    typed_properties: Mapping[str, PropertyType]
    group_types: frozenset[str]
    limits: Limits
    experiments: KnownExperiments = field(default_factory=dict)  # exposures must name one of these


class BodyError(Exception):
    """The request body as a whole cannot be taken (HTTP status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[type[BodyError], tuple[int, str]]:  # travels back from worker processes
        return BodyError, (self.status, self.message)


class UnknownGroupType(Exception):
    """A record names a group type the worker does not know: the server validates the request itself."""


def record_text(record: Any, limit: int | None = 65536) -> str:
    """A record as JSON text, for the quarantine and the size check; a record JSON cannot hold as it is
    (nested too deep for the writer, integers beyond 64 bits...) is shown with those parts cut or as text."""
    try:
        text = orjson.dumps(record).decode()
    except TypeError:
        text = orjson.dumps(_printable(record, 32)).decode()
    return text if limit is None else text[:limit]


def _printable(value: Any, depth: int) -> Any:
    if isinstance(value, dict | list | tuple):
        if depth <= 0:
            return "…(nested too deep)"
        if isinstance(value, dict):
            return {str(k): _printable(v, depth - 1) for k, v in value.items()}
        return [_printable(v, depth - 1) for v in value]
    if value is None or isinstance(value, bool | float | str) or (isinstance(value, int) and -2**63 <= value < 2**64):
        return value
    return repr(value)


class ColumnWriter:
    """Collects single-identity track records of one request as columns (see track_columns.py)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.times: list[int] = []
        self.id_types: list[str] = []
        self.id_values: list[str] = []
        self.insert_ids: list[str | None] = []
        self.props: list[str | None] = []
        self.groups: dict[str, list[str | None]] = {}

    def add(self, record: dict[str, Any]) -> None:
        n = len(self.events)
        self.events.append(record["event"])
        self.times.append(record["time"])
        id_type, value = record["ids"][0]
        self.id_types.append(id_type)
        self.id_values.append(value)
        self.insert_ids.append(record["insert_id"])
        props = record["properties"]
        self.props.append(orjson.dumps(props).decode() if props else None)
        groups = record.get("groups")
        if groups:
            for group_type, key in groups.items():
                column = self.groups.get(group_type)
                if column is None:
                    column = self.groups[group_type] = [None] * n
                column.append(key)
        if self.groups:
            for column in self.groups.values():
                if len(column) == n:
                    column.append(None)

    def __len__(self) -> int:
        return len(self.events)

    def as_frame(self) -> dict[str, Any]:
        return {"e": self.events, "t": self.times, "it": self.id_types, "iv": self.id_values,
                "iid": self.insert_ids, "pj": self.props, "g": self.groups}


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def prepare_records(
    rules: ProjectRules,
    records: Sequence[Any],
    group_type: Callable[[str], None],
    source: str = "native",
    request_id: str | None = None,
    body_bytes: int | None = None,
) -> PreparedBatch:
    """Validate records into a log frame and per-record results. `group_type(name)` accepts a group type or
    raises RecordError (no free slot) or UnknownGroupType; `body_bytes` (the request size) lets small
    requests skip the per-record size check."""
    now = dt.datetime.now(dt.UTC)
    now_us = to_micros(now)
    limits = rules.limits
    ctx = ValidationContext(
        now_us=now_us,
        timezone=_zone(rules.timezone),
        typed_properties=rules.typed_properties,
        max_future_us=limits.max_future_seconds * 1_000_000,
        max_past_us=limits.max_past_days * 86_400_000_000,
    )
    outcome = IngestOutcome()
    results = outcome.results
    good: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    request_id = request_id or uuid.uuid4().hex
    max_record = limits.max_record_bytes
    check_size = body_bytes is None or body_bytes > max_record
    known = rules.group_types
    columns = ColumnWriter()
    for index, record in enumerate(records):
        try:
            if check_size:
                size = len(record_text(record, limit=None))
                if size > max_record:
                    raise RecordError("record", f"is {size} bytes as JSON; at most {max_record} per record")
            normalized = normalize(record, ctx)
            if normalized.get("event") == EXPOSURE_EVENT:
                check_exposure(normalized, rules.experiments)
            groups = normalized.get("groups")
            if groups:
                for name in groups:
                    if name not in known:
                        group_type(name)
        except RecordError as exc:
            outcome.rejected += 1
            results.append({"index": index, "status": "rejected", "field": exc.field, "reason": exc.reason})
            rejections.append(Rejection(f"record {index}: {exc.field}", exc.reason, record_text(record),
                                        f"{request_id}:{index}"))
            continue
        if normalized["type"] == "track" and len(normalized["ids"]) == 1:
            columns.add(normalized)
        else:
            good.append(normalized)
        if normalized.get("event") == LEAD_EVENT:
            implied = first_touch(normalized)
            if implied is not None:
                good.append(implied)
        outcome.accepted += 1
        results.append({"index": index, "status": "accepted"})
    payload = None
    if good or len(columns):
        frame: dict[str, Any] = {"p": rules.project_id, "r": now_us, "s": source, "recs": good}
        if len(columns):
            frame["tc"] = columns.as_frame()
        payload = orjson.dumps(frame)
    return PreparedBatch(outcome=outcome, payload=payload, rejections=rejections, received_at=now)


def parse_body(body: bytes, max_batch_records: int) -> list[Any]:
    """The records of a `{"batch": [...]}` body; BodyError says what is wrong with it."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"body is not UTF-8: invalid byte at offset {exc.start}") from None
    try:
        data = jsontext.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    batch = data.get("batch") if isinstance(data, dict) else None
    if not isinstance(batch, list):
        raise BodyError(400, 'body must be a JSON object {"batch": [record, ...]}')
    if len(batch) > max_batch_records:
        raise BodyError(413, f"batch has {len(batch)} records; at most {max_batch_records} per request")
    return batch


def _refuse_unknown(name: str) -> None:
    raise UnknownGroupType(name)


def validate_body(rules: ProjectRules, body: bytes, request_id: str) -> PreparedBatch | BodyError | None:
    """A whole request, in a worker process: the prepared batch, the body's error, or None when the request
    names a group type the worker does not know (the server then validates it itself)."""
    try:
        records = parse_body(body, rules.limits.max_batch_records)
        return prepare_records(rules, records, _refuse_unknown, request_id=request_id, body_bytes=len(body))
    except BodyError as exc:
        return exc
    except UnknownGroupType:
        return None


def warm_up() -> bool:
    """Run once in each worker at start so the first requests do not pay for imports."""
    return True


def watch_parent(parent: int) -> None:
    """Worker initializer: leave when the server process is gone, even when it was killed with SIGKILL (a
    worker waiting for work would otherwise wait forever)."""
    import os
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the server shuts workers down

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
