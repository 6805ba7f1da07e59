"""Experiments in the metadata database (SQLite, and PostgreSQL with EDUPULSE_TEST_POSTGRES_URL): versions, the
running lock, the variants exposures may name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from edupulse.experiments.model import SpecError, Status, parse_spec
from edupulse.meta.db import MetadataStore
from edupulse.meta.experiments import ExperimentStore

T0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
SPEC = {"key": "e1", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "metrics": [{"event": "x"}]}


@pytest.fixture
def meta(metadata_url: str) -> Iterator[MetadataStore]:
    store = MetadataStore(metadata_url)
    store.migrate()
    yield store
    store.close()


def test_versions_and_the_running_lock(meta: MetadataStore) -> None:
    store = ExperimentStore(meta)
    project = meta.create_project("P").project.id
    made = store.create(project, parse_spec(SPEC), "ann", T0)
    assert (made.status, made.version) == (Status.draft, 1)
    with pytest.raises(SpecError) as taken:
        store.create(project, parse_spec(SPEC), "ann", T0)
    assert taken.value.status == 409
    started = store.start(project, "e1", "ann", T0 + dt.timedelta(hours=1))
    assert started.started_at == T0 + dt.timedelta(hours=1)
    three = {**SPEC, "variants": [{"key": "a", "weight": 0.4}, {"key": "c", "weight": 0.6}]}
    with pytest.raises(SpecError) as locked:
        store.update(project, "e1", parse_spec(three), "bob", T0)
    assert (locked.value.status, locked.value.field) == (409, "variants")
    assert store.update(project, "e1", parse_spec({**SPEC, "hypothesis": "h"}), "bob", T0).version == 2
    store.stop(project, "e1", "bob", T0 + dt.timedelta(days=1), note="enough")
    assert store.update(project, "e1", parse_spec(three), "bob", T0).version == 3
    again = store.start(project, "e1", "bob", T0 + dt.timedelta(days=2))
    assert (again.version, again.stopped_at) == (4, None)
    history = store.versions(again.id)
    assert [(v["version"], v["change"]) for v in history] == [(1, "created"), (1, "started"), (2, "changed"),
                                                              (2, "stopped"), (3, "changed"), (4, "started")]
    assert history[3]["note"] == "enough"
    # exposures may name any variant the experiment ever had (late ones from an earlier version)
    assert store.known_variants(project) == {"e1": frozenset({"a", "b", "c"})}
    assert store.known_variants(meta.create_project("Q").project.id) == {}
