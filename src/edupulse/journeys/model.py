"""What a journey is: a trigger, an audience, a small graph of steps, a holdout, caps and a conversion goal.

    {"name": "...", "trigger": TRIGGER, "steps": [STEP, ...], "holdout": 0.1, "caps": {...},
     "goal": {"event": "order_paid", "within": {"value": 7, "unit": "day"}}}

A journey is JSON; `parse_spec` turns it into a `JourneySpec` or raises `SpecError` naming the field and the
reason (every problem is in the message). Steps are addressed by their path: "2" is the third step,
"2.then.0" the first step of its `then` branch, "3.1.0" the first step of the second branch of a split.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from edupulse.queries.common import Model, PropertyFilter

NAME_LENGTH = 100
MAX_STEPS = 200  # steps in a journey, counting those in branches
TIME_OF_DAY = r"^([01]\d|2[0-3]):[0-5]\d$"
EVENT_NAME = Field(min_length=1, max_length=100)


class SpecError(ValueError):
    """A journey definition or request that cannot be carried out: the field, the reason and the HTTP status."""

    def __init__(self, field: str, reason: str, status: int = 400) -> None:
        super().__init__(f"{field}: {reason}" if not reason.startswith(field) else reason)
        self.field = field
        self.status = status


class Status(StrEnum):
    draft = "draft"
    running = "running"
    paused = "paused"
    finished = "finished"


UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


class Duration(Model):
    value: int = Field(ge=1, le=100_000)
    unit: Literal["minute", "hour", "day", "week"]

    def delta(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.value * UNIT_SECONDS[self.unit])


# triggers -------------------------------------------------------------------------------------------


class FollowUp(Model):
    event: str = EVENT_NAME
    within: Duration


class EventTrigger(Model):
    """An event as it arrives (with these event property filters); with `not_followed_by`, the person enters
    only when the second event did not follow within the time (booked a trial but did not attend in 24 h)."""

    event: str = EVENT_NAME
    filters: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    not_followed_by: FollowUp | None = None


class Schedule(Model):
    """Once (on `date`), every day, or every week (on `weekday`), at `at` in the project's time zone."""

    every: Literal["once", "day", "week"] = "day"
    at: str = Field("09:00", pattern=TIME_OF_DAY)
    date: dt.date | None = Field(None, description="the day of a schedule that runs once")
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Schedule:
        if self.every == "once" and self.date is None:
            raise ValueError('a schedule that runs once needs "date"')
        if self.every == "week" and self.weekday is None:
            raise ValueError('a weekly schedule needs "weekday" (mon ... sun)')
        return self


class Audience(Model):
    """A saved segment (by name or id), or the persons with a tag (and value)."""

    segment: str | int | None = None
    tag: str | None = Field(None, min_length=1, max_length=100)
    value: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> Audience:
        if (self.segment is None) == (self.tag is None):
            raise ValueError('an audience is {"segment": S} or {"tag": T, "value": V}')
        return self


class ScheduleTrigger(Model):
    schedule: Schedule
    audience: Audience


class TagRef(Model):
    tag: str = Field(min_length=1, max_length=100)
    value: str | None = Field(None, max_length=200)


class TagTrigger(Model):
    """A person gets (`tag_entered`) or loses (`tag_left`) a tag value."""

    tag_entered: TagRef | None = None
    tag_left: TagRef | None = None

    @model_validator(mode="after")
    def _one(self) -> TagTrigger:
        if (self.tag_entered is None) == (self.tag_left is None):
            raise ValueError('give one of "tag_entered" and "tag_left"')
        return self


class SegmentTrigger(Model):
    """A person enters (`segment_entered`) or leaves (`segment_left`) a saved segment (checked at each check
    of the built-in scheduler)."""

    segment_entered: str | int | None = None
    segment_left: str | int | None = None

    @model_validator(mode="after")
    def _one(self) -> SegmentTrigger:
        if (self.segment_entered is None) == (self.segment_left is None):
            raise ValueError('give one of "segment_entered" and "segment_left"')
        return self


