"""The referral, school accounts and one-person packs on the web test site: the referral tree over HTTP (with its
refusals) and in Chromium (from the KOL list and from a person's page); the ledger of a school and its owner and
targets (admins only); in Chinese and English, with screenshots in test-screenshots/."""

from __future__ import annotations

import json
from typing import Any

import pytest
from web_pages_support import Words, shot, signed_in_tab, untranslated_on, wait_ready

from edupulse.sim.config import default_truth_path
from web_site import ADMIN, ANALYST, PROJECT, Site, needs_chromium

TREE = "(document.getElementById('referral-tree') || {dataset: {}})"  # the tree's box, once the page made it
LEDGER = "(document.getElementById('school-ledger') || {dataset: {}})"


def truth(site: Site) -> dict[str, Any]:
    return json.loads(default_truth_path(site.settings.data_dir, PROJECT).read_text(encoding="utf-8"))


def test_the_referral_tree_api(site: Site) -> None:
    top = truth(site)["referrals"]["top_referrers"][0]
    with site.api() as http:
        found = http.get("/api/v1/packs/referral/headline", params={"date_range": "all"}).json()
        kol = found["top_referrers"][0]
        assert kol["referrer_id"] == top["login_id"]
        assert 0 < found["referred_revenue_share"] < 1
        tree = http.get("/api/v1/packs/referral/tree", params={"person_id": kol["person_id"], "depth": 6})
        assert tree.status_code == 200, tree.text
        assert tree.json()["root"]["login_id"] == top["login_id"]
        assert tree.json()["tree_size"] == top["tree_size"]
        for params in ({"person_id": kol["person_id"], "depth": 9}, {"person_id": "x"}, {}):
            refused = http.get("/api/v1/packs/referral/tree", params=params)
            assert 400 <= refused.status_code < 500, params
            assert refused.json()["detail"]


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_referral_tree_from_the_kol_list_and_a_person(browser: Any, site: Site, lang: str) -> None:
    top = truth(site)["referrals"]["top_referrers"]
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    words = Words.of(lang)
    try:
        tab.goto(f"{site.url}/scenarios/referral")
        wait_ready(tab)
        tab.select_option("#pack-range", "all")
        tab.click("#pack-period button[type=submit]")
        tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 2")
        tab.wait_for_function(f"{TREE}.dataset.drawn >= 1")
        assert tab.locator("#referrer-table tbody tr").first.locator("td").first.inner_text() == top[0]["login_id"]
        second = tab.locator("#referrer-table [data-tree]").nth(1)
        person = second.get_attribute("data-tree")
        second.click()
        tab.wait_for_function(f"document.getElementById('referral-tree').dataset.person === '{person}' && "
                              "Number(document.getElementById('referral-tree').dataset.drawn) >= 2")
        assert tab.locator("#referral-tree-chart canvas").count() >= 1
        assert int(tab.get_attribute("#referral-tree-sizes", "data-tree-size")) == top[1]["tree_size"]
        assert untranslated_on(tab, words) == []
        shot(tab, f"referral-tree-{lang}")
        tab.goto(f"{site.url}/people/{person}")
        wait_ready(tab)
        tab.click("#person-referral-tree")
        wait_ready(tab)
        tab.wait_for_function(f"{TREE}.dataset.person === '{person}' && {TREE}.dataset.drawn >= 1")
        assert tab.errors == []
    finally:
        tab.context.close()


