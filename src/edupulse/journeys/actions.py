"""What an action step sends, rendered when it is claimed: the request kept with the delivery is exactly what
every try sends (templates are filled once, with the person as they were then)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edupulse.journeys.model import (
    EmailAction,
    RobotAction,
    SetPropertyAction,
    SetTagAction,
    TaskAction,
    WebhookAction,
)
from edupulse.journeys.person import Person
from edupulse.journeys.render import Scope, choose, fill, fill_text, language_of


def render_request(step: Any, person: Person, event: dict[str, Any] | None, journey_id: int, journey_name: str,
                   entry_id: int, default_language: str) -> dict[str, Any]:
    scope = Scope(person, event, {"id": journey_id, "name": journey_name}, {"id": entry_id})
    language = language_of(person, default_language)

    def text(value: str | Mapping[Any, str]) -> str:
        return fill_text(choose(value, language), scope)

    if isinstance(step, WebhookAction):
        return {"url": step.url, "body": fill(step.body, scope), "headers": dict(step.headers),
                "channel": step.channel}
    if isinstance(step, EmailAction):
        return {"channel": step.channel, "to": fill_text(step.to, scope), "subject": text(step.subject),
                "text": text(step.text), "language": language}
    if isinstance(step, RobotAction):
        return {"channel": step.channel, "format": step.format, "title": text(step.title), "text": text(step.text),
                "at_mobiles": [fill_text(m, scope) for m in step.at_mobiles]}
    if isinstance(step, TaskAction):
        return {"title": text(step.title), "note": text(step.note), "assign": step.assign,
                "advisors": list(step.advisors), "due_seconds": step.due.delta().total_seconds() if step.due else None,
                "person": person.to_json()}
    if isinstance(step, SetPropertyAction):
        return {"property": step.property, "value": fill(step.value, scope), "ids": [list(p) for p in person.ids]}
    if isinstance(step, SetTagAction):
        return {"tag": step.tag, "value": fill(step.value, scope), "ids": [list(p) for p in person.ids]}
    raise TypeError(f"not an action: {step!r}")
