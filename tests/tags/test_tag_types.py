"""Every tag family on a hand-built history, with asserted values, on DuckDB and on ClickHouse (the same SELECT
rendered for each engine must give the same rows); runs keep history (values as of a day); tags as filters
and breakdowns of analyses and as conditions of segments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.meta.tags import check_spec
from edupulse.ops.scheduler import Scheduler, tags_job
from edupulse.queries.base import render
from edupulse.queries.service import QueryService
from edupulse.tags.run import TagService, values_tree
from engines import NOW, History, _Mirror, normalized


def sh(text: str) -> str:
    return f"{text}+08:00"


def ev(name: str, who: str, time: str, groups: dict[str, str] | None = None, **props: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": name, "distinct_id": who, "distinct_id_type": "login_id",
                              "time": sh(time), "properties": props}
    if groups:
        record["groups"] = groups
    return record


def lessons(who: str, cls: str, pattern: str, start: str = "2026-08-01") -> list[dict[str, Any]]:
    """Scheduled lessons of a class one day apart (the 10:00 lesson), attended where `pattern` has 'x'
    ('r': a replay two days later, '.': missed)."""
    out = []
    day0 = dt.date.fromisoformat(start)
    for i, mark in enumerate(pattern):
        day = day0 + dt.timedelta(days=i)
        lesson = f"{cls}-L{i + 1}"
        starts = f"{day.isoformat()}T10:00:00+08:00"
        out.append(ev("lesson_scheduled", who, f"{(day - dt.timedelta(days=1)).isoformat()}T09:00:00",
                      {"class": cls}, lesson_id=lesson, course_id="c1", starts_at=starts))
        if mark == "x":
            out.append(ev("lesson_attended", who, f"{day.isoformat()}T10:01:00", {"class": cls},
                          lesson_id=lesson, mode="live"))
        elif mark == "r":
            replay = day + dt.timedelta(days=2)
            out.append(ev("lesson_attended", who, f"{replay.isoformat()}T20:00:00", {"class": cls},
                          lesson_id=lesson, mode="replay"))
    return out


def institution(inst: str, staff: list[str], login_until: str, sparse_from: str,
                enrol_until: str) -> list[dict[str, Any]]:
    """Staff log in every day from 1 July until `login_until`, then only the first of them every 3rd day from
    `sparse_from`; one enrolment a day until `enrol_until`, then one every 4th day."""
    out = []
    groups = {"institution": inst}
    day = dt.date(2026, 7, 1)
    while day <= dt.date(2026, 9, 9):
        text = day.isoformat()
        index = (day - dt.date(2026, 7, 1)).days
        for who in staff:
            if text <= login_until or (who == staff[0] and text >= sparse_from and index % 3 == 0):
                out.append(ev("staff_login", who, f"{text}T09:00:00", groups, institution_id=inst))
        if text <= enrol_until or index % 4 == 0:
            out.append(ev("student_enrolled", staff[0], f"{text}T11:00:00", groups, institution_id=inst))
        day += dt.timedelta(days=1)
    return out


HISTORY: list[dict[str, Any]] = [
    *institution("i1", ["s1", "s2"], "2026-09-09", "2026-09-10", "2026-09-09"),
    *institution("i2", ["s3", "s4"], "2026-08-25", "2026-08-26", "2026-08-10"),
    # ann: visits pricing 3 times, pays twice (recently), first channel wechat
    ev("page_view", "ann", "2026-09-01T09:00:00", url="/pricing", channel="wechat"),
    ev("page_view", "ann", "2026-09-01T10:00:00", url="/pricing", channel="douyin"),
    ev("page_view", "ann", "2026-09-03T10:00:00", url="/pricing", channel="douyin"),
    ev("order_paid", "ann", "2026-09-05T10:00:00", amount=3000, order_type="first"),
    ev("order_paid", "ann", "2026-09-09T10:00:00", amount=1000, order_type="renewal"),
    # ben: one visit, one small old order
    ev("page_view", "ben", "2026-08-01T09:00:00", url="/home", channel="baidu"),
    ev("order_paid", "ben", "2026-08-02T10:00:00", amount=99, order_type="first"),
    # cat: a referral from ann, and one from dan's referee; no order
    ev("referral_signup", "cat", "2026-09-02T10:00:00", referrer_id="ann"),
    ev("referral_signup", "dan", "2026-09-02T11:00:00", referrer_id="ann"),
    ev("order_paid", "dan", "2026-09-06T10:00:00", amount=500, order_type="first"),
    ev("referral_signup", "eve", "2026-09-03T10:00:00", referrer_id="dan"),
    # lessons: stu1 misses 3 in a row then comes back (keeps the tag); stu2 misses 2, attends, misses 2 (no);
    # stu3 misses lesson 3..5 but lesson 4 by replay (no); stu4's third miss has not started yet (no)
    *lessons("stu1", "k1", "xx...xx"),
    *lessons("stu2", "k1", "x..x..x"),
    *lessons("stu3", "k2", "xx.r.xx"),
    *lessons("stu4", "k3", "x..", start="2026-09-08"),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("tags"), HISTORY, name="Tag School")
    history.platform.meta.add_group_type(history.project.id, "institution")
    yield history
    history.close()


def service(loaded: History, engine: str = "duckdb") -> TagService:
    queries: QueryService = loaded.service(engine)
    return TagService(loaded.platform.meta, queries.store, queries)


def rows_of(loaded: History, definition: dict[str, Any], engine: str, unit: str = "person",
            value_type: str = "string") -> list[tuple[Any, ...]]:
    spec = check_spec({"name": "t", "unit": unit, "value_type": value_type, "definition": definition})
    svc = service(loaded, engine)
    ctx = svc.queries.context(loaded.project, now=NOW)
    tree = values_tree(spec, ctx)
    rows = svc.store.query(render(tree, ctx.dialect)).rows
    return sorted((tuple(r) for r in rows), key=repr)


def by_name(loaded: History, definition: dict[str, Any], unit: str = "person", **kw: Any) -> dict[str, Any]:
    """{login id: (value, number, detail)} on DuckDB, after checking ClickHouse gives the same rows."""
    duck = rows_of(loaded, definition, "duckdb", unit, **kw)
    house = rows_of(loaded, definition, "clickhouse", unit, **kw)
    assert normalized([list(r) for r in house]) == normalized([list(r) for r in duck])
    if unit != "person":
        return {r[0]: r[1:] for r in duck}
    names = service(loaded).identities(loaded.project, [int(r[0]) for r in duck])
    return {names[int(r[0])]["login_id"][0]: r[1:] for r in duck}


@pytest.mark.usefixtures("chdb")
def test_custom_tiers_first_match_wins(loaded: History) -> None:
    got = by_name(loaded, {"type": "custom_tiers", "tiers": [
        {"name": "A", "condition": {"event": "page_view", "at_least": 3, "filters": [
            {"property": "url", "value": "/pricing"}]}},
        {"name": "B", "condition": {"event": "order_paid"}},
        {"name": "C", "condition": {"event": "page_view"}},
    ]})
    assert {k: v[0] for k, v in got.items()} == {"ann": "A", "ben": "B", "dan": "B"}


@pytest.mark.usefixtures("chdb")
def test_metric_tiers_values_and_percentiles(loaded: History) -> None:
    spend = {"event": "order_paid", "aggregate": "sum", "property": "amount"}
    plain = by_name(loaded, {"type": "metric_tiers", "measure": spend}, value_type="number")
    assert {k: v[1] for k, v in plain.items()} == {"ann": 4000.0, "ben": 99.0, "dan": 500.0}
    cut = by_name(loaded, {"type": "metric_tiers", "measure": spend, "ranges": [
        {"name": "big", "min": 1000}, {"name": "small", "max": 1000}]})
    assert {k: v[0] for k, v in cut.items()} == {"ann": "big", "ben": "small", "dan": "small"}
    ranks = by_name(loaded, {"type": "metric_tiers", "measure": spend, "cut": "percentiles", "ranges": [
        {"name": "top", "min": 60}, {"name": "rest", "max": 60}]})
    assert {k: (v[0], v[2]) for k, v in ranks.items()} == {"ann": ("top", 100.0), "ben": ("rest", 0.0),
                                                           "dan": ("rest", 50.0)}
    days = by_name(loaded, {"type": "metric_tiers", "measure": {"event": "page_view", "aggregate": "distinct_days"}},
                   value_type="number")
    assert {k: v[1] for k, v in days.items()} == {"ann": 2.0, "ben": 1.0}


@pytest.mark.usefixtures("chdb")
def test_first_and_last_event(loaded: History) -> None:
    first = by_name(loaded, {"type": "first_event", "event": "page_view", "property": "channel"})
    assert {k: v[0] for k, v in first.items()} == {"ann": "wechat", "ben": "baidu"}
    last = by_name(loaded, {"type": "last_event", "event": "order_paid"}, value_type="time")
    assert last["ann"][1] == dt.datetime(2026, 9, 9, 2, tzinfo=dt.UTC).timestamp()


@pytest.mark.usefixtures("chdb")
def test_preference(loaded: History) -> None:
    top = by_name(loaded, {"type": "preference", "event": "page_view", "property": "channel"})
    assert top["ann"][:2] == ("douyin", 2.0)
    two = by_name(loaded, {"type": "preference", "event": "page_view", "property": "channel", "top": 2})
    assert two["ann"][0] == "douyin, wechat"
    assert two["ben"][0] == "baidu"


@pytest.mark.usefixtures("chdb")
def test_rfm(loaded: History) -> None:
    got = by_name(loaded, {"type": "rfm"})
    # recency: ann (9-09) > dan (9-06) > ben; frequency: ann 2, others 1 (tied); money: ann > dan > ben
    # scores by rank from 1 (lowest) to 5 (highest); high is 4 or 5
    assert got == {"ann": ("important_value", 555.0, None), "dan": ("general_recovery", 313.0, None),
                   "ben": ("general_recovery", 111.0, None)}


@pytest.mark.usefixtures("chdb")
def test_sql_tag(loaded: History) -> None:
    got = by_name(loaded, {"type": "sql", "sql": "SELECT person_id AS unit, count(*) AS value FROM events "
                                                 "WHERE event = 'order_paid' GROUP BY person_id"})
    assert {k: v[0] for k, v in got.items()} == {"ann": "2", "ben": "1", "dan": "1"}


@pytest.mark.usefixtures("chdb")
def test_missed_three_in_a_row(loaded: History) -> None:
    got = by_name(loaded, {"type": "missed_streak", "streak": 3})
    assert {k: (v[0], v[2]) for k, v in got.items()} == {"stu1": ("k1", "k1-L5")}


@pytest.mark.usefixtures("chdb")
def test_referral_kol(loaded: History) -> None:
    got = by_name(loaded, {"type": "referral_kol", "top": 1})
    assert {k: v[:2] for k, v in got.items()} == {"ann": ("kol", 2.0), "dan": ("referrer", 1.0)}
    assert '"tree": 3' in got["ann"][2]
    assert '"paying_referees": 1' in got["ann"][2]


@pytest.mark.usefixtures("chdb")
def test_institution_health(loaded: History) -> None:
    got = by_name(loaded, {"type": "institution_health"}, unit="institution")
    assert {k: v[0] for k, v in got.items()} == {"i1": "healthy", "i2": "warning"}
    assert got["i2"][1] == 0.0
    assert got["i1"][1] >= 80
    assert '"active_staff_30": 2' in got["i1"][2]


def test_history_as_of_and_filters(loaded: History) -> None:
    svc = service(loaded)
    project = loaded.project
    spec = check_spec({"name": "buyer", "definition": {"type": "custom_tiers", "tiers": [
        {"name": "big", "condition": {"event": "order_paid", "at_least": 2}},
        {"name": "one", "condition": {"event": "order_paid"}}]}})
    svc.catalog.create(project.id, spec, "test")
    first = svc.run(project, "buyer", now=dt.datetime(2026, 9, 7, 4, tzinfo=dt.UTC))
    assert first.status == "finished", first.error
    assert first.changed == 3
    second = svc.run(project, "buyer", now=NOW)
    assert second.status == "finished"
    assert second.changed == 1
    total, now_values = svc.values(project, "buyer")
    assert total == 3
    assert sorted(v.value or "" for v in now_values) == ["big", "one", "one"]
    _, then = svc.values(project, "buyer", as_of=dt.date(2026, 9, 7))
    assert sorted(v.value or "" for v in then) == ["one", "one", "one"]
    _, before = svc.values(project, "buyer", as_of=dt.date(2026, 9, 6))
    assert before == []
    # a filter and a breakdown in trends
    result = loaded.run({"kind": "trends", "series": [{"event": "page_view"}],
                         "date_range": {"date_from": "2026-07-01", "date_to": "2026-09-10"}, "granularity": "month",
                         "filters": [{"tag": "buyer", "op": "in", "value": ["big"]}]})
    assert [s["aggregated_value"] for s in result["series"]] == [3]
    broken = loaded.run({"kind": "trends", "series": [{"event": "order_paid"}],
                         "date_range": {"date_from": "2026-07-01", "date_to": "2026-09-10"}, "granularity": "month",
                         "breakdown": {"properties": ["tag.buyer"]}})
    totals = {str(s["breakdown"]): s["aggregated_value"] for s in broken["series"]}
    assert sorted(totals.values()) == [2, 2]
    assert any("big" in k for k in totals), totals
    short = loaded.run({"kind": "trends", "series": [{"event": "order_paid"}],
                        "date_range": {"date_from": "2026-07-01", "date_to": "2026-09-10"}, "granularity": "month",
                        "breakdown": {"tag": "buyer"}})
    assert {str(s["breakdown"]): s["aggregated_value"] for s in short["series"]} == totals
    # a condition of a segment
    members = loaded.run({"kind": "segments", "definition": {"condition": {"tag": "buyer", "value": "big"}}})
    assert members["total"] == 1
    # a failed run leaves the values in force
    svc.catalog.update(project.id, "buyer", check_spec({"name": "buyer", "definition": {
        "type": "sql", "sql": "SELECT 1 AS unit, 'x' AS nothing"}}), "test")
    failed = svc.run(project, "buyer", now=NOW)
    assert failed.status == "failed"
    assert "unit" in failed.error
    assert "value" in failed.error
    assert svc.count(project, svc.tag(project, "buyer")) == 3
    _Mirror.holder = None


def test_the_scheduler_computes_every_tag_daily(loaded: History) -> None:
    platform = loaded.platform
    job = tags_job(platform.meta, platform.store, platform.query_service, platform.settings)
    scheduler = Scheduler(platform.meta, platform.settings, jobs=[job])
    early = dt.datetime(2026, 9, 10, 18, tzinfo=dt.UTC)  # 02:00 on the 11th in Shanghai: not due yet
    assert scheduler.tick(early) == {}
    done = scheduler.tick(early + dt.timedelta(hours=2))
    statuses = dict(item.split(":") for item in done["tags"][loaded.project.name])
    svc = service(loaded)
    by_id = {t.id: t.name for t in svc.tags(loaded.project)}
    named = {by_id[int(k)]: v for k, v in statuses.items()}
    assert named["missed_3_in_a_row"] == "finished"
    assert named["institution_health"] == "finished"
    assert named["lead_propensity"] == "failed"  # a model needs more history than this
    lead = svc.catalog.runs(svc.tag(loaded.project, "lead_propensity").id, 1)[0]
    assert "not enough history" in lead.error
    assert scheduler.tick(early + dt.timedelta(hours=3)) == {}  # once a day
    _, at_risk = svc.values(loaded.project, "missed_3_in_a_row")
    assert [(v.identities or {}).get("login_id") for v in at_risk] == [["stu1"]]


@pytest.mark.usefixtures("chdb")
def test_runs_keep_history_on_clickhouse_too(loaded: History) -> None:
    svc = service(loaded, "clickhouse")
    project = loaded.project
    spec = check_spec({"name": "ch_buyer", "definition": {"type": "custom_tiers", "tiers": [
        {"name": "big", "condition": {"event": "order_paid", "at_least": 2}},
        {"name": "one", "condition": {"event": "order_paid"}}]}})
    svc.catalog.create(project.id, spec, "test")
    first = svc.run(project, "ch_buyer", now=dt.datetime(2026, 9, 7, 4, tzinfo=dt.UTC))
    assert (first.status, first.changed) == ("finished", 3), first.error
    second = svc.run(project, "ch_buyer", now=NOW)
    assert (second.status, second.changed) == ("finished", 1), second.error
    assert sorted(v.value or "" for v in svc.values(project, "ch_buyer")[1]) == ["big", "one", "one"]
    assert sorted(v.value or "" for v in svc.values(project, "ch_buyer", as_of=dt.date(2026, 9, 7))[1]) == [
        "one", "one", "one"]
    upload = check_spec({"name": "ch_grade", "definition": {"type": "uploaded"}})
    svc.catalog.create(project.id, upload, "test")
    done, problems = svc.upload(project, "ch_grade", "login_id,grade\nann,A\nnobody,B\n", now=NOW)
    assert done.status == "finished", done.error
    assert problems == ["line 3: no person has the login_id 'nobody'"]
    assert [v.value for v in svc.values(project, "ch_grade")[1]] == ["A"]
    # a value set by a journey, on the same engine: the person found by an identity, the value kept in history
    later = NOW + dt.timedelta(days=2)
    assert svc.set_value(project, "ch_grade", [("login_id", "ann")], "B", "journey:1", now=later).changed == 1
    assert svc.set_value(project, "ch_grade", [("login_id", "ann")], "B", "journey:1", now=later).changed == 0
    assert [v.value for v in svc.values(project, "ch_grade")[1]] == ["B"]
    assert [v.value for v in svc.values(project, "ch_grade", as_of=NOW.date())[1]] == ["A"]


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_compacting_history_keeps_every_day_from_the_first_kept_one(loaded: History, engine: str,
                                                                     request: pytest.FixtureRequest) -> None:
    """Changes before the first kept day are forgotten, except each unit's value in force on it (a loss
    before it leaves nothing); every day from the first kept one answers as before, on both engines."""
    if engine == "clickhouse":
        request.getfixturevalue("chdb")
    svc = service(loaded, engine)
    project = loaded.project
    name = f"kept_{engine}"
    svc.catalog.create(project.id, check_spec({"name": name, "definition": {"type": "uploaded", "mode": "overwrite"}}),
                       "test")
    days = [dt.datetime(2026, 9, d, 4, tzinfo=dt.UTC) for d in (1, 2, 3, 4)]
    files = ["login_id,v\nann,A\nben,B\n",  # day 1
             "login_id,v\nann,C\n",  # day 2: ben loses his value
             "login_id,v\nann,C\nben,E\ncat,F\n",  # day 3: ann unchanged (no new row)
             "login_id,v\nann,G\nben,E\n"]  # day 4: cat loses hers
    for moment, text in zip(days, files, strict=True):
        done, problems = svc.upload(project, name, text, now=moment)
        assert (done.status, problems) == ("finished", []), done.error

    def on(day: int) -> dict[str, str | None]:
        return {(v.identities or {})["login_id"][0]: v.value
                for v in svc.values(project, name, as_of=dt.date(2026, 9, day))[1]}

    kept_days = {day: on(day) for day in (3, 4, 5)}
    assert kept_days == {3: {"ann": "C", "ben": "E", "cat": "F"}, 4: {"ann": "G", "ben": "E"},
                         5: {"ann": "G", "ben": "E"}}
    # first kept day: the 3rd; forgotten: ann A, ben B and ben's loss (day 2); ann's C (day 2) stays in force
    removed = svc.compact(project, history_days=365, now=dt.datetime(2027, 9, 3, 4, tzinfo=dt.UTC))
    assert removed == 3
    assert {day: on(day) for day in (3, 4, 5)} == kept_days
    assert svc.compact(project, history_days=365, now=dt.datetime(2027, 9, 3, 4, tzinfo=dt.UTC)) == 0
    # two days later: the 5th is the first kept day; ann's C, cat's value (3rd) and loss (4th) go
    assert svc.compact(project, history_days=365, now=dt.datetime(2027, 9, 5, 4, tzinfo=dt.UTC)) == 3
    assert on(5) == {"ann": "G", "ben": "E"}
