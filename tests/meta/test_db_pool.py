"""A SQLite metadata database keeps a connection for each thread that holds one at once, instead of opening and
closing one (with its pragmas) for every checkout beyond SQLAlchemy's default five."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event

from edupulse.meta.db import SQLITE_POOL, MetadataStore

THREADS = 12  # within the default pool with its overflow (15), so the old setting got this far too
ROUNDS = 20


def test_threads_holding_connections_at_once_reuse_them(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    opened: list[Any] = []
    event.listen(store.engine, "connect", lambda *_: opened.append(1))
    together = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(ROUNDS):
                with store.engine.connect() as conn:
                    together.wait(timeout=30)  # every thread holds a connection at this moment
                    assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
                together.wait(timeout=30)  # and every thread has given it back
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)
            together.abort()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        store.close()
    assert not failures, failures
    # With the default pool of 5 this was 12 + 7 for every round after the first (145): the 7 beyond the five
    # were closed when given back.
    assert THREADS <= SQLITE_POOL
    assert len(opened) == THREADS


def test_an_in_memory_database_keeps_its_own_pool() -> None:
    memory = MetadataStore("sqlite://")
    try:
        assert type(memory.engine.pool).__name__ == "SingletonThreadPool"
    finally:
        memory.close()
