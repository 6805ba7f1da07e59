"""The features payload the official GrowthBook SDKs read (`GET /api/features/{client key}`): one feature per
running experiment, keyed by the experiment's key, whose value is the variant key; one experiment rule with
the seed, hash version 2, weights, coverage, namespace, targeting condition and the variants' keys as `meta`
(so the SDK's tracking callback reports experiment.key and result.key, which `$experiment_exposure` takes).
Units outside the experiment get the default value, null.

The hash attribute is `id` for person experiments (pass the distinct id), else the group type's name
(pass e.g. `class`: the key of the person's class)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from edupulse.experiments.targeting import gb_condition
from edupulse.meta.experiments import Experiment

SDK_UNIT_ATTRIBUTE = "id"


def hash_attribute(unit: str) -> str:
    return SDK_UNIT_ATTRIBUTE if unit == "person" else unit


def feature(experiment: Experiment) -> dict[str, Any]:
    spec = experiment.spec
    attribute = hash_attribute(spec.unit)
    rule: dict[str, Any] = {
        "key": spec.key, "seed": spec.hash_seed, "hashAttribute": attribute, "hashVersion": 2,
        "variations": [v.key for v in spec.variants], "weights": spec.weights, "coverage": spec.coverage,
        "meta": [{"key": v.key, "name": v.name or v.key} for v in spec.variants], "name": spec.name or spec.key,
        "phase": str(experiment.version)}
    condition = gb_condition(spec.targeting, attribute)
    if condition:
        rule["condition"] = condition
    if spec.namespace is not None:
        rule["namespace"] = [spec.namespace.name, *spec.namespace.range]
    return {"defaultValue": None, "rules": [rule]}


def payload(experiments: list[Experiment], saved_groups: dict[str, list[str]], now: dt.datetime) -> dict[str, Any]:
    running = [e for e in experiments if e.status.value == "running"]
    out: dict[str, Any] = {"status": 200, "features": {e.key: feature(e) for e in running},
                           "dateUpdated": now.isoformat()}
    if saved_groups:
        out["savedGroups"] = saved_groups
    return out
