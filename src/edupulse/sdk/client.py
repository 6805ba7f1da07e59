"""The EduPulse Python client: records are queued in memory and sent in batches to `POST /api/v1/ingest` by one
background thread. Only the standard library is used, so the client can be copied into any application.

Delivery rules (docs/sdk.md):
- every record gets an `event_id` and a `time` when it is queued, so a batch sent twice is stored once and
  keeps its times;
- connection errors, 5xx and 429 answers are retried with exponential backoff (with jitter) up to
  `max_retries`; other 4xx answers are not retried (the request itself is wrong) and their records are counted
  as failed;
- the queue is bounded (`max_queue` records). When it is full, `on_full="refuse"` (the default) makes the call
  return False and counts the record in `stats.refused`; `on_full="block"` waits up to `block_timeout` seconds
  for room first. Nothing already queued is ever dropped to make room;
- `flush()` waits until everything queued so far is sent; `close()` (also run at interpreter exit) flushes with
  a time limit and stops the thread.

Experiments: `assign(experiment, distinct_id)` reads the running experiments from the server (the GrowthBook
payload at /api/features/{write key}, cached for `features_ttl` seconds) and assigns with GrowthBook's hashing,
so the variant equals the one the official GrowthBook SDKs and the server give; it tracks one
`$experiment_exposure` per unit and experiment. (Copying this file into an application: take
experiments/hashing.py and experiments/conditions.py along, both standard library only.)
"""

from __future__ import annotations

import atexit
import datetime as dt
import gzip
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from edupulse.experiments.conditions import matches
from edupulse.experiments.hashing import assign as hash_assign

log = logging.getLogger("edupulse.sdk")
GZIP_OVER_BYTES = 1024


@dataclass
class Stats:
    """Counters of what happened to records; read them to see that nothing is lost silently."""

    queued: int = 0
    sent: int = 0  # acknowledged by the server (stored durably)
    rejected: int = 0  # refused by the server one by one (see the project's quarantine)
    failed: int = 0  # given up: a 4xx answer for the whole request, or retries exhausted
    refused: int = 0  # not queued because the queue was full
    retries: int = 0
    requests: int = 0


