"""The analysis kinds a query service knows: `kind` -> runner, an explicit list built when asked for (no
module registers itself anywhere by being imported)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from edupulse.queries.attribution import AttributionRunner
from edupulse.queries.base import QueryRunner
from edupulse.queries.common import Model
from edupulse.queries.distribution import DistributionRunner
from edupulse.queries.errors import QueryError
from edupulse.queries.funnel import FunnelRunner
from edupulse.queries.interval import IntervalRunner
from edupulse.queries.ltv import LtvRunner
from edupulse.queries.paths import PathsRunner
from edupulse.queries.person import PersonRunner, PersonsRunner
from edupulse.queries.retention import RetentionRunner
from edupulse.queries.segments import SegmentsRunner
from edupulse.queries.sql import SqlRunner
from edupulse.queries.trends import TrendsRunner

AnyRunner = type[QueryRunner[Any, Any]]

BUILT_IN: tuple[AnyRunner, ...] = (
    TrendsRunner, FunnelRunner, RetentionRunner, DistributionRunner, PathsRunner, AttributionRunner,
    IntervalRunner, LtvRunner, PersonRunner, PersonsRunner, SegmentsRunner, SqlRunner,
)


class Registry:
    """Runners by kind; parses a JSON query into its kind's query model."""

    def __init__(self, runners: Iterable[AnyRunner] = BUILT_IN) -> None:
        self._runners: dict[str, AnyRunner] = {}
        for runner in runners:
            if runner.kind in self._runners:
                raise ValueError(f"two runners of kind {runner.kind!r}")
            self._runners[runner.kind] = runner

    @property
    def kinds(self) -> list[str]:
        return sorted(self._runners)

    def runner(self, kind: str) -> AnyRunner:
        found = self._runners.get(kind)
        if found is None:
            raise QueryError(f"kind {kind!r} is not an analysis model; use one of {', '.join(self.kinds)}")
        return found

    def runner_for(self, query: Model) -> AnyRunner:
        kind = getattr(query, "kind", None)
        runner = self._runners.get(kind) if isinstance(kind, str) else None
        if runner is None or not isinstance(query, runner.query_model):
            raise QueryError(f"{type(query).__name__} is not the query model of an analysis kind")
        return runner

    def parse(self, data: Any) -> Model:
        """The query model of a JSON object; QueryError names each problem and where it is."""
        if isinstance(data, Model):
            self.runner_for(data)
            return data
        if not isinstance(data, dict):
            raise QueryError("a query is a JSON object with a \"kind\"")
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in self._runners:
            raise QueryError(f"kind {kind!r} is not an analysis model; use one of {', '.join(self.kinds)}")
        try:
            return self._runners[kind].query_model.model_validate(data)
        except ValidationError as exc:
            raise QueryError(problems(exc)) from None


def problems(exc: ValidationError, prefix: str = "") -> str:
    """Each problem of a validation error and where it is: `series.0: math sum needs a numeric property`."""
    out = []
    for error in exc.errors():
        parts = [str(part) for part in (*([prefix] if prefix else []), *error["loc"])]
        where = ".".join(p for p in parts if not p.startswith("#")) or "query"  # # : a tag of our unions
        out.append(f"{where}: {error['msg']}")
    return "; ".join(out)
