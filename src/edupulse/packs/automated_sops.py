"""Pack 6, automated SOPs (自动化 SOP): the routines an education organization runs by hand, as ready journeys
(edupulse.journeys) installed as drafts a user reads, changes if they like and switches on:

- call a new lead within an hour (a task for an advisor on `lead_created`; goal `call_connected` in 1 hour);
- remind before a booked trial (a task on `trial_booked` with the trial's time; goal `trial_attended` in 4 days);
- recall a student after 3 missed lessons in a row (a task when a person gets the built-in tag
  `missed_3_in_a_row`; goal `lesson_attended` in 14 days);
- a renewal reminder before a course ends (8 weeks after a first or renewal order, a renewal call; goal
  `order_paid` in 6 weeks);
- a referral invitation after a good quiz streak (on entering the segment "5 correct quiz answers in 7 days,
  none wrong"; goal `referral_shared` in 14 days).

Each keeps the journeys' holdout (10%): the headline shows, per journey, entered / sent / converted for the
treatment and the holdout with the uplift, its interval and p-value (the journeys' results)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun
from edupulse.packs.spec import JourneyPart, Pack, SegmentPart, Stage

NAME = "automated_sops"
HOLDOUT = 0.1
STREAK_SEGMENT = "连续答对 Good quiz streak"
MISSED_TAG = "missed_3_in_a_row"


def _task(zh: str, en: str, due_hours: int, note_zh: str = "", note_en: str = "") -> dict[str, Any]:
    task: dict[str, Any] = {"action": "task", "assign": "capacity", "title": {"zh": zh, "en": en},
                            "due": {"value": due_hours, "unit": "hour"}}
    if note_zh:
        task["note"] = {"zh": note_zh, "en": note_en}
    return task


def _goal(event: str, value: int, unit: str) -> dict[str, Any]:
    return {"event": event, "within": {"value": value, "unit": unit}}


SOPS = (
    JourneyPart("call_new_lead", {
        "name": "SOP：1 小时内致电新线索 SOP: call a new lead within an hour",
        "trigger": {"event": "lead_created"},
        "steps": [_task("1 小时内致电新线索 {{person.login_id}}",
                        "Call the new lead {{person.login_id}} within an hour", 1,
                        "来源渠道：{{event.properties.channel}}", "Channel: {{event.properties.channel}}")],
        "holdout": HOLDOUT, "goal": _goal("call_connected", 1, "hour")}),
    JourneyPart("trial_reminder", {
        "name": "SOP：试听课前提醒 SOP: remind before a booked trial",
        "trigger": {"event": "trial_booked"},
        "exit_on": ["trial_attended"],
        "steps": [_task("提醒 {{person.login_id}} 参加试听课（{{event.properties.trial_at}}）",
                        "Remind {{person.login_id}} of the trial lesson ({{event.properties.trial_at}})", 12)],
        "holdout": HOLDOUT, "goal": _goal("trial_attended", 4, "day")}),
    JourneyPart("recall_missed_3", {
        "name": "SOP：连续缺课 3 次回访 SOP: recall after 3 missed lessons in a row",
        "trigger": {"tag_entered": {"tag": MISSED_TAG}},
        "steps": [_task("回访 {{person.login_id}}（连续缺课 3 次）",
                        "Call {{person.login_id}} (missed 3 lessons in a row)", 24)],
        "holdout": HOLDOUT, "goal": _goal("lesson_attended", 14, "day")}),
    JourneyPart("renewal_reminder", {
        "name": "SOP：课程结束前续费提醒 SOP: renewal reminder before a course ends",
        "trigger": {"event": "order_paid", "filters": [{"property": "order_type", "op": "in",
                                                         "value": ["first", "renewal"]}]},
        "exit_on": ["order_refunded"],
        "steps": [{"wait": {"value": 8, "unit": "week"}},
                  _task("续费沟通：{{person.login_id}} 的课程即将结束",
                        "Renewal call: {{person.login_id}}'s course ends soon", 72)],
        "holdout": HOLDOUT, "goal": _goal("order_paid", 6, "week")}),
    JourneyPart("referral_invite", {
        "name": "SOP：连续答对后邀请转介绍 SOP: referral invitation after a good quiz streak",
        "trigger": {"segment_entered": STREAK_SEGMENT},
        "entry_limit": 1,
        "steps": [_task("邀请 {{person.login_id}} 推荐好友（最近测验全对）",
                        "Invite {{person.login_id}} to refer a friend (a perfect quiz streak)", 48)],
        "holdout": HOLDOUT, "goal": _goal("referral_shared", 14, "day")}),
)
STREAK = SegmentPart("quiz_streak", STREAK_SEGMENT, {"condition": {"and": [
    {"event": "quiz_answered", "at_least": 5, "window": {"last_days": 7},
     "filters": [{"property": "correct", "op": "eq", "value": True}]},
    {"event": "quiz_answered", "at_most": 0, "window": {"last_days": 7},
     "filters": [{"property": "correct", "op": "eq", "value": False}]}]}},
    "Students with at least 5 correct quiz answers and none wrong in the last 7 days")


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entered: int
    converted: int
    rate: float | None


class Sop(BaseModel):
    """One SOP: its journey (None until the pack is installed) and the journey's holdout result."""

    model_config = ConfigDict(extra="forbid")
    key: str
    name: str
    journey_id: int | None
    status: str | None  # draft, running, paused, finished
    goal: str
    treatment: Arm | None
    holdout: Arm | None
    sent: int
    uplift: float | None
    ci: list[float] | None
    p_value: float | None


class AutomatedSops(Headline):
    installed: bool
    running: int
    sops: list[Sop]


def _rate(converted: int, entered: int) -> float | None:
    return round(converted / entered, 6) if entered else None


def _sop(run: PackRun, part: JourneyPart) -> Sop:
    goal = part.spec["goal"]["event"]
    mine = run.parts.get(f"journey:{part.key}")
    journey = None
    if mine is not None and run.journeys is not None:
        journey = run.journeys.store.get(run.project.id, int(mine["id"]))
    if journey is None or run.journeys is None:
        return Sop(key=part.key, name=part.spec["name"], journey_id=None, status=None, goal=goal, treatment=None,
                   holdout=None, sent=0, uplift=None, ci=None, p_value=None)
    found = run.journeys.results(run.project, journey)  # type: ignore[arg-type]
    treated, held = found["arms"]["treatment"], found["arms"]["holdout"]
    uplift = found["uplift"]
    return Sop(key=part.key, name=journey.name, journey_id=journey.id, status=journey.status.value, goal=goal,
               treatment=Arm(entered=treated["entered"], converted=treated["converted"],
                             rate=_rate(treated["converted"], treated["entered"])),
               holdout=Arm(entered=held["entered"], converted=held["converted"],
                           rate=_rate(held["converted"], held["entered"])),
               sent=int(treated["sent"]), uplift=uplift["absolute"], ci=uplift["ci"], p_value=uplift["p_value"])


def headline(run: PackRun) -> AutomatedSops:
    sops = [_sop(run, part) for part in SOPS]
    running = sum(1 for s in sops if s.status == "running")
    return AutomatedSops(**run.frame(NAME), card=Card(value=running, unit="count", label="packs.card.automated_sops"),
                         installed=bool(run.parts), running=running, sops=sops)


PACK = Pack(
    name=NAME, version=1, stage=Stage.conversion, problem="6", headline=headline,
    needs=("lead_created", "trial_booked", "lesson_scheduled", "order_paid", "quiz_answered"),
    segments=(STREAK,), journeys=SOPS, tags=(MISSED_TAG,),
)
