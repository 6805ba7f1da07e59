"""The metadata database keeps a connection for each thread that holds one at once (40 on SQLite, 20 on
PostgreSQL, or `metadata_pool_size`), instead of opening and closing one for every checkout beyond SQLAlchemy's
default five (on SQLite with its pragmas, on PostgreSQL with a new session)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event

from edupulse.conf import Settings
from edupulse.meta.db import POOL_SIZE, MetadataStore
from edupulse.runtime import Platform

THREADS = 12  # within the default pool with its overflow (15), so the old setting got this far too
ROUNDS = 20


def test_threads_holding_connections_at_once_reuse_them(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
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
        assert store.engine.pool.size() == POOL_SIZE[store.engine.dialect.name] >= THREADS  # type: ignore[attr-defined]
    finally:
        store.close()
    assert not failures, failures
    # With the default pool of 5 this was 12 + 7 for every round after the first (145): the 7 beyond the five
    # were closed when given back.
    assert len(opened) == THREADS


def test_the_pool_size_setting(metadata_url: str, tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path / "data", metadata_url=metadata_url, metadata_pool_size=7)
    with Platform(settings).open() as platform:
        assert platform.meta.engine.pool.size() == 7  # type: ignore[attr-defined]


def test_an_in_memory_database_keeps_its_own_pool() -> None:
    memory = MetadataStore("sqlite://")
    try:
        assert type(memory.engine.pool).__name__ == "SingletonThreadPool"
    finally:
        memory.close()
