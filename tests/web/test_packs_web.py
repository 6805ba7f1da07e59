"""Scenario packs over HTTP and in Chromium on the simulated school of the web tests: the list, install
(idempotent) and the headline through the API with its refusals, equal to the simulation's truth; the
Scenarios home with a number on the channel-quality card and the pack's page with its sortable table, the
planted best channel marked, in Chinese and English (screenshots in test-screenshots/)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from web_pages_support import Words, shot, signed_in_tab, untranslated_on, wait_ready

from edupulse.meta.db import MetadataStore
from edupulse.sim.config import default_truth_path
from edupulse.web.i18n import messages
from web_site import ADMIN, ANALYST, PROJECT, Site, needs_chromium


def truth(site: Site) -> dict[str, Any]:
    return json.loads(default_truth_path(site.settings.data_dir, PROJECT).read_text(encoding="utf-8"))


def test_the_packs_api(site: Site) -> None:
    with site.api() as http:
        listed = http.get("/api/v1/packs").json()["packs"]
        assert len(listed) == 12
        assert {p["name"] for p in listed if p["available"]} >= {"channel_quality"}
        first = http.post("/api/v1/packs/channel_quality/install")
        assert first.status_code == 200, first.text
        again = http.post("/api/v1/packs/channel_quality/install").json()
        assert again["created"] == []
        assert again["updated"] == []
        one = http.get("/api/v1/packs/channel_quality").json()
        assert one["installed"]
        assert one["dashboard_id"] == first.json()["dashboard_id"]
        found = http.get("/api/v1/packs/channel_quality/headline", params={"date_range": "all"}).json()
        for status, path, params in [(404, "/api/v1/packs/nope/headline", {}),
                                     (400, "/api/v1/packs/channel_quality/headline", {"date_range": "week"}),
                                     (400, "/api/v1/packs/channel_quality/headline", {"roi_days": "7"}),
                                     (400, "/api/v1/packs/channel_quality/headline", {"date_from": "2025-02-30"})]:
            answer = http.post(path) if params is None else http.get(path, params=params)
            assert answer.status_code == status, (path, answer.text)
            assert answer.json()["detail"]
    expected = {c["channel"]: c for c in truth(site)["channels"]}
    for row in found["channels"]:
        assert row["leads"] == expected[row["channel"]]["leads"]
        assert row["first_order_rate"] == pytest.approx(expected[row["channel"]]["first_order_rate"], abs=5e-4)
        roi = expected[row["channel"]]["roi"]
        assert row["roi"] == (None if roi is None else pytest.approx(roi, abs=5e-4))


def test_the_packs_on_tags_and_journeys_over_http(site: Site) -> None:
    """Installed twice through the API (the second changes nothing), the lead pool filtered by channel, and bad
    filters refused with the field named."""
    with site.api() as http:
        for name in ("lead_tiering", "supervision", "renewal"):
            first = http.post(f"/api/v1/packs/{name}/install")
            assert first.status_code == 200, first.text
            again = http.post(f"/api/v1/packs/{name}/install").json()
            assert (again["created"], again["updated"]) == ([], []), name
        journeys = {j["name"]: j["status"] for j in http.get("/api/v1/journeys").json()["journeys"]}
        assert journeys["高意向线索分配给顾问 Assign high-intent leads to advisors"] == "draft"
        found = http.get("/api/v1/packs/lead_tiering/headline",
                         params={"date_range": "all", "channel": "douyin"}).json()
        assert found["channel"] == "douyin"
        assert found["leads_total"] == sum(t["leads"] for t in found["tiers"])
        expected = {c["channel"]: c["leads"] for c in truth(site)["channels"]}
        assert found["leads_total"] == expected["douyin"]
        refused = http.get("/api/v1/packs/lead_tiering/headline", params={"max_age_days": "-3"})
        assert refused.status_code == 422
        assert "max_age_days" in refused.text


def test_an_analyst_may_install_but_not_add_metrics(site: Site) -> None:
    with site.signed_in(ANALYST) as (http, csrf):
        answer = http.delete("/api/v1/packs/channel_quality", headers={"X-CSRF-Token": csrf})
        assert answer.status_code in (200, 404)
        listed = http.get("/api/v1/packs").json()["packs"]
        assert not next(p for p in listed if p["name"] == "channel_quality")["installed"]
        again = http.post("/api/v1/packs/channel_quality/install", headers={"X-CSRF-Token": csrf})
        assert again.status_code == 200, again.text  # its metrics are in the catalogue already




@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_channel_operator_opens_channel_quality(browser: Any, site: Site, lang: str) -> None:
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        wait_ready(tab)
        assert tab.locator(".stage").count() == 5
        assert tab.locator("article.scenario").count() == 12
        card = tab.locator('[data-headline="channel_quality"]')
        tab.wait_for_function("document.querySelector('[data-headline=\"channel_quality\"]').textContent.trim() "
                              "!== '—'")
        assert float(card.inner_text()) > 0
        shot(tab, f"scenarios-home-{lang}")
        tab.click('article[data-pack="channel_quality"] h3 a')
        tab.wait_for_url(site.url + "/scenarios/channel_quality")
        wait_ready(tab)
        tab.select_option("#pack-range", "all")
        tab.click("#pack-period button[type=submit]")
        tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 2")
        rows = tab.locator("#channel-table tbody tr")
        planted = next(c["channel"] for c in truth(site)["channels"] if c["quality_rank"] == 1)
        best = tab.locator("#channel-table tr.best-row td").first.inner_text()
        assert rows.count() == len(truth(site)["channels"])
        assert best == planted
        tab.click('#channel-table [data-sort="first_order_rate"]')
        assert tab.locator("#channel-table tbody tr").first.locator("td").first.inner_text() == planted
        tab.click('#channel-table [data-sort="roi"]')
        paid = [c for c in truth(site)["channels"] if c["roi"] is not None]
        top = max(paid, key=lambda c: c["roi"])["channel"]
        assert tab.locator("#channel-table tbody tr").first.locator("td").first.inner_text() == top
        shot(tab, f"scenario-channel-quality-{lang}")
        assert tab.errors == []
    finally:
        tab.context.close()


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_customer_success_manager_opens_b2b_health(browser: Any, site: Site, lang: str) -> None:
    """The Monday list: from the Scenarios home to the institutions, the ones in warning marked, exactly the
    institutions the simulation planted as declining, and sortable by score."""
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        wait_ready(tab)
        tab.click('article[data-pack="b2b_health"] h3 a')
        tab.wait_for_url(site.url + "/scenarios/b2b_health")
        wait_ready(tab)
        tab.select_option("#pack-range", "all")
        tab.click("#pack-period button[type=submit]")
        tab.wait_for_function("document.querySelectorAll('#institution-table tbody tr').length > 0")
        planted = {i["institution_id"] for i in truth(site)["institutions"] if i["health"] == "declining"}
        warned = {r.locator("td").first.inner_text() for r in tab.locator("#institution-table tr.best-row").all()}
        assert warned == planted
        tab.click('#institution-table [data-sort="score"]')
        scores = [float(r.locator("td").nth(2).inner_text()) for r in tab.locator("#institution-table tbody tr").all()]
        assert scores in (sorted(scores), sorted(scores, reverse=True))
        problems = untranslated_on(tab, Words.of(lang))
        assert problems == [], problems
        shot(tab, f"scenario-b2b-health-{lang}")
        assert tab.errors == []
    finally:
        tab.context.close()


def test_the_alerts_api(site: Site) -> None:
    with site.api() as http:
        body = {"name": "Leads band", "event": "lead_created", "kind": "anomaly",
                "filters": [{"property": "channel", "op": "eq", "value": "douyin"}]}
        made = http.post("/api/v1/alerts", json=body)
        assert made.status_code == 201, made.text
        alert = made.json()
        assert alert["state"] == "ok"
        assert alert["filters"] == body["filters"]
        for bad in ({**body, "webhook_url": "ftp://x"}, {**body, "filters": [{"op": "zz"}]},
                    {**body, "kind": "threshold"}, {**body, "weeks": 100}):
            assert http.post("/api/v1/alerts", json=bad).status_code == 422, bad
        changed = http.put(f"/api/v1/alerts/{alert['id']}", json={**body, "webhook_url": "http://127.0.0.1:9/"})
        assert changed.json()["webhook_url"] == "http://127.0.0.1:9/"
        assert http.get(f"/api/v1/alerts/{alert['id']}/events").json() == {"events": []}
        assert any(a["id"] == alert["id"] for a in http.get("/api/v1/alerts").json()["alerts"])
        assert http.delete(f"/api/v1/alerts/{alert['id']}").status_code == 200
        assert http.delete(f"/api/v1/alerts/{alert['id']}").status_code == 404
        assert http.get(f"/api/v1/alerts/{alert['id']}/events").status_code == 404


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_pack_page_in_both_languages(browser: Any, site: Site, lang: str) -> None:
    """The crawl visits one pack page; here every available pack's page is checked for untranslated words."""
    with site.api() as http:
        names = [p["name"] for p in http.get("/api/v1/packs").json()["packs"] if p["available"]]
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    words = Words.of(lang)
    try:
        for name in names:
            tab.goto(f"{site.url}/scenarios/{name}")
            wait_ready(tab)
            tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 1")
            assert tab.evaluate("document.body.dataset.failed || ''") == "", name
            assert untranslated_on(tab, words) == [], name
            assert tab.errors == [], name
            shot(tab, f"scenario-{name}-{lang}")
    finally:
        tab.context.close()


