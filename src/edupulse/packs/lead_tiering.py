"""Pack 5, lead tiering and assignment (线索分层与分配): the lead pool tiered by the built-in model tag
`lead_propensity` (high / medium / low, with each lead's score and the reasons that moved it most), filtered by
channel and lead age; high-intent leads handed to advisors as tasks by a journey the pack installs (a draft a
user switches on); and each advisor's conversion, leads assigned (`lead_assigned` with `advisor_id`) → first
order.

A lead is a person with a `lead_created`: their lead time is the first one, their channel that lead's
`channel`, and they converted when they paid a first order (`order_paid`, `order_type` first) at any time. The
facts come from a SQL report over the documented `events` view; the tiers are the tag's values in force."""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from edupulse.journeys.tasks import TaskQueue
from edupulse.packs.headline import Card, Headline, PackError, PackRun, masked_people, ratio
from edupulse.packs.spec import DashboardPart, JourneyPart, Pack, ReportPart, Stage
from edupulse.packs.tagged import scorer, values_by_person, why_none
from edupulse.queries.results import Masker
from edupulse.tags.run import TagValue

NAME = "lead_tiering"
TAG = "lead_propensity"
TIERS = ("high", "medium", "low")
LIST_LIMIT = 200
UNSCORED = "unscored"
FIRST = [{"property": "order_type", "op": "eq", "value": "first"}]


def _within(start: str, end: str, column: str = "time") -> str:
    """`start` and `end` are instant literals of the store's SQL (PackRun.instant); none: all time."""
    return f" AND {column} >= {start} AND {column} < {end}" if start else ""


# Each person's first order, with a flag: a person without one is told by `p.paid = 1` failing, not by a NULL from the
# outer join, since ClickHouse fills the missing side with defaults (the store's dialect is the SQL a user writes).
PAID = """paid AS (
  SELECT person_id, min(time) AS paid_at, 1 AS paid FROM events WHERE event = 'order_paid'
  AND prop_order_type = 'first' GROUP BY person_id)"""


def leads_sql(start: str = "", end: str = "") -> str:
    """One row per lead whose first lead_created is in [start, end): person, lead time, channel, first order."""
    return f"""WITH firsts AS (
  SELECT person_id, min(time) AS lead_at FROM events WHERE event = 'lead_created' GROUP BY person_id),
lead_channel AS (
  SELECT e.person_id AS person_id, min(e.prop_channel) AS channel FROM events AS e
  JOIN firsts AS f ON f.person_id = e.person_id AND f.lead_at = e.time
  WHERE e.event = 'lead_created' GROUP BY e.person_id),
{PAID}
SELECT f.person_id AS person_id, f.lead_at, c.channel, CASE WHEN p.paid = 1 THEN p.paid_at END AS paid_at
FROM firsts AS f
LEFT JOIN lead_channel AS c ON c.person_id = f.person_id
LEFT JOIN paid AS p ON p.person_id = f.person_id
WHERE f.person_id IS NOT NULL{_within(start, end, "f.lead_at")}
ORDER BY f.lead_at, f.person_id"""


def advisors_sql(start: str = "", end: str = "") -> str:
    """Per advisor: persons assigned to them (lead_assigned in [start, end)) and those who paid a first order
    after their assignment."""
    return f"""WITH assigned AS (
  SELECT prop_advisor_id AS advisor_id, person_id, min(time) AS assigned_at FROM events
  WHERE event = 'lead_assigned' AND prop_advisor_id IS NOT NULL{_within(start, end)}
  GROUP BY prop_advisor_id, person_id),
paid AS (
  SELECT person_id, min(time) AS paid_at FROM events WHERE event = 'order_paid' AND prop_order_type = 'first'
  GROUP BY person_id)
SELECT a.advisor_id, count(*) AS leads,
  sum(CASE WHEN p.paid_at IS NOT NULL AND p.paid_at >= a.assigned_at THEN 1 ELSE 0 END) AS first_orders
FROM assigned AS a LEFT JOIN paid AS p ON p.person_id = a.person_id
GROUP BY a.advisor_id ORDER BY a.advisor_id"""


def paid_after_sql(ids: list[str]) -> str:
    """Per distinct id: the first order's time of the person it belongs to (after One-ID merges)."""
    quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in ids) or "NULL"
    return f"""WITH who AS (SELECT DISTINCT distinct_id, person_id FROM events WHERE distinct_id IN ({quoted})),
{PAID}
SELECT w.distinct_id, min(CASE WHEN p.paid = 1 THEN p.paid_at END) FROM who AS w
LEFT JOIN paid AS p ON p.person_id = w.person_id
GROUP BY w.distinct_id"""


MAX_TASKS = 1000
PER_TIER = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-29d"},
            "series": [{"event": "lead_created", "math": "unique", "filters": [{"tag": TAG, "op": "eq", "value": t}],
                        "name": t} for t in TIERS]}