def _trigger_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in (("schedule", "schedule"), ("event", "event"), ("tag_entered", "tag"), ("tag_left", "tag"),
                         ("segment_entered", "segment"), ("segment_left", "segment")):
            if key in value:
                return tag
        return None
    kinds: dict[type, str] = {EventTrigger: "event", ScheduleTrigger: "schedule", TagTrigger: "tag",
                              SegmentTrigger: "segment"}
    return kinds.get(type(value))


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")] | Annotated[ScheduleTrigger, Tag("schedule")]
    | Annotated[TagTrigger, Tag("tag")] | Annotated[SegmentTrigger, Tag("segment")],
    Discriminator(_trigger_tag, custom_error_type="trigger",
                  custom_error_message="a trigger has one of the keys event, schedule, tag_entered, tag_left, "
                                       "segment_entered, segment_left"),
]


# conditions -----------------------------------------------------------------------------------------


class PropertyCondition(PropertyFilter):
    """A person property (`person.grade`) or a property of the trigger event (`event.course_id`, or a bare name)."""


class SegmentCondition(Model):
    segment: str | int
    member: bool = True


class TagCondition(Model):
    tag: str = Field(min_length=1, max_length=100)
    value: str | None = Field(None, max_length=200)
    has: bool = True


class ReceivedCondition(Model):
    """The event arrived while the person waited for it (a wait step with `event`)."""

    received: str = EVENT_NAME


class AllCondition(Model):
    all: list[Condition] = Field(alias="and", min_length=1, max_length=20)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AnyCondition(Model):
    any: list[Condition] = Field(alias="or", min_length=1, max_length=20)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class NotCondition(Model):
    negated: Condition = Field(alias="not")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_CONDITION_KEYS = {"and": "and", "or": "or", "not": "not", "property": "property", "segment": "segment",
                   "tag": "tag", "received": "received"}
_CONDITION_TYPES: dict[type, str] = {}


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((_CONDITION_KEYS[key] for key in value if key in _CONDITION_KEYS), None)
    return _CONDITION_TYPES.get(type(value))


Condition = Annotated[
    Annotated[AllCondition, Tag("and")] | Annotated[AnyCondition, Tag("or")] | Annotated[NotCondition, Tag("not")]
    | Annotated[PropertyCondition, Tag("property")] | Annotated[SegmentCondition, Tag("segment")]
    | Annotated[TagCondition, Tag("tag")] | Annotated[ReceivedCondition, Tag("received")],
    Discriminator(_condition_tag, custom_error_type="condition",
                  custom_error_message="a condition has one of the keys and, or, not, property, segment, tag, "
                                       "received"),
]
_CONDITION_TYPES.update({AllCondition: "and", AnyCondition: "or", NotCondition: "not",
                         PropertyCondition: "property", SegmentCondition: "segment", TagCondition: "tag",
                         ReceivedCondition: "received"})
for _model in (AllCondition, AnyCondition, NotCondition):
    _model.model_rebuild()


# steps ----------------------------------------------------------------------------------------------


class Wait(Model):
    """A duration (`value` and `unit`), until a time of day (`until`, in the project's time zone or the
    recipient's), or until an event (`event`) for at most `max`."""

    value: int | None = Field(None, ge=1, le=100_000)
    unit: Literal["minute", "hour", "day", "week"] | None = None
    until: str | None = Field(None, pattern=TIME_OF_DAY)
    timezone: Literal["project", "recipient"] = "project"
    event: str | None = Field(None, min_length=1, max_length=100)
    max: Duration | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Wait:
        forms = [self.value is not None or self.unit is not None, self.until is not None, self.event is not None]
        if sum(forms) != 1:
            raise ValueError('a wait is {"value": N, "unit": U}, {"until": "HH:MM"} or {"event": E, "max": D}')
        if forms[0] and (self.value is None or self.unit is None):
            raise ValueError('a wait of a duration needs "value" and "unit"')
        if forms[2] and self.max is None:
            raise ValueError('a wait for an event needs "max", the longest it waits')
        return self

    def duration(self) -> dt.timedelta | None:
        if self.value is None or self.unit is None:
            return None
        return dt.timedelta(seconds=self.value * UNIT_SECONDS[self.unit])


class WaitStep(Model):
    wait: Wait


class IfStep(Model):
    condition: Condition = Field(alias="if")
    then: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)
    otherwise: list[Step] = Field(default_factory=list, alias="else", max_length=MAX_STEPS)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Branch(Model):
    weight: float = Field(gt=0, le=1)
    steps: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)


