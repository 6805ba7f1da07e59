"""Assignment against GrowthBook's published SDK test cases and the official Python SDK (PyPI growthbook)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from edupulse.experiments.hashing import (
    assign,
    bucket_ranges,
    choose_variant,
    equal_weights,
    fnv1a32,
    gb_hash,
    in_namespace,
)

CASES = json.loads((Path(__file__).parents[1] / "data" / "growthbook_cases.json").read_text())


@pytest.mark.parametrize(("seed", "value", "version", "expected"), CASES["hash"])
def test_hash(seed: str, value: str, version: int, expected: float | None) -> None:
    assert gb_hash(seed, value, version) == expected


@pytest.mark.parametrize(("name", "args", "expected"), CASES["getBucketRange"])
def test_bucket_ranges(name: str, args: list, expected: list) -> None:
    got = [bound for r in bucket_ranges(args[0], args[1], args[2]) for bound in r]
    assert got == pytest.approx([bound for r in expected for bound in r], abs=1e-9), name


@pytest.mark.parametrize(("name", "n", "ranges", "expected"), CASES["chooseVariation"])
def test_choose_variant(name: str, n: float, ranges: list, expected: int) -> None:
    assert choose_variant(n, [tuple(r) for r in ranges]) == expected, name


@pytest.mark.parametrize(("name", "value", "namespace", "expected"), CASES["inNamespace"])
def test_namespace(name: str, value: str, namespace: list, expected: bool) -> None:
    assert in_namespace(value, tuple(namespace)) is expected, name


@pytest.mark.parametrize(("count", "expected"), CASES["getEqualWeights"])
def test_equal_weights(count: int, expected: list) -> None:
    assert equal_weights(count) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize(("name", "value", "experiment", "variant", "in_experiment"), CASES["run"])
def test_run_cases(name: str, value: str, experiment: dict, variant: int, in_experiment: bool) -> None:
    count = len(experiment["variations"])
    got = assign(value, experiment.get("seed", experiment["key"]),
                 experiment.get("weights") or equal_weights(count), experiment.get("coverage", 1.0),
                 tuple(experiment["namespace"]) if "namespace" in experiment else None,
                 experiment.get("hashVersion", 1))
    assert (got >= 0) is in_experiment, name
    if in_experiment:
        assert got == variant, name


def test_utf16_code_units() -> None:
    # JavaScript hashes UTF-16 code units: a character outside the BMP is two of them
    text = "学生😀"
    units = text.encode("utf-16-le", "surrogatepass")
    value = 0x811C9DC5
    for i in range(0, len(units), 2):
        value = ((value ^ int.from_bytes(units[i:i + 2], "little")) * 0x01000193) % 2**32
    assert fnv1a32(text) == value


def test_equals_the_official_python_sdk() -> None:
    growthbook = pytest.importorskip("growthbook")
    rng = random.Random(7)
    weights_choices = [[0.5, 0.5], [0.2, 0.8], [0.34, 0.33, 0.33], [0.1, 0.2, 0.3, 0.4]]
    for i in range(400):
        weights = rng.choice(weights_choices)
        coverage = rng.choice([1.0, 0.5, 0.9])
        seed = f"exp-{rng.randrange(50)}"
        value = rng.choice([f"user-{i}", f"学员{i}", str(rng.randrange(10**9)), f"😀{i}"])
        client = growthbook.GrowthBook(attributes={"id": value})
        official = client.run(growthbook.Experiment(key=seed, variations=list(range(len(weights))),
                                                    weights=weights, coverage=coverage, hashVersion=2, seed=seed))
        ours = assign(value, seed, weights, coverage)
        assert (ours if ours >= 0 else None) == (official.variationId if official.inExperiment else None), value
