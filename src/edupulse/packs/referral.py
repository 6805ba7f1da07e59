"""Pack 10, referral (转介绍): the referral rate (the catalogue's: new paying students who came with a referrer /
all new paying students), the conversion of referred sign-ups, the top referrers (KOLs) by the number of
people who signed up with their `referrer_id`, and the share of the period's revenue that referred persons
bring (in all, and per KOL). The referral tree of a person is referral_tree.py."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, period_condition, ratio
from edupulse.packs.spec import DashboardPart, MetricPart, Pack, ReportPart, Stage

NAME = "referral"
TOP = 10
TOP_REVENUE = 100  # referrers the installed revenue report lists, most revenue first
FIRST = [{"property": "order_type", "op": "eq", "value": "first"}]
CONVERSION = MetricPart("referral_conversion", {
    "title": "转介绍转化率 referral conversion", "unit": "%", "scale": 100,
    "description": "Persons whose first referral_signup is in the period and who paid a first order "
                   "(order_paid, order_type first) at any time after it / those persons.",
    "cohort": {"event": "referral_signup", "first": True},
    "outcome": {"event": "order_paid", "filters": FIRST, "from_days": 0}, "ratio": "rate"})
RATES = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-90d"},
         "series": [{"metric": "referral_rate"}, {"metric": "referral_conversion"}]}
REFERRERS = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-90d"},
             "series": [{"event": "referral_signup", "math": "unique"}],
             "breakdown": {"properties": ["referrer_id"], "limit": 100}}
ACTIVITY = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-90d"},
            "series": [{"event": "referral_shared"}, {"event": "referral_signup"}]}


def revenue_sql(where: str = "", referrers: list[str] | None = None) -> str:
    """The revenue of the orders paid (in `where`'s period) by referred persons (a `referral_signup` with a
    `referrer_id`, at any time): per referrer id (those of `referrers`, else the TOP_REVENUE who brought the
    most), in all (each person once), and all revenue."""
    if referrers is None:
        per_referrer = ("SELECT * FROM (\n"
                        "  SELECT 'referrer' AS kind, r.referrer_id AS referrer_id, sum(o.revenue) AS revenue\n"
                        "  FROM referred AS r JOIN orders AS o ON o.person_id = r.person_id GROUP BY r.referrer_id\n"
                        f"  ORDER BY revenue DESC, referrer_id LIMIT {TOP_REVENUE}) AS ranked\n")
    else:
        chosen = ", ".join("'" + r.replace("'", "''") + "'" for r in referrers) or "NULL"
        per_referrer = ("SELECT 'referrer' AS kind, r.referrer_id AS referrer_id, sum(o.revenue) AS revenue\n"
                        "FROM referred AS r JOIN orders AS o ON o.person_id = r.person_id\n"
                        f"WHERE r.referrer_id IN ({chosen}) GROUP BY r.referrer_id\n")
    return (
        "SELECT * FROM (\n"
        "WITH referred AS (\n"
        "  SELECT person_id, prop_referrer_id AS referrer_id, min(time) AS signed_up FROM events\n"
        "  WHERE event = 'referral_signup' AND prop_referrer_id IS NOT NULL AND prop_referrer_id <> ''\n"
        "  GROUP BY person_id, prop_referrer_id),\n"
        "orders AS (\n"
        f"  SELECT person_id, sum(prop_amount) AS revenue FROM events WHERE event = 'order_paid'{where}\n"
        "  GROUP BY person_id)\n"
        f"{per_referrer}"
        "UNION ALL SELECT 'referred' AS kind, '' AS referrer_id, sum(revenue) AS revenue FROM orders\n"
        "  WHERE person_id IN (SELECT person_id FROM referred)\n"
        "UNION ALL SELECT 'all' AS kind, '' AS referrer_id, sum(revenue) AS revenue FROM orders) AS parts\n"
        # in this order on every engine (ClickHouse runs the parts of a UNION ALL side by side)
        "ORDER BY CASE kind WHEN 'referrer' THEN 0 WHEN 'referred' THEN 1 ELSE 2 END, revenue DESC, referrer_id")


REVENUE = {"kind": "sql", "sql": revenue_sql()}
REPORTS = (
    ReportPart("rates", "转介绍率与转化率 Referral rate and conversion", RATES, width=12),
    ReportPart("referrers", "推荐人排行 Top referrers", REFERRERS, view={"chart": "bar"}),
    ReportPart("activity", "分享与注册 Shares and sign-ups", ACTIVITY),
    ReportPart("revenue", "推荐带来的收入（全部时间） Revenue referred persons bring (all time)", REVENUE, width=12),
)


class Referrer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    referrer_id: str
    referees: int
    person_id: int | None  # the referrer's person (by login id), for the tree
    revenue: float  # of the orders their referees paid in the period
    revenue_share: float | None  # of all the period's revenue


class Referral(Headline):
    referral_rate: float | None
    referral_conversion: float | None
    referred_signups: int
    revenue: float
    referred_revenue: float
    referred_revenue_share: float | None
    top_referrers: list[Referrer]


def headline(run: PackRun) -> Referral:
    rate, conversion = (ratio(s.aggregated_value, 100) for s in run.trends(RATES).series)
    found = [(str(s.breakdown[0]), int(s.aggregated_value or 0)) for s in run.trends(REFERRERS).series
             if s.breakdown and s.breakdown[0] is not None and s.breakdown[0] != "$other"]
    ranked = sorted(found, key=lambda r: (-r[1], r[0]))[:TOP]
    # the revenue of the referrers shown only: a project may have more referrers than a result may hold rows
    sql = revenue_sql(period_condition(run, " AND"), [r for r, _ in ranked])
    rows = run.service.run(run.project, {"kind": "sql", "sql": sql}, now=run.now, scope=run.scope).result.rows
    money = {(str(r[0]), str(r[1])): round(float(r[2] or 0), 2) for r in rows}
    total, referred = money.get(("all", ""), 0.0), money.get(("referred", ""), 0.0)
    persons = _persons(run, [r for r, _ in ranked])
    top = [Referrer(referrer_id=r, referees=n, person_id=persons.get(r), revenue=money.get(("referrer", r), 0.0),
                    revenue_share=ratio(money.get(("referrer", r), 0.0), total)) for r, n in ranked]
    return Referral(**run.frame(NAME), card=Card(value=rate, unit="%", label="packs.card.referral"),
                    referral_rate=rate, referral_conversion=conversion, referred_signups=sum(n for _, n in found),
                    revenue=total, referred_revenue=referred, referred_revenue_share=ratio(referred, total),
                    top_referrers=top)


def _persons(run: PackRun, logins: list[str]) -> dict[str, int]:
    """The person of each login id."""
    if not logins:
        return {}
    quoted = ", ".join("'" + login.replace("'", "''") + "'" for login in logins)
    sql = f"SELECT id_value, person_id FROM identities WHERE id_type = 'login_id' AND id_value IN ({quoted})"
    rows = run.service.run(run.project, {"kind": "sql", "sql": sql}, now=run.now).result.rows
    return {str(r[0]): int(r[1]) for r in rows}


PACK = Pack(
    name=NAME, version=4, stage=Stage.repurchase, problem="10", headline=headline,
    needs=("referral_signup", "referral_shared", "order_paid"), metrics=(CONVERSION,), reports=REPORTS,
    dashboards=(DashboardPart("board", "转介绍 Referral", ("rates", "referrers", "activity", "revenue"),
                              refresh_seconds=None, date_from="-90d"),),
)
