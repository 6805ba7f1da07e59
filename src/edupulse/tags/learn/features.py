"""The features and outcomes of each education model, as one SQL statement per model over the standard events
(PRODUCT.md): a single pass over the events reads each person's relevant events once, window functions find
each person's reference moment, and a GROUP BY turns them into one row per person. Python only receives
those rows.

- lead_propensity: from a lead's first `LEAD_DAYS` days (page views, pricing views, app views, calls,
  qualification, WeChat, trial booking and attendance, referral, channel) to "first order within
  `ORDER_DAYS` days of lead_created"; leads younger than that are scored, not learned from.
- dropout_risk: from attendance, completion, homework and quizzes up to `STOP_DAYS` days ago to "stops
  attending" (lessons scheduled to start in the last `STOP_DAYS` days, none attended); scored on the
  same features up to now.
- renewal_propensity: from the learning record of a student's latest course (attendance, completion,
  homework, quiz accuracy) to "pays a renewal from 7 days before to 30 days after the course_completed".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from edupulse.queries.compile import EVENTS, Context

DAY_US = 86_400_000_000
LEAD_DAYS = 3
ORDER_DAYS = 30
STOP_DAYS = 14


@dataclass(frozen=True)
class Feature:
    name: str
    en: str  # how an advisor reads it
    zh: str
    count: bool = False  # a count or a duration: learned on its logarithm (log1p)


@dataclass(frozen=True)
class ModelPlan:
    """The statement of a model's rows: `unit`, the features (in `features` order), `outcome` (1, 0, or NULL
    when not known yet), `scoring` (1: the unit gets a score) and, for models of a unit's items (courses),
    the `item`."""

    name: str
    outcome_en: str
    outcome_zh: str
    features: tuple[Feature, ...]
    statement: exp.Expr
    # a feature that, set on a scored unit, means the outcome has happened already (the unit scores 1)
    observed: str | None = None


def q(text: str) -> exp.Expr:
    return sqlglot.parse_one(text, read="duckdb")


def fill(text: str, **sources: exp.Query) -> exp.Select:
    """A fixed statement (no user values) whose tables named like the keyword arguments (`x`, `y`) are those
    queries, under the aliases the statement gives them."""
    tree = q(text)
    assert isinstance(tree, exp.Select)
    for table in list(tree.find_all(exp.Table)):
        source = sources.get(table.name)
        if source is not None:
            table.replace(source.copy().subquery(table.alias))
    return tree


def _scan(ctx: Context, events: list[str], extra: dict[str, exp.Expr]) -> exp.Select:
    """One pass over these events: person, event, time (µs) and the extra columns."""
    person = ctx.unit("person")
    which = exp.column("event", EVENTS)
    columns = [person.as_("pid"), which.copy().as_("ev"),
               ctx.dialect.epoch_us(exp.column("time", EVENTS)).as_("t"),
               *[value.as_(name) for name, value in extra.items()]]
    return ctx.scan(columns, [exp.In(this=which, expressions=[exp.Literal.string(e) for e in events])])


def _once(ctx: Context) -> bool | None:
    """Whether to ask the engine to compute a CTE read several times once (DuckDB's MATERIALIZED; ClickHouse has
    no such clause)."""
    return True if ctx.dialect.name == "duckdb" else None


def _now_us(ctx: Context) -> int:
    now = ctx.now or dt.datetime.now(dt.UTC)
    return int(now.timestamp() * 1_000_000)


def _n(name: str, condition: str) -> str:
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END) AS {name}"


def _flag(name: str, condition: str) -> str:
    """1 if any row meets the condition (decided in the aggregate: DuckDB 2.0 can read a CASE over a summed
    column of a subquery as 0)."""
    return f"max(CASE WHEN {condition} THEN 1 ELSE 0 END) AS {name}"


LEAD_FEATURES = (
    Feature("page_views", "pages viewed before and just after becoming a lead", "成为线索前后浏览页面数", count=True),
    Feature("pricing_views", "views of the pricing page", "价格页浏览次数", count=True),
    Feature("app_views", "pages viewed in the app", "App 内浏览页面数", count=True),
    Feature("ad_clicks", "ad clicks", "广告点击次数", count=True),
    Feature("calls", "calls connected with an advisor", "与顾问接通电话次数", count=True),
    Feature("qualified", "qualified by an advisor", "被顾问判定为有效线索"),
    Feature("wechat", "added the advisor on WeChat", "已添加顾问微信"),
    Feature("trial_booked", "booked a trial lesson", "预约了试听课"),
    Feature("trial_attended", "attended the trial lesson", "参加了试听课"),
    Feature("referred", "came through a referral", "通过转介绍而来"),
    Feature("channel_rate", "how often leads of the same channel paid", "同渠道线索的历史成交率"),
)


def lead_plan(ctx: Context) -> ModelPlan:
    now = _now_us(ctx)
    window = LEAD_DAYS * DAY_US
    rows = _scan(ctx, ["lead_created", "page_view", "ad_click", "call_connected", "lead_qualified", "wechat_added",
                       "trial_booked", "trial_attended", "referral_signup", "order_paid"],
                 {"url": ctx.text("url"), "channel": ctx.text("channel")})
    timed = exp.select(exp.Star(), q("min(CASE WHEN r.ev = 'lead_created' THEN r.t END) OVER (PARTITION BY r.pid)")
                       .as_("t0")).from_(rows.subquery("r"))
    early = f"w.t <= w.t0 + {window}"
    per_person = fill(f"""SELECT w.pid AS unit, min(w.t0) AS t0,
        min(CASE WHEN w.ev = 'lead_created' THEN w.channel END) AS channel,
        {_n("page_views", f"w.ev = 'page_view' AND {early}")},
        {_n("pricing_views", f"w.ev = 'page_view' AND {early} AND strpos(coalesce(w.url, ''), 'pricing') > 0")},
        {_n("app_views", f"w.ev = 'page_view' AND {early} AND strpos(coalesce(w.url, ''), 'app:') = 1")},
        {_n("ad_clicks", f"w.ev = 'ad_click' AND {early}")},
        {_n("calls", f"w.ev = 'call_connected' AND {early}")},
        {_flag("qualified", f"w.ev = 'lead_qualified' AND {early}")},
        {_flag("wechat", f"w.ev = 'wechat_added' AND {early}")},
        {_flag("trial_booked", f"w.ev = 'trial_booked' AND {early}")},
        {_flag("trial_attended", f"w.ev = 'trial_attended' AND {early}")},
        {_flag("referred", "w.ev = 'referral_signup'")},
        min(CASE WHEN w.ev = 'order_paid' THEN w.t END) AS first_order
        FROM x AS w WHERE w.t0 IS NOT NULL GROUP BY w.pid""", x=timed)
    outcome = (f"CASE WHEN p.first_order IS NOT NULL AND p.first_order <= p.t0 + {ORDER_DAYS * DAY_US} THEN 1 "
               f"WHEN p.t0 + {ORDER_DAYS * DAY_US} <= {now} THEN 0 END")
    # the channel's paying rate among matured leads: a property of the channel, learned from the history
    tree = fill(f"""SELECT p.unit, p.page_views, p.pricing_views, p.app_views, p.ad_clicks, p.calls,
        p.qualified, p.wechat, p.trial_booked, p.trial_attended, p.referred,
        avg({outcome}) OVER (PARTITION BY p.channel) AS channel_rate,
        {outcome} AS outcome,
        1 AS scoring
        FROM x AS p""", x=per_person)
    return ModelPlan("lead_propensity", f"paid a first order within {ORDER_DAYS} days",
                     f"{ORDER_DAYS} 天内首单成交", LEAD_FEATURES, tree)


DROPOUT_FEATURES = (
    Feature("attendance", "share of scheduled lessons attended", "已开课课次的到课率"),
    Feature("recent_attendance", "share of the last 3 lessons attended", "最近 3 次课的到课率"),
    Feature("missed_in_a_row", "lessons missed in a row lately", "最近连续缺课次数", count=True),
    Feature("days_since_attended", "days since the last lesson attended", "距上次到课的天数", count=True),
    Feature("completion", "share of attended lessons completed", "到课后完课的比例"),
    Feature("homework", "homework handed in per lesson attended", "每次到课的作业提交率"),
    Feature("quiz_accuracy", "share of quiz answers correct", "课堂测验正确率"),
    Feature("replay_share", "share of lessons watched as a replay", "看回放的比例"),
    Feature("idle", f"had lessons in the last {STOP_DAYS} days and attended none", f"最近 {STOP_DAYS} 天有课但未到课"),
)


LESSONS = "lesson_record"  # the CTE of per person and lesson facts, read by both moments of a model


def _lessons(ctx: Context) -> exp.Select:
    """Per person and lesson (one pass over the learning events): course, start, first attendance (live or
    replay), whether by replay, first completion, first homework, quiz answers and correct ones (answered in
    class, so counted with the attendance)."""
    rows = _scan(ctx, ["lesson_scheduled", "lesson_attended", "lesson_completed", "homework_submitted",
                       "quiz_answered"],
                 {"lesson": ctx.text("lesson_id"), "course": ctx.text("course_id"),
                  "starts": ctx.dialect.epoch_us(ctx.property("starts_at")[0]),
                  "mode": ctx.text("mode"), "correct": ctx.text("correct")})
    return fill(f"""SELECT r.pid AS pid, r.lesson AS lesson, max(r.course) AS course,
        min(CASE WHEN r.ev = 'lesson_scheduled' THEN r.starts END) AS starts,
        min(CASE WHEN r.ev = 'lesson_attended' THEN r.t END) AS attended_at,
        max(CASE WHEN r.ev = 'lesson_attended' AND r.mode = 'replay' THEN 1 ELSE 0 END) AS replay,
        min(CASE WHEN r.ev = 'lesson_completed' THEN r.t END) AS completed_at,
        min(CASE WHEN r.ev = 'homework_submitted' THEN r.t END) AS homework_at,
        {_n("answers", "r.ev = 'quiz_answered'")},
        {_n("correct", "r.ev = 'quiz_answered' AND r.correct = 'true'")}
        FROM x AS r WHERE r.lesson IS NOT NULL GROUP BY r.pid, r.lesson""", x=rows)


def _learning_record(cut: int, unit: str) -> exp.Select:
    """Per `unit` (`pid`, or `pid, course`): the learning record of the lessons started by the cut (µs), as it
    stood then. Reads the lessons CTE."""
    keys = ", ".join(f"k.{u.strip()}" for u in unit.split(","))
    recent = cut - STOP_DAYS * DAY_US
    came = f"(k.attended_at IS NOT NULL AND k.attended_at <= {cut})"
    ranked = fill(f"""SELECT l.*, row_number() OVER (PARTITION BY {keys.replace('k.', 'l.')} ORDER BY l.starts DESC,
        l.lesson DESC) AS back FROM {LESSONS} AS l WHERE l.starts IS NOT NULL AND l.starts <= {cut}""")
    return fill(f"""SELECT {keys}, count(*) AS scheduled,
        avg(CASE WHEN {came} THEN 1.0 ELSE 0.0 END) AS attendance,
        avg(CASE WHEN k.back <= 3 THEN (CASE WHEN {came} THEN 1.0 ELSE 0.0 END) END) AS recent_attendance,
        coalesce(min(CASE WHEN {came} THEN k.back END), count(*) + 1) - 1 AS missed_in_a_row,
        ({cut} - coalesce(max(CASE WHEN {came} THEN k.attended_at END), min(k.starts))) / {DAY_US}.0
          AS days_since_attended,
        coalesce(sum(CASE WHEN k.completed_at <= {cut} THEN 1 ELSE 0 END) * 1.0
                 / nullif(sum(CASE WHEN {came} THEN 1 ELSE 0 END), 0), 0) AS completion,
        coalesce(sum(CASE WHEN k.homework_at <= {cut} THEN 1 ELSE 0 END) * 1.0
                 / nullif(sum(CASE WHEN {came} THEN 1 ELSE 0 END), 0), 0) AS homework,
        coalesce(sum(CASE WHEN {came} THEN k.correct ELSE 0 END) * 1.0
                 / nullif(sum(CASE WHEN {came} THEN k.answers ELSE 0 END), 0), 0.5) AS quiz_accuracy,
        coalesce(sum(CASE WHEN {came} THEN k.replay ELSE 0 END) * 1.0
                 / nullif(sum(CASE WHEN {came} THEN 1 ELSE 0 END), 0), 0) AS replay_share,
        max(CASE WHEN k.starts > {recent} THEN 1 ELSE 0 END)
          - max(CASE WHEN k.attended_at > {recent} AND k.attended_at <= {cut} THEN 1 ELSE 0 END)
          * max(CASE WHEN k.starts > {recent} THEN 1 ELSE 0 END) AS idle
        FROM x AS k GROUP BY {keys}""", x=ranked)


def dropout_plan(ctx: Context) -> ModelPlan:
    """Learned at `now - STOP_DAYS` (features then, outcome since); scored at now. The rows of both moments
    come from one pass over the events: `scoring` 0 (learning) and 1 (scoring)."""
    now = _now_us(ctx)
    then = now - STOP_DAYS * DAY_US
    columns = ", ".join(f"a.{f.name}" for f in DROPOUT_FEATURES)
    after = fill(f"""SELECT l.pid AS pid, max(CASE WHEN l.starts > {then} AND l.starts <= {now} THEN 1 ELSE 0 END)
        AS due, max(CASE WHEN l.starts > {then} AND l.starts <= {now} AND l.attended_at IS NOT NULL THEN 1 ELSE 0 END)
        AS came FROM {LESSONS} AS l GROUP BY l.pid""")
    learn = fill(f"""SELECT a.pid AS unit, {columns},
        CASE WHEN b.due = 1 AND b.came = 0 THEN 1 WHEN b.due = 1 THEN 0 END AS outcome, 0 AS scoring
        FROM x AS a JOIN y AS b ON b.pid = a.pid""", x=_learning_record(then, "pid"), y=after)
    # scored: students with lessons that started in the last STOP_DAYS days (the ones who can stop)
    active = fill(f"""SELECT l.pid AS pid FROM {LESSONS} AS l WHERE l.starts > {then} AND l.starts <= {now}
        GROUP BY l.pid""")
    score = fill(f"""SELECT a.pid AS unit, {columns}, CAST(NULL AS INT) AS outcome, 1 AS scoring FROM x AS a
        JOIN y AS b ON b.pid = a.pid""", x=_learning_record(now, "pid"), y=active)
    tree = exp.union(learn, score, distinct=False).with_(LESSONS, as_=_lessons(ctx), materialized=_once(ctx))
    return ModelPlan("dropout_risk", f"stopped attending (no lesson attended in {STOP_DAYS} days)",
                     f"停止到课({STOP_DAYS} 天未到课)", DROPOUT_FEATURES, tree, observed="idle")


RENEWAL_FEATURES = (
    Feature("attendance", "share of the course's lessons attended", "本课程到课率"),
    Feature("recent_attendance", "share of the course's last 3 lessons attended", "本课程最近 3 次课到课率"),
    Feature("completion", "share of attended lessons completed", "到课后完课的比例"),
    Feature("homework", "homework handed in per lesson attended", "每次到课的作业提交率"),
    Feature("quiz_accuracy", "share of quiz answers correct", "课堂测验正确率"),
    Feature("replay_share", "share of lessons watched as a replay", "看回放的比例"),
    Feature("course_rate", "how often students of the same course renewed", "同课程学员的历史续费率"),
)
RENEW_BEFORE, RENEW_AFTER = 7, 30


def renewal_plan(ctx: Context) -> ModelPlan:
    """One row per student and course; a course has ended for a student once its last scheduled lesson started
    `ENDED_DAYS` days ago with none scheduled since. Outcome: a renewal order (`order_type` renewal) from 7
    days before to 30 days after the course's last lesson. Each student's latest course is scored."""
    now = _now_us(ctx)
    # quiz answers carry the lesson, not the course: the lesson's course comes from its schedule
    record = fill(f"""SELECT r.*, m.last_start AS last_start FROM x AS r JOIN (SELECT pid, course, max(starts)
        AS last_start FROM {LESSONS} WHERE starts IS NOT NULL GROUP BY pid, course) AS m
        ON m.pid = r.pid AND m.course = r.course""", x=_learning_record(now, "pid, course"))
    orders = _scan(ctx, ["order_paid"], {"order_type": ctx.text("order_type")})
    renewals = fill("SELECT o.pid AS pid, o.t AS t FROM x AS o WHERE o.order_type = 'renewal'", x=orders)
    ended = f"r.last_start <= {now - ENDED_DAYS * DAY_US}"
    window = f"o.t >= r.last_start - {RENEW_BEFORE * DAY_US} AND o.t <= r.last_start + {RENEW_AFTER * DAY_US}"
    own = [f.name for f in RENEWAL_FEATURES if f.name != "course_rate"]
    rows = fill(f"""SELECT r.pid AS unit, r.course AS course, {", ".join(f"min(r.{name}) AS {name}" for name in own)},
        CASE WHEN max(CASE WHEN {window} THEN 1 ELSE 0 END) = 1 AND {ended} THEN 1
             WHEN r.last_start + {RENEW_AFTER * DAY_US} <= {now} THEN 0 END AS outcome,
        CASE WHEN row_number() OVER (PARTITION BY r.pid ORDER BY r.last_start DESC, r.course) = 1
             THEN 1 ELSE 0 END AS scoring
        FROM x AS r LEFT JOIN y AS o ON o.pid = r.pid GROUP BY r.pid, r.course, r.last_start""",
                x=record, y=renewals)
    # the course's renewal rate among ended courses: the last level of a series has nothing to renew
    rows = fill(f"""SELECT z.unit, {", ".join(f"z.{name}" for name in own)},
        coalesce(avg(z.outcome) OVER (PARTITION BY z.course), 0) AS course_rate, z.outcome, z.scoring,
        z.course AS item FROM x AS z""", x=rows)
    tree = rows.with_(LESSONS, as_=_lessons(ctx), materialized=_once(ctx))
    return ModelPlan("renewal_propensity", "paid a renewal when the course ended", "课程结束时续费",
                     RENEWAL_FEATURES, tree)


ENDED_DAYS = 10


PLANS = {"lead_propensity": lead_plan, "dropout_risk": dropout_plan, "renewal_propensity": renewal_plan}
