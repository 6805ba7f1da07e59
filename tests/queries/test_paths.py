"""Paths on a tiny hand-built history, on DuckDB and ClickHouse: sessions split by inactivity, persons across
merged identities, start and end anchors, include / exclude, collapsed repeats, property-qualified nodes,
$other and $drop_off nodes, days cut in the project's time zone, hostile names, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.queries.errors import QueryError
from engines import History, csv_of

HOSTILE = "点击'); DROP TABLE events; --\"x"


def sh(text: str) -> str:
    return f"2026-09-{text}+08:00"


def track(who: str, event: str, time: str, login: bool = True, **properties: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": event, "distinct_id": who, "time": sh(time),
                              "properties": properties}
    if login:
        record["distinct_id_type"] = "login_id"
    return record


HISTORY: list[dict[str, Any]] = [
    # alice browses anonymously as dev-1, then signs in: one person, one session (page_view x3, signup, order)
    track("dev-1", "page_view", "02T09:00:00", login=False, url="/"),
    track("dev-1", "page_view", "02T09:01:00", login=False, url="/math"),
    {"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-1", "time": sh("02T09:01:30")},
    track("alice", "page_view", "02T09:02:00", url="/math"),
    track("alice", "signup", "02T09:03:00"),
    track("alice", "order_paid", "02T09:05:00", amount=100),
    # 55 minutes later: a second session
    track("alice", "page_view", "02T10:00:00", url="/"),
    track("alice", "order_paid", "02T10:10:00", amount=50),
    # bob's session crosses local midnight (both times are on 2 September in UTC)
    track("bob", "page_view", "02T23:50:00", url="/"),
    track("bob", "page_view", "03T00:10:00", url="/math"),
    track("bob", "signup", "03T00:15:00"),
    # carol: two events at the same instant (ties go by event name), then 40 minutes later a new session
    track("carol", "signup", "02T12:00:00"),
    track("carol", "page_view", "02T12:00:00", url="/"),
    track("carol", "order_paid", "02T12:40:00", amount=80),
    # dave: a heartbeat between two events
    track("dave", "page_view", "02T14:00:00", url="/"),
    track("dave", "heartbeat", "02T14:01:00"),
    track("dave", "signup", "02T14:02:00"),
    # erin: hostile names
    track("erin", HOSTILE, "04T08:00:00", url="'; DROP TABLE persons; --"),
    track("erin", "page_view", "04T08:01:00", url="/课程"),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("paths"), HISTORY, name="Paths School")
    yield history
    history.close()


def paths(loaded: History, **query: Any) -> dict[str, Any]:
    query.setdefault("date_range", {"date_from": "2026-09-01", "date_to": "2026-09-03"})
    return loaded.both({"kind": "paths", **query})


def links(result: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    return {(t["source"], t["target"]): (t["count"], t["persons"]) for t in result["transitions"]}


def nodes(result: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {n["name"]: (n["count"], n["persons"]) for n in result["nodes"]}


def top(result: dict[str, Any]) -> list[tuple[list[str], int]]:
    return [(p["path"], p["count"]) for p in result["paths"]]


def test_paths_after_a_start_event(loaded: History) -> None:
    result = paths(loaded, start_event="page_view", steps=3)
    assert result["mode"] == "start"
    assert (result["paths_total"], result["persons_total"]) == (5, 4)
    assert nodes(result) == {
        "1:page_view": (5, 4),
        "2:page_view": (2, 2), "2:order_paid": (1, 1), "2:signup": (1, 1), "2:heartbeat": (1, 1),
        "3:page_view": (1, 1), "3:signup": (2, 2),
    }
    assert links(result) == {
        ("1:page_view", "2:page_view"): (2, 2),
        ("1:page_view", "2:order_paid"): (1, 1),
        ("1:page_view", "2:signup"): (1, 1),
        ("1:page_view", "2:heartbeat"): (1, 1),
        ("2:page_view", "3:page_view"): (1, 1),
        ("2:page_view", "3:signup"): (1, 1),
        ("2:heartbeat", "3:signup"): (1, 1),
        ("2:order_paid", "3:$drop_off"): (1, 1),
        ("2:signup", "3:$drop_off"): (1, 1),
    }
    # transitions sorted by step, then most frequent first
    assert result["transitions"][0] == {"step": 1, "source": "1:page_view", "target": "2:page_view",
                                        "count": 2, "persons": 2}
    assert top(result) == [
        (["page_view", "heartbeat", "signup"], 1), (["page_view", "order_paid"], 1),
        (["page_view", "page_view", "page_view"], 1), (["page_view", "page_view", "signup"], 1),
        (["page_view", "signup"], 1),
    ]
    assert result["other_paths"] == 0


def test_every_path_flows_out_of_each_step_until_the_last(loaded: History) -> None:
    result = paths(loaded, start_event="page_view", steps=4)
    for name, (count, _) in nodes(result).items():
        step = int(name.split(":", 1)[0])
        if step < 4:
            assert sum(c for (s, _), (c, _) in links(result).items() if s == name) == count, name


def test_paths_before_an_end_event(loaded: History) -> None:
    result = paths(loaded, end_event="signup", steps=3)
    assert result["mode"] == "end"
    assert (result["paths_total"], result["persons_total"]) == (4, 4)
    assert nodes(result) == {
        "1:page_view": (3, 3), "2:page_view": (3, 3), "2:heartbeat": (1, 1), "3:signup": (4, 4),
    }
    # carol's path is two events long: page_view sorts before signup at the same instant and starts her session
    assert links(result) == {
        ("1:page_view", "2:page_view"): (2, 2),
        ("1:page_view", "2:heartbeat"): (1, 1),
        ("2:page_view", "3:signup"): (3, 3),
        ("2:heartbeat", "3:signup"): (1, 1),
    }


def test_session_start_paths_and_the_inactivity_limit(loaded: History) -> None:
    result = paths(loaded, steps=2, session_minutes=60)
    # alice's two visits (55 minutes apart) and carol's (40 minutes apart) are one session each
    assert result["mode"] == "session_start"
    assert (result["paths_total"], result["persons_total"]) == (4, 4)
    default = paths(loaded, steps=2)
    assert (default["paths_total"], default["persons_total"]) == (6, 4)
    assert nodes(default)["1:order_paid"] == (1, 1)  # carol's second session


def test_ties_at_the_same_instant_are_ordered_by_event_name(loaded: History) -> None:
    result = paths(loaded, start_event="page_view", steps=2, include_events=["page_view", "signup"],
                   date_range={"date_from": "2026-09-02", "date_to": "2026-09-02"})
    # carol's signup and page_view share their time: signup sorts after page_view
    assert links(result)[("1:page_view", "2:signup")] == (2, 2)  # carol and dave (heartbeat not included)


def test_days_are_cut_in_the_project_time_zone(loaded: History) -> None:
    on_third = paths(loaded, start_event="page_view", steps=2,
                     date_range={"date_from": "2026-09-03", "date_to": "2026-09-03"})
    assert top(on_third) == [(["page_view", "signup"], 1)]  # bob after local midnight
    on_second = paths(loaded, start_event="page_view", steps=3, include_events=["page_view"],
                      date_range={"date_from": "2026-09-02", "date_to": "2026-09-02"})
    assert ["page_view"] in [p for p, _ in top(on_second)]  # bob's 23:50 view ends the day alone


def test_include_and_exclude_events(loaded: History) -> None:
    excluded = paths(loaded, start_event="page_view", steps=3, exclude_events=["heartbeat"])
    assert links(excluded)[("1:page_view", "2:signup")] == (2, 2)
    assert ("2:signup", "3:$drop_off") in links(excluded)
    included = paths(loaded, start_event="page_view", steps=2, include_events=["page_view", "order_paid"])
    assert set(nodes(included)) == {"1:page_view", "2:page_view", "2:order_paid"}


def test_collapse_repeats(loaded: History) -> None:
    result = paths(loaded, start_event="page_view", steps=3, collapse_repeats=True, exclude_events=["heartbeat"])
    assert top(result) == [(["page_view", "signup"], 3), (["page_view", "order_paid"], 1),
                           (["page_view", "signup", "order_paid"], 1)]


def test_property_qualified_nodes(loaded: History) -> None:
    result = paths(loaded, start_event="page_view", steps=3, node_properties={"page_view": "url"},
                   collapse_repeats=True)
    assert nodes(result)["1:page_view:/"] == (5, 4)
    assert ["page_view:/", "page_view:/math", "signup"] in [p for p, _ in top(result)]
    assert top(result)[0] == (["page_view:/", "page_view:/math", "signup"], 2)  # alice and bob


def test_filters_decide_which_events_take_part(loaded: History) -> None:
    result = paths(loaded, start_event="page_view", steps=3,
                   filters=[{"property": "url", "op": "neq", "value": "/math"}])
    assert (["page_view", "signup", "order_paid"], 1) in top(result)  # alice without her /math views


def test_other_nodes_and_paths_limit(loaded: History) -> None:
    result = paths(loaded, start_event="page_view", steps=3, nodes_per_step=1, paths_limit=2)
    assert nodes(result)["2:page_view"] == (2, 2)
    assert nodes(result)["2:$other"] == (3, 3)
    assert links(result)[("1:page_view", "2:$other")] == (3, 3)
    assert len(result["paths"]) == 2
    assert result["other_paths"] == 3
    lines = csv_of(result).splitlines()
    assert lines[0] == "step,source,target,count,persons"
    assert lines[1] == "1,1:page_view,2:$other,3,3"


def test_hostile_names_and_values(loaded: History) -> None:
    result = paths(loaded, start_event=HOSTILE, steps=2, node_properties={"page_view": "url", HOSTILE: "url"},
                   date_range={"date_from": "2026-09-04", "date_to": "2026-09-04"})
    assert top(result) == [([f"{HOSTILE}:'; DROP TABLE persons; --", "page_view:/课程"], 1)]
    odd = paths(loaded, start_event="page_view", node_properties={"page_view": "it's\"; DROP--"})
    assert nodes(odd)["1:page_view:$none"] == (5, 4)
    assert paths(loaded, start_event="no'such\"event")["paths_total"] == 0


@pytest.mark.parametrize(("query", "message"), [
    ({"start_event": "a", "end_event": "b"}, "not both"),
    ({"steps": 11}, "steps"),
    ({"steps": 1}, "steps"),
    ({"start_event": "a", "exclude_events": ["a"]}, "start_event 'a' is in exclude_events"),
    ({"end_event": "a", "include_events": ["b"]}, "end_event 'a' is not in include_events"),
    ({"include_events": ["a"], "exclude_events": ["a"]}, "both name"),
    ({"session_minutes": 0}, "session_minutes"),
    ({"node_properties": {"page_view": ""}}, "node_properties"),
    ({"start": "a"}, "start: Extra inputs are not permitted"),
])
def test_errors_name_the_field(loaded: History, query: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        loaded.run({"kind": "paths", **query})


def test_the_documented_example_runs(loaded: History, documented: dict[str, dict[str, Any]]) -> None:
    result = loaded.both(documented["paths"])
    assert result["mode"] == "start"
