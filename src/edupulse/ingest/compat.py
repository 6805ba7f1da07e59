"""What the wire-format adapters (sensors.py, posthog.py, segment.py) share.

An adapter turns each record of a foreign request into zero or more native records (records.py), or
refuses it with a reason. The native path then validates, quarantines and durably logs them, and the
results are folded back onto the records as they were sent (`fold_outcome`), so that the quarantine shows
what the client sent and where in its request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edupulse.ingest.records import RecordError, parse_time, to_micros
from edupulse.ingest.validate import PreparedBatch, Rejection, record_text

_UTC = dt.UTC
MIN_SKEW_US = 60_000_000


@dataclass(frozen=True)
class Refused:
    """A sent record an adapter cannot translate: where in it and why."""

    field: str
    reason: str


@dataclass
class Translation:
    """A foreign request as native records: `records[i]` came from sent record `origin[i]`."""

    sent: list[Any] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    origin: list[int] = field(default_factory=list)
    refused: dict[int, Refused] = field(default_factory=dict)

    def add(self, raw: Any, translate: Callable[[Any], Iterable[dict[str, Any]]]) -> None:
        """Translate one sent record; a RecordError refuses it whole."""
        index = len(self.sent)
        self.sent.append(raw)
        try:
            produced = list(translate(raw))
        except RecordError as exc:
            self.refused[index] = Refused(exc.field, exc.reason)
            return
        self.records.extend(produced)
        self.origin.extend([index] * len(produced))


@dataclass(frozen=True)
class CompatOutcome:
    """Per sent record: accepted when every native record made from it was accepted."""

    accepted: int
    rejected: int
    errors: list[dict[str, Any]]  # {"index", "field", "reason"} of refused sent records, in order


def fold_outcome(translation: Translation, prepared: PreparedBatch, request_id: str, label: str) -> CompatOutcome:
    """Map the native per-record results back onto the sent records and rewrite the quarantine entries to show
    the sent record (`label` names a record in the protocol's words, e.g. "data_list[3]" or "batch[3]")."""
    problems: dict[int, Refused] = dict(translation.refused)
    for result in prepared.outcome.results:
        if result["status"] == "rejected":
            sent_index = translation.origin[result["index"]]
            problems.setdefault(sent_index, Refused(result["field"], result["reason"]))
    prepared.rejections = [
        Rejection(f"{label}[{i}]: {p.field}", p.reason, record_text(translation.sent[i]), f"{request_id}:{i}")
        for i, p in sorted(problems.items())
    ]
    errors = [{"index": i, "field": p.field, "reason": p.reason} for i, p in sorted(problems.items())]
    return CompatOutcome(len(translation.sent) - len(problems), len(problems), errors)


class Clock:
    """Event times corrected for the client's clock skew: timestamp + (server receive time - sent_at)."""

    UTC = _UTC

    def __init__(self, received_us: int, sent_us: int | None, field: str = "timestamp") -> None:
        self.received_us = received_us
        self.field = field
        skew = 0 if sent_us is None else received_us - sent_us
        # Below a minute the difference is mostly network time, not a wrong clock. Above, the skew is rounded
        # to the second: a retried request then gets the same times as the first attempt (its sent_at and
        # arrival differ by about as much), so the store recognizes the retried records by their IDs.
        self.skew_us = 0 if abs(skew) < MIN_SKEW_US else round(skew / 1_000_000) * 1_000_000

    def time(self, event: dict[str, Any]) -> float | None:
        """Milliseconds since the epoch of an event, or None (the server's receive time)."""
        offset = event.get("offset")
        if isinstance(offset, int | float) and not isinstance(offset, bool):
            return (self.received_us - offset * 1000) / 1000
        stamp = event.get(self.field)
        if stamp is None:
            return None
        return (parse_time(stamp, self.field, _UTC) + self.skew_us) / 1000


def now_us() -> int:
    """The server clock in microseconds since the epoch."""
    return to_micros(dt.datetime.now(_UTC))


def stable_id(*parts: Any) -> str:
    """A deterministic event id from fields that identify a sent record, so that a client's retry of the same
    record is stored once."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def text_id(value: Any, where: str) -> str:
    """An identifier sent as text or a number (never true/false, objects or empty)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordError(where, "is required and must be a non-empty string")
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        raise RecordError(where, "must not be empty")
    return text


def object_or_empty(value: Any, where: str) -> dict[str, Any]:
    """A JSON object field that may be missing or null."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(where, f"must be an object, got {type(value).__name__}")
    return value


def with_standard_names(props: dict[str, Any], aliases: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Copy a protocol's names of the standard properties (url, utm_*) to the standard names, so analyses
    see them in the typed columns; the sent names stay too."""
    extra = {std: props[name] for name, std in aliases if name in props and std not in props}
    return {**props, **extra} if extra else props
