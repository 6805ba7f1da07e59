"""A metadata database held by another transaction: a write waits the busy timeout, then fails with the error
the API answers 503 for, on SQLite (busy_timeout) and on PostgreSQL (lock_timeout), never waiting forever."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from edupulse.meta.db import MetadataStore


def test_a_write_waits_the_busy_timeout_then_gives_up(metadata_url: str) -> None:
    store = MetadataStore(metadata_url, busy_timeout_seconds=0.5)
    other = MetadataStore(metadata_url)
    try:
        store.migrate()
        store.create_project("Held")
        with other.engine.connect() as holder:
            holder.begin()
            if other.engine.dialect.name == "postgresql":
                holder.execute(sa.text("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE"))
            else:
                holder.exec_driver_sql("UPDATE projects SET name = name")
            started = time.monotonic()
            with pytest.raises(OperationalError, match="lock"):
                store.create_project("Waiting")
            waited = time.monotonic() - started
            holder.rollback()
        assert 0.4 <= waited < 5, waited
        store.create_project("Waiting")  # the lock is gone: the same write succeeds
        store.migrate()  # the migration lock still waits as long as it must (and finds nothing to do)
    finally:
        store.close()
        other.close()