class EduPulse:
    """A client for one project. Thread-safe; create one per process and reuse it."""

    def __init__(
        self,
        write_key: str,
        host: str = "http://127.0.0.1:8000",
        *,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        on_full: str = "refuse",
        block_timeout: float | None = None,
        max_retries: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        shutdown_timeout: float = 10.0,
        features_ttl: float = 60.0,
    ) -> None:
        if on_full not in ("refuse", "block"):
            raise ValueError("on_full must be 'refuse' or 'block'")
        self.write_key = write_key
        self.url = host.rstrip("/") + "/api/v1/ingest"
        self.features_url = host.rstrip("/") + "/api/features/" + write_key
        self.features_ttl = features_ttl
        self._features: tuple[float, dict[str, Any]] | None = None
        self._exposed: set[tuple[str, str]] = set()
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.on_full = on_full
        self.block_timeout = block_timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.shutdown_timeout = shutdown_timeout
        self.stats = Stats()
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Condition()
        self._in_flight = 0
        self._flush_requested = False
        self._closing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        atexit.register(self.close)

    # --- recording ---------------------------------------------------------------------------------------

    def track(self, distinct_id: str, event: str, properties: dict[str, Any] | None = None, **fields: Any) -> bool:
        """Record an event. `fields`: distinct_id_type, is_login_id, identities, groups, time, event_id."""
        return self._enqueue({"type": "track", "event": event, "distinct_id": distinct_id,
                              "properties": properties or {}, **fields})

    def identify(self, login_id: str, anonymous_id: str | None = None, **fields: Any) -> bool:
        """Link a login ID to the anonymous ID used before sign-in (and to `identities`)."""
        record = {"type": "identify", "distinct_id": login_id, **fields}
        if anonymous_id is not None:
            record["anonymous_id"] = anonymous_id
        return self._enqueue(record)

    def alias(self, distinct_id: str, alias: str, alias_type: str = "anonymous_id", **fields: Any) -> bool:
        return self._enqueue({"type": "alias", "distinct_id": distinct_id, "alias": alias, "alias_type": alias_type,
                              **fields})

    def profile(self, operation: str, distinct_id: str, properties: Any = None, **fields: Any) -> bool:
        """A person property operation: set, set_once, increment, append, unset or delete."""
        record = {"type": f"profile_{operation}", "distinct_id": distinct_id, **fields}
        if properties is not None:
            record["properties"] = properties
        return self._enqueue(record)

    def profile_set(self, distinct_id: str, properties: dict[str, Any], **fields: Any) -> bool:
        return self.profile("set", distinct_id, properties, **fields)

    def profile_set_once(self, distinct_id: str, properties: dict[str, Any], **fields: Any) -> bool:
        return self.profile("set_once", distinct_id, properties, **fields)

    def profile_increment(self, distinct_id: str, properties: dict[str, float], **fields: Any) -> bool:
        return self.profile("increment", distinct_id, properties, **fields)

    def group_set(self, group_type: str, group_key: str, properties: dict[str, Any]) -> bool:
        return self._enqueue({"type": "group_set", "group_type": group_type, "group_key": group_key,
                              "properties": properties})

    def item_set(self, item_type: str, item_id: str, properties: dict[str, Any]) -> bool:
        return self._enqueue({"type": "item_set", "item_type": item_type, "item_id": item_id,
                              "properties": properties})

    def experiments(self, refresh: bool = False) -> dict[str, Any]:
        """The running experiments (GrowthBook payload), fetched at most every `features_ttl` seconds."""
        now = time.monotonic()
        if refresh or self._features is None or now - self._features[0] > self.features_ttl:
            request = urllib.request.Request(self.features_url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                self._features = (now, json.loads(response.read()))
        return self._features[1]

    def assign(self, experiment: str, distinct_id: str, attributes: dict[str, Any] | None = None,
               track_exposure: bool = True) -> str | None:
        """The unit's variant key, or None (not running, not targeted, outside coverage). Pass `attributes`
        the targeting reads (person properties, and `class` / `school` for class or school experiments)."""
        payload = self.experiments()
        feature = payload.get("features", {}).get(experiment)
        if not feature or not feature.get("rules"):
            return None
        rule = feature["rules"][0]
        attrs = {"id": distinct_id, **(attributes or {})}
        if not matches(attrs, rule.get("condition") or {}, payload.get("savedGroups") or {}):
            return None
        value = attrs.get(rule.get("hashAttribute", "id"))
        if value is None or value == "":
            return None
        namespace = tuple(rule["namespace"]) if rule.get("namespace") else None
        index = hash_assign(str(value), rule.get("seed", experiment), rule["weights"], rule.get("coverage", 1.0),
                            namespace, rule.get("hashVersion", 2))
        if index < 0:
            return None
        variant = str(rule["variations"][index])
        if track_exposure and (experiment, distinct_id) not in self._exposed:
            self._exposed.add((experiment, distinct_id))
            groups = {rule["hashAttribute"]: str(value)} if rule.get("hashAttribute", "id") != "id" else None
            extra = {"groups": groups} if groups else {}
            self.track(distinct_id, "$experiment_exposure", {"experiment": experiment, "variant": variant}, **extra)
        return variant

    def _enqueue(self, record: dict[str, Any]) -> bool:
        # Fixed when queued, so that a retried batch is stored once and keeps its times.
        record.setdefault("event_id", uuid.uuid4().hex)
        record.setdefault("time", dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))
        with self._lock:
            if self._closing:
                self.stats.refused += 1
                return False
            if len(self._queue) >= self.max_queue and (self.on_full == "refuse" or not self._lock.wait_for(
                    lambda: len(self._queue) < self.max_queue or self._closing, self.block_timeout)):
                self.stats.refused += 1
                return False
            self._queue.append(record)
            self.stats.queued += 1
            if len(self._queue) >= self.batch_size:
                self._lock.notify_all()
        self._start()
        return True

    # --- sending -----------------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="edupulse-sdk", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: len(self._queue) >= self.batch_size or self._flush_requested
                                    or self._closing, self.flush_interval)
                if not self._queue:
                    self._flush_requested = False
                    self._lock.notify_all()
                    if self._closing:
                        return
                    continue
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                self._in_flight = len(batch)
                self._lock.notify_all()  # room in the queue for blocked callers
            try:
                self._send(batch)
            finally:
                with self._lock:
                    self._in_flight = 0
                    self._lock.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            status, body = self._post(batch)
            if status == 200:
                rejected = int(body.get("rejected", 0)) if isinstance(body, dict) else 0
                self.stats.sent += len(batch) - rejected
                self.stats.rejected += rejected
                if rejected:
                    log.warning("the server refused %d of %d records (see the project's quarantine)", rejected,
                                len(batch))
                return
            if status == 413 and len(batch) > 1:  # too large: send the halves
                half = len(batch) // 2
                self._send(batch[:half])
                self._send(batch[half:])
                return
            retryable = status is None or status >= 500 or status == 429
            if not retryable or attempt >= self.max_retries or self._stop.is_set():
                self.stats.failed += len(batch)
                log.error("giving up on %d records: %s", len(batch), body)
                return
            delay = min(self.backoff_max, self.backoff_base * 2 ** attempt) * random.uniform(0.5, 1.0)
            attempt += 1
            self.stats.retries += 1
            log.info("sending failed (%s); retry %d in %.1f s", body, attempt, delay)
            if self._stop.wait(delay):
                self.stats.failed += len(batch)
                return

    def _post(self, batch: list[dict[str, Any]]) -> tuple[int | None, Any]:
        """(HTTP status or None for a connection error, parsed body or the error text)."""
        data = json.dumps({"batch": batch}, default=str).encode()
        headers = {"Authorization": f"Bearer {self.write_key}", "Content-Type": "application/json"}
        if len(data) > GZIP_OVER_BYTES:
            data = gzip.compress(data, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        self.stats.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")[:500]
            return exc.code, f"HTTP {exc.code}: {text}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return None, f"connection error: {exc}"

    # --- flushing and closing ----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far; True when it was all handled (sent, rejected or failed) in time."""
        if self._thread is None:
            return True
        with self._lock:
            self._flush_requested = True
            self._lock.notify_all()
            return self._lock.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush (at most `timeout`, default `shutdown_timeout` seconds) and stop the thread. Runs at exit."""
        if self._closing and self._thread is None:
            return
        done = self.flush(self.shutdown_timeout if timeout is None else timeout)
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if not done:
            self._stop.set()  # abandon retries that would outlive the process
        thread = self._thread
        if thread is not None:
            thread.join(self.timeout + 1)
            self._thread = None
        with self._lock:
            lost = len(self._queue)
            self._queue.clear()
        if lost:
            self.stats.failed += lost
            log.error("closed with %d records not sent", lost)
        atexit.unregister(self.close)

    def __enter__(self) -> EduPulse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