def test_headlines_of_the_school_equal_its_truth(site: Site) -> None:
    expected = truth(site)
    with site.api() as http:
        def headline(name: str) -> dict[str, Any]:
            answer = http.get(f"/api/v1/packs/{name}/headline", params={"date_range": "all"})
            assert answer.status_code == 200, answer.text
            return answer.json()

        learning = headline("learning_indicators")
        referral = headline("referral")
        b2b = headline("b2b_health")
        schools = headline("school_accounts")
    assert learning["attendance_rate"] == pytest.approx(expected["learning"]["attendance_rate"], abs=5e-4)
    assert referral["referral_rate"] == pytest.approx(expected["referrals"]["referral_rate"], abs=5e-4)
    assert set(b2b["declining"]) == {i["institution_id"] for i in expected["institutions"]
                                     if i["health"] == "declining"}
    by_school = {s["school_id"]: s for s in expected["schools"]}
    for row in schools["schools"]:
        assert row["tier"] == by_school[row["school_id"]]["tier"]
        assert row["active_parents"] == by_school[row["school_id"]]["active_parents"]


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_project_without_events_shows_what_to_send(browser: Any, site: Site, lang: str) -> None:
    meta = MetadataStore(site.settings.resolved_metadata_url)
    try:
        if meta.project_by_name("Pack-less School") is None:
            meta.create_project("Pack-less School")
    finally:
        meta.close()
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        wait_ready(tab)
        with tab.expect_navigation():
            tab.select_option("#project-select", label="Pack-less School")
        wait_ready(tab)
        tab.wait_for_selector('[data-state="channel_quality"] a.card-empty')
        assert tab.locator("a.card-empty").count() == len(
            [p for p in tab.evaluate("EP.boot.data.packs") if p["available"]])
        shot(tab, f"scenarios-empty-{lang}")
        tab.click('[data-state="channel_quality"] a.card-empty')
        wait_ready(tab)
        tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 1")
        empty = tab.inner_text("#pack-empty")
        assert tab.locator("#pack-empty a[href='/catalog']").count() == 1
        assert ("lead_created" in empty) or ("新增线索" in empty) or ("Lead created" in empty)
        assert untranslated_on(tab, Words.of(lang)) == []
        assert tab.errors == []
        shot(tab, f"scenario-empty-{lang}")
        with tab.expect_navigation():
            tab.select_option("#project-select", label=PROJECT)
    finally:
        tab.context.close()


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_manager_switches_an_sop_on_and_off(browser: Any, site: Site, lang: str) -> None:
    """The SOP pack's page: installed as drafts, one SOP switched on from the page (its journey runs), then paused
    again, its holdout result shown in the page's language."""
    with site.api() as http:
        assert http.post("/api/v1/packs/automated_sops/install").status_code == 200
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        for change, status in (("switch_on", "running"), ("pause", "paused")):
            tab.goto(f"{site.url}/scenarios/automated_sops")
            wait_ready(tab)
            tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 1")
            button = tab.locator('#sop-table button[data-sop="call_new_lead"]')
            assert button.inner_text() == messages(lang)[f"packs.ops.{change}"]
            with tab.expect_navigation():
                button.click()
            wait_ready(tab)
            tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 1")
            shown = tab.locator('#sop-table tr:has(button[data-sop="call_new_lead"]) [data-status]')
            assert shown.get_attribute("data-status") == status
            assert untranslated_on(tab, Words.of(lang)) == []
            assert tab.errors == []
        shot(tab, f"scenario-automated-sops-switched-{lang}")
    finally:
        tab.context.close()
    with site.api() as http:
        journeys = {j["name"]: j["status"] for j in http.get("/api/v1/journeys").json()["journeys"]}
    assert journeys["SOP：1 小时内致电新线索 SOP: call a new lead within an hour"] == "paused"
