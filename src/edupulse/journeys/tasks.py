"""Tasks for advisors (call the lead, recall the student): a work queue in the metadata database. A task step
makes one task per entry and step (the delivery's unique key), assigned to one of the project's advisors (or
the advisors the step names) by round robin or by capacity (the fewest open tasks). Advisors see their own
tasks and close them as done or no answer."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import func, select

from edupulse.auth.permissions import Role
from edupulse.journeys.model import SpecError
from edupulse.journeys.outbox import Outcome, Outgoing
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyTask
from edupulse.meta.journeys import aware

OUTCOMES = ("done", "no_answer")


class TaskQueue:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        # tasks are made by several sending threads: one at a time, so round robin sees the last assignment
        self._lock = threading.Lock()

    def advisors(self, project_id: int, emails: list[str]) -> list[int]:
        """Advisors (not disabled) of the project, in id order; only those named when `emails` is given."""
        wanted = {e.strip().lower() for e in emails}
        return sorted(u.id for u in self.meta.accounts.users() if not u.disabled
                      and u.roles.get(project_id) is Role.advisor and (not wanted or u.email.lower() in wanted))

    def create(self, out: Outgoing, now: dt.datetime) -> Outcome:
        """The task of a delivery (once: a retry finds it made)."""
        request = out.request
        with self._lock, self.meta.session() as s, s.begin():
            made = s.scalar(select(JourneyTask.id).where(JourneyTask.delivery_id == out.id))
            if made is not None:
                return Outcome(True, f"task {made}")
            candidates = self.advisors(out.project_id, list(request.get("advisors") or []))
            if not candidates:
                return Outcome(False, "the project has no advisor to give the task to", retry=False)
            assignee = self._pick(s, out.project_id, candidates, request.get("assign", "round_robin"))
            due = request.get("due_seconds")
            task = JourneyTask(project_id=out.project_id, journey_id=out.journey_id, delivery_id=out.id,
                               person_key=out.person_key, person=dict(request.get("person") or {}),
                               title=str(request.get("title", ""))[:300], note=str(request.get("note", "")),
                               assignee_user_id=assignee, status="open", created_at=now,
                               due_at=now + dt.timedelta(seconds=float(due)) if due else None)
            s.add(task)
            s.flush()
            return Outcome(True, f"task {task.id} for user {assignee}")

    @staticmethod
    def _pick(s: Any, project_id: int, candidates: list[int], how: str) -> int:
        if how == "capacity":
            open_tasks = dict(s.execute(select(JourneyTask.assignee_user_id, func.count()).where(
                JourneyTask.project_id == project_id, JourneyTask.status == "open",
                JourneyTask.assignee_user_id.in_(candidates)).group_by(JourneyTask.assignee_user_id)).all())
            return min(candidates, key=lambda u: (open_tasks.get(u, 0), u))
        last = s.scalar(select(JourneyTask.assignee_user_id).where(
            JourneyTask.project_id == project_id, JourneyTask.assignee_user_id.in_(candidates))
            .order_by(JourneyTask.id.desc()).limit(1))
        later = [u for u in candidates if last is not None and u > last]
        return later[0] if later else candidates[0]

    def tasks(self, project_id: int, assignee: int | None, status: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
        """Newest first; only the assignee's when `assignee` is given."""
        query = select(JourneyTask).where(JourneyTask.project_id == project_id).order_by(JourneyTask.id.desc())
        if assignee is not None:
            query = query.where(JourneyTask.assignee_user_id == assignee)
        if status is not None:
            query = query.where(JourneyTask.status == status)
        with self.meta.session() as s:
            return [_task(t) for t in s.scalars(query.limit(max(1, min(limit, 1000))))]

    def close(self, project_id: int, task_id: int, outcome: str, user_id: int | None, any_task: bool,
              now: dt.datetime) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise SpecError("outcome", f"is one of {', '.join(OUTCOMES)}")
        with self.meta.session() as s, s.begin():
            task = s.get(JourneyTask, task_id)
            if task is None or task.project_id != project_id or not (any_task or task.assignee_user_id == user_id):
                raise SpecError("task", f"no task {task_id} of yours in this project", 404)
            if task.status != "open":
                raise SpecError("task", f"task {task_id} is closed already ({task.status})", 409)
            task.status, task.closed_at = outcome, now
            return _task(task)


def _task(t: JourneyTask) -> dict[str, Any]:
    def iso(moment: dt.datetime | None) -> str | None:
        found = aware(moment)
        return found.isoformat() if found else None

    return {"id": t.id, "journey": t.journey_id, "person": t.person_key, "identities": t.person.get("ids", []),
            "properties": t.person.get("properties", {}), "title": t.title, "note": t.note,
            "assignee": t.assignee_user_id, "status": t.status, "created_at": iso(t.created_at),
            "due_at": iso(t.due_at), "closed_at": iso(t.closed_at)}
