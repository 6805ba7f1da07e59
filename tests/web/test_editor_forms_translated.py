"""Every form of the journey and tag editors in both languages: each trigger kind, each step kind (with the
branches of an if and a split) and each tag type is drawn, and the page is read by the translation checker
of web_pages_support after each (the crawl of test_web_pages sees only the editors' first forms)."""

from __future__ import annotations

from typing import Any

import pytest
from web_pages_support import Words, shot, signed_in_tab, untranslated_on, wait_ready

from web_site import ADMIN, Site, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]

TRIGGERS = ["event", "not_followed", "schedule", "tag_entered", "tag_left", "segment_entered", "segment_left"]
STEPS = ["wait", "if", "split", "webhook", "email", "dingtalk", "wecom", "task", "set_property", "set_tag", "exit"]
TAG_TYPES = ["custom_tiers", "metric_tiers", "first_event", "last_event", "preference", "rfm", "sql", "uploaded",
             "missed_streak", "referral_kol", "institution_health", "model"]


def own_words(tab: Any, words: Words) -> list[str]:
    """The untranslated strings of the editors' own words. The server's reasons under a field (a new step is
    incomplete, so the server names what it lacks) are in English in both languages, as every API error; they
    are left out here."""
    tab.evaluate("document.querySelectorAll('.field-error').forEach((n) => n.remove())")
    return untranslated_on(tab, words)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_editor_form_is_in_the_page_language(browser: Any, site: Site, lang: str) -> None:
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    words = Words.of(lang)
    problems: dict[str, list[str]] = {}
    try:
        tab.goto(site.url + "/journeys")
        wait_ready(tab)
        for kind in TRIGGERS:
            tab.select_option("[data-testid=trigger-kind]", kind)
            problems[f"trigger {kind}"] = own_words(tab, words)
        tab.select_option("[data-testid=trigger-kind]", "schedule")
        for every in ("once", "week"):
            tab.select_option("[data-testid=schedule-every]", every)
            problems[f"schedule {every}"] = own_words(tab, words)
        tab.select_option("[data-testid=audience-kind]", "tag")
        for kind in STEPS:
            tab.select_option("[data-testid=add-step]", kind)
        for mode in ("until", "event"):  # the wait step (the example's three steps come first)
            tab.select_option('[data-testid="step-3-wait-mode"]', mode)
            problems[f"wait {mode}"] = own_words(tab, words)
        tab.select_option('[data-testid="add-step-4.then"]', "email")
        tab.select_option('[data-testid="add-step-5.0"]', "task")
        tab.select_option('[data-testid="step-8-format"]', "markdown")  # the DingTalk robot's title shows
        assert tab.is_checked("[data-testid=goal-on]")  # the example has a goal
        tab.click("[data-testid=quiet-on]")
        tab.click("[data-testid=add-exit-on]")
        problems["every step"] = own_words(tab, words)
        shot(tab, f"journey-editor-all-steps-{lang}")
        assert tab.errors == []

        tab.goto(site.url + "/tags")
        wait_ready(tab)
        for kind in TAG_TYPES:
            tab.select_option("[data-testid=tag-type]", kind)
            problems[f"tag {kind}"] = own_words(tab, words)
        tab.select_option("[data-testid=tag-type]", "metric_tiers")
        tab.select_option("[data-testid=metric-cut]", "percentiles")
        problems["tag percentiles"] = own_words(tab, words)
        assert tab.errors == []
    finally:
        tab.context.close()
    found = {where: found for where, found in problems.items() if found}
    assert found == {}, "untranslated: " + "\n".join(f"{k}: {v}" for k, v in found.items())
