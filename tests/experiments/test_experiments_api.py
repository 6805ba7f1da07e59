"""The experiments API on a real server: definitions refused with the field and the reason, versions and the
audit log, exposures checked per record, the official GrowthBook SDK reading /api/features/{client key} and
assigning what we assign, and results that find a planted effect and no effect in an A/A test."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ProjectKeys, Server, create_project, make_settings
from edupulse.sdk import EduPulse

TWO = [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ProjectKeys]]:
    settings = make_settings(tmp_path_factory.mktemp("experiments"))
    keys = create_project(settings)
    server = Server(settings).start()
    yield server, keys
    server.stop()


def _api(shared: tuple[Server, ProjectKeys]) -> httpx.Client:
    server, keys = shared
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys.api_key}"}, timeout=60)


def _ingest(shared: tuple[Server, ProjectKeys], records: list[dict[str, Any]]) -> dict[str, Any]:
    server, keys = shared
    out: dict[str, Any] = {"accepted": 0, "rejected": 0, "results": []}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys.write_key}"}, timeout=60) as c:
        for start in range(0, len(records), 2000):
            answer = c.post("/api/v1/ingest", json={"batch": records[start:start + 2000]})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            out["accepted"] += body["accepted"]
            out["rejected"] += body["rejected"]
            out["results"] += body["results"]
    return out


@pytest.mark.parametrize(("body", "field", "status"), [
    ({"key": "w", "variants": [{"key": "a", "weight": 0.6}, {"key": "b", "weight": 0.6}],
      "metrics": [{"event": "x"}]}, "variants", 400),
    ({"key": "m", "variants": TWO, "metrics": [{"metric": "no_such_metric"}]}, "metrics.0.metric", 400),
    ({"key": "u", "variants": TWO, "unit": "galaxy", "metrics": [{"event": "x"}]}, "unit", 400),
    ({"key": "k", "variants": TWO, "metrics": [{"event": "x", "math": "dau"}]}, "metrics.0", 400),
    ({"key": "s", "variants": TWO, "metrics": [{"metric": "cac"}]}, "metrics.0.metric", 400),
    ({"key": "dup", "variants": TWO, "metrics": [{"event": "x"}]}, "key", 409),
])
def test_bad_definitions_name_the_field(shared: tuple[Server, ProjectKeys], body: dict, field: str,
                                        status: int) -> None:
    with _api(shared) as api:
        if field == "key":
            assert api.post("/api/v1/experiments", json=body).status_code == 201
        answer = api.post("/api/v1/experiments", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["error"]


def test_versions_running_lock_and_audit(shared: tuple[Server, ProjectKeys]) -> None:
    spec = {"key": "life", "hypothesis": "h1", "variants": TWO, "metrics": [{"event": "order_paid"}]}
    with _api(shared) as api:
        assert api.post("/api/v1/experiments", json=spec).json()["status"] == "draft"
        assert api.post("/api/v1/experiments/life/start").json()["status"] == "running"
        changed = {**spec, "variants": [{"key": "control", "weight": 0.3}, {"key": "treatment", "weight": 0.7}]}
        refused = api.put("/api/v1/experiments/life", json=changed)
        assert refused.status_code == 409
        assert refused.json()["field"] == "variants"
        assert api.put("/api/v1/experiments/life", json={**spec, "hypothesis": "h2"}).json()["version"] == 2
        assert api.post("/api/v1/experiments/life/stop").json()["status"] == "stopped"
        assert api.put("/api/v1/experiments/life", json=changed).json()["version"] == 3
        again = api.post("/api/v1/experiments/life/start").json()
        assert (again["status"], again["version"]) == ("running", 4)
        shown = api.get("/api/v1/experiments/life").json()
        assert [v["change"] for v in shown["versions"]] == ["created", "started", "changed", "stopped", "changed",
                                                             "started"]
        audit = api.get("/api/v1/audit", params={"action": "experiment."}).json()["entries"]
        assert {e["action"] for e in audit if e["target"] == "experiment:life"} == {
            "experiment.create", "experiment.start", "experiment.update", "experiment.stop"}
        assert api.get("/api/v1/experiments/nope").status_code == 404


def test_exposures_are_checked_per_record_and_quarantined(shared: tuple[Server, ProjectKeys]) -> None:
    with _api(shared) as api:
        api.post("/api/v1/experiments", json={"key": "expo", "variants": TWO, "metrics": [{"event": "x"}]})
        exposure = {"type": "track", "event": "$experiment_exposure", "distinct_id": "p1"}
        answer = _ingest(shared, [
            {**exposure, "properties": {"experiment": "expo", "variant": "treatment"}},
            {**exposure, "properties": {"experiment": "nope", "variant": "treatment"}},
            {**exposure, "properties": {"experiment": "expo", "variant": "purple"}},
            {**exposure, "properties": {"variant": "control"}}])
        assert [r["status"] for r in answer["results"]] == ["accepted", "rejected", "rejected", "rejected"]
        assert [r.get("field") for r in answer["results"][1:]] == ["properties.experiment", "properties.variant",
                                                                    "properties.experiment"]
        assert "purple" in answer["results"][2]["reason"]
        quarantined = api.get("/api/v1/quarantine").json()["records"]
        assert sum("is not an experiment" in r["reason"] or "is not a variant" in r["reason"]
                   for r in quarantined) >= 2


def test_official_sdk_reads_our_features_and_assigns_the_same(shared: tuple[Server, ProjectKeys]) -> None:
    growthbook = pytest.importorskip("growthbook")
    server, keys = shared
    spec = {"key": "sdk-test", "seed": "s-42", "coverage": 0.8, "metrics": [{"event": "x"}],
            "variants": [{"key": "a", "weight": 0.2}, {"key": "b", "weight": 0.3}, {"key": "c", "weight": 0.5}],
            "namespace": {"name": "pricing", "range": [0.1, 0.9]},
            "targeting": {"properties": [{"property": "grade", "op": "in", "value": ["G3", "G4"]}]}}
    with _api(shared) as api, EduPulse(keys.write_key, host=server.url) as ours:
        assert api.post("/api/v1/experiments", json=spec).status_code == 201
        assert api.post("/api/v1/experiments/sdk-test/start").status_code == 200
        features = httpx.get(f"{server.url}/api/features/{keys.write_key}").json()
        assert features["features"]["sdk-test"]["rules"][0]["hashVersion"] == 2
        assert httpx.get(f"{server.url}/api/features/wk_unknown").status_code == 404
        assigned = 0
        for i in range(150):
            who, grade = f"student-{i}", ["G3", "G4", "G5"][i % 3]
            client = growthbook.GrowthBook(api_host=server.url, client_key=keys.write_key,
                                           attributes={"id": who, "grade": grade})
            client.load_features()
            official = client.get_feature_value("sdk-test", None)
            server_side = api.get("/api/v1/experiments/sdk-test/assign",
                                  params={"distinct_id": who, "attributes": f'{{"grade": "{grade}"}}'}).json()
            mine = ours.assign("sdk-test", who, {"grade": grade}, track_exposure=False)
            assert official == server_side["variant"] == mine, (who, grade)
            assigned += official is not None
            client.destroy()
        assert 40 < assigned < 100  # two grades of three, 80% of the namespace's 80%: about 64 of 150


def _simulate(key: str, rates: dict[str, float], seed: int, base: dt.datetime, n: int = 3000) -> list[dict[str, Any]]:
    """Exposures within a second after `base` (after the start, before the results are asked for), and a
    conversion a millisecond after some of them, at the variant's rate."""
    rng = random.Random(seed)
    records = []
    variants = list(rates)
    for i in range(n):
        who = f"{key}-{i}"
        variant = variants[i % len(variants)]
        shown = base + dt.timedelta(microseconds=rng.randrange(0, 1_000_000))
        records.append({"type": "track", "event": "$experiment_exposure", "distinct_id": who,
                        "time": shown.isoformat(), "properties": {"experiment": key, "variant": variant}})
        if rng.random() < rates[variant]:
            records.append({"type": "track", "event": "trial_booked", "distinct_id": who,
                            "time": (shown + dt.timedelta(milliseconds=1)).isoformat()})
    return records


