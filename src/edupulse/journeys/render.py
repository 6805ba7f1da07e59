"""Templates of messages: `{{person.login_id}}` (an identity), `{{person.grade}}` or
`{{person.properties.grade}}` (a person property), `{{event.properties.course_id}}`, `{{event.event}}`,
`{{event.time}}`, `{{journey.name}}`, `{{journey.id}}`, `{{entry.id}}`. A JSON value that is exactly one
placeholder takes the value itself (a number stays a number); elsewhere values are written into the text.
An unknown placeholder becomes empty."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edupulse.journeys.person import Person

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.$-]*)\s*\}\}")


@dataclass(frozen=True)
class Scope:
    """What a template can name."""

    person: Person
    event: dict[str, Any] | None
    journey: dict[str, Any]
    entry: dict[str, Any]

    def lookup(self, path: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "person":
            return self._person(rest)
        if head == "event":
            return _dig(self.event or {}, rest)
        if head == "journey":
            return _dig(self.journey, rest)
        if head == "entry":
            return _dig(self.entry, rest)
        return None

    def _person(self, rest: str) -> Any:
        if rest == "key":
            return self.person.key
        if rest.startswith("properties."):
            return _dig(self.person.properties, rest.removeprefix("properties."))
        found = self.person.identity(rest)
        if found is not None:
            return found
        return _dig(self.person.properties, rest)


def _dig(data: Any, path: str) -> Any:
    if not path:
        return data
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fill_text(template: str, scope: Scope) -> str:
    return PLACEHOLDER.sub(lambda m: _text(scope.lookup(m.group(1))), template)


def fill(template: Any, scope: Scope) -> Any:
    """A JSON template filled in: strings anywhere in objects and lists (keys stay as written)."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip())
        if whole is not None:
            return scope.lookup(whole.group(1))
        return fill_text(template, scope)
    if isinstance(template, dict):
        return {k: fill(v, scope) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, scope) for v in template]
    return template


def choose(text: str | Mapping[Any, str], language: str) -> str:
    """The text in the person's language (zh or en), else the other one."""
    if isinstance(text, str):
        return text
    return text.get(language) or next(iter(text.values()), "")


def language_of(person: Person, default: str) -> str:
    """zh or en: the person's `language` (or `locale`) property, else the journey's language."""
    raw = person.properties.get("language") or person.properties.get("locale") or default
    return "en" if str(raw).lower().startswith("en") else "zh" if str(raw).lower().startswith("zh") else default
