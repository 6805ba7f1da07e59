"""What the API and the pages do with experiments: check a definition against the project (group types,
catalogue metrics, namespaces in use), keep versions and the audit log, assign a unit, serve the SDK payload
and compute results. Callers pass the platform's parts; no HTTP here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from edupulse.experiments import features
from edupulse.experiments.hashing import assign as hash_assign
from edupulse.experiments.model import ExperimentSpec, SpecError, Status, parse_spec
from edupulse.experiments.results import Options, Runner, analyze, plans
from edupulse.experiments.results_model import ExperimentResults
from edupulse.experiments.targeting import (
    eligible,
    held_tags,
    person_lookup,
    person_tags,
    segment_group,
    segment_identities,
    segment_member,
)
from edupulse.ingest.pipeline import ProjectCatalog
from edupulse.meta.db import MetadataStore, ProjectInfo
from edupulse.meta.experiments import Experiment, ExperimentStore
from edupulse.queries.errors import QueryError
from edupulse.queries.service import QueryService

MAX_SAVED_GROUP = 50_000  # identities of a targeted segment served to the SDKs


@dataclass(frozen=True)
class Actor:
    name: str
    user_id: int | None = None
    client: str = ""


@dataclass(frozen=True)
class Assignment:
    variant: str | None
    reason: str
    in_experiment: bool


class ExperimentService:
    def __init__(self, meta: MetadataStore, queries: QueryService, catalog: ProjectCatalog) -> None:
        self.meta, self.queries, self.catalog = meta, queries, catalog
        self.store = ExperimentStore(meta)

    # definitions ----------------------------------------------------------------------------------

    def _metrics(self, project: ProjectInfo) -> Any:
        """name -> the catalogue metric's current version (MetricRef) or None."""
        return lambda name: self.meta.metrics.ref(project.id, name)

    def _checked(self, project: ProjectInfo, data: Any) -> ExperimentSpec:
        spec = parse_spec(data)
        if spec.unit != "person" and spec.unit not in self.meta.group_types(project.id):
            known = ", ".join(["person", *sorted(self.meta.group_types(project.id))])
            raise SpecError("unit", f"{spec.unit!r} is not a group type of this project; use one of {known}")
        plans(spec, self._metrics(project))
        if spec.targeting.segment is not None:
            ctx = Runner(self.queries, project, dt.datetime.now(dt.UTC)).ctx
            try:
                ctx.segments(spec.targeting.segment, ctx)
            except ValueError as exc:
                raise SpecError("targeting.segment", str(exc)) from None
        return spec

    def create(self, project: ProjectInfo, data: Any, actor: Actor, now: dt.datetime) -> Experiment:
        spec = self._checked(project, data)
        made = self.store.create(project.id, spec, actor.name, now)
        self._audit("experiment.create", project, made, actor)
        return made

    def update(self, project: ProjectInfo, key: str, data: Any, actor: Actor, now: dt.datetime) -> Experiment:
        if isinstance(data, dict) and "key" not in data:
            data = {**data, "key": key}
        spec = self._checked(project, data)
        changed = self.store.update(project.id, key, spec, actor.name, now)
        self._audit("experiment.update", project, changed, actor)
        return changed

    def start(self, project: ProjectInfo, key: str, actor: Actor, now: dt.datetime) -> Experiment:
        current = self.store.get(project.id, key)
        if current is not None and current.spec.namespace is not None:
            self._check_namespace(project, current)
        started = self.store.start(project.id, key, actor.name, now)
        self._audit("experiment.start", project, started, actor)
        return started

    def stop(self, project: ProjectInfo, key: str, actor: Actor, now: dt.datetime, note: str = "") -> Experiment:
        stopped = self.store.stop(project.id, key, actor.name, now, note)
        self._audit("experiment.stop", project, stopped, actor)
        return stopped

    def _check_namespace(self, project: ProjectInfo, experiment: Experiment) -> None:
        ns = experiment.spec.namespace
        assert ns is not None
        for other in self.store.all(project.id):
            theirs = other.spec.namespace
            if other.key == experiment.key or other.status is not Status.running or theirs is None \
                    or theirs.name != ns.name:
                continue
            if ns.range[0] < theirs.range[1] and theirs.range[0] < ns.range[1]:
                raise SpecError("namespace.range", f"[{ns.range[0]:g}, {ns.range[1]:g}) of namespace {ns.name!r} "
                                f"overlaps running experiment {other.key!r} [{theirs.range[0]:g}, "
                                f"{theirs.range[1]:g}); choose a free range", 409)

    def _audit(self, action: str, project: ProjectInfo, experiment: Experiment, actor: Actor) -> None:
        self.catalog.forget_experiments(project.id)
        self.meta.audit.record(action, actor.name, actor_user_id=actor.user_id, project_id=project.id,
                               target=f"experiment:{experiment.key}", client=actor.client,
                               detail={"version": experiment.version, "status": experiment.status.value})

    # assignment ----------------------------------------------------------------------------------

    def assign(self, project: ProjectInfo, key: str, distinct_id: str, attributes: dict[str, Any],
               now: dt.datetime) -> Assignment:
        """The variant of a unit as the SDKs compute it; targeting checked against the person in the store
        (their properties, overridden by `attributes`), their segment membership and tags."""
        experiment = self.store.get(project.id, key)
        if experiment is None:
            raise SpecError("key", f"no experiment with key {key!r} in this project", 404)
        if experiment.status is not Status.running:
            return Assignment(None, f"the experiment is {experiment.status.value}", False)
        spec = experiment.spec
        value = distinct_id if spec.unit == "person" else str(attributes.get(spec.unit) or "")
        if not value:
            return Assignment(None, f"give the unit's {spec.unit} (attribute {spec.unit})", False)
        runner = Runner(self.queries, project, now)
        rows = runner.rows(person_lookup(runner.ctx, distinct_id))
        person_id = int(rows[0][0]) if rows else None
        stored = orjson.loads(rows[0][1]) if rows and rows[0][1] else {}
        member = False
        if spec.targeting.segment is not None and person_id is not None:
            member = bool(runner.rows(segment_member(runner.ctx, spec.targeting.segment, person_id)))
        tags_query = person_tags(runner.ctx, person_id, spec.targeting.tags) if spec.targeting.tags else None
        held = held_tags(runner.rows(tags_query)) if tags_query is not None else frozenset()
        if not eligible(spec.targeting, {**stored, **attributes}, held, member):
            return Assignment(None, "not targeted", False)
        namespace = (spec.namespace.name, *spec.namespace.range) if spec.namespace else None
        index = hash_assign(value, spec.hash_seed, spec.weights, spec.coverage, namespace)
        if index < 0:
            return Assignment(None, "outside the experiment's coverage or namespace range", False)
        return Assignment(spec.variants[index].key, "assigned", True)

    def sdk_payload(self, project: ProjectInfo, now: dt.datetime) -> dict[str, Any]:
        experiments = [e for e in self.store.all(project.id) if e.status is Status.running]
        groups: dict[str, list[str]] = {}
        runner = Runner(self.queries, project, now)
        for e in experiments:
            segment = e.spec.targeting.segment
            if segment is not None and segment_group(segment) not in groups:
                try:
                    rows = runner.rows(segment_identities(runner.ctx, segment))
                except QueryError:
                    raise
                except ValueError:  # the segment was deleted since: nobody is in it
                    rows = []
                groups[segment_group(segment)] = sorted(str(r[0]) for r in rows)[:MAX_SAVED_GROUP]
        return features.payload(experiments, groups, now)

    # results ---------------------------------------------------------------------------------------

    def results(self, project: ProjectInfo, key: str, options: Options, now: dt.datetime) -> ExperimentResults:
        experiment = self.store.get(project.id, key)
        if experiment is None:
            raise SpecError("key", f"no experiment with key {key!r} in this project", 404)
        try:
            return analyze(self.queries, project, experiment, options, self._metrics(project), now)
        except (SpecError, QueryError):
            raise
        except ValueError as exc:  # what the query compiler refuses (a group type or segment gone since)
            raise QueryError(str(exc)) from None
