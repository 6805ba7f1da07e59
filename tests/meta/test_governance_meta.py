"""Governance tables on SQLite and, with EDUPULSE_TEST_POSTGRES_URL, PostgreSQL: the migration from 0001 keeps
existing users (and their scrypt hashes), the audit log refuses changes in the database itself, accounts and
the catalogue work on both."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from edupulse.auth.permissions import Role, Scope
from edupulse.meta.db import MetadataStore

NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def _upgrade(meta: MetadataStore, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from edupulse.meta.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with meta.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_upgrade_from_0001_keeps_users_and_their_passwords(metadata_url: str) -> None:
    meta = MetadataStore(metadata_url)
    try:
        _upgrade(meta, "0001")
        salt = b"0123456789abcdef"
        legacy = f"scrypt${salt.hex()}${hashlib.scrypt(b'an old long password', salt=salt, n=2**14, r=8, p=1).hex()}"
        with meta.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (email, password_hash, is_admin, created_at) "
                                 "VALUES ('old@school.example', :h, true, :t)"), {"h": legacy, "t": NOW})
        meta.migrate()
        user = meta.accounts.user_by_email("old@school.example")
        assert user is not None
        assert user.superuser
        assert not user.disabled
        assert meta.accounts.authenticate("old@school.example", "an old long password", NOW).user is not None
        assert meta.check_password("old@school.example", "an old long password")
    finally:
        meta.close()


def test_audit_log_refuses_changes_in_the_database(metadata_url: str) -> None:
    meta = MetadataStore(metadata_url)
    try:
        meta.migrate()
        entry = meta.audit.record("user.role", "tests", target="someone", detail={"after": "viewer"})
        for statement in ("UPDATE audit_log SET action = 'x' WHERE id = :id", "DELETE FROM audit_log WHERE id = :id"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), meta.engine.begin() as conn:
                conn.execute(sa.text(statement), {"id": entry})
        assert meta.audit.count() == 1
    finally:
        meta.close()


def test_accounts_and_catalogue(metadata_url: str) -> None:
    meta = MetadataStore(metadata_url)
    try:
        meta.migrate()
        project = meta.create_project("Meta School").project
        user = meta.accounts.create_user("Teacher@School.example", "a long enough password", now=NOW)
        assert user.email == "teacher@school.example"
        assert meta.accounts.set_role(user.id, project.id, Role.advisor) is None
        assert meta.accounts.set_role(user.id, project.id, Role.analyst) is Role.advisor
        token, _ = meta.accounts.create_session(user.id, NOW)
        assert meta.accounts.session_by_token(token, NOW + dt.timedelta(days=1)) is not None
        assert meta.accounts.session_by_token(token, NOW + dt.timedelta(days=15)) is None  # expired
        key, info = meta.accounts.create_key(user.id, "k", frozenset({Scope.query}))
        found = meta.accounts.key_by_token(key, NOW)
        assert found is not None
        assert found[0].id == info.id
        meta.accounts.record_activity(user.id, "view", NOW)
        meta.accounts.record_activity(user.id, "view", NOW)
        assert meta.accounts.activity_kinds(user.id, NOW.date()) == {"view"}
        names = {m["name"] for m in meta.metrics.list(project.id)}
        assert "attendance_rate" in names
        assert meta.metrics.ensure_defaults(project.id) == []  # never twice
    finally:
        meta.close()


def test_settings_and_commands_are_documented() -> None:
    from edupulse.auth.cli import accounts_group, key_group, user_group
    from edupulse.conf import AuthSettings, SchedulerSettings, SmtpSettings

    text = (Path(__file__).resolve().parents[2] / "docs" / "accounts.md").read_text(encoding="utf-8")
    for prefix, model in (("AUTH", AuthSettings), ("SMTP", SmtpSettings), ("SCHEDULER", SchedulerSettings)):
        for name in model.model_fields:
            assert f"EDUPULSE_{prefix}__{name.upper()}" in text or (
                prefix == "SMTP" and f"`__{name.upper()}`" in text), f"{prefix}.{name} is not in docs/accounts.md"
    for group in (user_group, key_group, accounts_group):
        for command in group.commands:
            assert f"edupulse {group.name} {command}" in text, f"edupulse {group.name} {command} is undocumented"
