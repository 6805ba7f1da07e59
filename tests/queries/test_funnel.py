"""Funnels on a tiny hand-built history (every option, window boundaries, ties, time-zone day cuts, merged
identities), on both engines; and on seeded random histories, where every person's deepest step agrees
with ClickHouse's own windowFunnel run on the same rows."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edupulse.queries.common import local_midnight
from edupulse.queries.errors import QueryError
from edupulse.queries.funnel import FunnelQuery
from edupulse.queries.funnel_sql import FunnelPlan
from engines import History, requires_chdb

# shared builders (retention tests use them too) ----------------------------------------------------


def sh(text: str) -> str:
    """A wall-clock time in Asia/Shanghai (the projects' zone) as ISO text."""
    return f"{text}+08:00"


def track(who: str, event: str, when: str, login: bool = True, **properties: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": event, "distinct_id": who, "time": sh(when)}
    if login:
        record["distinct_id_type"] = "login_id"
    groups = properties.pop("groups", None)
    if groups:
        record["groups"] = groups
    if properties:
        record["properties"] = properties
    return record


def random_history(seed: int, persons: int, events: list[str], per_person: tuple[int, int],
                   start: dt.datetime, span_minutes: int, distinct_times: bool = False) -> list[dict[str, Any]]:
    """Seeded random tracks: each person does `per_person` (low, high) events drawn from `events` at whole
    minutes within `span_minutes` of `start` (Shanghai wall clock), so equal times happen often unless
    `distinct_times`."""
    rng = random.Random(seed)
    records = []
    for p in range(persons):
        count = rng.randint(*per_person)
        minutes = (rng.sample(range(span_minutes), count) if distinct_times
                   else [rng.randrange(span_minutes) for _ in range(count)])
        for minute in minutes:
            moment = start + dt.timedelta(minutes=minute)
            records.append(track(f"p{p}", rng.choice(events), moment.strftime("%Y-%m-%dT%H:%M:%S")))
    return records


# the hand-built history -------------------------------------------------------------------------

S1, S2 = {"school": "S1"}, {"school": "S2"}
HOSTILE_EVENT = "报名'); DROP TABLE events; --"
HOSTILE_PROPERTY = "名字'\"`"

HISTORY: list[dict[str, Any]] = [
    # anna browses anonymously late on the 1st, signs in after midnight: one person, one funnel
    track("dev-a", "view", "2026-09-01T23:30:00", login=False, src="douyin", groups=S1),
    {"type": "identify", "distinct_id": "anna", "anonymous_id": "dev-a", "time": sh("2026-09-02T00:05:00")},
    track("anna", "signup", "2026-09-02T00:10:00", plan="pro", groups=S1),
    track("anna", "pay", "2026-09-02T23:30:00", groups=S1),  # exactly one day after the view: in the window
    {"type": "profile_set", "distinct_id": "anna", "distinct_id_type": "login_id", "time": sh("2026-09-02T00:00:00"),
     "properties": {"grade": "G5"}},
    # ben: view and signup at the same moment (counts), pays one second past the window
    track("ben", "view", "2026-09-01T10:00:00", src="baidu", groups=S2),
    track("ben", "signup", "2026-09-01T10:00:00", plan="basic", groups=S2),
    track("ben", "pay", "2026-09-02T10:00:01", groups=S2),
    # cara signs up before viewing: ordered stops at the view, any order completes
    track("cara", "signup", "2026-09-03T09:00:00", plan="basic"),
    track("cara", "view", "2026-09-03T10:00:00"),
    track("cara", "pay", "2026-09-03T11:00:00"),
    # dan asks for help between view and signup: fine, except in strict order
    track("dan", "view", "2026-09-04T08:00:00", src="wechat", groups=S1),
    track("dan", "help", "2026-09-04T08:30:00", groups=S1),
    track("dan", "signup", "2026-09-04T09:00:00", plan="pro", groups=S1),
    track("dan", "pay", "2026-09-04T10:00:00", groups=S1),
    # eve cancels between signup and pay (an exclusion between steps 2 and 3)
    track("eve", "view", "2026-09-05T08:00:00", src="douyin"),
    track("eve", "signup", "2026-09-05T09:00:00", plan="basic"),
    track("eve", "cancel", "2026-09-05T09:30:00"),
    track("eve", "pay", "2026-09-05T10:00:00"),
    # fay views twice; only the second view is within a day of her signup: the fresher attempt counts
    track("fay", "view", "2026-09-06T08:00:00", src="baidu"),
    track("fay", "view", "2026-09-06T20:00:00", src="wechat"),
    track("fay", "signup", "2026-09-07T12:00:00", plan="pro"),
    # gil views at 07:30 local on the 1st (still the 31st in UTC), signs up just after the range ends
    track("gil", "view", "2026-09-01T07:30:00"),
    track("gil", "signup", "2026-09-08T00:00:01", plan="pro"),
    # hostile names and values
    track("hank", HOSTILE_EVENT, "2026-09-02T12:00:00", **{HOSTILE_PROPERTY: "值'--\\"}),
]

STEPS = [{"event": "view"}, {"event": "signup"}, {"event": "pay"}]
DAY = {"value": 1, "unit": "day"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("funnel"), HISTORY, name="Funnel School")
    yield history
    history.close()


def funnel(loaded: History, **query: Any) -> dict[str, Any]:
    """Run on DuckDB and ClickHouse (both must agree)."""
    query.setdefault("steps", STEPS)
    query.setdefault("window", DAY)
    query.setdefault("date_range", {"date_from": "2026-09-01", "date_to": "2026-09-07"})
    return loaded.both({"kind": "funnel", **query})


def counts(result: dict[str, Any], index: int = 0) -> list[int]:
    return [s["count"] for s in result["results"][index]["steps"]]


def by_breakdown(result: dict[str, Any]) -> dict[Any, list[int]]:
    return {tuple(r["breakdown"]): [s["count"] for s in r["steps"]] for r in result["results"]}


def test_ordered_window_ties_and_merged_identities(loaded: History) -> None:
    result = funnel(loaded)
    # step 1: everyone but hank; step 2: not cara (signup first), not gil (after the range);
    # step 3: anna (pay exactly one day after the view), dan, eve; not ben (one second late)
    assert counts(result) == [7, 5, 3]
    steps = result["results"][0]["steps"]
    assert steps[1]["conversion_rate"] == pytest.approx(5 / 7, abs=1e-6)
    assert steps[2]["step_conversion_rate"] == 0.6
    assert steps[1]["dropped"] == 2
    assert result["window_seconds"] == 86400
    # a window of two days lets ben's payment in
    assert counts(funnel(loaded, window={"value": 2, "unit": "day"})) == [7, 5, 4]
    assert counts(funnel(loaded, window={"value": 24 * 60 * 60 + 1, "unit": "minute"}))[2] == 4
    assert counts(funnel(loaded, window={"value": 30, "unit": "minute"})) == [7, 1, 0]  # only ben's tie


def test_time_to_convert(loaded: History) -> None:
    steps = funnel(loaded)["results"][0]["steps"]
    assert steps[0]["time_to_convert"] is None
    # view -> signup: anna 2400 s, ben 0, dan 3600, eve 3600, fay 57600 (from her second view)
    assert steps[1]["time_to_convert"]["average_seconds"] == 13440
    assert steps[1]["time_to_convert"]["median_seconds"] == 3600
    assert steps[1]["time_to_convert"]["p25_seconds"] == 2400
    # signup -> pay: anna 84000, dan 3600, eve 3600
    assert steps[2]["time_to_convert"]["average_seconds"] == 30400
    assert steps[2]["time_to_convert"]["median_seconds"] == 3600


def test_days_are_cut_in_the_project_time_zone(loaded: History) -> None:
    # on the 1st (local): anna's 23:30 view, ben, gil's 07:30 view (the 31st in UTC); anna's signup at
    # 00:10 on the 2nd is outside
    assert counts(funnel(loaded, date_range={"date_from": "2026-09-01", "date_to": "2026-09-01"})) == [3, 1, 0]


def test_strict_order(loaded: History) -> None:
    # dan's help breaks his funnel after the view, eve's cancel after the signup; cara's pay comes before
    # any signup after her view, which ends her funnel at step 1
    assert counts(funnel(loaded, order="strict")) == [7, 4, 1]


def test_any_order(loaded: History) -> None:
    result = funnel(loaded, order="any")
    # step k: persons who did k of the steps within one window: cara completes in any order
    assert counts(result) == [7, 6, 4]
    assert result["results"][0]["steps"][1]["time_to_convert"] is None


def test_exclusions(loaded: History) -> None:
    cancel = {"event": "cancel", "from_step": 2, "to_step": 3}
    assert counts(funnel(loaded, exclusions=[cancel])) == [7, 5, 2]
    # eve cancelled after signing up: not between view and signup
    assert counts(funnel(loaded, exclusions=[{**cancel, "from_step": 1, "to_step": 2}])) == [7, 5, 3]
    assert counts(funnel(loaded, exclusions=[{**cancel, "from_step": 1, "to_step": 3}])) == [7, 5, 2]
    assert counts(funnel(loaded, order="strict", exclusions=[{"event": "help", "from_step": 1, "to_step": 2}])) == [
        7, 4, 1]


def test_step_and_global_filters(loaded: History) -> None:
    steps = [{"event": "view", "filters": [{"property": "src", "value": "douyin"}]}, *STEPS[1:]]
    assert counts(funnel(loaded, steps=steps)) == [2, 2, 2]  # anna (anonymous view) and eve
    assert counts(funnel(loaded, filters=[{"property": "person.grade", "value": "G5"}])) == [1, 1, 1]
    signup_pro = [STEPS[0], {"event": "signup", "filters": [{"property": "plan", "value": "pro"}]}, STEPS[2]]
    assert counts(funnel(loaded, steps=signup_pro)) == [7, 3, 2]


def test_breakdown_attribution(loaded: History) -> None:
    first = funnel(loaded, breakdown={"properties": ["src"]})
    assert by_breakdown(first) == {("douyin",): [2, 2, 2], ("wechat",): [2, 2, 1], ("baidu",): [1, 1, 0],
                                   (None,): [2, 0, 0]}  # fay: her second view (wechat) started the attempt
    assert [r["breakdown"] for r in first["results"]][:2] in ([["douyin"], ["wechat"]], [["wechat"], ["douyin"]])
    at_signup = funnel(loaded, breakdown={"properties": ["plan"]}, breakdown_attribution="step", attribution_step=2)
    assert by_breakdown(at_signup) == {("pro",): [3, 3, 2], ("basic",): [2, 2, 1], (None,): [2, 0, 0]}
    top = funnel(loaded, breakdown={"properties": ["src"], "limit": 1})
    assert by_breakdown(top) in ({("douyin",): [2, 2, 2], ("$other",): [5, 3, 1]},
                                 {("wechat",): [2, 2, 1], ("$other",): [5, 3, 2]},
                                 {(None,): [2, 0, 0], ("$other",): [5, 5, 3]})
    anyorder = funnel(loaded, order="any", breakdown={"properties": ["src"]})
    assert by_breakdown(anyorder)[("douyin",)] == [2, 2, 2]


def test_groups_as_units(loaded: History) -> None:
    # school S1: anna's and dan's events as one unit; S2: ben; events without a school do not count
    assert counts(funnel(loaded, unit="school")) == [2, 2, 1]


def test_trend_and_previous_period(loaded: History) -> None:
    result = funnel(loaded, trend="day", compare_previous=True)
    trend = result["trend"]
    assert trend["buckets"][0] == "2026-09-01"
    assert len(trend["buckets"]) == 7
    # by the day of each person's deepest attempt's first step
    assert trend["entered"] == [3, 0, 1, 1, 1, 1, 0]
    assert trend["converted"] == [1, 0, 0, 1, 1, 0, 0]
    assert trend["conversion_rate"][3] == 1.0
    assert result["previous"]["date_to"] == "2026-08-31"
    assert counts(result["previous"]) == [0, 0, 0]


def test_hostile_names_and_values_stay_literals(loaded: History) -> None:
    steps = [{"event": HOSTILE_EVENT, "filters": [{"property": HOSTILE_PROPERTY, "value": "值'--\\"}]}]
    assert counts(funnel(loaded, steps=steps)) == [1]
    assert counts(funnel(loaded, steps=[{"event": "view", "filters": [{"property": "x' OR 1=1 --", "value": "'"}]},
                                         {"event": "pay"}])) == [0, 0]


@pytest.mark.parametrize(("query", "words"), [
    ({"steps": []}, "steps"),
    ({"window": {"value": 3651, "unit": "day"}}, "window.*3650"),
    ({"window": {"value": 1, "unit": "month"}}, "window.unit"),
    ({"exclusions": [{"event": "cancel", "from_step": 2, "to_step": 2}]}, "exclusions.0.*from_step"),
    ({"exclusions": [{"event": "cancel", "from_step": 2, "to_step": 4}]}, "exclusions.0"),
    ({"order": "any", "exclusions": [{"event": "cancel"}]}, "exclusions need an order"),
    ({"breakdown": {"properties": ["src"]}, "breakdown_attribution": "step"}, "attribution_step"),
    ({"breakdown_attribution": "step", "attribution_step": 4}, "past the last step"),
    ({"unit": "galaxy"}, "unit 'galaxy'"),
    ({"order": "loose"}, "order"),
    ({"trend": "minute"}, "trend minute covers at most 2 days"),
    ({"stpes": []}, "stpes"),
])
def test_errors_say_what_and_where(loaded: History, query: dict[str, Any], words: str) -> None:
    with pytest.raises(QueryError, match=words):
        loaded.run({"kind": "funnel", "steps": STEPS, **query})


def test_table_for_csv(loaded: History) -> None:
    text = loaded.answer({"kind": "funnel", "steps": STEPS, "window": DAY, "breakdown": {"properties": ["src"]},
                          "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-07"}}).to_csv()
    assert text.splitlines()[0] == ("breakdown,step,event,count,conversion_rate,step_conversion_rate,"
                                    "average_seconds,median_seconds")
    assert "douyin,3,pay,2,1.0,1.0,43800.0,43800.0" in text


# random histories against ClickHouse's windowFunnel ----------------------------------------------------

RANDOM_START = dt.datetime(2026, 9, 2, 8)


def our_levels(history: History, query: dict[str, Any], engine: str) -> dict[int, int]:
    """Each unit's deepest step, straight from the plan's per-unit table."""
    service = history.service(engine)
    ctx = service.context(history.project)
    q = FunnelQuery.model_validate({"kind": "funnel", **query})
    start, end = q.date_range.days(ctx.timezone)
    plan = FunnelPlan(ctx, q, local_midnight(start, ctx.timezone),
                      local_midnight(end + dt.timedelta(days=1), ctx.timezone))
    from sqlglot import exp

    from edupulse.queries.compile import resolve_persons

    tree = plan.people().select("u", "lvl").from_("people").where(exp.column("lvl") >= 1)
    rows = service.store.query(resolve_persons(tree, ctx.dialect).sql(ctx.dialect.name)).rows
    return {int(u): int(level) for u, level in rows}


def window_funnel(history: History, events: list[str], window_us: int, mode: str | None = None) -> dict[int, int]:
    """ClickHouse's windowFunnel over every event of the project, on local microseconds."""
    store = history.service("clickhouse").store
    conditions = ", ".join(f"event = '{e}'" for e in events)
    params = f"{window_us}" + (f", '{mode}'" if mode else "")
    sql = (f"SELECT resolved_person_id, windowFunnel({params})(toUInt64(toUnixTimestamp64Micro(time) + 28800000000), "
           f"{conditions}) AS level FROM edupulse.events_resolved WHERE project_id = {history.project.id} "
           "GROUP BY resolved_person_id HAVING level >= 1")
    return {int(u): int(level) for u, level in store.query(sql).rows}


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """300 persons, 2 to 14 events each from a, b, c, d and an unrelated z, at whole minutes within two days:
    many equal times."""
    records = random_history(7, 300, ["a", "b", "c", "d", "z"], (2, 14), RANDOM_START, 48 * 60)
    history = History(tmp_path_factory.mktemp("crowd"), records, name="Random School")
    yield history
    history.close()


@requires_chdb
@pytest.mark.parametrize(("steps", "minutes"), [
    (["a", "b", "c", "d"], 120),
    (["a", "b", "c"], 24 * 60),
    (["a", "b", "a", "c"], 600),  # a step repeated: one event may serve as several steps
    (["a", "a", "a"], 30),
    (["b", "z"], 1),
    (["d", "c", "b", "a"], 3650 * 24 * 60),
])
def test_ordered_levels_agree_with_window_funnel(crowd: History, steps: list[str], minutes: int) -> None:
    query = {"steps": [{"event": e} for e in steps], "window": {"value": minutes, "unit": "minute"},
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"}}
    expected = window_funnel(crowd, steps, minutes * 60_000_000)
    assert len(expected) > 100
    assert our_levels(crowd, query, "duckdb") == expected
    assert our_levels(crowd, query, "clickhouse") == expected
    result = crowd.both({"kind": "funnel", **query})
    assert counts(result) == [sum(1 for v in expected.values() if v >= k) for k in range(1, len(steps) + 1)]


@requires_chdb
@pytest.mark.parametrize(("steps", "minutes"), [(["a", "b", "c"], 180), (["a", "b"], 24 * 60), (["c", "a", "b"], 60)])
def test_strict_levels_agree_with_window_funnel_strict_order(crowd: History, steps: list[str],
                                                            minutes: int) -> None:
    # equal times included (tests/queries/test_funnel_ties.py has the cases found by hand)
    query = {"steps": [{"event": e} for e in steps], "window": {"value": minutes, "unit": "minute"},
             "order": "strict", "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"}}
    expected = window_funnel(crowd, steps, minutes * 60_000_000, "strict_order")
    assert len(expected) > 100
    assert our_levels(crowd, query, "duckdb") == expected
    assert our_levels(crowd, query, "clickhouse") == expected


def test_shared_builders_make_what_they_say(tmp_path: Path) -> None:
    records = random_history(1, 3, ["a"], (2, 2), RANDOM_START, 10, distinct_times=True)
    assert len(records) == 6
    assert all(r["time"].endswith("+08:00") for r in records)
