"""What the API and the pages do with journeys: check a definition against the project (segments, channels,
destinations), keep versions and the audit log, start / pause / finish, list deliveries, count results.
Callers pass the platform's parts; no HTTP here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, distinct, func, select

from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.destinations import DestinationRefused, check
from edupulse.journeys.engine import HOLDOUT, TREATMENT
from edupulse.journeys.model import (
    Audience,
    EmailAction,
    EventTrigger,
    JourneySpec,
    RobotAction,
    ScheduleTrigger,
    SegmentCondition,
    SegmentTrigger,
    SetTagAction,
    SpecError,
    TagCondition,
    TagTrigger,
    WebhookAction,
    parse_spec,
    walk,
)
from edupulse.journeys.person import Person
from edupulse.journeys.render import PLACEHOLDER
from edupulse.meta.db import MetadataError, MetadataStore, ProjectInfo
from edupulse.meta.journey_models import JourneyDelivery, JourneyEntry
from edupulse.meta.journeys import Journey, JourneyStore, aware
from edupulse.ops.segments import SegmentCatalog
from edupulse.queries.errors import QueryError
from edupulse.stats import two_proportions
from edupulse.tags.upload import typed_value

ENTERED = ("active", "waiting", "done", "exited")
# what this server can run today; other triggers and actions are refused with a reason when saved
TRIGGERS = (ScheduleTrigger, EventTrigger, SegmentTrigger)
ACTIONS = ("webhook", "email", "dingtalk", "wecom", "task", "set_property")
# (project, tag name) -> the tag's value type, if a journey may set a person's value of it; raises with the reason
SettableTag = Callable[[ProjectInfo, str], str]


@dataclass(frozen=True)
class Actor:
    name: str
    user_id: int | None = None
    client: str = ""


class JourneyService:
    def __init__(self, meta: MetadataStore, channels: ChannelStore, server_hosts: str = "",
                 settable_tag: SettableTag | None = None, tags_readable: bool = False) -> None:
        self.meta, self.channels, self.server_hosts = meta, channels, server_hosts
        self.settable_tag = settable_tag
        self.actions = (*ACTIONS, "set_tag") if settable_tag is not None else ACTIONS
        self.tags_readable = tags_readable
        self.store = JourneyStore(meta)

    # definitions ---------------------------------------------------------------------------------

    def checked(self, project: ProjectInfo, data: Any) -> JourneySpec:
        """The definition, refused (SpecError with the field) when it names what the project lacks."""
        spec = parse_spec(data)
        if not self.tags_readable and _uses_tags(spec):
            raise SpecError(_uses_tags(spec), "tags are not available on this server yet")
        if not isinstance(spec.trigger, (*TRIGGERS, TagTrigger)):
            raise SpecError("trigger", f"{_kind(spec.trigger)} triggers are not available on this server yet")
        segments = SegmentCatalog(self.meta)
        for where, segment in _segments(spec):
            if segments.get(project.id, segment) is None:
                raise SpecError(where, f"segment {segment!r} does not exist in this project")
        channels = {c.name: c.kind for c in self.channels.all(project.id)}
        allowed = [h for h in self.server_hosts.split(",") if h.strip()]
        allowed += self.channels.settings(project.id).allowed_hosts
        for path, step in walk(list(spec.steps)):
            where = f"steps.{path}"
            action = getattr(step, "action", None)
            if action is None:
                continue
            if action not in self.actions:
                raise SpecError(f"{where}.action", f"{action} actions are not available on this server yet")
            if isinstance(step, WebhookAction):
                try:
                    check(step.url, allowed, resolve=False)
                except DestinationRefused as exc:
                    raise SpecError(f"{where}.url", str(exc)) from None
            if isinstance(step, EmailAction | RobotAction | WebhookAction) and step.channel is not None:
                kind = "smtp" if isinstance(step, EmailAction) else step.action
                if channels.get(step.channel) != kind:
                    raise SpecError(f"{where}.channel", f"no {kind} channel named {step.channel!r} in this project; "
                                    "an admin adds channels (with their secrets) first")
            elif isinstance(step, WebhookAction) and list(channels.values()).count("webhook") != 1:
                raise SpecError(f"{where}.channel", "webhooks are signed: name the webhook channel whose secret "
                                "signs them (an admin adds one first)")
            if isinstance(step, SetTagAction) and self.settable_tag is not None:
                self._check_set_tag(project, step, where)
        return spec

    def _check_set_tag(self, project: ProjectInfo, step: SetTagAction, where: str) -> None:
        """A set_tag names an uploaded person tag of the project, and a value of its type (or a template)."""
        assert self.settable_tag is not None
        try:
            value_type = self.settable_tag(project, step.tag)
        except MetadataError:
            raise SpecError(f"{where}.tag", f"tag {step.tag!r} does not exist in this project: create an uploaded "
                            "tag (definition type uploaded) for the values journeys set", 409) from None
        except QueryError as exc:  # the tag service's reason it cannot be set by hand
            raise SpecError(f"{where}.tag", str(exc), 409) from None
        if isinstance(step.value, str) and PLACEHOLDER.search(step.value):
            return  # filled in per person: checked when it is set (a value that does not fit is a failed delivery)
        try:
            typed_value(value_type, step.value)
        except ValueError as exc:
            raise SpecError(f"{where}.value", str(exc)) from None

    def create(self, project: ProjectInfo, data: Any, actor: Actor, now: dt.datetime) -> Journey:
        made = self.store.create(project.id, self.checked(project, data), actor.name, now)
        self._audit("journey.create", made, actor)
        return made

    def update(self, project: ProjectInfo, journey_id: int, data: Any, actor: Actor, now: dt.datetime) -> Journey:
        changed = self.store.update(project.id, journey_id, self.checked(project, data), actor.name, now)
        self._audit("journey.update", changed, actor)
        return changed

    def transition(self, project: ProjectInfo, journey_id: int, change: str, actor: Actor,
                   now: dt.datetime) -> Journey:
        current = self.store.get(project.id, journey_id)
        if current is not None and change == "start":
            self.checked(project, current.spec.model_dump(mode="json", by_alias=True, exclude_none=True))
        done = self.store.transition(project.id, journey_id, change, actor.name, now)
        self._audit(f"journey.{change}", done, actor)
        return done

    def delete(self, project: ProjectInfo, journey_id: int, actor: Actor) -> Journey:
        gone = self.store.delete(project.id, journey_id)
        self._audit("journey.delete", gone, actor)
        return gone

    def _audit(self, action: str, journey: Journey, actor: Actor) -> None:
        self.meta.audit.record(action, actor.name, actor_user_id=actor.user_id, project_id=journey.project_id,
                               target=f"journey:{journey.id}", client=actor.client,
                               detail={"name": journey.name, "version": journey.version,
                                       "status": journey.status.value})

    # what happened -------------------------------------------------------------------------------

    def deliveries(self, project: ProjectInfo, journey_id: int, limit: int = 100, before_id: int | None = None,
                   status: str | None = None) -> list[dict[str, Any]]:
        """Newest first: who, which step and action, status, the reason of a skip or failure, times."""
        query = (select(JourneyDelivery, JourneyEntry.person).join(JourneyEntry, JourneyEntry.id ==
                                                                    JourneyDelivery.entry_id)
                 .where(JourneyDelivery.project_id == project.id, JourneyDelivery.journey_id == journey_id)
                 .order_by(JourneyDelivery.id.desc()).limit(max(1, min(limit, 1000))))
        if before_id is not None:
            query = query.where(JourneyDelivery.id < before_id)
        if status is not None:
            query = query.where(JourneyDelivery.status == status)
        with self.meta.session() as s:
            return [_delivery(d, person) for d, person in s.execute(query)]

    def results(self, project: ProjectInfo, journey: Journey, alpha: float = 0.05) -> dict[str, Any]:
        """Entered, sent and converted per arm, the funnel, and the uplift of treatment over the holdout."""
        with self.meta.session() as s:
            arms = {arm: (int(n), int(c or 0)) for arm, n, c in s.execute(
                select(JourneyEntry.arm, func.count(), func.sum(case((JourneyEntry.converted_at.is_not(None), 1),
                                                                     else_=0)))
                .where(JourneyEntry.journey_id == journey.id, JourneyEntry.state.in_(ENTERED))
                .group_by(JourneyEntry.arm))}
            reached = dict(s.execute(
                select(JourneyDelivery.status, func.count(distinct(JourneyDelivery.entry_id)))
                .join(JourneyEntry, and_(JourneyEntry.id == JourneyDelivery.entry_id,
                                         JourneyEntry.arm == TREATMENT))
                .where(JourneyDelivery.journey_id == journey.id).group_by(JourneyDelivery.status)).all())
            steps = [{"step": step, "action": action, "status": status, "count": int(n)} for step, action, status, n
                     in s.execute(select(JourneyDelivery.step, JourneyDelivery.action, JourneyDelivery.status,
                                         func.count()).where(JourneyDelivery.journey_id == journey.id)
                                  .group_by(JourneyDelivery.step, JourneyDelivery.action, JourneyDelivery.status)
                                  .order_by(JourneyDelivery.step))]
            states = dict(s.execute(select(JourneyEntry.state, func.count()).where(
                JourneyEntry.journey_id == journey.id).group_by(JourneyEntry.state)).all())
        treated, held = arms.get(TREATMENT, (0, 0)), arms.get(HOLDOUT, (0, 0))
        sent = int(reached.get("sent", 0))
        uplift = two_proportions(treated[1], treated[0], held[1], held[0], alpha=alpha)
        return {
            "journey": journey.id, "name": journey.name, "status": journey.status.value,
            "arms": {"treatment": {"entered": treated[0], "sent": sent, "converted": treated[1]},
                     "holdout": {"entered": held[0], "converted": held[1]}},
            "uplift": {"absolute": uplift.difference, "ci": list(uplift.ci) if uplift.ci else None,
                       "p_value": uplift.p_value, "relative": uplift.relative, "treated_rate": uplift.treated_rate,
                       "holdout_rate": uplift.control_rate, "alpha": alpha, "error": uplift.error},
            "funnel": {"entered": treated[0] + held[0], "sent": sent, "delivered": sent,
                       "converted": treated[1] + held[1]},
            "states": {k: int(v) for k, v in states.items()},
            "steps": steps,
            "goal": journey.spec.goal.model_dump(mode="json") if journey.spec.goal else None,
        }


def _uses_tags(spec: JourneySpec) -> str:
    """Where a definition reads tags ("" if nowhere): the trigger, an audience or a condition."""
    trigger = spec.trigger
    if isinstance(trigger, TagTrigger) or (isinstance(trigger, ScheduleTrigger) and trigger.audience.tag):
        return "trigger"

    def reads(node: Any) -> bool:
        return isinstance(node, TagCondition) or any(reads(c) for c in getattr(node, "all", None) or []) or \
            any(reads(c) for c in getattr(node, "any", None) or []) or \
            (hasattr(node, "negated") and reads(node.negated))

    return next((f"steps.{path}.if" for path, step in walk(list(spec.steps))
                 if hasattr(step, "condition") and reads(step.condition)), "")


def _kind(trigger: Any) -> str:
    return type(trigger).__name__.removesuffix("Trigger").lower()


def _segments(spec: JourneySpec) -> list[tuple[str, str | int]]:
    found: list[tuple[str, str | int]] = []
    trigger = spec.trigger
    if isinstance(trigger, ScheduleTrigger) and isinstance(trigger.audience, Audience) and \
            trigger.audience.segment is not None:
        found.append(("trigger.audience.segment", trigger.audience.segment))
    if isinstance(trigger, SegmentTrigger):
        segment = trigger.segment_entered if trigger.segment_entered is not None else trigger.segment_left
        assert segment is not None
        found.append(("trigger", segment))

    def conditions(node: Any, where: str) -> None:
        if isinstance(node, SegmentCondition):
            found.append((where, node.segment))
        for name in ("all", "any"):
            for i, child in enumerate(getattr(node, name, None) or []):
                conditions(child, f"{where}.{'and' if name == 'all' else 'or'}.{i}")
        if hasattr(node, "negated"):
            conditions(node.negated, f"{where}.not")

    for path, step in walk(list(spec.steps)):
        if hasattr(step, "condition"):
            conditions(step.condition, f"steps.{path}.if")
    return found


def _delivery(d: JourneyDelivery, person: dict[str, Any]) -> dict[str, Any]:
    def iso(moment: dt.datetime | None) -> str | None:
        found = aware(moment)
        return found.isoformat() if found else None

    return {"id": d.id, "entry": d.entry_id, "person": d.person_key,
            "identities": [list(p) for p in Person.from_json(d.person_key, person).ids], "step": d.step,
            "action": d.action, "status": d.status, "reason": d.reason, "attempts": d.attempts,
            "idempotency_key": d.idempotency_key, "created_at": iso(d.created_at), "sent_at": iso(d.sent_at),
            "next_attempt_at": iso(d.next_attempt_at), "response": d.response}