ORDERS_PER_TIER = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-29d"},
                   "series": [{"event": "order_paid", "math": "unique",
                               "filters": [*FIRST, {"tag": TAG, "op": "eq", "value": t}], "name": t} for t in TIERS]}
REPORTS = (
    ReportPart("per_tier", "各意向层级的新线索 New leads per intent tier", PER_TIER, view={"chart": "bar"}),
    ReportPart("orders_per_tier", "各意向层级的首单 First orders per intent tier", ORDERS_PER_TIER,
               view={"chart": "bar"}),
    ReportPart("advisors", "顾问转化：分配线索 → 首单 Advisor conversion: leads assigned → first order",
               {"kind": "sql", "sql": advisors_sql()}, width=12),
)
ASSIGN = JourneyPart("assign_high_intent", {
    "name": "高意向线索分配给顾问 Assign high-intent leads to advisors",
    "description": "Every morning, each lead newly in the high tier of lead_propensity becomes a call task for the "
                   "advisor with the fewest open tasks (once per lead). Goal: an order within 30 days.",
    "trigger": {"schedule": {"every": "day", "at": "09:00"}, "audience": {"tag": TAG, "value": "high"}},
    "entry_limit": 1,
    "steps": [{"action": "task", "assign": "capacity", "due": {"value": 1, "unit": "day"},
               "title": {"zh": "高意向线索：今天联系 {{person.login_id}}",
                         "en": "High-intent lead: call {{person.login_id}} today"},
               "note": {"zh": "线索意向模型判为高意向，请查看其原因后联系。",
                        "en": "The lead propensity model ranks this lead high: read the reasons, then call."}}],
    "holdout": 0.1,
    "goal": {"event": "order_paid", "within": {"value": 30, "unit": "day"}}})


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: str
    leads: int
    first_orders: int
    first_order_rate: float | None


class Lead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: int
    identities: dict[str, list[str]]
    channel: str | None
    lead_at: str
    age_days: int
    tier: str
    score: float | None
    reasons: list[str]
    reasons_zh: list[str]
    first_order: bool


class Advisor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    advisor_id: str
    leads: int
    first_orders: int
    first_order_rate: float | None


class AssignJourney(BaseModel):
    model_config = ConfigDict(extra="forbid")
    journey_id: int
    status: str


class AdvisorTasks(BaseModel):
    """An EduPulse advisor's tasks from the assignment journey (the latest MAX_TASKS): how many, still open, and
    the leads among them who paid a first order after they were assigned (the journey's task step)."""

    model_config = ConfigDict(extra="forbid")
    advisor: str  # the advisor's e-mail address
    tasks: int
    open: int
    first_orders: int
    first_order_rate: float | None


class LeadTiering(Headline):
    tag_ready: bool  # the model is published: leads have tiers
    model_error: str | None  # why not (the last run's error, e.g. too little history); None: it never ran
    channel: str | None
    max_age_days: int | None
    tiers: list[Tier]
    leads: list[Lead]  # the first LIST_LIMIT of the filtered pool, by score
    leads_total: int
    channels: list[str]
    advisors: list[Advisor]
    assign_journey: AssignJourney | None
    advisor_tasks: list[AdvisorTasks]

    def masked(self, masker: Masker) -> Self:
        """The listed persons' personal identities (a mobile number) masked, in the same order."""
        return self.model_copy(update={"leads": masked_people(self.leads, masker)})


def _moment(value: Any) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _options(run: PackRun) -> tuple[str | None, int | None]:
    channel = run.params.get("channel") or None
    age = run.params.get("max_age_days")
    if age is not None and (not isinstance(age, int) or age < 0):
        raise PackError(f"max_age_days {age!r}: a whole number of days, 0 or more")
    return channel, age


def _scores(run: PackRun) -> tuple[dict[int, TagValue], str | None]:
    """The tag's values in force by person, and the reason there are none."""
    found = values_by_person(run, TAG)
    return found, None if found else why_none(run, TAG)


def _advisors(run: PackRun, start: str, end: str) -> list[Advisor]:
    rows = run.service.run(run.project, {"kind": "sql", "sql": advisors_sql(start, end)}, now=run.now,
                           scope=run.scope).result.rows
    return [Advisor(advisor_id=str(r[0]), leads=int(r[1]), first_orders=int(r[2] or 0),
                    first_order_rate=ratio(int(r[2] or 0), int(r[1]))) for r in rows]


