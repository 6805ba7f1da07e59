"""The metadata store on SQLite and, when EDUPULSE_TEST_POSTGRES_URL is set, on PostgreSQL (a fresh schema
per test)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from edupulse.meta.db import MetadataError, MetadataStore, QuarantineEntry, WarningEntry


def test_migrations_are_idempotent(meta: MetadataStore) -> None:
    meta.migrate()
    tables = set(sa.inspect(meta.engine).get_table_names())
    assert {"projects", "alembic_version"} <= tables
    if meta.engine.dialect.name == "postgresql":  # the test's own schema, not public
        with meta.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_schema()")).scalar_one().startswith("test_")


def test_projects_and_keys(meta: MetadataStore) -> None:
    created = meta.create_project("Spring English", "Asia/Shanghai")
    project, api_key = created.project, created.api_key
    assert project.write_key.startswith("wk_")
    assert api_key.startswith("sk_")
    assert meta.project_by_write_key(project.write_key) == project
    assert meta.project_by_api_key(api_key) == project
    assert meta.project_by_name("Spring English") == project
    assert meta.project_by_write_key(api_key) is None
    assert meta.project_by_api_key(project.write_key) is None
    assert meta.project_by_api_key("sk_nope") is None
    # the secret key is stored hashed: it is nowhere in the database in clear
    with meta.engine.connect() as conn:
        for table in sa.inspect(meta.engine).get_table_names():
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                assert api_key not in " ".join(str(v) for v in row)
    rotated = meta.rotate_api_key(project.id)
    assert meta.project_by_api_key(api_key) is None
    assert meta.project_by_api_key(rotated) == project
    assert [p.name for p in meta.projects()] == ["Spring English"]


def test_project_errors(meta: MetadataStore) -> None:
    meta.create_project("A")
    with pytest.raises(MetadataError, match="already exists"):
        meta.create_project("A")
    with pytest.raises(MetadataError, match="time zone"):
        meta.create_project("B", "Mars/Olympus")
    with pytest.raises(MetadataError, match="1 to 100"):
        meta.create_project("  ")
    with pytest.raises(MetadataError, match="no project"):
        meta.rotate_api_key(999)


def test_group_type_slots(meta: MetadataStore) -> None:
    project = meta.create_project("Groups").project
    assert meta.group_types(project.id) == {"school": 0, "institution": 1, "class": 2}
    assert meta.add_group_type(project.id, "district") == 3
    assert meta.add_group_type(project.id, "district") == 3
    assert meta.add_group_type(project.id, "campus") == 4
    with pytest.raises(MetadataError):
        meta.add_group_type(project.id, "one_too_many")
    other = meta.create_project("Other").project
    assert meta.group_types(other.id) == {"school": 0, "institution": 1, "class": 2}


def test_admin_password(meta: MetadataStore) -> None:
    meta.ensure_admin("admin@example.edu", "first secret")
    assert meta.check_password("admin@example.edu", "first secret")
    assert not meta.check_password("admin@example.edu", "wrong")
    assert not meta.check_password("nobody@example.edu", "first secret")
    meta.ensure_admin("admin@example.edu", "second secret")
    assert not meta.check_password("admin@example.edu", "first secret")
    assert meta.check_password("admin@example.edu", "second secret")


def test_quarantine_and_warnings_are_kept_once(meta: MetadataStore) -> None:
    project = meta.create_project("Q").project
    now = dt.datetime.now(dt.UTC)
    entries = [QuarantineEntry(project_id=project.id, received_at=now, source="native", location=f"record {i}: time",
                               reason="is not a time", record='{"time": "x"}', dedupe_key=f"req-1:{i}")
               for i in range(3)]
    meta.add_quarantine(entries)
    meta.add_quarantine(entries[:2])  # a retried request
    assert meta.quarantine_count(project.id) == 3
    listed = meta.quarantine(project.id, limit=2)
    assert [e["location"] for e in listed] == ["record 2: time", "record 1: time"]
    assert meta.quarantine(project.id, limit=2, offset=2)[0]["reason"] == "is not a time"
    warning = WarningEntry(project_id=project.id, kind="login_conflict", message="refused", detail={"a": [1, 2]},
                           dedupe_key="w-1", event_time=now)
    meta.add_warnings([warning])
    meta.add_warnings([warning])
    [stored] = meta.warnings(project.id)
    assert stored["detail"] == {"a": [1, 2]}
    assert stored["kind"] == "login_conflict"
