"""A tag's page in headless Chromium: Run starts the run, shows its stage (and steps done of the total) while
the server answers 202 and the page polls, then the outcome, in both languages."""

from __future__ import annotations

from typing import Any

import pytest
from web_pages_support import signed_in_tab, wait_ready

from web_site import ADMIN, Site, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]

WATCH = """() => {
  window.seenStatus = [];
  const status = document.getElementById("tag-run-status");
  new MutationObserver(() => window.seenStatus.push(status.textContent))
    .observe(status, { childList: true, characterData: true, subtree: true });
}"""


@pytest.mark.parametrize(("lang", "running", "finished", "failed"),
                         [("en", "Running", "Run finished", "The run failed"),
                          ("zh", "计算中", "计算完成", "计算失败")])
def test_run_shows_progress_then_the_outcome(browser: Any, site: Site, lang: str, running: str, finished: str,
                                             failed: str) -> None:
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        # the server answers 202 at once (as for a run longer than the page's wait): the page must poll
        tab.route("**/api/v1/tags/lead_propensity/run?wait=2",
                  lambda route: route.continue_(url=route.request.url.replace("wait=2", "wait=0")))
        tab.goto(site.url + "/tags/lead_propensity")
        wait_ready(tab)
        tab.evaluate(WATCH)
        tab.click("#tag-run")
        tab.wait_for_function(f"document.getElementById('tag-run-status').textContent.startsWith({finished!r}) || "
                              f"document.getElementById('tag-run-status').textContent.startsWith({failed!r})",
                              timeout=120_000)
        seen = [text for text in tab.evaluate("window.seenStatus") if text]
        assert seen[0].startswith(running)
        stages = seen[1:-1]  # what the page showed while it polled, in the page's language
        assert stages, seen
        assert all(text not in ("queued", "reading", "gate") for text in stages)
        if lang == "zh":
            assert all("步" in text or text in ("等待空闲的计算线程",) for text in stages), stages
        assert tab.locator("#tag-run-bar").is_hidden()
        tab.wait_for_function("!document.getElementById('tag-run').disabled")  # once the page has reloaded
        assert tab.errors == []
    finally:
        tab.context.close()
