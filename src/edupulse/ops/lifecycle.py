"""Account lifecycle policies (seed 001): accounts idle for more than 30 days are disabled, analysts idle for
more than 15 days become viewers, analysts who only viewed dashboards and reports in the last 30 days
become viewers. Configurable per organization (org setting `lifecycle`); every change is audited and the
admins of the affected projects are notified."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edupulse.auth.permissions import Role
from edupulse.meta.accounts import UserInfo
from edupulse.meta.db import MetadataStore
from edupulse.meta.governance import OrgSetting

ACTOR = "account lifecycle"


class LifecyclePolicy(BaseModel):
    """The organization's policy; a number of days of 0 turns that rule off."""

    model_config = ConfigDict(extra="forbid")

    disable_idle_days: int = Field(30, ge=0, description="disable accounts idle for more than this many days")
    downgrade_idle_analyst_days: int = Field(15, ge=0, description="analysts idle longer become viewers")
    downgrade_view_only_days: int = Field(
        30, ge=0, description="analysts who only viewed dashboards and reports in this many days become viewers")
    exempt_admins: bool = Field(True, description="never disable an admin of any project (or a superuser)")


@dataclass(frozen=True)
class Change:
    user_id: int
    email: str
    action: str  # disable | downgrade
    project_id: int | None
    reason: str


def load_policy(meta: MetadataStore) -> LifecyclePolicy:
    with meta.session() as s:
        row = s.get(OrgSetting, "lifecycle")
        return LifecyclePolicy.model_validate(row.value) if row else LifecyclePolicy()


def save_policy(meta: MetadataStore, policy: LifecyclePolicy, actor: str, actor_user_id: int | None = None) -> None:
    now = dt.datetime.now(dt.UTC)
    with meta.session() as s, s.begin():
        row = s.get(OrgSetting, "lifecycle")
        before = dict(row.value) if row else LifecyclePolicy().model_dump()
        if row is None:
            s.add(OrgSetting(key="lifecycle", value=policy.model_dump(), updated_at=now))
        else:
            row.value, row.updated_at = policy.model_dump(), now
    meta.audit.record("lifecycle.settings", actor, actor_user_id=actor_user_id, target="lifecycle",
                      detail={"before": before, "after": policy.model_dump()})


def _last_active(user: UserInfo) -> dt.datetime:
    return max(m for m in (user.created_at, user.last_login_at, user.last_active_at) if m is not None)


def plan(meta: MetadataStore, now: dt.datetime, policy: LifecyclePolicy | None = None) -> list[Change]:
    """What the policy would change now (nothing is written)."""
    policy = policy or load_policy(meta)
    changes: list[Change] = []
    for user in meta.accounts.users():
        if user.disabled:
            continue
        idle = now - _last_active(user)
        is_admin = user.superuser or Role.admin in user.roles.values()
        if policy.disable_idle_days and idle > dt.timedelta(days=policy.disable_idle_days) and not (
                is_admin and policy.exempt_admins):
            changes.append(Change(user.id, user.email, "disable", None,
                                  f"no activity for {idle.days} days (more than {policy.disable_idle_days})"))
            continue
        analyst_in = [p for p, r in user.roles.items() if r is Role.analyst]
        if not analyst_in or user.superuser:
            continue
        reason = None
        if policy.downgrade_idle_analyst_days and idle > dt.timedelta(days=policy.downgrade_idle_analyst_days):
            reason = f"analyst with no activity for {idle.days} days (more than {policy.downgrade_idle_analyst_days})"
        elif policy.downgrade_view_only_days and now - user.created_at > dt.timedelta(
                days=policy.downgrade_view_only_days):
            since = (now - dt.timedelta(days=policy.downgrade_view_only_days)).date()
            kinds = meta.accounts.activity_kinds(user.id, since)
            if kinds and kinds <= {"view"}:
                reason = ("analyst who only viewed dashboards and reports in the last "
                          f"{policy.downgrade_view_only_days} days")
        if reason:
            changes += [Change(user.id, user.email, "downgrade", p, reason) for p in analyst_in]
    return changes


def apply(meta: MetadataStore, changes: list[Change], now: dt.datetime, notifier: Any = None) -> None:
    """Carry out planned changes, audit each, and notify the admins of the projects concerned."""
    for change in changes:
        if change.action == "disable":
            meta.accounts.set_disabled(change.user_id, True, change.reason, now=now)
            meta.audit.record("user.disable", ACTOR, target=change.email, at=now,
                              detail={"reason": change.reason, "policy": "lifecycle"})
        else:
            assert change.project_id is not None
            meta.accounts.set_role(change.user_id, change.project_id, Role.viewer)
            meta.audit.record("user.role", ACTOR, project_id=change.project_id, target=change.email, at=now,
                              detail={"before": "analyst", "after": "viewer", "reason": change.reason,
                                      "policy": "lifecycle"})
    if changes and notifier is not None:
        notifier.notify_admins(_admins_of(meta, changes), "lifecycle", "EduPulse account review: "
                               f"{len(changes)} change(s)", _summary(changes), now)


def run(meta: MetadataStore, now: dt.datetime, dry_run: bool, actor: str = ACTOR, notifier: Any = None
        ) -> list[Change]:
    """The account review: plan, and unless dry_run, apply. Each run is audited."""
    changes = plan(meta, now)
    if not dry_run:
        apply(meta, changes, now, notifier)
        meta.audit.record("lifecycle.run", actor, at=now, detail={"changes": [asdict(c) for c in changes]})
    return changes


def _admins_of(meta: MetadataStore, changes: list[Change]) -> list[UserInfo]:
    users = meta.accounts.users()
    affected = {c.user_id for c in changes}
    projects = {p for u in users if u.id in affected for p in u.roles}
    return [u for u in users if not u.disabled and (
        u.superuser or any(u.roles.get(p) is Role.admin for p in projects))]


def _summary(changes: list[Change]) -> str:
    lines = ["The account review changed these accounts:", ""]
    for c in changes:
        what = "disabled" if c.action == "disable" else f"downgraded to viewer in project {c.project_id}"
        lines.append(f"- {c.email}: {what} ({c.reason})")
    lines += ["", "Re-enable an account or restore a role in the members page or with the edupulse command."]
    return "\n".join(lines)
