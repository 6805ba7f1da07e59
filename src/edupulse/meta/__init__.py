"""Metadata store: projects, keys, users, quarantine and warnings (SQLAlchemy 2, Alembic)."""
