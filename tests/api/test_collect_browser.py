"""The official browser SDKs in headless Chromium (Debian's) on a page of another loopback origin, sending to a
real server: Sensors' sa-sdk-javascript (image requests and batched POSTs) and posthog-js (gzip batches)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from compat_support import ModuleServer, Project, StaticSite, browser_page, chromium_or_skip, shared
from edupulse.ingest.sensors import project_slug

__all__ = ["shared"]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


class Traffic:
    """What a page sent to the server and what the server answered."""

    def __init__(self, page: Any, server_url: str) -> None:
        self.server_url = server_url
        self.responses: list[Any] = []
        self.failures: list[str] = []
        self._counted: dict[int, int] = {}
        page.on("response", lambda r: self.responses.append(r) if r.url.startswith(server_url) else None)
        page.on("requestfailed", lambda r: self.failures.append(f"{r.url[:80]}: {r.failure}")
                if r.url.startswith(server_url) else None)

    @property
    def accepted(self) -> int:
        """Records the server accepted so far (bodies are read here, outside the event handlers)."""
        for i, response in enumerate(self.responses):
            if i not in self._counted:
                if "json" in response.headers.get("content-type", ""):
                    self._counted[i] = json.loads(response.body()).get("accepted", 0)
                else:
                    self._counted[i] = int(response.status == 200)  # an image request carries one record
        return sum(self._counted.values())


def run_page(playwright: Any, html: str, until: Callable[[Traffic], bool], timeout_s: float = 30) -> Traffic:
    site = StaticSite({"/index.html": html})
    browser, page = browser_page(playwright)
    try:
        traffic = Traffic(page, html.split("SERVER=", 1)[1].split("'", 2)[1])
        page.goto(f"{site.origin}/index.html?utm_source=douyin&utm_campaign=spring")
        page.wait_for_function("window.done === true", timeout=timeout_s * 1000)
        waited = 0.0
        while not until(traffic) and waited < timeout_s and not traffic.failures:
            page.wait_for_timeout(100)
            waited += 0.1
        assert traffic.failures == [], traffic.failures
        assert until(traffic), f"only {traffic.accepted} records were accepted: {traffic.responses}"
        return traffic
    finally:
        browser.close()
        site.close()


def sensors_page(server_url: str, project: Project, send_type: str, batch_send: str) -> str:
    url = f"{server_url}/sa?project={project_slug(project.keys.name)}&token={project.keys.write_key}"
    return f"""<!doctype html><html><head><title>Math G5</title><meta charset="utf-8">
<script src="/sa-sdk-javascript/sensorsdata.min.js"></script></head><body><script>
var SERVER='{server_url}';
var sensors = window['sensorsDataAnalytic201505'];
sensors.init({{server_url: '{url}', is_track_single_page: false, use_client_time: true, send_type: '{send_type}',
  show_log: false, heatmap: {{clickmap: 'not_collect', scroll_notice_map: 'not_collect'}}, batch_send: {batch_send}}});
sensors.quick('autoTrack');
sensors.track('lesson_attended', {{lesson_id: 'L-1', duration_s: 2700}});
sensors.login('u-1');
sensors.setProfile({{grade: 'G5', school: '一中'}});  // the SDK drops non-identifier names
sensors.setOnceProfile({{first_channel: 'web'}});
sensors.track('course_viewed', {{course_id: 'C-1'}});
window.done = true;
</script></body></html>"""


def test_sensors_web_sdk(shared: ModuleServer, playwright: Any) -> None:
    base = shared.running().url
    modes = {"image": ("image", "false"),
             "batch": ("ajax", "{datasend_timeout: 6000, send_interval: 300, storage_length: 200}")}
    projects = {mode: shared.project() for mode in modes}
    for mode, (send_type, batch_send) in modes.items():
        run_page(playwright, sensors_page(base, projects[mode], send_type, batch_send), lambda t: t.accepted >= 6)
        assert shared.quarantine(projects[mode]) == []
    stored = shared.stored_many(list(projects.values()))
    for mode, project in projects.items():
        result = stored[project.id]
        assert result.event_names() == ["$pageview", "lesson_attended", "$SignUp", "course_viewed"], mode
        page = result.events[0]
        assert page[6] == "douyin", mode  # $utm_source, in the standard utm_source column
        assert page[5].endswith("/index.html?utm_source=douyin&utm_campaign=spring"), mode
        cookie = page[1]
        assert len(result.persons_of(("anonymous_id", cookie), ("login_id", "u-1"))) == 1, mode
        props = result.properties_of("login_id", "u-1")
        assert (props["grade"], props["school"], props["first_channel"]) == ("G5", "一中", "web"), mode
        assert {p for _, p in result.resolved} == result.persons_of(("login_id", "u-1")), mode


def posthog_page(server_url: str, project: Project) -> str:
    return f"""<!doctype html><html><head><title>Math G5</title><meta charset="utf-8">
<script src="/posthog-js/dist/array.full.no-external.js"></script></head><body><script>
var SERVER='{server_url}';
posthog.init('{project.keys.write_key}', {{api_host: SERVER, autocapture: false, capture_pageview: true,
  capture_pageleave: false, disable_session_recording: true, advanced_disable_flags: true,
  advanced_disable_decide: true, disable_surveys: true, disable_external_dependency_loading: true,
  person_profiles: 'always', opt_out_useragent_filter: true, request_queue_config: {{flush_interval_ms: 300}}}});
posthog.capture('lesson_attended', {{lesson_id: 'L-1', duration_s: 2700}});
posthog.identify('u-1', {{grade: 'G5', 学校: '一中'}}, {{first_channel: 'web'}});
posthog.group('school', 'S-1', {{name: 'No. 1 Middle School'}});
posthog.capture('course_viewed', {{course_id: 'C-1'}});
posthog.setPersonProperties({{city: 'Hangzhou'}});
window.done = true;
</script></body></html>"""


def test_posthog_js(shared: ModuleServer, playwright: Any) -> None:
    project = shared.project()
    # lesson_attended, $identify, $groupidentify, course_viewed, $set, $pageview
    traffic = run_page(playwright, posthog_page(shared.running().url, project), lambda t: t.accepted >= 6)
    assert all(r.status == 200 for r in traffic.responses)
    assert shared.quarantine(project) == []
    stored = shared.stored(project)
    names = stored.event_names()
    assert sorted(names) == sorted(["lesson_attended", "$identify", "course_viewed", "$pageview"])
    anonymous = stored.events[names.index("lesson_attended")][1]
    person = stored.persons_of(("anonymous_id", anonymous), ("login_id", "u-1"), ("anonymous_id", "u-1"))
    assert len(person) == 1
    assert {p for _, p in stored.resolved} == person
    props = stored.properties_of("login_id", "u-1")
    assert (props["grade"], props["学校"], props["first_channel"], props["city"]) == ("G5", "一中", "web", "Hangzhou")
    assert stored.entities[("group", "school", "S-1")] == {"name": "No. 1 Middle School"}
    page = stored.events[names.index("$pageview")]
    assert page[6] == "douyin"  # posthog-js sends utm_source as it is
    assert page[5].endswith("/index.html?utm_source=douyin&utm_campaign=spring")  # $current_url as url