def _advisor_tasks(run: PackRun, journey_id: int) -> list[AdvisorTasks]:
    assert run.journeys is not None
    tasks = [t for t in TaskQueue(run.journeys.meta).tasks(run.project.id, None, limit=MAX_TASKS)
             if t["journey"] == journey_id]
    ids = sorted({str(t["person"]).split(":", 1)[1] for t in tasks})
    paid: dict[str, dt.datetime] = {}
    for start in range(0, len(ids), 500):
        query = {"kind": "sql", "sql": paid_after_sql(ids[start:start + 500])}
        for distinct_id, moment in run.service.run(run.project, query, now=run.now).result.rows:
            if moment is not None:
                paid[str(distinct_id)] = _moment(moment)
    # assigned when the journey made the task (its delivery): the task's own stamp is when an advisor's queue got it
    made = {str(d["person"]): _moment(d["created_at"]) for d in run.journeys.deliveries(
        run.project, journey_id, limit=MAX_TASKS) if d["action"] == "task" and d["created_at"]}  # type: ignore[arg-type]
    emails = {u.id: u.email for u in run.journeys.meta.accounts.users()}
    per: dict[str, list[int]] = {}
    for task in tasks:
        mine = per.setdefault(emails.get(task["assignee"], str(task["assignee"])), [0, 0, 0])
        bought = paid.get(str(task["person"]).split(":", 1)[1])
        mine[0] += 1
        mine[1] += int(task["status"] == "open")
        assigned = made.get(str(task["person"]), _moment(task["created_at"]))
        mine[2] += int(bought is not None and bought >= assigned)
    return [AdvisorTasks(advisor=a, tasks=n, open=o, first_orders=f, first_order_rate=ratio(f, n))
            for a, (n, o, f) in sorted(per.items())]


def headline(run: PackRun) -> LeadTiering:
    channel, max_age = _options(run)
    bounds = run.bounds()
    start, end = run.instant(bounds[0]), run.instant(bounds[1])
    rows = run.service.run(run.project, {"kind": "sql", "sql": leads_sql(start, end)}, now=run.now,
                           scope=run.scope).result.rows
    scores, error = _scores(run)
    now = run.now or dt.datetime.now(dt.UTC)
    channels = sorted({str(r[2]) for r in rows if r[2] is not None})
    pool: list[tuple[int, dt.datetime, str | None, bool, TagValue | None]] = []
    for person, lead_at, lead_channel, paid_at, *_ in rows:
        moment = _moment(lead_at)
        if channel is not None and lead_channel != channel:
            continue
        if max_age is not None and (now - moment).days > max_age:
            continue
        pool.append((int(person), moment, lead_channel, paid_at is not None, scores.get(int(person))))
    counts: dict[str, list[int]] = {}
    for _, _, _, paid, value in pool:
        mine = counts.setdefault(value.value or UNSCORED if value else UNSCORED, [0, 0])
        mine[0] += 1
        mine[1] += int(paid)
    tiers = [Tier(tier=t, leads=counts.get(t, [0, 0])[0], first_orders=counts.get(t, [0, 0])[1],
                  first_order_rate=ratio(counts.get(t, [0, 0])[1], counts.get(t, [0, 0])[0]))
             for t in (*TIERS, UNSCORED) if t in TIERS or t in counts]
    pool.sort(key=lambda p: (-(p[4].number or 0) if p[4] else 1, p[0]))
    shown = pool[:LIST_LIMIT]
    assert run.tags is not None
    identities = run.tags.identities(run.project, [p[0] for p in shown])
    leads = []
    scored = scorer(run, TAG)
    for p, m, c, paid, v in shown:
        score = scored(v)
        leads.append(Lead(person_id=p, identities=identities.get(p, {}), channel=c, lead_at=m.isoformat(),
                          age_days=max(0, (now - m).days), tier=(score.tier or UNSCORED) if score else UNSCORED,
                          score=score.score if score else None, reasons=score.reasons if score else [],
                          reasons_zh=score.reasons_zh if score else [],
                          first_order=paid))
    journey = None
    part = run.parts.get(f"journey:{ASSIGN.key}")
    if part is not None and run.journeys is not None:
        found = run.journeys.store.get(run.project.id, int(part["id"]))
        journey = AssignJourney(journey_id=found.id, status=found.status.value) if found else None
    tasks = _advisor_tasks(run, journey.journey_id) if journey is not None else []
    high = counts.get("high", [0, 0])[0] if scores else None
    return LeadTiering(**run.frame(NAME), card=Card(value=high, unit="count", label="packs.card.lead_tiering"),
                       tag_ready=bool(scores), model_error=error, channel=channel, max_age_days=max_age, tiers=tiers,
                       leads=leads, leads_total=len(pool), channels=channels,
                       advisors=_advisors(run, start, end), assign_journey=journey, advisor_tasks=tasks)


PACK = Pack(
    name=NAME, version=2, stage=Stage.conversion, problem="5", headline=headline,
    needs=("lead_created", "lead_assigned", "order_paid"), reports=REPORTS, tags=(TAG,), journeys=(ASSIGN,),
    dashboards=(DashboardPart("board", "线索分层与分配 Lead tiering and assignment",
                              ("per_tier", "orders_per_tier", "advisors"), refresh_seconds=None),),
)
