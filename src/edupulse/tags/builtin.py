"""The families behind the built-in education tags, each one pass over the standard events (PRODUCT.md):

- missed_streak: per student and class, scheduled lessons ordered by `starts_at`; a lesson is missed once it
  has started without a `lesson_attended` (live or replay); the first time `streak` in a row are missed is
  the value (the class, and the lesson in `detail`). A running count of attended lessons splits a class's
  lessons into runs that each start with an attendance, so "n missed in a row" is the n-th missed lesson
  of a run: window functions, no loop.
- referral_kol: `referral_signup` names the referrer by an identity (`referrer_id`); referees per referrer,
  the paying ones, and the referral tree to three levels for ties.
- institution_health: staff login days in 7 and 30 days and enrolment growth of each group, tiered points
  per factor (100 in all), missing factors re-weighted, and the same score 4 weeks ago for the trend.
"""

from __future__ import annotations

import datetime as dt
import itertools

from sqlglot import exp

from edupulse.queries.compile import EVENTS, Context, literal
from edupulse.tags.compile import S, col, events_of, output, sql
from edupulse.tags.model import InstitutionHealth, MissedStreak, ReferralKol, TagSpec

DAY = dt.timedelta(days=1)


def _not_null(node: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=node, expression=exp.null()))


def missed_streak(spec: TagSpec, d: MissedStreak, ctx: Context) -> exp.Select:
    now = ctx.now or dt.datetime.now(dt.UTC)
    person = ctx.unit("person")
    scheduled = exp.column("event", EVENTS).eq(exp.Literal.string("lesson_scheduled"))
    attended = exp.column("event", EVENTS).eq(exp.Literal.string("lesson_attended"))
    lesson = ctx.text("lesson_id")
    starts, _ = ctx.property("starts_at")
    starts_us = ctx.dialect.epoch_us(starts) if _ else ctx.dialect.to_double(starts)
    klass = ctx.unit(d.group) if d.group in ctx.groups else ctx.text("course_id")
    lessons = ctx.scan(
        [person.as_("pid"), lesson.as_("lesson"),
         exp.func("max", exp.If(this=scheduled.copy(), true=klass)).as_("cls"),
         exp.func("min", exp.If(this=scheduled.copy(), true=starts_us)).as_("starts"),
         ctx.dialect.count_if(attended.copy()).as_("att")],
        [*events_of(ctx, ["lesson_scheduled", "lesson_attended"]), _not_null(lesson.copy())],
    ).group_by(person.copy(), lesson.copy()).subquery("l")
    begun = exp.select(col("pid", "l"), col("lesson", "l"), col("cls", "l"), col("starts", "l"),
                       exp.If(this=exp.GT(this=col("att", "l"), expression=literal(0)), true=literal(1),
                              false=literal(0)).as_("came")).from_(lessons).where(exp.and_(
        _not_null(col("cls", "l")), _not_null(col("starts", "l")),
        exp.LTE(this=col("starts", "l"), expression=literal(int(now.timestamp() * 1_000_000)))))
    runs = exp.select(exp.Star(), sql(
        "sum(b.came) OVER (PARTITION BY b.pid, b.cls ORDER BY b.starts, b.lesson ROWS BETWEEN UNBOUNDED PRECEDING "
        "AND CURRENT ROW)").as_("run")).from_(begun.subquery("b"))
    missed = exp.select(exp.Star(), sql(
        "row_number() OVER (PARTITION BY r.pid, r.cls, r.run ORDER BY r.starts, r.lesson)").as_("nth")).from_(
        runs.subquery("r")).where(sql("r.came = 0"))
    hits = exp.select(col("pid", "m"), col("cls", "m"), col("lesson", "m"), col("starts", "m")).from_(
        missed.subquery("m")).where(exp.EQ(this=col("nth", "m"), expression=literal(d.streak))).subquery("h")
    key = exp.Tuple(expressions=[col("starts", "h"), col("cls", "h")])
    pick = ctx.dialect.arg_min
    return exp.select(*output(col("pid", "h"), pick(col("cls", "h"), key),
                              exp.cast(exp.Div(this=exp.func("min", col("starts", "h")),
                                               expression=literal(1_000_000)), exp.DataType.build("DOUBLE")),
                              pick(col("lesson", "h"), key.copy()))).from_(hits).group_by(col("pid", "h"))


