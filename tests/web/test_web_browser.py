"""The web UI in headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser is
downloaded): sign in, build analyses on simulated data and compare the numbers on the page with the API's
numbers for the same query, save to a dashboard, watch a real-time dashboard change as events arrive,
a person's timeline, both languages. Screenshots of the main pages go to test-screenshots/ (git-ignored)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_pages_support import shot, wait_ready

from edupulse.meta.db import MetadataStore
from edupulse.queries.registry import Registry
from web_site import ADMIN, Site, needs_chromium

KINDS = set(Registry().kinds)

pytestmark = [pytest.mark.browser, needs_chromium]

if "funnel" in KINDS:
    needs_funnel = pytest.mark.browser
else:
    needs_funnel = pytest.mark.skip(reason="the funnel model is not in the analysis engine of this build yet")
if "retention" in KINDS:
    needs_retention = pytest.mark.browser
else:
    needs_retention = pytest.mark.skip(reason="the retention model is not in the analysis engine of this build yet")
if "person" in KINDS and "persons" in KINDS:
    needs_person = pytest.mark.browser
else:
    needs_person = pytest.mark.skip(reason="the person models are not in the analysis engine of this build yet")


@pytest.fixture(scope="module")
def page(browser: Any, site: Site) -> Iterator[Any]:
    """One signed-in tab (English, from the browser's language) for the module; page errors fail the test
    that caused them."""
    context = browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.errors = errors
    tab.goto(site.url + "/")
    assert "/login" in tab.url
    shot(tab, "login")
    tab.fill("input[name=email]", ADMIN[0])
    tab.fill("input[name=password]", ADMIN[1])
    tab.click("button[type=submit]")
    tab.wait_for_url(site.url + "/")
    yield tab
    context.close()


@pytest.fixture(autouse=True)
def _no_page_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "page" in request.fixturenames:
        tab = request.getfixturevalue("page")
        errors, tab.errors[:] = list(tab.errors), []
        assert errors == [], f"JavaScript errors on the page: {errors}"


def set_value(tab: Any, testid: str, value: str) -> None:
    field = tab.locator(f"[data-testid={testid}]")
    field.fill(value)
    field.dispatch_event("change")


def set_range(tab: Any, date_from: str, date_to: str | None = None) -> None:
    """A custom date range (the presets are in words; a custom range takes dates or -Nd)."""
    tab.select_option("[data-testid=date-preset]", "custom")
    set_value(tab, "date-from", date_from)
    if date_to is not None:
        set_value(tab, "date-to", date_to)


def run(tab: Any) -> dict[str, Any]:
    """Press Run, wait for its result (not the one the page asked for when it opened); the query the page
    sent (its JSON panel)."""
    wait_ready(tab)
    tab.click("#run")
    started = tab.evaluate("document.body.dataset.runStarted")
    tab.wait_for_function(f"document.body.dataset.resultReady === '{started}'")
    assert tab.locator("#error").is_hidden(), tab.inner_text("#error")
    return json.loads(tab.text_content("#query-json"))


def number(tab: Any, selector: str) -> float:
    return float(tab.locator(selector).first.get_attribute("data-value"))


def test_home_shows_the_event_count_and_questions_to_start_with(page: Any, site: Site) -> None:
    count = int(page.inner_text("#event-count").replace(",", ""))
    assert count > 1000
    assert page.locator(".starters a").count() == 3
    shot(page, "home")


def test_trends_built_on_the_page_equal_the_api(page: Any, site: Site) -> None:
    page.goto(site.url + "/analysis/trends")
    page.wait_for_selector("[data-testid=series-event-0] option[value=lead_created]", state="attached")
    page.select_option("[data-testid=series-event-0]", "lead_created")
    page.select_option("[data-testid=series-math-0]", "unique_persons")
    page.click("[data-testid=add-series]")
    page.select_option("[data-testid=series-event-1]", "page_view")
    set_range(page, "-30d")
    page.select_option("[data-testid=breakdown]", "utm_source")
    query = run(page)
    assert query["series"][0] == {"event": "lead_created", "math": "unique_persons"}
    assert query["breakdown"]["properties"] == ["utm_source"]
    api = site.query(query)
    assert len(api["series"]) > 2  # broken down by source
    for i, series in enumerate(api["series"]):
        assert number(page, f"[data-testid=agg-{i}]") == series["aggregated_value"]
        for j, value in enumerate(series["data"]):
            assert number(page, f"[data-testid=cell-{i}-{j}]") == value
    assert page.locator("#chart canvas").count() >= 1
    shot(page, "analysis-trends")
    with page.expect_download() as download:
        page.click("#export-csv")
    assert "lead_created" in Path(download.value.path()).read_text(encoding="utf-8-sig")
    with page.expect_download() as png:
        page.click("#export-png")
    assert Path(png.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_say_what_went_wrong(page: Any, site: Site) -> None:
    page.goto(site.url + "/analysis/trends")
    page.wait_for_selector("[data-testid=series-math-0]")
    page.select_option("[data-testid=series-math-0]", "sum")  # needs a numeric property, none given
    page.click("#run")
    page.wait_for_selector("#error:not([hidden])")
    assert "needs a numeric property" in page.inner_text("#error")


@needs_funnel
def test_funnel_built_on_the_page_equals_the_api(page: Any, site: Site) -> None:
    page.goto(site.url + "/analysis/funnel")
    page.wait_for_selector("[data-testid=steps-event-1]")
    while page.locator("[data-testid=steps-remove-2]").count():  # start from the two first steps
        page.click("[data-testid=steps-remove-2]")
    page.select_option("[data-testid=steps-event-0]", "lead_created")
    page.select_option("[data-testid=steps-event-1]", "lead_assigned")
    page.click("[data-testid=add-steps]")
    page.select_option("[data-testid=steps-event-2]", "call_connected")
    set_value(page, "window-value", "7")
    set_range(page, "-45d")
    query = run(page)
    assert [s["event"] for s in query["steps"]] == ["lead_created", "lead_assigned", "call_connected"]
    api = site.query(query)
    steps = api["results"][0]["steps"]
    assert steps[0]["count"] > 0
    for i, step in enumerate(steps):
        assert number(page, f"[data-testid=step-0-{i}]") == step["count"]
        shown = page.inner_text(f"[data-testid=overall-0-{i}]")
        assert shown == f"{round(step['conversion_rate'] * 1000) / 10:.1f}%"
    shot(page, "analysis-funnel")


@needs_retention
def test_retention_table_on_the_page_equals_the_api(page: Any, site: Site) -> None:
    page.goto(site.url + "/analysis/retention")
    page.wait_for_selector("[data-testid=start-event]")
    page.select_option("[data-testid=start-event]", "page_view")
    page.select_option("[data-testid=return-event]", "page_view")
    page.select_option("[data-testid=period]", "week")
    set_value(page, "periods", "6")
    set_range(page, "-6w")
    query = run(page)
    assert query["period"] == "week"
    cohorts = site.query(query)["results"][0]["cohorts"]
    assert cohorts
    assert any(v for c in cohorts for v in c["values"][1:])
    for ci, cohort in enumerate(cohorts):
        assert number(page, f"[data-testid=size-0-{ci}]") == cohort["size"]
        for k, value in enumerate(cohort["values"][1:], start=1):
            cell = page.locator(f"[data-testid=ret-0-{ci}-{k}]")
            if value is None:
                assert cell.count() == 0
            else:
                assert float(cell.get_attribute("data-value")) == value
    shot(page, "analysis-retention")


def _first_numbers(kind: str, result: dict[str, Any]) -> dict[str, float]:
    """testid -> number the page must show, for the default analysis of each further model."""
    if kind == "distribution":
        return {f"dist-0-{i}": n for i, n in enumerate(result["series"][0]["counts"])}
    if kind == "interval":
        return {"interval-0-count": result["series"][0]["count"]}
    if kind == "ltv":
        return {f"ltv-0-{i}": v for i, v in enumerate(result["series"][0]["per_person"]) if v is not None}
    if kind == "paths":
        return {f"path-{i}": p["count"] for i, p in enumerate(result["paths"])}
    channel = result["channels"][0]
    return {f"attr-0-{m}": channel["models"][m]["conversions"] for m in result["models"]}


@pytest.mark.parametrize("kind", ["distribution", "interval", "ltv", "paths", "attribution"])
def test_further_models_on_the_page_equal_the_api(page: Any, site: Site, kind: str) -> None:
    if kind not in KINDS:
        pytest.skip(f"the {kind} model is not in the analysis engine of this build yet")
    page.goto(f"{site.url}/analysis/{kind}")
    page.wait_for_selector("#builder-form select")
    query = run(page)
    expected = _first_numbers(kind, site.query(query))
    assert expected, f"the default {kind} analysis has no numbers on the simulated school"
    for testid, value in expected.items():
        assert number(page, f"[data-testid={testid}]") == pytest.approx(value), testid
    shot(page, f"analysis-{kind}")


def test_save_a_report_onto_a_new_dashboard(page: Any, site: Site) -> None:
    page.goto(site.url + "/dashboards")
    page.fill("#dashboard-name", "Orders board")
    page.click("#new-dashboard button[type=submit]")
    page.wait_for_url("**/dashboards/*")
    dashboard_url = page.url
    page.goto(site.url + "/analysis/trends")
    page.wait_for_selector("[data-testid=series-event-0] option[value=order_paid]", state="attached")
    page.select_option("[data-testid=series-event-0]", "order_paid")
    set_range(page, "-30d")
    query = run(page)
    page.fill("#report-name", "Orders per day")
    page.select_option("#report-dashboard", label="Orders board")
    page.click("#save-report")
    page.wait_for_function("document.body.dataset.savedReport")
    page.goto(dashboard_url)
    tile = page.locator(".tile", has_text="Orders per day")
    tile.locator("[data-testid=agg-0]").wait_for()
    assert float(tile.locator("[data-testid=agg-0]").get_attribute("data-value")) == \
        site.query(query)["series"][0]["aggregated_value"]
    shot(page, "dashboard")
    # the dashboard's date filter applies to every report on it
    refreshed = page.evaluate("Number(document.body.dataset.refreshed || 0)")
    page.fill("#dash-from", "-3d")
    page.click("#dash-apply")
    page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
    narrowed = site.query({**query, "date_range": {"date_from": "-3d"}})["series"][0]
    assert float(tile.locator("[data-testid=agg-0]").get_attribute("data-value")) == narrowed["aggregated_value"]
    assert tile.locator("[data-testid^=cell-0-]").count() == len(narrowed["data"])
    page.click("#share-create")
    link = page.locator("#share-url").get_attribute("href")
    assert link.startswith("/share/")
    page.goto(site.url + link)
    page.locator(".tile [data-testid=agg-0]").wait_for()
    assert page.locator("nav.main-nav").count() == 0  # read-only: no navigation into the project
    shot(page, "dashboard-shared")


def test_a_saved_report_opens_in_the_builder_and_runs(page: Any, site: Site) -> None:
    page.goto(site.url + "/reports")
    page.click("#reports a:text('Orders per day')")
    wait_ready(page)
    assert page.input_value("[data-testid=series-event-0]") == "order_paid"
    assert page.input_value("#report-name") == "Orders per day"
    query = json.loads(page.text_content("#query-json"))
    assert number(page, "[data-testid=agg-0]") == site.query(query)["series"][0]["aggregated_value"]
    shot(page, "reports-open")


def test_real_time_dashboard_changes_without_reloading(page: Any, site: Site) -> None:
    event = f"live_{uuid.uuid4().hex[:6]}"
    with site.api() as http:
        board = http.post("/api/v1/dashboards", json={"name": "Live", "refresh_seconds": 10}).json()
        http.post("/api/v1/reports", json={"name": "Live sign-ups", "dashboard_id": board["id"], "query": {
            "kind": "trends", "series": [{"event": event}], "date_range": {"date_from": "-1d"}, "granularity": "hour"}})
    page.goto(f"{site.url}/dashboards/{board['id']}")
    value = page.locator(".tile [data-testid=agg-0]")
    value.wait_for()
    assert float(value.get_attribute("data-value")) == 0
    page.evaluate("window.__notReloaded = true")
    site.ingest([{"type": "track", "event": event, "distinct_id": f"live-{i}"} for i in range(5)])
    page.wait_for_function("document.querySelector('.tile [data-testid=agg-0]').dataset.value === '5'",
                           timeout=40_000)
    assert page.evaluate("window.__notReloaded === true")
    shot(page, "dashboard-live")


@needs_person
def test_a_persons_timeline(page: Any, site: Site) -> None:
    page.goto(site.url + "/people")
    wait_ready(page)
    person = next(p for p in site.query({"kind": "persons", "limit": 50})["persons"] if p["identities"])
    identity = person["identities"][0]
    value = identity.get("value") or identity.get("id_value")
    page.fill("#people-q", value)
    found = site.query({"kind": "persons", "search": value})["total"]
    page.evaluate("document.getElementById('people-status').dataset.total = ''")
    page.click("#people-search button[type=submit]")
    page.wait_for_function(f"document.getElementById('people-status').dataset.total === '{found}'")
    page.locator("[data-testid=person-link]").first.click()
    page.wait_for_url("**/people/*")
    page.locator("[data-testid=timeline-event]").first.wait_for()
    person_id = int(page.url.rsplit("/", 1)[1])
    api = site.query({"kind": "person", "person_id": person_id, "limit": 50})
    assert page.locator("[data-testid=timeline-event]").count() == len(api["events"])
    assert page.get_attribute("#timeline-total", "data-total") == str(api["total_events"])
    assert page.inner_text("#timeline-total") == f"{api['total_events']:,} events"
    shot(page, "person")
    # persons of a saved segment
    with site.api() as http:
        created = http.post("/api/v1/segments", json={"name": "paid learners", "definition": {
            "condition": {"event": "order_paid", "at_least": 1}}})
    assert created.status_code == 201, created.text
    expected = site.query({"kind": "persons", "filters": [{"segment": created.json()["id"]}], "limit": 50})
    page.goto(site.url + "/people")
    page.wait_for_selector("#people-segment option:text('paid learners')", state="attached")
    page.select_option("#people-segment", label="paid learners")
    page.click("#people-search button[type=submit]")
    page.wait_for_function(f"document.getElementById('people-status').dataset.total === '{expected['total']}'")
    assert page.inner_text("#people-status") == f"{expected['total']:,} persons"
    assert page.locator("[data-testid=person-link]").count() == len(expected["persons"])
    shot(page, "people")


def test_other_pages_render_with_their_data(page: Any, site: Site) -> None:
    page.goto(site.url + "/catalog")
    page.locator("[data-testid=volume-page_view]").wait_for()
    with site.api() as http:
        events = {e["name"]: e["volume"] for e in http.get("/api/v1/catalog").json()["events"]}
    assert page.inner_text("[data-testid=volume-page_view]").replace(",", "") == str(events["page_view"])
    shot(page, "catalog")
    site.ingest([{"type": "track", "event": "", "distinct_id": "bad"}])
    page.goto(site.url + "/ingestion")
    page.locator("#quarantine td.reason").first.wait_for()
    assert page.locator("#per-minute canvas").count() >= 1
    page.locator("[data-testid=lrs-statements]").wait_for()
    assert page.inner_text("#lrs-endpoint") == site.url + "/xapi/"
    before = int(page.inner_text("[data-testid=lrs-statements]").split()[0].replace(",", ""))
    sent = [{"actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example", "name": f"stu-{i}"}},
             "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}", "display": {"en-US": verb, "zh-CN": zh}},
             "object": {"id": "https://school.example/lesson/browser", "definition": {"name": {"en-US": "Fractions"}}}}
            for i, (verb, zh) in enumerate([("attended", "出席"), ("attended", "出席"), ("answered", "作答")])]
    xapi = httpx.post(site.url + "/xapi/statements", json=sent, auth=(site.project.write_key, ""), timeout=30,
                      headers={"X-Experience-API-Version": "1.0.3"})
    assert xapi.status_code == 200, xapi.text
    page.reload()
    page.locator("[data-testid=lrs-verb]").first.wait_for()
    assert page.inner_text("[data-testid=lrs-statements]").startswith(str(before + 3))
    assert page.locator("#lrs-recent tbody tr").count() == min(20, before + 3)
    assert "stu-2" in page.inner_text("#lrs-recent tbody tr >> nth=0")
    page.locator("[data-testid=lrs-verb]", has_text="answered").click()
    page.locator("[data-testid=lrs-all]").wait_for()
    assert page.locator("#lrs-recent tbody tr").count() == 1
    page.locator("#lrs-recent summary").first.click()
    assert '"stu-2"' in page.inner_text("#lrs-recent pre")
    page.evaluate("EP.lrs.load()")  # the page's refresh keeps the JSON that was open
    page.locator("#lrs-recent details[open] pre").wait_for()
    bad = httpx.post(site.url + "/xapi/statements", json={**sent[0], "verb": {"id": "not an IRI"}}, timeout=30,
                     auth=(site.project.write_key, ""), headers={"X-Experience-API-Version": "1.0.3"})
    assert bad.status_code == 400
    page.reload()
    page.locator("[data-testid=lrs-refused-link]").click()  # why it was refused: the quarantine, xAPI only
    page.wait_for_url("**/admin/quarantine?source=xapi")
    page.locator(".quarantine-table tbody tr").first.wait_for()
    assert page.input_value("[data-testid=quarantine-source]") == "xapi"
    assert set(page.locator(".quarantine-table tbody tr td:nth-child(2)").all_inner_texts()) == {"xapi"}
    page.select_option("[data-testid=quarantine-source]", "")
    page.wait_for_url("**/admin/quarantine")
    page.locator(".quarantine-table td", has_text="native").first.wait_for()
    page.goto(site.url + "/ingestion")
    page.locator("[data-testid=lrs-statements]").wait_for()
    shot(page, "ingestion")
    page.goto(site.url + "/settings")
    assert site.project.write_key in page.inner_text("#snippet")
    shot(page, "settings")


def test_project_switcher_and_the_empty_state_of_a_new_project(page: Any, site: Site) -> None:
    meta = MetadataStore(site.settings.resolved_metadata_url)
    try:
        meta.create_project("Empty School")
    finally:
        meta.close()
    page.goto(site.url + "/")
    with page.expect_navigation():  # the switcher posts its form
        page.select_option("#project-select", label="Empty School")
    page.wait_for_selector(".empty")
    assert page.inner_text("#event-count") == "0"
    assert "POST /api/v1/ingest" in page.inner_text(".empty")
    page.goto(site.url + "/analysis/trends")
    page.wait_for_selector("#result-empty")
    page.wait_for_function("document.getElementById('result-empty').textContent.includes('edupulse simulate')")
    page.goto(site.url + "/")
    with page.expect_navigation():
        page.select_option("#project-select", label=site.project.name)
    assert int(page.inner_text("#event-count").replace(",", "")) > 1000


def test_switch_language(page: Any, site: Site) -> None:
    page.goto(site.url + "/dashboards")
    assert page.inner_text("nav.main-nav a[href='/reports']") == "Reports"
    with page.expect_navigation():
        page.click("#lang-switch")
    assert page.inner_text("nav.main-nav a[href='/reports']") == "报表"
    assert page.get_attribute("html", "lang") == "zh-CN"
    page.goto(site.url + "/analysis/trends")
    assert page.inner_text("#run") == "查询"
    shot(page, "analysis-trends-zh")
    with page.expect_navigation():
        page.click("#lang-switch")
    assert page.inner_text("#run") == "Run"
    assert httpx.get(site.url + "/login", headers={"Accept-Language": "zh-CN"}).text.count("登录") >= 1
