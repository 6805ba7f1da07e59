"""The audit log: append and read. There is deliberately no update or delete here, and the database refuses
both (triggers in the 0002 migration)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from edupulse.meta.governance import AuditEntry

if TYPE_CHECKING:
    from edupulse.meta.db import MetadataStore

# What is recorded (docs/accounts.md lists them).
ACTIONS = (
    "auth.sign_in", "auth.sign_in_failed", "auth.locked", "auth.sign_out", "auth.sign_out_everywhere",
    "user.create", "user.role", "user.password_reset", "user.disable", "user.enable",
    "key.create", "key.revoke", "lifecycle.run", "lifecycle.settings", "metric.create", "metric.update",
    "metric.delete", "export", "catalogue.change", "delete", "advisor.assign", "advisor.unassign",
    "experiment.create", "experiment.update", "experiment.start", "experiment.stop",
    "tag.create", "tag.update", "tag.delete", "tag.run", "tag.upload",
    "pack.install", "pack.uninstall",
    "journey.create", "journey.update", "journey.start", "journey.pause", "journey.finish", "journey.delete",
    "journey.channel", "journey.settings", "journey.replay",
)


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None  # exact, or a prefix ending with "." (e.g. "auth.")
    actor_user_id: int | None = None
    project_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    target: str | None = None
    limit: int = 100
    before_id: int | None = None  # paging: entries older than this id


class AuditLog:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def record(self, action: str, actor: str, *, actor_user_id: int | None = None, project_id: int | None = None,
               target: str = "", detail: dict[str, Any] | None = None, client: str = "",
               at: dt.datetime | None = None) -> int:
        """Append one entry; returns its id."""
        with self.meta.session() as s, s.begin():
            row = AuditEntry(at=at or dt.datetime.now(dt.UTC), actor=actor[:300], actor_user_id=actor_user_id,
                             project_id=project_id, action=action[:64], target=target[:300], detail=detail or {},
                             client=client[:200])
            s.add(row)
            s.flush()
            return row.id

    def entries(self, f: AuditFilter) -> list[dict[str, Any]]:
        """Newest first."""
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(f.limit, 1000)))
        if f.action:
            q = q.where(AuditEntry.action.startswith(f.action) if f.action.endswith(".")
                        else AuditEntry.action == f.action)
        if f.actor_user_id is not None:
            q = q.where(AuditEntry.actor_user_id == f.actor_user_id)
        if f.project_id is not None:
            q = q.where(AuditEntry.project_id == f.project_id)
        if f.since is not None:
            q = q.where(AuditEntry.at >= f.since)
        if f.until is not None:
            q = q.where(AuditEntry.at < f.until)
        if f.target:
            q = q.where(AuditEntry.target == f.target)
        if f.before_id is not None:
            q = q.where(AuditEntry.id < f.before_id)
        with self.meta.session() as s:
            return [_row(r) for r in s.scalars(q)]

    def count(self) -> int:
        with self.meta.session() as s:
            return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def _row(r: AuditEntry) -> dict[str, Any]:
    at = r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)
    return {"id": r.id, "at": at.isoformat(), "actor": r.actor, "actor_user_id": r.actor_user_id,
            "project_id": r.project_id, "action": r.action, "target": r.target, "detail": r.detail,
            "client": r.client}