def referral_kol(spec: TagSpec, d: ReferralKol, ctx: Context) -> exp.Select:
    person = ctx.unit("person")
    signup = exp.column("event", EVENTS).eq(exp.Literal.string("referral_signup"))
    paid = exp.column("event", EVENTS).eq(exp.Literal.string("order_paid"))
    per_person = ctx.scan(
        [person.as_("pid"), exp.func("min", exp.If(this=signup.copy(), true=ctx.text("referrer_id"))).as_("ref"),
         exp.If(this=exp.GT(this=ctx.dialect.count_if(paid.copy()), expression=literal(0)), true=literal(1),
                false=literal(0)).as_("paid")],
        events_of(ctx, ["referral_signup", "order_paid"]),
    ).group_by(person.copy())
    p = ctx.project_id
    resolved = ctx.dialect.resolved(col("person_id", "o"), col("person_id", "i"))
    ids = (exp.select(exp.column("id_value", "i").as_("id_value"), exp.func("min", resolved).as_("referrer"))
           .from_(exp.table_("identities").as_("i"))
           .join(exp.table_("person_overrides").as_("o"), on=exp.and_(
               col("project_id", "o").eq(literal(p)), col("old_person_id", "o").eq(col("person_id", "i"))),
                 join_type="left")
           .where(col("project_id", "i").eq(literal(p))).group_by(exp.column("id_value", "i")))
    edges = (exp.select(col("referrer", "x").as_("referrer"), col("pid", "a").as_("referee"),
                        col("paid", "a").as_("paid"))
             .from_(per_person.subquery("a"))
             .join(ids.subquery("x"), on=col("id_value", "x").eq(col("ref", "a")))
             .where(exp.and_(_not_null(col("ref", "a")), exp.NEQ(this=col("referrer", "x"),
                                                                   expression=col("pid", "a")))))
    # the tree: referees, their referees and theirs (deeper trees are rare and only break ties); the edges
    # are one CTE, read from the one scan
    level2 = _children("e1", "e2")
    level3 = _children("e1", "e2", "e3")
    per_referrer = (exp.select(col("referrer", "e1").as_("pid"), sql("count(*)").as_("referees"),
                               sql("sum(e1.paid)").as_("paying"))
                    .from_(exp.table_(EDGES).as_("e1")).group_by(col("referrer", "e1")))
    ranked = (exp.select(col("pid", "k").as_("pid"), col("referees", "k").as_("referees"),
                         col("paying", "k").as_("paying"),
                         sql("k.referees + coalesce(t2.n, 0) + coalesce(t3.n, 0)").as_("tree"))
              .from_(per_referrer.subquery("k"))
              .join(level2.subquery("t2"), on=col("pid", "t2").eq(col("pid", "k")), join_type="left")
              .join(level3.subquery("t3"), on=col("pid", "t3").eq(col("pid", "k")), join_type="left"))
    ordered = exp.select(exp.Star(), sql(
        "row_number() OVER (ORDER BY z.referees DESC, z.tree DESC, z.paying DESC, z.pid)").as_("place")).from_(
        ranked.subquery("z"))
    value = exp.If(this=exp.LTE(this=col("place", "w"), expression=literal(d.top)), true=exp.Literal.string("kol"),
                   false=exp.Literal.string("referrer"))
    detail = sql("'{\"referees\": ' || CAST(w.referees AS TEXT) || ', \"paying_referees\": ' || "
                 "CAST(w.paying AS TEXT) || ', \"tree\": ' || CAST(w.tree AS TEXT) || ', \"rank\": ' || "
                 "CAST(w.place AS TEXT) || '}'")
    return exp.select(*output(col("pid", "w"), value, exp.cast(col("referees", "w"), exp.DataType.build("DOUBLE")),
                              detail)).from_(ordered.subquery("w")).with_(EDGES, as_=edges)


EDGES = "referral_edges"


def _children(*aliases: str) -> exp.Select:
    """Per root referrer, how many persons are exactly len(aliases) levels below it."""
    tree = exp.select(col("referrer", aliases[0]).as_("pid"), exp.Count(this=exp.Star()).as_("n")).from_(
        exp.table_(EDGES).as_(aliases[0]))
    for parent, child in itertools.pairwise(aliases):
        tree = tree.join(exp.table_(EDGES).as_(child), on=col("referrer", child).eq(col("referee", parent)))
    return tree.group_by(col("referrer", aliases[0]))


# institution health -----------------------------------------------------------------------------------

# factor -> (points, [(threshold, points) best first]); a factor without data is left out and the others
# are scaled to 100
LOGIN_7 = (35, [(0.45, 35), (0.3, 25), (0.15, 12)])  # share of days an active staff member logged in, 7 days
LOGIN_TREND = (30, [(0.85, 30), (0.65, 18), (0.45, 8)])  # that share in 7 days / the same in 30 days
GROWTH = (35, [(0.0, 35), (-0.2, 22), (-0.45, 10)])  # enrolments in 30 days / the 30 days before, - 1


