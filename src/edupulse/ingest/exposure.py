"""Exposure events (`$experiment_exposure`): the record names an experiment of the project and one of its
variants, as `properties.experiment` and `properties.variant` (the keys, as the GrowthBook SDKs' tracking
callback gives them: experiment.key and result.key). Anything else is refused per record with the reason,
and kept in the quarantine like every refused record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edupulse.ingest.records import RecordError

EXPOSURE_EVENT = "$experiment_exposure"

# experiment key -> the variant keys it has had
KnownExperiments = Mapping[str, frozenset[str]]


def check_exposure(record: dict[str, Any], known: KnownExperiments) -> None:
    """Raise RecordError when a normalized exposure does not name a known experiment and variant."""
    props = record.get("properties") or {}
    experiment, variant = props.get("experiment"), props.get("variant")
    if not isinstance(experiment, str) or not experiment:
        raise RecordError("properties.experiment", "an exposure names its experiment's key as a string")
    variants = known.get(experiment)
    if variants is None:
        raise RecordError("properties.experiment", f"{experiment[:100]!r} is not an experiment of this project "
                                                   "(GET /api/v1/experiments lists them)")
    if not isinstance(variant, str) or variant not in variants:
        shown = variant[:100] if isinstance(variant, str) else variant
        raise RecordError("properties.variant", f"{shown!r} is not a variant of experiment {experiment!r}; use one "
                                                f"of {', '.join(sorted(variants))}")
