"""Tag runs against a real server on a simulated school: a run answers when it has finished, or 202 with the
run to poll (`?wait=`, `Prefer: respond-async`, `Prefer: wait=`), and the polled run shows its stage and
steps done of its total until it has finished or failed (with the reason)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from web_site import Site

pytestmark = pytest.mark.slow


def _poll(http: httpx.Client, location: str, timeout: float = 300) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll a run until it is over: the last answer and every progress seen on the way."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = http.get(location)
        assert answer.status_code == 200, answer.text
        run = answer.json()
        seen.append(run["progress"])
        if run["status"] != "running":
            return run, seen
        time.sleep(0.05)
    raise AssertionError(f"the run did not finish in {timeout} s: {seen[-3:]}")


def test_a_model_run_answers_202_and_is_polled_to_the_end(site: Site) -> None:
    with site.api() as http:
        started = http.post("/api/v1/tags/lead_propensity/run?wait=0")
        assert started.status_code == 202, started.text
        run = started.json()
        assert run["status"] == "running"
        assert set(run["progress"]) == {"stage", "done", "total"}
        location = started.headers["location"]
        assert location == f"/api/v1/tags/lead_propensity/runs/{run['id']}"
        assert started.headers["retry-after"] == "1"
        done, seen = _poll(http, location)
        # the model's steps are counted: reading, the gate's 10 splits, evaluation, fit, scoring, storing
        counted = [p for p in seen if p["total"] == 15 and p["done"] is not None]
        assert counted
        assert all(0 <= p["done"] <= 15 for p in counted)
        assert [p["done"] for p in counted] == sorted(p["done"] for p in counted)  # never goes back
        assert "gate" in done["evaluation"]
        if done["status"] == "finished":
            assert done["progress"] == {"stage": "done", "done": 15, "total": 15}
            values = http.get("/api/v1/tags/lead_propensity/values?limit=1").json()
            assert values["total"] == done["units"] > 0
        else:  # a few hundred simulated learners can be too few for the gate: the run says so
            assert done["progress"] == {"stage": "failed", "done": None, "total": 15}
            assert "the model failed the gate: mean AUC" in done["error"]
            assert not done["evaluation"]["gate"]["passed"]

def test_prefer_headers_and_waiting_for_the_end(site: Site) -> None:
    with site.api() as http:
        later = http.post("/api/v1/tags/dropout_risk/run", headers={"Prefer": "respond-async"})
        assert later.status_code == 202, later.text
        done, _ = _poll(http, later.headers["location"])
        assert done["status"] in ("finished", "failed")
        assert done["finished_at"] is not None
        waited = http.post("/api/v1/tags/rfm/run", headers={"Prefer": "wait=300"})
        assert waited.status_code == 200, waited.text
        assert waited.json()["status"] == "finished"
        assert waited.json()["progress"] == {"stage": "done", "done": 2, "total": 2}
        also = http.post("/api/v1/tags/rfm/run?wait=300", headers={"Prefer": "respond-async"})
        assert also.status_code == 200  # ?wait= wins over the header
        for nonsense in ("wait=soon", "wait=nan", "wait=inf", "wait="):
            bad = http.post("/api/v1/tags/rfm/run", headers={"Prefer": nonsense})
            assert bad.status_code == 400, nonsense
            assert "Prefer" in bad.json()["error"]
        assert http.post("/api/v1/tags/rfm/run?wait=-1").status_code in (400, 422)
        assert http.post("/api/v1/tags/nope/run?wait=0").status_code == 404
        assert http.get("/api/v1/tags/rfm/runs/999999").status_code == 404


def test_a_failed_run_says_why_when_polled(site: Site) -> None:
    with site.api() as http:
        made = http.post("/api/v1/tags", json={"name": "live_crm", "definition": {"type": "uploaded"}})
        assert made.status_code == 201, made.text
        started = http.post("/api/v1/tags/live_crm/run?wait=0")
        location = started.headers.get("location") or f"/api/v1/tags/live_crm/runs/{started.json()['id']}"
        failed, _ = _poll(http, location)
        assert failed["status"] == "failed"
        assert "upload" in failed["error"]
        assert failed["progress"]["stage"] == "failed"
