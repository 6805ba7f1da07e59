"""GrowthBook's official JavaScript SDK (npm @growthbook/growthbook) and our tracker, in Debian's Chromium, both
reading our /api/features/{client key}: they assign every unit as the server does, and our tracker records
the exposure through the normal ingestion path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from compat_support import StaticSite, browser_page, chromium_or_skip
from conftest import ProjectKeys, Server, create_project, make_settings

pytestmark = pytest.mark.browser

SPEC = {"key": "page-test", "seed": "js-seed", "coverage": 0.9, "metrics": [{"event": "trial_booked"}],
        "variants": [{"key": "control", "weight": 0.34}, {"key": "short", "weight": 0.33},
                     {"key": "video", "weight": 0.33}],
        "targeting": {"properties": [{"property": "grade", "op": "neq", "value": "G1"}]}}
IDS = [f"学员-{i}" if i % 4 == 0 else f"anon-{i}" for i in range(120)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ProjectKeys]]:
    chromium_or_skip()
    settings = make_settings(tmp_path_factory.mktemp("exp-browser"))
    keys = create_project(settings)
    server = Server(settings).start()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys.api_key}"}) as api:
        assert api.post("/api/v1/experiments", json=SPEC).status_code == 201
        assert api.post("/api/v1/experiments/page-test/start").status_code == 200
    yield server, keys
    server.stop()


def _page(server: Server, keys: ProjectKeys) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8">
<script src="/@growthbook/growthbook/dist/bundles/index.min.js"></script>
<script src="{server.url}/static/edupulse.js"></script></head><body><script>
(async function () {{
  const ids = {json.dumps(IDS, ensure_ascii=False)};
  edupulse.init({{writeKey: "{keys.write_key}", host: "{server.url}", autoPageview: false, flushInterval: 50}});
  const gb = new growthbook.GrowthBook({{apiHost: "{server.url}", clientKey: "{keys.write_key}"}});
  await gb.init({{timeout: 10000}});
  const rows = [];
  for (let i = 0; i < ids.length; i++) {{
    const grade = ["G1", "G2", "G3"][i % 3];
    await gb.setAttributes({{id: ids[i], grade: grade}});
    const official = gb.getFeatureValue("page-test", null);
    const ours = await edupulse.assign("page-test", {{id: ids[i], grade: grade}}, {{track: false}});
    rows.push([ids[i], grade, official, ours]);
  }}
  window.rows = rows;
  window.tracked = await edupulse.assign("page-test", {{grade: "G2"}});
  edupulse.flush();
  window.done = true;
}})().catch((e) => {{ window.failure = String(e); window.done = true; }});
</script></body></html>"""


def test_official_js_sdk_and_our_tracker_assign_as_the_server(world: tuple[Server, ProjectKeys]) -> None:
    server, keys = world
    from playwright.sync_api import sync_playwright

    site = StaticSite({"/index.html": _page(server, keys)})
    with sync_playwright() as pw:
        browser, page = browser_page(pw)
        try:
            page.goto(f"{site.origin}/index.html")
            page.wait_for_function("window.done === true", timeout=60_000)
            assert page.evaluate("window.failure || null") is None
            rows: list[Any] = page.evaluate("window.rows")
            tracked = page.evaluate("window.tracked")
            anonymous = page.evaluate("edupulse.anonymousId()")
            if tracked is not None:  # an anonymous id outside the coverage is assigned nothing and sends nothing
                page.wait_for_function("edupulse.stats().sent >= 1", timeout=30_000)
        finally:
            browser.close()
            site.close()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys.api_key}"}) as api:
        for who, grade, official, ours in rows:
            server_side = api.get("/api/v1/experiments/page-test/assign",
                                  params={"distinct_id": who, "attributes": json.dumps({"grade": grade})}).json()
            assert official == ours == server_side["variant"], (who, grade)
        assert {r[2] for r in rows if r[1] == "G1"} == {None}
        assert len({r[2] for r in rows}) == 4  # three variants and, outside coverage or targeting, none
        expected = api.get("/api/v1/experiments/page-test/assign",
                           params={"distinct_id": anonymous, "attributes": '{"grade": "G2"}'}).json()["variant"]
        assert tracked == expected
        if tracked is not None:
            assert api.get("/api/v1/quarantine").json()["total"] == 0