class SplitStep(Model):
    """Random branches by weight (deterministic per person: the same person always takes the same branch)."""

    split: list[Branch] = Field(min_length=2, max_length=10)

    @field_validator("split")
    @classmethod
    def _weights(cls, value: list[Branch]) -> list[Branch]:
        if abs(sum(b.weight for b in value) - 1) > 1e-6:
            raise ValueError("the weights of a split sum to 1")
        return value


class ExitStep(Model):
    exit: bool | str = True


Text = str | dict[Literal["zh", "en"], str]


class WebhookAction(Model):
    action: Literal["webhook"]
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    body: Any = Field(default_factory=dict, description="JSON template: {{person.login_id}} and the like")
    channel: str | None = Field(None, max_length=100, description="a webhook channel whose secret signs the body")
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name) or name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} cannot be set (letters, digits and -; not one EduPulse sets)")
        return value


RESERVED_HEADERS = frozenset({"idempotency-key", "x-edupulse-signature", "x-edupulse-timestamp", "content-type",
                              "content-length", "host"})


class EmailAction(Model):
    action: Literal["email"]
    channel: str = Field(min_length=1, max_length=100, description="an SMTP channel")
    to: str = Field("{{person.email}}", max_length=500)
    subject: Text
    text: Text


class RobotAction(Model):
    action: Literal["dingtalk", "wecom"]
    channel: str = Field(min_length=1, max_length=100, description="a robot channel (its webhook and secret)")
    format: Literal["text", "markdown"] = "text"
    title: Text = ""
    text: Text
    at_mobiles: list[str] = Field(default_factory=list, max_length=50)


class TaskAction(Model):
    action: Literal["task"]
    title: Text
    note: Text = ""
    assign: Literal["round_robin", "capacity"] = "round_robin"
    advisors: list[str] = Field(default_factory=list, max_length=200,
                                description="e-mail addresses; default: every advisor of the project")
    due: Duration | None = None


class SetPropertyAction(Model):
    action: Literal["set_property"]
    property: str = Field(min_length=1, max_length=255)
    value: Any


class SetTagAction(Model):
    action: Literal["set_tag"]
    tag: str = Field(min_length=1, max_length=100, description="an uploaded person tag")
    value: str | int | float | bool = Field(description="the value (of the tag's value type) or a template")


Action = Annotated[WebhookAction | EmailAction | RobotAction | TaskAction | SetPropertyAction | SetTagAction,
                   Field(discriminator="action")]


def _step_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("wait", "if", "split", "action", "exit"):
            if key in value:
                return key
        return None
    kinds: dict[type, str] = {WaitStep: "wait", IfStep: "if", SplitStep: "split", ExitStep: "exit"}
    return kinds.get(type(value), "action")


Step = Annotated[
    Annotated[WaitStep, Tag("wait")] | Annotated[IfStep, Tag("if")] | Annotated[SplitStep, Tag("split")]
    | Annotated[Action, Tag("action")] | Annotated[ExitStep, Tag("exit")],
    Discriminator(_step_tag, custom_error_type="step",
                  custom_error_message="a step has one of the keys wait, if, split, action, exit"),
]
for _step_model in (IfStep, Branch, SplitStep):
    _step_model.model_rebuild()


# the journey ----------------------------------------------------------------------------------------


class Goal(Model):
    """Conversion: the person does `event` within `within` of entering."""

    event: str = EVENT_NAME
    within: Duration = Duration(value=7, unit="day")


class Caps(Model):
    """Messages a person may get per day / week from every journey of the project (this journey's own limits;
    the project's settings apply as well)."""

    per_day: int | None = Field(None, ge=1, le=1000)
    per_week: int | None = Field(None, ge=1, le=10_000)


class QuietHours(Model):
    """Messages due between `start` and `end` (in the recipient's time zone, their `timezone` property, else
    the project's) are held until `end`, not dropped."""

    start: str = Field("21:00", pattern=TIME_OF_DAY)
    end: str = Field("08:00", pattern=TIME_OF_DAY)


