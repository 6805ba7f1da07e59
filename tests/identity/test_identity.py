"""One-ID: property-based tests of the merge invariants, and merges applied to stored history."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edupulse.conf import Settings
from edupulse.identity.graph import IdentityGraph
from edupulse.meta.db import ProjectInfo
from edupulse.runtime import Platform

PROJECT = 1
identity = st.one_of(
    st.tuples(st.just("anonymous_id"), st.sampled_from([f"a{i}" for i in range(8)])),
    st.tuples(st.just("mobile"), st.sampled_from([f"m{i}" for i in range(4)])),
    st.tuples(st.just("crm_lead_id"), st.sampled_from([f"c{i}" for i in range(4)])),
    st.tuples(st.just("login_id"), st.sampled_from([f"l{i}" for i in range(4)])),
)
record = st.lists(identity, min_size=1, max_size=3, unique=True)
records = st.lists(record, min_size=1, max_size=40)


def run(links: list[list[tuple[str, str]]]) -> tuple[IdentityGraph, int, list[Any]]:
    """Apply records in order; return the graph, the number of refused links and the stored changes."""
    graph = IdentityGraph()
    refused = 0
    changes = []
    for ids in links:
        resolution = graph.resolve(PROJECT, [list(i) for i in ids])
        refused += len(resolution.warnings)
        changes.append(graph.take_changes())
    return graph, refused, changes


def partition(graph: IdentityGraph) -> set[frozenset[tuple[str, str]]]:
    members: dict[int, set[tuple[str, str]]] = {}
    for key, person in graph.project(PROJECT).person_of.items():
        members.setdefault(person, set()).add(key)
    return {frozenset(m) for m in members.values()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_every_identity_in_exactly_one_person_and_one_login_id_per_person(links: list[list[tuple[str, str]]]) -> None:
    graph, _, _ = run(links)
    project = graph.project(PROJECT)
    seen = {key for ids in links for key in ids}
    assert set(project.person_of) == seen  # every identity sent belongs to a person (refused links add nothing)
    listed = [key for members in project.members.values() for key in members]
    assert Counter(listed) == Counter(list(project.person_of))  # ... to exactly one
    for person, members in project.members.items():
        assert all(project.person_of[key] == person for key in members)
        assert len({v for t, v in members if t == "login_id"}) <= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.randoms(use_true_random=False))
def test_order_of_links_does_not_matter_when_none_is_refused(
    links: list[list[tuple[str, str]]], rng: random.Random
) -> None:
    graph, refused, _ = run(links)
    shuffled = [list(ids) for ids in links]
    rng.shuffle(shuffled)
    for ids in shuffled:
        rng.shuffle(ids)
    other, refused_other, _ = run(shuffled)
    if refused or refused_other:
        return
    assert partition(graph) == partition(other)
    # counting events by person: each record is an event of its first identity; history follows merges
    def counts(g: IdentityGraph, sent: list[list[tuple[str, str]]]) -> Counter[frozenset[tuple[str, str]]]:
        by_person = {p: m for m in partition(g) for p in {g.project(PROJECT).person_of[k] for k in m}}
        return Counter(by_person[g.project(PROJECT).person_of[ids[0]]] for ids in sent)
    assert counts(graph, links) == counts(other, shuffled)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_stored_changes_rebuild_the_same_graph(links: list[list[tuple[str, str]]]) -> None:
    """What the loader stores (new identities, merges loser -> survivor) reproduces the graph after a restart."""
    graph, _, changes = run(links)
    stored: dict[tuple[str, str], int] = {}
    for change in changes:
        for _, id_type, value, person in change.new_identities:
            stored[(id_type, value)] = person
        for _, loser, survivor in change.merges:
            stored = {k: survivor if p == loser else p for k, p in stored.items()}
    assert stored == graph.project(PROJECT).person_of
    rebuilt = IdentityGraph()
    rebuilt.load((PROJECT, t, v, p) for (t, v), p in stored.items())
    assert partition(rebuilt) == partition(graph)
    assert rebuilt.next_person_id <= graph.next_person_id


def test_login_conflict_is_refused_with_a_warning() -> None:
    graph, refused, _ = run([[("login_id", "alice"), ("mobile", "m1")], [("login_id", "bob"), ("mobile", "m2")],
                             [("mobile", "m1"), ("mobile", "m2")]])
    assert refused == 1
    project = graph.project(PROJECT)
    assert project.person_of[("mobile", "m1")] != project.person_of[("mobile", "m2")]


def test_survivor_is_the_person_with_the_login_id() -> None:
    graph, _, changes = run([[("anonymous_id", "a1")], [("login_id", "alice")], [("anonymous_id", "a1"),
                                                                                  ("login_id", "alice")]])
    project = graph.project(PROJECT)
    assert project.person_of[("anonymous_id", "a1")] == project.person_of[("login_id", "alice")] == 2
    assert changes[2].merges == [(PROJECT, 1, 2)]


# through the write path ---------------------------------------------------------------------------


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    platform = Platform(Settings(data_dir=tmp_path / "data")).open()
    yield platform
    platform.close()


def send(platform: Platform, project: ProjectInfo, records: list[dict[str, Any]]) -> None:
    outcome = platform.ingestor.ingest(project, records)
    assert outcome.rejected == 0, outcome.results
    platform.flush()


def at(minute: int) -> str:
    return (dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)).isoformat()


def test_merge_applies_to_history(platform: Platform) -> None:
    project = platform.meta.create_project("Merge School").project
    send(platform, project, [
        {"type": "track", "event": "page_view", "distinct_id": "dev-1", "time": at(0)},
        {"type": "track", "event": "trial_booked", "distinct_id": "dev-1", "time": at(1)},
        {"type": "track", "event": "page_view", "distinct_id": "dev-2", "time": at(2)},
    ])
    by_person = "SELECT count(DISTINCT resolved_person_id) FROM events_resolved WHERE project_id = ?"
    assert platform.store.query(by_person, [project.id]).rows == [(2,)]
    # the learner signs in on both devices: three earlier anonymous events are now one person's
    send(platform, project, [
        {"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-1", "time": at(3)},
        {"type": "identify", "distinct_id": "alice", "anonymous_id": "dev-2", "time": at(4)},
        {"type": "track", "event": "order_paid", "distinct_id": "alice", "distinct_id_type": "login_id",
         "time": at(5), "properties": {"amount": 1999}},
    ])
    assert platform.store.query(by_person, [project.id]).rows == [(1,)]
    funnel = platform.store.query(
        "SELECT resolved_person_id, count(*) FROM events_resolved WHERE project_id = ? GROUP BY 1", [project.id])
    assert [n for _, n in funnel.rows] == [4]


def test_refused_link_is_recorded_and_restart_keeps_the_graph(tmp_path: Path) -> None:
    settings_ = Settings(data_dir=tmp_path / "data")
    platform = Platform(settings_).open()
    project = platform.meta.create_project("Conflict School").project
    send(platform, project, [
        {"type": "identify", "distinct_id": "alice", "identities": {"mobile": "13800000001"}, "time": at(0)},
        {"type": "identify", "distinct_id": "bob", "identities": {"mobile": "13800000002"}, "time": at(1)},
        {"type": "track", "event": "call_connected", "distinct_id": "13800000001", "distinct_id_type": "mobile",
         "identities": {"mobile": "13800000002", "crm_lead_id": "L-9"}, "time": at(2)},
    ])
    [warning] = platform.meta.warnings(project.id)
    assert "different login ids" in warning["message"]
    alice = platform.graph.person_of(project.id, "login_id", "alice")
    assert platform.graph.person_of(project.id, "crm_lead_id", "L-9") == alice  # a project-defined type
    platform.close()

    again = Platform(settings_).open()
    try:
        assert again.graph.person_of(project.id, "mobile", "13800000001") == alice
        assert again.graph.person_of(project.id, "mobile", "13800000002") != alice
        send(again, project, [{"type": "track", "event": "page_view", "distinct_id": "L-9",
                               "distinct_id_type": "crm_lead_id", "time": at(3)}])
        rows = again.store.query("SELECT DISTINCT resolved_person_id FROM events_resolved WHERE event = 'page_view'")
        assert rows.rows == [(alice,)]
    finally:
        again.close()


def test_project_defined_identity_types_link(platform: Platform) -> None:
    project = platform.meta.create_project("Custom School").project
    send(platform, project, [
        {"type": "identify", "distinct_id": "S-2026-001", "distinct_id_type": "student_no",
         "identities": {"mobile": "13900000000"}, "time": at(0)},
        {"type": "track", "event": "lesson_attended", "distinct_id": "13900000000", "distinct_id_type": "mobile",
         "time": at(1)},
    ])
    assert platform.graph.person_of(project.id, "student_no", "S-2026-001") == platform.graph.person_of(
        project.id, "mobile", "13900000000")
