"""An academic supervisor's class report in Chromium, in Chinese and English: from the learning-indicators pack
page to one class's report, its students' indicators equal to the pack's headline for that class, and the page
as printed (print media: no navigation, no period form, the students' table whole); screenshots in
test-screenshots/."""

from __future__ import annotations

from typing import Any

import pytest
from web_pages_support import Words, shot, signed_in_tab, untranslated_on, wait_ready

from web_site import ADMIN, ANALYST, Site, needs_chromium


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_supervisor_prints_a_class_report(browser: Any, site: Site, lang: str) -> None:
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        tab.goto(site.url + "/scenarios/learning_indicators")
        wait_ready(tab)
        tab.select_option("#pack-range", "all")
        tab.click("#pack-period button[type=submit]")
        tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 2")
        assert tab.locator("#class-table tbody tr").count() > 0
        assert tab.locator("#teacher-table tbody tr").count() > 0
        link = tab.locator("#class-table tbody tr").first.locator("a")
        class_id = tab.locator("#class-table tbody tr").first.locator("td").first.inner_text()
        with tab.expect_navigation():
            link.click()
        wait_ready(tab)
        tab.wait_for_function("Number(document.body.dataset.report || 0) >= 1")
        assert tab.inner_text("#report-class") == class_id
        with site.api() as http:
            answer = http.get("/api/v1/packs/learning_indicators/headline",
                              params={"date_range": "all", "class_id": class_id})
            assert answer.status_code == 200, answer.text
            report = answer.json()["class_report"]
        rows = tab.locator("#student-table tbody tr")
        assert rows.count() == len(report["students"]) > 0
        first = report["students"][0]
        assert rows.first.locator("td").first.inner_text() == first["student"]
        assert rows.first.locator("td").nth(1).inner_text() == str(first["scheduled_lessons"])
        assert untranslated_on(tab, Words.of(lang)) == []
        shot(tab, f"class-report-{lang}")
        tab.emulate_media(media="print")
        assert tab.locator("header.top").is_hidden()
        assert tab.locator("#report-period").is_hidden()
        assert tab.locator("#student-table tbody tr").count() == len(report["students"])
        shot(tab, f"class-report-print-{lang}")
        pdf = tab.pdf(format="A4")
        assert pdf[:4] == b"%PDF"
        tab.emulate_media(media="screen")
        assert tab.errors == []
    finally:
        tab.context.close()


def test_a_class_report_refuses_an_unknown_class(site: Site) -> None:
    with site.api() as http:
        answer = http.get("/api/v1/packs/learning_indicators/headline",
                          params={"date_range": "all", "class_id": "no-such-class"})
        assert answer.status_code == 404
        assert "no lessons of this class" in answer.json()["detail"]
        long = http.get("/api/v1/packs/learning_indicators/headline", params={"class_id": "x" * 201})
        assert long.status_code in (400, 422)
        assert "class_id" in long.text


def test_students_names_are_masked_without_personal_view(site: Site) -> None:
    with site.api() as http:
        whole = http.get("/api/v1/packs/learning_indicators/headline", params={"date_range": "all"}).json()
        class_id = whole["classes"][0]["class_id"]
        shown = http.get("/api/v1/packs/learning_indicators/headline",
                         params={"date_range": "all", "class_id": class_id}).json()["class_report"]["students"]
    with site.signed_in(ANALYST) as (http, _):
        masked = http.get("/api/v1/packs/learning_indicators/headline",
                          params={"date_range": "all", "class_id": class_id}).json()["class_report"]["students"]
    assert [s["student"][:1] + "*" * max(1, len(s["student"]) - 1) for s in shown] == [s["student"] for s in masked]
    assert [s["attendance_rate"] for s in shown] == [s["attendance_rate"] for s in masked]
