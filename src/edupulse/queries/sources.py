"""Where an event of a person's timeline came from, read from what the event carries (nothing is guessed from
the endpoint afterwards, since the store does not keep it):

- its **kind**, the system of the education organization that knows it: the CRM (lead events), WeCom / WeChat
  (`wechat_added`), the app (`trial_attended`, a `page_view` with `platform` app or school_app), learning
  (enrolments, lessons, quizzes, homework), the web (other page views and ad clicks), or other;
- **via** which way it arrived: an LMS's xAPI statement (`source_system` xapi or an `xapi_statement_id`), an
  SDK that names itself (`$lib`, which the Sensors, PostHog and Segment SDKs send: `js`, `posthog-python`,
  `analytics.js`...), a business system that names itself (`source_system`, e.g. a CRM export), else `api`
  (the HTTP API or an import, which name nothing).

The pack one_person counts persons by the four kinds it links (crm, wecom, app, learning) with these lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from edupulse.queries.results import Part

Kind = Literal["crm", "wecom", "app", "learning", "web", "other"]
Via = Literal["xapi", "sdk", "system", "api"]
LINKED: dict[str, tuple[str, ...]] = {
    "crm": ("lead_created", "lead_assigned", "lead_qualified", "call_connected", "trial_booked"),
    "wecom": ("wechat_added",),
    "app": ("trial_attended",),
    "learning": ("course_enrolled", "lesson_scheduled", "lesson_attended", "lesson_completed", "quiz_answered",
                 "homework_submitted", "course_completed"),
}
APP_PLATFORMS = ("app", "school_app")  # a page_view on these is the app's
WEB_EVENTS = ("page_view", "ad_click")
_KIND_OF = {event: kind for kind, events in LINKED.items() for event in events}


class EventSource(Part):
    """The source of one event: `kind` (crm, wecom, app, learning, web, other), `via` (xapi, sdk, system, api)
    and `name` (the SDK's `$lib` or the `source_system`, when the event names one)."""

    kind: Kind
    via: Via
    name: str | None = None


def kind_of(event: str, properties: Mapping[str, Any]) -> Kind:
    if event == "page_view" and properties.get("platform") in APP_PLATFORMS:
        return "app"
    found = _KIND_OF.get(event)
    if found is not None:
        return found  # type: ignore[return-value]
    return "web" if event in WEB_EVENTS else "other"


def source_of(event: str, properties: Mapping[str, Any]) -> EventSource:
    """The source of an event from its name and properties (the typed ones included)."""
    kind = kind_of(event, properties)
    system = properties.get("source_system")
    if system == "xapi" or "xapi_statement_id" in properties:
        return EventSource(kind=kind, via="xapi", name="xapi")
    library = properties.get("$lib")
    if isinstance(library, str) and library:
        return EventSource(kind=kind, via="sdk", name=library[:100])
    if isinstance(system, str) and system:
        return EventSource(kind=kind, via="system", name=system[:100])
    return EventSource(kind=kind, via="api")
