"""Accounts: users, memberships, sign-in with lockout, sessions, personal API keys, activity and advisor
assignments, on the metadata database."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from edupulse.auth.passwords import check_strength, dummy_hash, hash_password, needs_rehash, verify_password
from edupulse.auth.permissions import Role, Scope
from edupulse.meta.governance import AdvisorAssignment, AuthSession, Membership, PersonalKey, UserActivity
from edupulse.meta.models import User

if TYPE_CHECKING:
    from edupulse.meta.db import MetadataStore

MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
SESSION_TTL = dt.timedelta(days=14)


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message says why."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


@dataclass(frozen=True)
class UserInfo:
    id: int
    email: str
    name: str
    superuser: bool
    disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    last_active_at: dt.datetime | None
    roles: dict[int, Role] = field(default_factory=dict)  # project id -> role

    def role_in(self, project_id: int) -> Role | None:
        if self.superuser:
            return Role.admin
        return self.roles.get(project_id)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "email": self.email, "name": self.name, "superuser": self.superuser,
                "disabled": self.disabled, "created_at": self.created_at.isoformat(),
                "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
                "last_active_at": self.last_active_at.isoformat() if self.last_active_at else None,
                "roles": {str(k): v.value for k, v in self.roles.items()}}


@dataclass(frozen=True)
class KeyInfo:
    id: int
    user_id: int
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked: bool

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "user_id": self.user_id, "name": self.name, "prefix": self.prefix,
                "scopes": sorted(s.value for s in self.scopes), "created_at": self.created_at.isoformat(),
                "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
                "revoked": self.revoked}


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: a user, or why not (`reason` is safe to show)."""

    user: UserInfo | None
    reason: str = ""
    locked_until: dt.datetime | None = None


@dataclass(frozen=True)
class SessionInfo:
    id: int
    user: UserInfo
    csrf_token: str
    expires_at: dt.datetime


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise AccountError(f"unknown role {value!r}; use one of {', '.join(r.value for r in Role)}") from None


def parse_scopes(values: list[str] | str) -> frozenset[Scope]:
    items = values.replace(",", " ").split() if isinstance(values, str) else values
    if not items:
        raise AccountError("a key needs at least one scope: query or admin")
    try:
        return frozenset(Scope(v) for v in items)
    except ValueError:
        raise AccountError(f"unknown scope in {items!r}; use query and/or admin") from None