@pytest.mark.slow
def test_a_planted_effect_is_found_and_an_aa_test_finds_none(shared: tuple[Server, ProjectKeys]) -> None:
    with _api(shared) as api:
        for key in ("planted", "aa"):
            body = {"key": key, "variants": TWO, "metrics": [{"event": "trial_booked", "math": "unique"}]}
            assert api.post("/api/v1/experiments", json=body).status_code == 201
            assert api.post(f"/api/v1/experiments/{key}/start").status_code == 200
    base = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=10)
    planted = _simulate("planted", {"control": 0.10, "treatment": 0.15}, 1, base)
    null = _simulate("aa", {"control": 0.12, "treatment": 0.12}, 2, base)
    answer = _ingest(shared, planted + null)
    assert answer["rejected"] == 0
    with _api(shared) as api:
        deadline = time.monotonic() + 60  # acknowledged records reach the store in the background
        while time.monotonic() < deadline:
            loaded = [sum(api.get(f"/api/v1/experiments/{key}/results").json()["units"].values())
                      for key in ("planted", "aa")]
            if loaded == [3000, 3000]:
                break
            time.sleep(0.2)
        for engine in ("frequentist", "sequential", "bayesian"):
            found = api.get("/api/v1/experiments/planted/results", params={"engine": engine}).json()
            aa = api.get("/api/v1/experiments/aa/results", params={"engine": engine}).json()
            assert found["units"] == {"control": 1500, "treatment": 1500}
            assert found["metrics"][0]["variants"][1]["verdict"] == "better", (engine, found["metrics"][0])
            assert aa["metrics"][0]["variants"][1]["verdict"] == "inconclusive", (engine, aa["metrics"][0])
            assert not found["srm_warning"]
            assert not aa["srm_warning"]
        relative = api.get("/api/v1/experiments/planted/results", params={"relative": "true", "cuped": "true"}).json()
        arm = relative["metrics"][0]["variants"][1]
        assert arm["ci"][0] < arm["effect_relative"] < arm["ci"][1]
        assert 0.2 < arm["effect_relative"] < 0.8  # planted: +50%
