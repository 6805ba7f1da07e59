"""Native ingestion records, built as plain dicts and handed to a sink in batches.

This is the simulator's hot path (millions of calls): no objects per record beyond the record
itself, no validation (the ingestor validates), and nothing that is not deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Record = dict[str, Any]
RecordSink = Callable[[list[Record]], None]

ANON = "anonymous_id"
LOGIN = "login_id"
CRM = "crm_lead_id"


class Emitter:
    """Numbers records with event ids, drops what would lie after the period, batches them to the sink."""

    def __init__(self, tag: str, start_ms: int, end_ms: int, batch_size: int, sink: RecordSink) -> None:
        self.tag = tag
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.batch_size = batch_size
        self.sink = sink
        self.buffer: list[Record] = []
        self.serial = 0
        self.events = 0
        self.events_by_name: dict[str, int] = {}

    def track(
        self,
        event: str,
        id_type: str,
        distinct_id: str,
        t: int,
        props: dict[str, Any],
        groups: dict[str, str] | None = None,
        identities: dict[str, str] | None = None,
    ) -> bool:
        """One event; returns False (and records nothing) when `t` lies outside the period."""
        if t >= self.end_ms or t < self.start_ms:
            return False
        self.serial += 1
        record: Record = {"type": "track", "event": event, "distinct_id": distinct_id}
        if id_type != ANON:
            record["distinct_id_type"] = id_type
        if identities is not None:
            record["identities"] = identities
        record["time"] = t
        record["event_id"] = self.tag + str(self.serial)
        record["properties"] = props
        if groups is not None:
            record["groups"] = groups
        self.events += 1
        counts = self.events_by_name
        counts[event] = counts.get(event, 0) + 1
        buffer = self.buffer
        buffer.append(record)
        if len(buffer) >= self.batch_size:
            self.flush()
        return True

    def profile(
        self,
        op: str,
        id_type: str,
        distinct_id: str,
        t: int,
        props: dict[str, Any],
        identities: dict[str, str] | None = None,
    ) -> bool:
        """A profile operation (`profile_set`, `profile_set_once`, `profile_increment`, `profile_append`).

        One before the period is moved to its start rather than dropped: it may carry an identity link.
        """
        if t >= self.end_ms:
            return False
        if t < self.start_ms:  # noqa: PLR1730
            t = self.start_ms
        self.serial += 1
        record: Record = {"type": op, "distinct_id": distinct_id}
        if id_type != ANON:
            record["distinct_id_type"] = id_type
        if identities is not None:
            record["identities"] = identities
        record["time"] = t
        record["event_id"] = self.tag + str(self.serial)
        record["properties"] = props
        self.buffer.append(record)
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return True

    def group(self, group_type: str, key: str, t: int, props: dict[str, Any]) -> None:
        self._entity("group_set", "group_type", group_type, "group_key", key, t, props)

    def item(self, item_type: str, item_id: str, t: int, props: dict[str, Any]) -> None:
        self._entity("item_set", "item_type", item_type, "item_id", item_id, t, props)

    def _entity(
        self, kind: str, type_field: str, entity_type: str, key_field: str, key: str, t: int, props: dict[str, Any]
    ) -> None:
        self.serial += 1
        t = min(max(t, self.start_ms), self.end_ms - 1)
        self.buffer.append(
            {
                "type": kind,
                type_field: entity_type,
                key_field: key,
                "time": t,
                "event_id": self.tag + str(self.serial),
                "properties": props,
            }
        )
        if len(self.buffer) >= self.batch_size:
            self.flush()

    @property
    def records(self) -> int:
        return self.serial

    def flush(self) -> None:
        if self.buffer:
            batch, self.buffer = self.buffer, []
            self.sink(batch)
