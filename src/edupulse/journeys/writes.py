"""Journey write transactions of one process, one at a time on SQLite.

SQLite lets one writer in at a time and makes the others wait by sleeping and trying again (its busy handler
sleeps up to 100 ms between tries), so two journey threads writing at once (the event feed claiming, the
outbox recording) lose most of that wait even after the lock is free. Taking a lock of this process first
hands the database over as soon as the writer before is done. PostgreSQL writers do not block each other
here: no lock is taken."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from edupulse.meta.db import MetadataStore


class Writes:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        self._lock = threading.Lock() if meta.engine.dialect.name == "sqlite" else None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction, committed at the end (rolled back on an error)."""
        if self._lock is not None:
            self._lock.acquire()
        try:
            with self.meta.session() as s, s.begin():
                yield s
        finally:
            if self._lock is not None:
                self._lock.release()
