"""The browser tracker (/static/edupulse.js) in headless Chromium against a real server: a school's page, served by
another loopback server (another origin, so every request is cross-origin), records page views with utm,
identifies, tracks, and its last records leave with sendBeacon when the page is left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from conftest import ProjectKeys, ServerFactory
from tracker_support import ARGS, CHROMIUM, SchoolSite


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def test_tracker_script_is_served(server_factory: ServerFactory, project: ProjectKeys) -> None:
    server = server_factory().start()
    response = httpx.get(f"{server.url}/static/edupulse.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert b"sendBeacon" in response.content
    refused = httpx.post(f"{server.url}/api/v1/ingest/beacon", content=b'{"batch": []}')
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "*"


def test_tracker_in_chromium(browser: Any, server_factory: ServerFactory, project: ProjectKeys) -> None:
    server = server_factory().start()
    school = SchoolSite(server.url, project.write_key, {"lesson": ", flushInterval: 60000, batchSize: 100"})
    site = school.url
    context = browser.new_context()
    page = context.new_page()
    ingest = f"{server.url}/api/v1/ingest/beacon**"
    with page.expect_response(ingest) as first:
        page.goto(f"{site}/landing?utm_source=douyin&utm_medium=feed&utm_campaign=spring")
    assert first.value.status == 200
    anonymous = page.evaluate("edupulse.anonymousId()")
    with page.expect_response(ingest):
        page.goto(f"{site}/course")  # same session: the landing page's utm is kept
    assert page.evaluate("edupulse.anonymousId()") == anonymous  # from the cookie
    with page.expect_response(ingest):
        page.evaluate("""() => { edupulse.identify("stu-42", {grade: "G5"});
                                 edupulse.track("course_enrolled", {course_id: "C-1"}); edupulse.flush(); }""")
    page.goto(f"{site}/lesson")  # batches of 100 every minute: only the beacon will send these
    page.evaluate("""() => edupulse.track("lesson_attended", {lesson_id: "L-1", duration_s: 1800})""")
    assert page.evaluate("edupulse.stats().queued") == 2
    frames = server.status()["log_frames_written"]
    page.goto("about:blank")  # pagehide: the beacon
    deadline = time.monotonic() + 20
    while server.status()["log_frames_written"] == frames and time.monotonic() < deadline:
        time.sleep(0.05)
    context.close()
    school.close()
    server.stop()
    rows = server.query("SELECT event, distinct_id, prop_utm_source, prop_utm_campaign, prop_url, prop_course_id, "
                        "prop_lesson_id, resolved_person_id FROM events_resolved ORDER BY time, insert_id")
    events = [r[0] for r in rows]
    assert sorted(events) == sorted(["page_view", "page_view", "course_enrolled", "page_view", "lesson_attended"])
    assert {r[7] for r in rows} == {rows[0][7]}  # one person: the anonymous visits merged with the login
    views = [r for r in rows if r[0] == "page_view"]
    assert all(r[2] == "douyin" and r[3] == "spring" for r in views)
    assert [r[4].split("/")[3].split("?")[0] for r in views] == ["landing", "course", "lesson"]
    assert views[0][1] == anonymous
    assert {r[1] for r in rows if r[0] in ("course_enrolled", "lesson_attended")} == {"stu-42"}
    identities = set(server.query("SELECT id_type, id_value FROM identities"))
    assert identities == {("anonymous_id", anonymous), ("login_id", "stu-42")}
    (props,) = server.query("SELECT properties FROM persons")[0]
    assert orjson.loads(props) == {"grade": "G5"}