def institution_health(spec: TagSpec, d: InstitutionHealth, ctx: Context) -> exp.Select:
    now = ctx.now or dt.datetime.now(dt.UTC)
    today = now.astimezone(ctx.timezone).date()
    unit = ctx.unit(spec.unit)
    low = dt.datetime.combine(today - dt.timedelta(days=95), dt.time(), ctx.timezone).astimezone(dt.UTC)
    high = now + DAY
    day = ctx.bucket("day", low, high)
    login = exp.column("event", EVENTS).eq(exp.Literal.string(d.login_event))
    enrol = exp.column("event", EVENTS).eq(exp.Literal.string(d.enrol_event))
    person = ctx.unit("person")
    columns: list[exp.Expr] = [unit.as_("unit")]
    for ago, suffix in ((0, "now"), (28, "then")):
        end = dt.datetime.combine(today - dt.timedelta(days=ago - 1), dt.time(), ctx.timezone).astimezone(dt.UTC)

        def since(days: int, end: dt.datetime = end) -> exp.Expr:
            start = end - dt.timedelta(days=days)
            return exp.and_(exp.GTE(this=exp.column("time", EVENTS), expression=ctx.dialect.timestamp(start)),
                            exp.LT(this=exp.column("time", EVENTS), expression=ctx.dialect.timestamp(end)))

        staff_day = exp.DPipe(this=ctx.dialect.to_text(person.copy()), expression=exp.DPipe(
            this=exp.Literal.string("@"), expression=ctx.dialect.to_text(day.copy())))
        for days in (7, 30):
            columns.append(exp.Count(this=exp.Distinct(expressions=[exp.If(
                this=exp.and_(login.copy(), since(days)), true=staff_day.copy())])).as_(f"sd{days}_{suffix}"))
        columns.append(exp.Count(this=exp.Distinct(expressions=[exp.If(
            this=exp.and_(login.copy(), since(30)), true=person.copy())])).as_(f"staff_{suffix}"))
        columns.append(ctx.dialect.count_if(exp.and_(enrol.copy(), since(30))).as_(f"en_{suffix}"))
        previous = exp.and_(enrol.copy(), since(60), exp.Not(this=exp.Paren(this=since(30))))
        columns.append(ctx.dialect.count_if(previous).as_(f"enp_{suffix}"))
    scan = ctx.scan(columns, [*events_of(ctx, [d.login_event, d.enrol_event]),
                              exp.GTE(this=exp.column("time", EVENTS), expression=ctx.dialect.timestamp(low)),
                              _not_null(unit.copy())]).group_by(unit.copy()).subquery(S)
    scores = exp.select(col("unit"), _score("now").as_("score"), _score("then").as_("before"),
                        sql("s.sd7_now").as_("sd7"), sql("s.staff_now").as_("staff"),
                        sql("s.en_now").as_("en"), sql("s.enp_now").as_("enp")).from_(scan).subquery("h")
    tier = exp.Case().when(exp.LT(this=col("score", "h"), expression=literal(float(d.warning_below))),
                           exp.Literal.string("warning")).when(
        exp.LT(this=col("score", "h"), expression=literal(float(d.watch_below))), exp.Literal.string("watch")).else_(
        exp.Literal.string("healthy"))
    detail = sql("'{\"trend\": ' || coalesce(CAST(CAST(round(h.score - h.before) AS BIGINT) AS TEXT), 'null') || "
                 "', \"staff_login_days_7\": ' || CAST(h.sd7 AS TEXT) || ', \"active_staff_30\": ' || "
                 "CAST(h.staff AS TEXT) || ', \"enrolments_30\": ' || CAST(h.en AS TEXT) || "
                 "', \"enrolments_prev_30\": ' || CAST(h.enp AS TEXT) || '}'")
    return exp.select(*output(col("unit", "h"), tier, sql("round(h.score, 1)"), detail)).from_(scores).where(
        _not_null(col("score", "h")))


def _score(suffix: str) -> exp.Expr:
    rate7 = f"(s.sd7_{suffix} / (7.0 * nullif(s.staff_{suffix}, 0)))"
    rate30 = f"(s.sd30_{suffix} / (30.0 * nullif(s.staff_{suffix}, 0)))"
    trend = f"({rate7} / nullif({rate30}, 0))"
    growth = f"(CAST(s.en_{suffix} AS DOUBLE) / nullif(s.enp_{suffix}, 0) - 1)"
    parts = [(rate7, LOGIN_7), (trend, LOGIN_TREND), (growth, GROWTH)]
    points = " + ".join(f"coalesce({_tiered(x, tiers)}, 0)" for x, (_, tiers) in parts)
    weight = " + ".join(f"(CASE WHEN {x} IS NULL THEN 0 ELSE {w} END)" for x, (w, _) in parts)
    return sql(f"100.0 * ({points}) / nullif({weight}, 0)")


def _tiered(x: str, tiers: list[tuple[float, int]]) -> str:
    whens = " ".join(f"WHEN {x} >= {threshold} THEN {points}" for threshold, points in tiers)
    return f"(CASE WHEN {x} IS NULL THEN NULL {whens} ELSE 0 END)"
