"""Alembic environment: runs against the connection or URL the caller supplies."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from edupulse.meta import cluster as _cluster  # noqa: F401  (registers the tables shared by API processes)
from edupulse.meta import governance as _governance  # noqa: F401  (registers the governance tables)
from edupulse.meta.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