class Accounts:
    """Every account operation; times are passed in (`now`) so tests can run on a simulated clock."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def _session(self) -> Session:
        return self.meta.session()

    # users ------------------------------------------------------------------------------------------

    def _info(self, s: Session, user: User) -> UserInfo:
        roles = {m.project_id: Role(m.role) for m in s.scalars(select(Membership).where(Membership.user_id == user.id))}
        return UserInfo(id=user.id, email=user.email, name=user.name or "", superuser=bool(user.is_admin),
                        disabled=user.disabled_at is not None, created_at=_aware(user.created_at) or user.created_at,
                        last_login_at=_aware(user.last_login_at), last_active_at=_aware(user.last_active_at),
                        roles=roles)

    def create_user(self, email: str, password: str, name: str = "", superuser: bool = False,
                    now: dt.datetime | None = None) -> UserInfo:
        email = normalize_email(email)
        problem = check_strength(password)
        if problem:
            raise AccountError(problem)
        with self._session() as s, s.begin():
            if s.scalar(select(User).where(User.email == email)) is not None:
                raise AccountError(f"a user with email {email} exists already")
            user = User(email=email, name=name.strip()[:100], password_hash=hash_password(password),
                        is_admin=superuser, created_at=now or dt.datetime.now(dt.UTC))
            s.add(user)
            s.flush()
            return self._info(s, user)

    def user(self, user_id: int) -> UserInfo | None:
        with self._session() as s:
            user = s.get(User, user_id)
            return self._info(s, user) if user else None

    def user_by_email(self, email: str) -> UserInfo | None:
        with self._session() as s:
            user = s.scalar(select(User).where(User.email == normalize_email(email)))
            return self._info(s, user) if user else None

    def users(self, project_id: int | None = None) -> list[UserInfo]:
        """Every user, or the members of one project (superusers included)."""
        with self._session() as s:
            out = [self._info(s, u) for u in s.scalars(select(User).order_by(User.id))]
        if project_id is None:
            return out
        return [u for u in out if u.role_in(project_id) is not None]

    def set_role(self, user_id: int, project_id: int, role: Role | None) -> Role | None:
        """Give a user a role in a project (None: remove them); returns the role they had."""
        with self._session() as s, s.begin():
            if s.get(User, user_id) is None:
                raise AccountError(f"no user with id {user_id}")
            current = s.scalar(select(Membership).where(Membership.user_id == user_id,
                                                        Membership.project_id == project_id))
            before = Role(current.role) if current else None
            if role is None:
                if current is not None:
                    s.delete(current)
            elif current is None:
                s.add(Membership(user_id=user_id, project_id=project_id, role=role.value))
            else:
                current.role = role.value
            return before

    def set_password(self, user_id: int, password: str) -> None:
        """Set a new password (admin reset), clear the lockout and sign the user out everywhere."""
        problem = check_strength(password)
        if problem:
            raise AccountError(problem)
        with self._session() as s, s.begin():
            user = s.get(User, user_id)
            if user is None:
                raise AccountError(f"no user with id {user_id}")
            user.password_hash = hash_password(password)
            user.failed_logins = 0
            user.locked_until = None
        self.revoke_sessions(user_id)

    def set_disabled(self, user_id: int, disabled: bool, reason: str = "", now: dt.datetime | None = None) -> bool:
        """Disable (signs out everywhere, keys stop working) or enable an account; returns whether it changed."""
        with self._session() as s, s.begin():
            user = s.get(User, user_id)
            if user is None:
                raise AccountError(f"no user with id {user_id}")
            if (user.disabled_at is not None) == disabled:
                return False
            user.disabled_at = (now or dt.datetime.now(dt.UTC)) if disabled else None
            user.disabled_reason = reason[:300] if disabled else None
            if not disabled:  # a re-enabled account starts a fresh idle period
                user.last_active_at = now or dt.datetime.now(dt.UTC)
        if disabled:
            self.revoke_sessions(user_id)
        return True

    # sign-in ----------------------------------------------------------------------------------------

    def authenticate(self, email: str, password: str, now: dt.datetime, max_failed: int = MAX_FAILED_LOGINS,
                     lockout: dt.timedelta = LOCKOUT) -> SignIn:
        """Check a password, counting failures: after MAX_FAILED_LOGINS in a row the account is locked for
        LOCKOUT (a correct password does not open a locked account)."""
        try:
            email = normalize_email(email)
        except AccountError:
            email = ""
        with self._session() as s, s.begin():
            user = s.scalar(select(User).where(User.email == email)) if email else None
            if user is None:
                verify_password(password, dummy_hash())
                return SignIn(None, "wrong email or password")
            locked = _aware(user.locked_until)
            if locked is not None and locked > now:
                return SignIn(None, f"too many failed sign-ins: the account is locked until {locked:%H:%M} UTC",
                              locked_until=locked)
            if not verify_password(password, user.password_hash):
                user.failed_logins = (user.failed_logins or 0) + 1
                if user.failed_logins >= max_failed:
                    user.locked_until = now + lockout
                    user.failed_logins = 0
                    return SignIn(None, "wrong email or password; too many failed sign-ins: the account is locked "
                                  f"for {int(lockout.total_seconds() // 60)} minutes", locked_until=user.locked_until)
                return SignIn(None, "wrong email or password")
            if user.disabled_at is not None:
                return SignIn(None, "this account is disabled: ask an admin of your project to enable it")
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = now
            user.last_active_at = now
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            return SignIn(self._info(s, user))

    # sessions ---------------------------------------------------------------------------------------

    def create_session(self, user_id: int, now: dt.datetime, client: str = "",
                       ttl: dt.timedelta = SESSION_TTL) -> tuple[str, SessionInfo]:
        """A new session with a fresh random token (never one the client offered: no session fixation)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self._session() as s, s.begin():
            row = AuthSession(token_hash=token_hash(token), user_id=user_id, csrf_token=csrf, created_at=now,
                              expires_at=now + ttl, client=client[:200])
            s.add(row)
            s.flush()
            user = s.get(User, user_id)
            assert user is not None
            return token, SessionInfo(row.id, self._info(s, user), csrf, now + ttl)

    def session_by_token(self, token: str, now: dt.datetime) -> SessionInfo | None:
        with self._session() as s:
            row = s.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
            if row is None or row.revoked_at is not None:
                return None
            expires = _aware(row.expires_at)
            if expires is None or expires <= now:
                return None
            user = s.get(User, row.user_id)
            if user is None or user.disabled_at is not None:
                return None
            return SessionInfo(row.id, self._info(s, user), row.csrf_token, expires)

    def revoke_session(self, token: str, now: dt.datetime | None = None) -> None:
        with self._session() as s, s.begin():
            s.execute(update(AuthSession).where(AuthSession.token_hash == token_hash(token))
                      .values(revoked_at=now or dt.datetime.now(dt.UTC)))

    def revoke_sessions(self, user_id: int, now: dt.datetime | None = None) -> int:
        """Sign a user out everywhere; returns how many sessions ended."""
        with self._session() as s, s.begin():
            result = s.execute(update(AuthSession).where(AuthSession.user_id == user_id,
                                                         AuthSession.revoked_at.is_(None))
                               .values(revoked_at=now or dt.datetime.now(dt.UTC)))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # personal API keys ------------------------------------------------------------------------------

    def create_key(self, user_id: int, name: str, scopes: frozenset[Scope],
                   now: dt.datetime | None = None) -> tuple[str, KeyInfo]:
        """A new personal key; the key itself is returned only here."""
        if not scopes:
            raise AccountError("a key needs at least one scope: query or admin")
        key = "pk_" + secrets.token_urlsafe(32)
        with self._session() as s, s.begin():
            if s.get(User, user_id) is None:
                raise AccountError(f"no user with id {user_id}")
            row = PersonalKey(user_id=user_id, name=(name.strip() or "key")[:100], key_hash=token_hash(key),
                              prefix=key[:10], scopes=" ".join(sorted(sc.value for sc in scopes)),
                              created_at=now or dt.datetime.now(dt.UTC))
            s.add(row)
            s.flush()
            return key, _key_info(row)

    def key_by_token(self, key: str, now: dt.datetime) -> tuple[KeyInfo, UserInfo] | None:
        """The key and its owner when the key is valid (not revoked, owner not disabled); notes its use."""
        with self._session() as s, s.begin():
            row = s.scalar(select(PersonalKey).where(PersonalKey.key_hash == token_hash(key)))
            if row is None or row.revoked_at is not None:
                return None
            user = s.get(User, row.user_id)
            if user is None or user.disabled_at is not None:
                return None
            last = _aware(row.last_used_at)
            if last is None or now - last > dt.timedelta(minutes=1):  # one write a minute is enough
                row.last_used_at = now
            return _key_info(row), self._info(s, user)

    def keys(self, user_id: int | None = None) -> list[KeyInfo]:
        with self._session() as s:
            q = select(PersonalKey).order_by(PersonalKey.id)
            if user_id is not None:
                q = q.where(PersonalKey.user_id == user_id)
            return [_key_info(k) for k in s.scalars(q)]

    def key(self, key_id: int) -> KeyInfo | None:
        with self._session() as s:
            row = s.get(PersonalKey, key_id)
            return _key_info(row) if row else None

    def revoke_key(self, key_id: int, now: dt.datetime | None = None) -> bool:
        with self._session() as s, s.begin():
            row = s.get(PersonalKey, key_id)
            if row is None:
                raise AccountError(f"no API key with id {key_id}")
            if row.revoked_at is not None:
                return False
            row.revoked_at = now or dt.datetime.now(dt.UTC)
            return True

    # activity ---------------------------------------------------------------------------------------

    def record_activity(self, user_id: int, kind: str, now: dt.datetime) -> None:
        """Count what a user did today (view, analyze, admin): the account lifecycle reads it."""
        day = now.date()
        with self._session() as s, s.begin():
            row = s.scalar(select(UserActivity).where(UserActivity.user_id == user_id, UserActivity.day == day,
                                                      UserActivity.kind == kind))
            if row is None:
                s.add(UserActivity(user_id=user_id, day=day, kind=kind, count=1))
            else:
                row.count += 1
            s.execute(update(User).where(User.id == user_id).values(last_active_at=now))

    def activity_kinds(self, user_id: int, since: dt.date) -> set[str]:
        with self._session() as s:
            rows = s.scalars(select(UserActivity.kind).where(UserActivity.user_id == user_id,
                                                             UserActivity.day >= since))
            return set(rows)

    # advisors ---------------------------------------------------------------------------------------

    def assign(self, project_id: int, user_id: int, id_type: str, id_value: str) -> None:
        """Assign the person with identity (id_type, id_value) to an advisor."""
        with self._session() as s, s.begin():
            exists = s.scalar(select(AdvisorAssignment).where(
                AdvisorAssignment.project_id == project_id, AdvisorAssignment.user_id == user_id,
                AdvisorAssignment.id_type == id_type, AdvisorAssignment.id_value == id_value))
            if exists is None:
                s.add(AdvisorAssignment(project_id=project_id, user_id=user_id, id_type=id_type, id_value=id_value))

    def unassign(self, project_id: int, user_id: int, id_type: str, id_value: str) -> None:
        with self._session() as s, s.begin():
            s.execute(delete(AdvisorAssignment).where(
                AdvisorAssignment.project_id == project_id, AdvisorAssignment.user_id == user_id,
                AdvisorAssignment.id_type == id_type, AdvisorAssignment.id_value == id_value))

    def assignments(self, project_id: int, user_id: int) -> list[tuple[str, str]]:
        """(id_type, id_value) of the persons assigned to an advisor in a project."""
        with self._session() as s:
            rows = s.execute(select(AdvisorAssignment.id_type, AdvisorAssignment.id_value).where(
                AdvisorAssignment.project_id == project_id, AdvisorAssignment.user_id == user_id)
                .order_by(AdvisorAssignment.id))
            return [(t, v) for t, v in rows]


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or " " in email:
        raise AccountError(f"{email!r} is not an email address")
    return email


def _key_info(row: PersonalKey) -> KeyInfo:
    return KeyInfo(id=row.id, user_id=row.user_id, name=row.name, prefix=row.prefix,
                   scopes=frozenset(Scope(v) for v in row.scopes.split()),
                   created_at=_aware(row.created_at) or row.created_at, last_used_at=_aware(row.last_used_at),
                   revoked=row.revoked_at is not None)
