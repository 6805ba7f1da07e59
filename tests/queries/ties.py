"""Tie-heavy random histories for the property tests of every analysis kind: a few persons, each doing a
few events at a handful of whole minutes, so most events share their instant with others (as when an app
stamps a page view and its click with one second, or an import writes many rows at once).

    @TIES
    @given(people=histories(["a", "b", "z"]))
    def test_...(scratch: Scratch, people: People) -> None:
        history = scratch.history(people)     # ingested, on DuckDB (and ClickHouse when asked)

`Scratch` keeps one platform per test module and gives each example a project of its own: opening a
platform per example would cost more than the example.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from edupulse.conf import Settings
from edupulse.runtime import Platform
from engines import History

START = dt.datetime(2026, 9, 2, 10)  # Shanghai wall clock, inside every test's date range
RANGE = {"date_from": "2026-09-01", "date_to": "2026-09-05"}
MINUTE = dt.timedelta(minutes=1)

# enough examples to meet the tie rules; each example is a whole project on two engines
TIES = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@dataclass(frozen=True)
class Happening:
    event: str
    minute: int  # moments after START (minutes, unless spaced otherwise): few values, so equal times are the rule
    properties: dict[str, Any] = field(default_factory=dict)

    def at(self, spacing: dt.timedelta = MINUTE) -> dt.datetime:
        return START + self.minute * spacing


People = dict[str, list[Happening]]


def histories(events: Sequence[str], properties: dict[str, Sequence[str]] | None = None, persons: int = 8,
              per_person: int = 10, minutes: int = 6) -> st.SearchStrategy[People]:
    """Persons p0.. each with 1 to `per_person` events drawn from `events` at minutes 0 to `minutes` - 1;
    each event sets each of `properties` to one of its values or leaves it unset."""
    values = properties or {}
    props = st.fixed_dictionaries({}, optional={k: st.sampled_from(list(v)) for k, v in values.items()})
    happening = st.builds(Happening, st.sampled_from(list(events)), st.integers(0, minutes - 1), props)
    return st.lists(st.lists(happening, min_size=1, max_size=per_person), min_size=1, max_size=persons).map(
        lambda people: {f"p{i}": list(h) for i, h in enumerate(people)})


def records(people: People, spacing: dt.timedelta = MINUTE) -> list[dict[str, Any]]:
    out = []
    for who, happenings in people.items():
        for h in happenings:
            record: dict[str, Any] = {"type": "track", "event": h.event, "distinct_id": who,
                                      "distinct_id_type": "login_id", "time": f"{h.at(spacing).isoformat()}+08:00"}
            if h.properties:
                record["properties"] = dict(h.properties)
            out.append(record)
    return out


class Scratch:
    """One platform; a project per history."""

    def __init__(self, root: Path) -> None:
        self.platform = Platform(Settings(data_dir=root / "data")).open()
        self.last: History | None = None
        self.names = itertools.count(1)

    def history(self, people: People, spacing: dt.timedelta = MINUTE) -> History:
        """A project holding these persons' events, `spacing` apart per moment."""
        if self.last is not None:
            self.last.close()
        self.last = History(Path(), records(people, spacing), name=f"Ties {next(self.names)}",
                            platform=self.platform)
        return self.last

    def close(self) -> None:
        if self.last is not None:
            self.last.close()
        self.platform.close()


def scratch_platform(factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    """For a module's fixture: `yield from scratch_platform(tmp_path_factory)`."""
    holder = Scratch(factory.mktemp("ties"))
    yield holder
    holder.close()