class JourneySpec(Model):
    name: str = Field(min_length=1, max_length=NAME_LENGTH)
    description: str = Field("", max_length=2000)
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    holdout: float = Field(0.1, ge=0, le=0.5, description="share of entrants who receive nothing (the baseline)")
    goal: Goal | None = None
    exit_on: list[str] = Field(default_factory=list, max_length=20,
                               description="events that end a person's journey when they arrive")
    caps: Caps = Caps()
    quiet_hours: QuietHours | None = None
    entry_limit: int | None = Field(None, ge=1, le=1000, description="times one person may enter (none: no limit)")
    language: Literal["zh", "en"] = Field("zh", description="language of messages to persons without a "
                                                            "`language` property")

    @model_validator(mode="after")
    def _size(self) -> JourneySpec:
        count = sum(1 for _ in walk(self.steps))
        if count > MAX_STEPS:
            raise ValueError(f"steps: a journey has at most {MAX_STEPS} steps (this one has {count})")
        return self


def children(step: Any) -> list[tuple[str, list[Any]]]:
    """The branches of a step, by path label."""
    if isinstance(step, IfStep):
        return [("then", list(step.then)), ("else", list(step.otherwise))]
    if isinstance(step, SplitStep):
        return [(str(i), list(b.steps)) for i, b in enumerate(step.split)]
    return []


def walk(steps: list[Any], prefix: str = "") -> Any:
    """(path, step) of every step, depth first."""
    for i, step in enumerate(steps):
        path = f"{prefix}{i}"
        yield path, step
        for label, branch in children(step):
            yield from walk(branch, f"{path}.{label}.")


def step_at(steps: list[Any], path: str) -> Any:
    """The step at a path (KeyError: no such step)."""
    parts = path.split(".")
    current: list[Any] = steps
    step: Any = None
    index = 0
    while index < len(parts):
        position = int(parts[index])
        if not 0 <= position < len(current):
            raise KeyError(path)
        step = current[position]
        if index + 1 < len(parts):
            branches = dict(children(step))
            current = branches[parts[index + 1]]
        index += 2
    return step


def next_path(steps: list[Any], path: str) -> str | None:
    """The step after the one at `path` once it is done (its branch's next step, else its parent's next);
    None: the journey ends."""
    parts = path.split(".")
    while parts:
        parent = ".".join(parts[:-2])
        branch = step_at(steps, parent) if parent else None
        siblings = dict(children(branch))[parts[-2]] if branch is not None else steps
        following = int(parts[-1]) + 1
        if following < len(siblings):
            return ".".join([*parts[:-1], str(following)])
        parts = parts[:-2]
    return None


def first_in(steps: list[Any], path: str, label: str) -> str | None:
    """The first step of a branch of the step at `path`, or (an empty branch) the step after it."""
    branch = dict(children(step_at(steps, path)))[label]
    return f"{path}.{label}.0" if branch else next_path(steps, path)


def parse_spec(data: Any) -> JourneySpec:
    """A JourneySpec from JSON; SpecError names the first problem's field (every problem in the message)."""
    if not isinstance(data, dict):
        raise SpecError("journey", "must be a JSON object")
    try:
        return JourneySpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        where = [".".join(str(p) for p in _field_path(e["loc"])) or "journey" for e in errors]
        problems = "; ".join(f"{w}: {e['msg'].removeprefix('Value error, ')}" for w, e in zip(where, errors,
                                                                                               strict=True))
        raise SpecError(where[0], problems) from None


_UNION_FIELDS = frozenset({"trigger", "if", "condition", "not", "negated"})
_UNION_LISTS = frozenset({"steps", "then", "else", "otherwise", "and", "or", "all", "any"})


def _field_path(loc: tuple[Any, ...]) -> list[Any]:
    """The field path of an error: pydantic puts the tag of each union member into the location (after the
    trigger, a step, a condition, and the action's kind after a step's tag), which a person does not write."""
    out: list[Any] = []
    previous_kept, previous_skipped = False, None
    for i, part in enumerate(loc):
        before = loc[i - 1] if i else None
        union = ((previous_kept and before in _UNION_FIELDS)
                 or (previous_kept and isinstance(before, int) and i >= 2 and loc[i - 2] in _UNION_LISTS)
                 or previous_skipped == "action")
        if isinstance(part, str) and union:
            previous_kept, previous_skipped = False, part
            continue
        previous_kept, previous_skipped = True, None
        out.append(part)
    return out
