"""A lease in the metadata database: of several API processes, the one holding it runs the scheduled jobs
(account review, tags, journeys); it renews it at each tick, and another takes over when it lapses."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from edupulse.meta.cluster import Lease
from edupulse.meta.db import MetadataStore


class LeaseKeeper:
    def __init__(self, meta: MetadataStore, name: str, holder: str, seconds: int) -> None:
        self.meta, self.name, self.holder = meta, name, holder
        self.seconds = seconds

    def __call__(self, now: dt.datetime) -> bool:
        """Take or renew the lease at `now`; False while another process holds it."""
        expires = now + dt.timedelta(seconds=self.seconds)
        with self.meta.engine.begin() as conn:
            taken = conn.execute(update(Lease).where(Lease.name == self.name, or_(
                Lease.holder == self.holder, Lease.expires_at < now)).values(holder=self.holder, expires_at=expires))
            if taken.rowcount:
                return True
            if conn.execute(select(Lease.name).where(Lease.name == self.name)).first() is not None:
                return False
            try:
                with conn.begin_nested():
                    conn.execute(insert(Lease).values(name=self.name, holder=self.holder, expires_at=expires))
            except IntegrityError:
                return False  # another process took it first
            return True

    def holder_now(self) -> str | None:
        with self.meta.engine.connect() as conn:
            return conn.execute(select(Lease.holder).where(Lease.name == self.name)).scalar()