def test_the_school_ledger_and_account_api(site: Site) -> None:
    schools = {s["school_id"]: s for s in truth(site)["schools"]}
    first = sorted(schools)[0]
    with site.api() as http:
        found = http.get(f"/api/v1/packs/school_accounts/schools/{first}/ledger",
                         params={"granularity": "month", "date_range": "all"})
        assert found.status_code == 200, found.text
        assert {p["students"] for p in found.json()["periods"]} == {schools[first]["students"]}
        for path, params in ((f"/api/v1/packs/school_accounts/schools/{first}/ledger", {"granularity": "day"}),
                             ("/api/v1/packs/school_accounts/schools/nope/ledger", {})):
            refused = http.get(path, params=params)
            assert refused.status_code in (400, 404), refused.text
            assert refused.json()["detail"]
        users = http.get("/api/v1/users").json()["users"]
        me = next(u["id"] for u in users if u["email"] == ADMIN[0])
        body = {"owner_id": me, "parent_target": 0.5, "target_date": "2026-12-31"}
        saved = http.put(f"/api/v1/packs/school_accounts/schools/{first}/account", json=body)
        assert saved.status_code == 200, saved.text
        for bad in ({"owner_id": 999999}, {"parent_target": 2}, {"owner_id": me, "backup_id": me}, {"tier": "A"}):
            refused = http.put(f"/api/v1/packs/school_accounts/schools/{first}/account", json=bad)
            assert 400 <= refused.status_code < 500, bad
        unknown = http.put("/api/v1/packs/school_accounts/schools/nope/account", json=body)
        assert unknown.status_code == 404
        headline = http.get("/api/v1/packs/school_accounts/headline", params={"date_range": "all"}).json()
        row = next(s for s in headline["schools"] if s["school_id"] == first)
        assert row["owner_id"] == me
        assert row["parent_progress"] == pytest.approx(row["parent_adoption"] / 0.5, abs=1e-6)
    with site.signed_in(ANALYST) as (http, csrf):
        refused = http.put(f"/api/v1/packs/school_accounts/schools/{first}/account", json={},
                           headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_ledger_of_a_school_and_its_target(browser: Any, site: Site, lang: str) -> None:
    schools = sorted(truth(site)["schools"], key=lambda s: s["school_id"])
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        tab.goto(f"{site.url}/scenarios/school_accounts")
        wait_ready(tab)
        tab.select_option("#pack-range", "all")
        tab.click("#pack-period button[type=submit]")
        tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 2")
        tab.wait_for_function(f"{LEDGER}.dataset.drawn >= 1")
        second = schools[1]["school_id"]
        tab.click(f'#school-table [data-school="{second}"]')
        tab.wait_for_function(f"{LEDGER}.dataset.school === '{second}'")
        tab.select_option("#ledger-granularity", "month")
        tab.wait_for_function(f"{LEDGER}.dataset.drawn >= 3")
        cells = tab.locator("#ledger-table tbody tr").first.locator("td")
        assert cells.nth(1).inner_text().replace(",", "") == str(schools[1]["students"])
        tab.fill("#account-parent-target", "40")
        tab.click("#account-form button[type=submit]")
        tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 3")
        tab.wait_for_function(f"{LEDGER}.dataset.school === '{second}' && !!document.getElementById('school-target')")
        assert "40" in tab.inner_text("#school-target")
        assert untranslated_on(tab, Words.of(lang)) == []
        shot(tab, f"school-ledger-{lang}")
        assert tab.errors == []
    finally:
        tab.context.close()


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_persons_timeline_names_the_sources(browser: Any, site: Site, lang: str) -> None:
    with site.api() as http:
        lead = http.post("/api/v1/query", json={"kind": "persons", "limit": 1, "filters": [
            {"property": "person.channel", "op": "eq", "value": "douyin"}]}).json()["persons"][0]["person_id"]
        coverage = http.get("/api/v1/packs/one_person/headline", params={"date_range": "all"}).json()
    assert {s["source"] for s in coverage["by_source"]} == {"crm", "wecom", "app", "learning"}
    assert all(s["linked"] <= s["persons"] <= coverage["persons"] for s in coverage["by_source"])
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        tab.goto(f"{site.url}/people/{lead}")
        wait_ready(tab)
        tab.wait_for_selector("[data-testid=timeline-event] .source")
        kinds = set(tab.eval_on_selector_all("[data-testid=timeline-event] .source",
                                             "(n) => n.map((x) => x.dataset.source)"))
        assert "crm" in kinds
        assert untranslated_on(tab, Words.of(lang)) == []
        shot(tab, f"person-sources-{lang}")
        tab.goto(f"{site.url}/scenarios/one_person")
        wait_ready(tab)
        tab.wait_for_function("Number(document.body.dataset.headline || 0) >= 1")
        assert tab.locator("#source-table tbody tr").count() == 4
        assert untranslated_on(tab, Words.of(lang)) == []
        assert tab.errors == []
    finally:
        tab.context.close()
