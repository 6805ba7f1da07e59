"""The experiments pages in Chromium: an experiment made and started on the page, its results with the
verdict in words, the interval chart and the daily series, in English and Chinese, without page errors."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from test_web_browser import _no_page_errors, page
from web_pages_support import shot

from web_site import Site

__all__ = ["_no_page_errors", "page"]
pytestmark = pytest.mark.browser


def test_make_start_and_read_an_experiment(page: Any, site: Site) -> None:
    page.goto(site.url + "/experiments")
    page.click("#sample-size button[type=submit]")
    page.wait_for_function("document.getElementById('sample-size-result').textContent.includes('14,')")
    spec = {"key": "page-ui", "name": "Page test", "variants": [{"key": "control", "weight": 0.5},
                                                                 {"key": "new", "weight": 0.5}],
            "metrics": [{"event": "trial_booked", "math": "unique"}]}
    page.fill("#experiment-json", json.dumps(spec))
    page.click("#experiment-create")
    page.wait_for_url(site.url + "/experiments/page-ui")
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector("text=running")
    base = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=20)
    records = []
    for i in range(600):
        who, variant = f"ui-{i}", "new" if i % 2 else "control"
        shown = base + dt.timedelta(milliseconds=i)
        records.append({"type": "track", "event": "$experiment_exposure", "distinct_id": who, "time": shown.isoformat(),
                        "properties": {"experiment": "page-ui", "variant": variant}})
        if i % (3 if variant == "new" else 12) == 0:
            records.append({"type": "track", "event": "trial_booked", "distinct_id": who,
                            "time": (shown + dt.timedelta(milliseconds=1)).isoformat()})
    site.ingest(records)
    deadline = time.monotonic() + 60
    with site.api() as api:
        while time.monotonic() < deadline and sum(api.get("/api/v1/experiments/page-ui/results").json()[
                "units"].values()) < 600:
            time.sleep(0.2)
    page.click("#results-options button[type=submit]")
    page.wait_for_selector(".verdict-better")
    assert "new is better than the control on Trial booked · unique" in page.inner_text("#results")
    assert page.evaluate("echarts.getInstanceByDom(document.querySelector('.metric .chart')) !== undefined")
    shot(page, "experiment")
    page.goto(site.url + "/lang/zh?next=/experiments/page-ui")
    page.wait_for_selector(".verdict-better")
    assert "优于对照组" in page.inner_text("#results")
    shot(page, "experiment-zh")
    page.goto(site.url + "/lang/en?next=/")
