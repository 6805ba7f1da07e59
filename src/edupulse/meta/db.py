"""The metadata store: one object wrapping a SQLAlchemy engine, with the operations the app needs."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Engine, create_engine, event, func, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker

from edupulse.auth.passwords import hash_password, verify_password
from edupulse.meta import cluster as _cluster  # noqa: F401  (registers the tables)
from edupulse.meta import governance as _governance  # noqa: F401  (registers the tables)
from edupulse.meta.models import GroupType, IdentityWarning, Project, QuarantinedRecord, User

if TYPE_CHECKING:
    from edupulse.meta.accounts import Accounts
    from edupulse.meta.audit import AuditLog
    from edupulse.meta.catalogue import MetricCatalogue

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
GROUP_SLOTS = 5
DEFAULT_GROUP_TYPES = ("school", "institution", "class")


class MetadataError(ValueError):
    """A request to the metadata store that cannot be carried out, with a reason for a person."""


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    name: str
    timezone: str
    write_key: str


@dataclass(frozen=True)
class NewProject:
    project: ProjectInfo
    api_key: str


@dataclass(frozen=True)
class QuarantineEntry:
    project_id: int
    received_at: dt.datetime
    source: str
    location: str
    reason: str
    record: str
    dedupe_key: str


@dataclass(frozen=True)
class WarningEntry:
    project_id: int
    kind: str
    message: str
    detail: dict[str, Any]
    dedupe_key: str
    event_time: dt.datetime | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# Connections the metadata database keeps open by default (`metadata_pool_size`). SQLite: as many as the server's
# threads that may hold one at once (its thread pool runs 40); with SQLAlchemy's default of 5, every request beyond the
# fifth at a time opened a connection (and set its pragmas, journal_mode taking a lock) and closed it again: GET of a
# statement by id, 16 at a time, ran at 669-675 a second with 5 and 823-846 with 40. PostgreSQL: 20, where 16
# readers at a time ran at 421-431 with 5, 476-518 with 10, 536-563 with 20 and 530-567 with 40, and where several
# server processes share the server's max_connections (each may open 10 more than its pool for a moment).
POOL_SIZE = {"sqlite": 40, "postgresql": 20}


def _engine(url: str, pool_size: int | None = None) -> Engine:
    """The engine of a metadata database, keeping `pool_size` connections (default POOL_SIZE). A SQLite file does
    not ping them on checkout (a file does not go away as a server's connection may); PostgreSQL does."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        return create_engine(url)  # one connection per thread, SQLAlchemy's pool for an in-memory database
    size = pool_size or POOL_SIZE.get(backend, 5)
    return create_engine(url, pool_size=size, pool_pre_ping=backend != "sqlite")


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    """The connect hook of a SQLite metadata database: WAL, durable commits, foreign keys, and a wait of
    `busy_timeout_ms` for a lock another writer holds (then "database is locked", answered 503)."""

    def apply(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    return apply


def _postgres_lock_timeout(lock_timeout_ms: int) -> Any:
    """The connect hook of a PostgreSQL metadata database: a statement waits at most `lock_timeout_ms` for a
    lock another transaction holds (then "canceling statement due to lock timeout", answered 503), as SQLite's
    busy timeout does. Waits that must last (the migration and seeding locks) lift it for their transaction."""

    def apply(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        dbapi_conn.commit()

    return apply


def wait_for_locks(conn: Any) -> None:
    """Lift the lock timeout for the rest of this transaction (PostgreSQL; a no-op elsewhere)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL lock_timeout = 0"))


def _info(p: Project) -> ProjectInfo:
    return ProjectInfo(id=p.id, name=p.name, timezone=p.timezone, write_key=p.write_key)


def _quarantined(project_id: int, source: str | None) -> list[ColumnElement[bool]]:
    where = [QuarantinedRecord.project_id == project_id]
    if source is not None:
        where.append(QuarantinedRecord.source == source)
    return where


class MetadataStore:
    """Projects, keys, users, quarantine and identity warnings, on SQLite or PostgreSQL."""

    def __init__(self, url: str, busy_timeout_seconds: float = 10.0, pool_size: int | None = None) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.engine: Engine = _engine(url, pool_size)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas(round(busy_timeout_seconds * 1000)))
        elif self.engine.dialect.name == "postgresql":
            event.listen(self.engine, "connect", _postgres_lock_timeout(round(busy_timeout_seconds * 1000)))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    @cached_property
    def accounts(self) -> Accounts:
        """Users, memberships, sessions, personal keys (edupulse.meta.accounts)."""
        from edupulse.meta.accounts import Accounts

        return Accounts(self)

    @cached_property
    def audit(self) -> AuditLog:
        """The append-only audit log (edupulse.meta.audit)."""
        from edupulse.meta.audit import AuditLog

        return AuditLog(self)

    @cached_property
    def metrics(self) -> MetricCatalogue:
        """The metric catalogue (edupulse.meta.catalogue)."""
        from edupulse.meta.catalogue import MetricCatalogue

        return MetricCatalogue(self)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":  # API processes starting together migrate one at a time
                wait_for_locks(conn)
                conn.execute(text("SELECT pg_advisory_xact_lock(20931, 0)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    # projects -----------------------------------------------------------------------------------

    def create_project(self, name: str, timezone: str = "Asia/Shanghai") -> NewProject:
        name = name.strip()
        if not name or len(name) > 100:
            raise MetadataError("project name must be 1 to 100 characters")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise MetadataError(f"unknown time zone {timezone!r}; use an IANA name such as Asia/Shanghai") from exc
        api_key = "sk_" + secrets.token_urlsafe(32)
        with self.session() as s, s.begin():
            if s.scalar(select(Project).where(Project.name == name)) is not None:
                raise MetadataError(f"a project named {name!r} already exists")
            project = Project(
                name=name,
                timezone=timezone,
                write_key="wk_" + secrets.token_urlsafe(24),
                api_key_hash=hash_key(api_key),
                api_key_prefix=api_key[:10],
            )
            s.add(project)
            s.flush()
            for slot, group_type in enumerate(DEFAULT_GROUP_TYPES):
                s.add(GroupType(project_id=project.id, name=group_type, slot=slot))
            info = _info(project)
        return NewProject(project=info, api_key=api_key)

    def rotate_api_key(self, project_id: int) -> str:
        """Replace a project's secret API key; the old one stops working. Returns the new key (shown once)."""
        api_key = "sk_" + secrets.token_urlsafe(32)
        with self.session() as s, s.begin():
            project = s.get(Project, project_id)
            if project is None:
                raise MetadataError(f"no project with id {project_id}")
            project.api_key_hash = hash_key(api_key)
            project.api_key_prefix = api_key[:10]
        return api_key

    def projects(self) -> list[ProjectInfo]:
        with self.session() as s:
            return [_info(p) for p in s.scalars(select(Project).order_by(Project.id))]

    def project_by_name(self, name: str) -> ProjectInfo | None:
        with self.session() as s:
            p = s.scalar(select(Project).where(Project.name == name))
            return _info(p) if p else None

    def project_by_write_key(self, key: str) -> ProjectInfo | None:
        with self.session() as s:
            p = s.scalar(select(Project).where(Project.write_key == key))
            return _info(p) if p else None

    def project_by_api_key(self, key: str) -> ProjectInfo | None:
        with self.session() as s:
            p = s.scalar(select(Project).where(Project.api_key_hash == hash_key(key)))
            return _info(p) if p else None

    # group types --------------------------------------------------------------------------------

    def group_types(self, project_id: int) -> dict[str, int]:
        with self.session() as s:
            rows = s.scalars(select(GroupType).where(GroupType.project_id == project_id))
            return {g.name: g.slot for g in rows}

    def add_group_type(self, project_id: int, name: str) -> int:
        """Give a new group type the next free slot; raises when all slots are taken."""
        with self.session() as s, s.begin():
            rows = {g.name: g.slot for g in s.scalars(select(GroupType).where(GroupType.project_id == project_id))}
            if name in rows:
                return rows[name]
            free = sorted(set(range(GROUP_SLOTS)) - set(rows.values()))
            if not free:
                raise MetadataError(
                    f"group type {name!r} is new but the project already has {GROUP_SLOTS} group types "
                    f"({', '.join(sorted(rows))})"
                )
            s.add(GroupType(project_id=project_id, name=name, slot=free[0]))
            return free[0]

    # users --------------------------------------------------------------------------------------

    def ensure_admin(self, email: str, password: str) -> None:
        with self.session() as s, s.begin():
            user = s.scalar(select(User).where(User.email == email))
            if user is None:
                s.add(User(email=email, password_hash=hash_password(password), is_admin=True))
            else:
                user.password_hash = hash_password(password)
                user.is_admin = True

    def check_password(self, email: str, password: str) -> bool:
        with self.session() as s:
            user = s.scalar(select(User).where(User.email == email))
            return user is not None and verify_password(password, user.password_hash)

    # quarantine and warnings --------------------------------------------------------------------

    def _insert_ignore(self, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        with self.engine.begin() as conn:
            for start in range(0, len(rows), 500):
                stmt = insert(model).values(list(rows[start : start + 500]))
                conn.execute(stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]))

    def add_quarantine(self, entries: Iterable[QuarantineEntry]) -> None:
        """Store refused records; an entry seen before (same dedupe key) is kept once."""
        self._insert_ignore(QuarantinedRecord, [e.__dict__ for e in entries])

    def add_warnings(self, entries: Iterable[WarningEntry]) -> None:
        now = dt.datetime.now(dt.UTC)
        self._insert_ignore(IdentityWarning, [{**e.__dict__, "created_at": now} for e in entries])

    def quarantine(self, project_id: int, limit: int = 100, offset: int = 0, source: str | None = None
                   ) -> list[dict[str, Any]]:
        """Refused records, newest first; with `source`, only those of that source (native, xapi, ...)."""
        with self.session() as s:
            rows = s.scalars(
                select(QuarantinedRecord)
                .where(*_quarantined(project_id, source))
                .order_by(QuarantinedRecord.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [
                {
                    "id": r.id,
                    "received_at": r.received_at.isoformat(),
                    "source": r.source,
                    "location": r.location,
                    "reason": r.reason,
                    "record": r.record,
                }
                for r in rows
            ]

    def quarantine_count(self, project_id: int, source: str | None = None) -> int:
        with self.session() as s:
            q = select(func.count()).select_from(QuarantinedRecord)
            return int(s.scalar(q.where(*_quarantined(project_id, source))) or 0)

    def quarantine_sources(self, project_id: int) -> dict[str, int]:
        """How many records each source had refused, by source name."""
        with self.session() as s:
            rows = s.execute(select(QuarantinedRecord.source, func.count()).where(
                QuarantinedRecord.project_id == project_id).group_by(QuarantinedRecord.source)
                .order_by(QuarantinedRecord.source))
            return {source: int(n) for source, n in rows}

    def warnings(self, project_id: int, limit: int = 100) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(
                select(IdentityWarning)
                .where(IdentityWarning.project_id == project_id)
                .order_by(IdentityWarning.id.desc())
                .limit(limit)
            )
            return [
                {
                    "id": w.id,
                    "created_at": w.created_at.isoformat(),
                    "event_time": w.event_time.isoformat() if w.event_time else None,
                    "kind": w.kind,
                    "message": w.message,
                    "detail": w.detail,
                }
                for w in rows
            ]
