"""The UI for daily work, in headless Chromium on the simulated school: incomplete periods are marked, not drawn
as real zeros; breakdown controls; group keys by their stored names; display names and grouped pickers;
legends in words in both languages; a chart that fits every kind; people pages; times in the project's zone;
dashboards refresh by default; the admin pages; the segment builder; the sign-in page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from test_web_browser import run, set_range
from web_pages_support import Words, shot, signed_in_tab, untranslated_on, wait_ready

from edupulse.auth.permissions import Role
from edupulse.meta.db import MetadataStore
from edupulse.queries.registry import Registry
from web_site import ADMIN, ANALYST, Site, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]
ADVISOR = ("advisor@edupulse.local", "advisor-password-1")


@pytest.fixture(scope="module")
def tabs(browser: Any, site: Site) -> Iterator[dict[str, Any]]:
    """An English and a Chinese tab of the superuser, for the module."""
    opened = {lang: signed_in_tab(browser, site.url, ADMIN, lang) for lang in ("en", "zh")}
    yield opened
    for tab in opened.values():
        tab.context.close()


@pytest.fixture
def en(tabs: dict[str, Any]) -> Iterator[Any]:
    tab = tabs["en"]
    yield tab
    errors, tab.errors[:] = list(tab.errors), []
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def zh(tabs: dict[str, Any]) -> Iterator[Any]:
    tab = tabs["zh"]
    yield tab
    errors, tab.errors[:] = list(tab.errors), []
    assert errors == [], f"JavaScript errors on the page: {errors}"


def chart_option(tab: Any, selector: str = "#chart") -> dict[str, Any]:
    """The chart's option as ECharts holds it (functions left out)."""
    return tab.evaluate(f"""() => {{
        const option = echarts.getInstanceByDom(document.querySelector('{selector}')).getOption();
        return JSON.parse(JSON.stringify(option));
    }}""")


def options(tab: Any, testid: str) -> list[str]:
    return tab.evaluate(f"() => [...document.querySelectorAll('[data-testid={testid}] option')]"
                        ".map((o) => o.textContent)")


def classes(locator: Any) -> str:
    return locator.get_attribute("class") or ""


def open_analysis(tab: Any, site: Site, kind: str) -> None:
    tab.goto(f"{site.url}/analysis/{kind}")
    wait_ready(tab)


# incomplete periods --------------------------------------------------------------------------------


def test_todays_point_is_dashed_and_marked_not_a_drop_to_zero(en: Any, site: Site) -> None:
    open_analysis(en, site, "trends")
    en.select_option("[data-testid=series-event-0]", "page_view")
    en.select_option("[data-testid=date-preset]", "-6d|today")
    run(en)
    cells = en.locator(".trends-table tbody tr").first.locator("td")
    last = cells.nth(cells.count() - 1)
    assert "period-incomplete" in classes(last)  # today is not over
    assert "period-incomplete" not in classes(cells.nth(cells.count() - 2))
    series = chart_option(en)["series"]
    solid = next(s for s in series if (s.get("lineStyle") or {}).get("type") != "dashed")
    dashed = next(s for s in series if (s.get("lineStyle") or {}).get("type") == "dashed")
    assert solid["data"][-1] is None  # the solid line stops before today
    assert dashed["data"][-1] is not None
    assert dashed["data"][-2] is not None
    assert en.locator("[data-testid=period-note]").is_visible()


def test_a_week_cut_by_the_date_range_is_marked_partial(en: Any, site: Site) -> None:
    open_analysis(en, site, "trends")
    today = dt.date.today()
    start = today - dt.timedelta(days=today.weekday() + 7 * 4 - 3)  # a Thursday, four weeks back
    en.select_option("[data-testid=granularity]", "week")
    set_range(en, start.isoformat(), (today - dt.timedelta(days=today.weekday() + 1)).isoformat())
    run(en)
    cells = en.locator(".trends-table tbody tr").first.locator("td")
    assert "period-partial" in classes(cells.nth(2))  # the first week starts before the range
    assert "period-partial" not in classes(cells.nth(3))
    dashed = next(s for s in chart_option(en)["series"] if (s.get("lineStyle") or {}).get("type") == "dashed")
    assert dashed["data"][0] is not None


@pytest.mark.skipif("retention" not in Registry().kinds, reason="no retention model in this build")
def test_retention_periods_not_over_are_marked_and_left_out_of_the_average(en: Any, site: Site) -> None:
    open_analysis(en, site, "retention")
    en.select_option("[data-testid=start-event]", "page_view")
    en.select_option("[data-testid=return-event]", "page_view")
    en.select_option("[data-testid=period]", "week")
    query = run(en)
    result = site.query(query)
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    checked = 0
    for ci, cohort in enumerate(result["results"][0]["cohorts"]):
        start = dt.datetime.fromisoformat(cohort["cohort"])
        for k, value in enumerate(cohort["values"][1:], start=1):
            if value is None:
                continue
            cell = en.locator(f"[data-testid=ret-0-{ci}-{k}]")
            running = start + dt.timedelta(weeks=k + 1) > now
            assert ("period-incomplete" in classes(cell)) == running, (cohort["cohort"], k)
            checked += running
    assert checked >= 1  # the last cohorts' current week
    assert "Week 1" in chart_option(en)["xAxis"][0]["data"]


# breakdowns ----------------------------------------------------------------------------------------


def _rows(tab: Any) -> list[tuple[str, float]]:
    rows = []
    for row in tab.locator(".trends-table tbody tr").all():
        cells = row.locator("td")
        rows.append((cells.nth(0).inner_text(), float(cells.nth(1).get_attribute("data-value"))))
    return rows


def test_breakdown_values_count_order_and_other_values(en: Any, site: Site) -> None:
    open_analysis(en, site, "trends")
    en.select_option("[data-testid=series-event-0]", "page_view")
    en.select_option("[data-testid=breakdown]", "utm_source")
    en.locator("[data-testid=breakdown-limit]").fill("3")
    en.locator("[data-testid=breakdown-limit]").dispatch_event("change")
    query = run(en)
    assert query["breakdown"] == {"properties": ["utm_source"], "limit": 3}
    api = site.query(query)["series"]
    assert len(_rows(en)) == len(api) <= 4
    assert any("other values" in name for name, _ in _rows(en))
    en.check("[data-testid=hide-other]")
    en.wait_for_function("document.body.dataset.redrawn")
    assert not any("other values" in name for name, _ in _rows(en))
    assert all("other values" not in s["name"] for s in chart_option(en)["series"])
    en.select_option("[data-testid=breakdown-sort]", "value_asc")
    totals = [v for _, v in _rows(en)]
    assert totals == sorted(totals)
    en.select_option("[data-testid=breakdown-sort]", "name")
    names = [n for n, _ in _rows(en)]
    assert names == en.evaluate("(names) => names.slice().sort((a, b) => a.localeCompare(b, 'en'))", names)
    # the display choices are saved with the report and used when it opens again
    en.fill("#report-name", "Sources by name")
    en.click("#save-report")
    en.wait_for_function("document.body.dataset.savedReport")
    report = int(en.evaluate("document.body.dataset.savedReport"))
    with site.api() as http:
        saved = next(r for r in http.get("/api/v1/reports").json()["reports"] if r["id"] == report)
    assert saved["view"] == {"sort": "name", "hideOther": True, "chart": "line"}
    en.goto(f"{site.url}/analysis/trends?report={report}")
    wait_ready(en)
    assert [n for n, _ in _rows(en)] == names
    assert en.is_checked("[data-testid=hide-other]")


def test_group_keys_are_shown_by_their_stored_names(en: Any, site: Site) -> None:
    with site.api() as http:
        groups = {g["type"]: g for g in http.get("/api/v1/catalog").json()["groups"]}
    assert "institution" in groups
    open_analysis(en, site, "trends")
    en.select_option("[data-testid=series-event-0]", "staff_login")
    en.select_option("[data-testid=breakdown]", "group.institution")
    query = run(en)
    keys = [s["breakdown"][0] for s in site.query(query)["series"] if s["breakdown"][0] not in (None, "$other")]
    with site.api() as http:
        names = http.post("/api/v1/groups/names", json={"type": "institution", "keys": keys}).json()["names"]
    assert all(names.values())
    shown = " ".join(n for n, _ in _rows(en))
    for key in keys:
        assert names[key] in shown
        assert key not in shown
    shot(en, "daily-group-names")


# display names, pickers, legends ---------------------------------------------------------------------


def test_pickers_group_properties_by_event_person_group_and_search(en: Any, site: Site) -> None:
    open_analysis(en, site, "trends")
    groups = en.evaluate("""() => [...document.querySelectorAll('[data-testid=breakdown] optgroup')].map((g) =>
        [g.label, [...g.querySelectorAll('option')].map((o) => o.value)])""")
    labels = [label for label, _ in groups]
    assert labels[:2] == ["Event properties", "Person properties"]
    assert "Institution properties" in labels
    assert "School properties" in labels
    institution = dict(groups)["Institution properties"]
    assert "group.institution" in institution
    assert "group.institution.name" in institution
    assert any(v.startswith("person.") for v in dict(groups)["Person properties"])
    events = options(en, "series-event-0")
    assert any(e.startswith("Lessons attended (") for e in events)
    en.fill("[data-testid=breakdown-search]", "city")
    visible = en.evaluate("() => [...document.querySelectorAll('[data-testid=breakdown] option')]"
                          ".filter((o) => !o.hidden).map((o) => o.value)")
    assert visible
    assert all("city" in v for v in visible if v)


def test_legends_read_as_words_in_both_languages(en: Any, zh: Any, site: Site) -> None:
    for tab, words in ((en, "Lessons attended · persons"), (zh, "到课 · 人数")):
        tab.goto(f"{site.url}/analysis/trends?preset=attendance")
        wait_ready(tab)
        assert chart_option(tab)["series"][0]["name"] == words
        assert tab.locator(".trends-table tbody td").first.inner_text() == words


def test_display_names_are_edited_in_the_data_catalogue(zh: Any, site: Site) -> None:
    zh.goto(site.url + "/catalog")
    wait_ready(zh)
    assert "答题" in zh.locator("[data-testid=volume-quiz_answered]").locator("xpath=..").inner_text()
    zh.click("[data-testid=edit-quiz_answered]")
    zh.fill("[data-testid=name-zh-quiz_answered]", "做题")
    zh.fill("[data-testid=about-zh-quiz_answered]", "学员回答了一道练习题。")
    zh.click("[data-testid=save-quiz_answered]")
    zh.wait_for_function("document.body.dataset.catalogSaved === 'quiz_answered'")
    with site.api() as http:
        event = next(e for e in http.get("/api/v1/catalog").json()["events"] if e["name"] == "quiz_answered")
    assert event["texts"]["zh"] == {"display_name": "做题", "description": "学员回答了一道练习题。"}
    zh.goto(site.url + "/analysis/trends")
    wait_ready(zh)
    labels = options(zh, "series-event-0")
    assert any(label.startswith("做题 (") for label in labels)


# charts --------------------------------------------------------------------------------------------


def test_counts_and_revenue_get_two_axes(en: Any, site: Site) -> None:
    open_analysis(en, site, "trends")
    en.select_option("[data-testid=series-event-0]", "order_paid")
    en.click("[data-testid=add-series]")
    en.select_option("[data-testid=series-event-1]", "order_paid")
    en.select_option("[data-testid=series-math-1]", "sum")
    en.select_option("[data-testid=series-property-1]", "amount")
    run(en)
    option = chart_option(en)
    assert len(option["yAxis"]) == 2
    assert option["yAxis"][1]["name"] == "Amount"
    by_name = {s["name"]: s for s in option["series"]}
    assert by_name["Order paid · times"]["yAxisIndex"] == 0
    assert by_name["Order paid · sum of Amount"]["yAxisIndex"] == 1


def test_attribution_has_a_chart_and_its_table_fits_the_page(en: Any, site: Site) -> None:
    open_analysis(en, site, "attribution")
    option = chart_option(en)
    models = site.query(json.loads(en.text_content("#query-json")))["models"]
    assert len([s for s in option["series"] if s["type"] == "bar"]) == len(models)
    assert len(option["yAxis"]) == 2  # conversions and revenue
    assert en.evaluate("() => { const w = document.querySelector('#table'); "
                       "return w.scrollWidth <= w.clientWidth + 1; }")
    shot(en, "daily-attribution")


def test_funnel_breakdown_has_a_legend(en: Any, site: Site) -> None:
    open_analysis(en, site, "funnel")
    en.select_option("[data-testid=breakdown]", "channel")
    run(en)
    option = chart_option(en)
    assert option["legend"][0]["show"] is not False
    assert len(option["series"]) > 1
    assert all(s["name"] for s in option["series"])


def test_sankey_labels_do_not_overlap(en: Any, site: Site) -> None:
    open_analysis(en, site, "paths")
    en.select_option("[data-testid=paths-start]", "page_view")  # many paths: many labels
    run(en)
    overlaps = en.evaluate("""() => {
        const chart = echarts.getInstanceByDom(document.querySelector('#chart'));
        const rects = [];
        chart.getZr().storage.getDisplayList().forEach((el) => {
          const text = el.getTextContent ? el.getTextContent() : null;
          if (!text || text.ignore || text.invisible || !text.style || !text.style.text) return;
          const r = text.getBoundingRect().clone();
          r.applyTransform(text.getComputedTransform());
          rects.push(r);
        });
        let n = 0;
        for (let i = 0; i < rects.length; i++) for (let j = i + 1; j < rects.length; j++) {
          const a = rects[i], b = rects[j];
          if (a.x < b.x + b.width - 1 && b.x < a.x + a.width - 1 &&
              a.y < b.y + b.height - 1 && b.y < a.y + a.height - 1) n++;
        }
        return [n, rects.length];
    }""")
    assert overlaps[1] >= 3
    assert overlaps[0] == 0


# people, timeline, catalogue times ------------------------------------------------------------------


def test_people_list_identity_counts_sort_export_and_bulk_assignment(en: Any, site: Site) -> None:
    meta = MetadataStore(site.settings.resolved_metadata_url)
    try:
        found = meta.accounts.user_by_email(ADVISOR[0]) or meta.accounts.create_user(*ADVISOR)
        project = meta.project_by_name("Demo School")
        assert project is not None
        meta.accounts.set_role(found.id, project.id, Role.advisor)
    finally:
        meta.close()
    en.goto(site.url + "/people")
    wait_ready(en)
    total = site.query({"kind": "persons", "limit": 1})["total"]
    assert en.inner_text("#people-status") == f"{total:,} persons"
    first = en.locator(".people-table tbody tr").first
    assert first.locator(".identity .badge").count() == 1  # one main identity, the others summed up
    en.click("[data-testid='sort-person.name']")
    en.wait_for_function("document.querySelector('[data-testid=\"sort-person.name\"]').textContent.endsWith('↑')")
    expected = site.query({"kind": "persons", "limit": 5, "order_by": "person.name"})["persons"]
    shown = [a.get_attribute("href") for a in en.locator("[data-testid=person-link]").all()[:5]]
    assert shown == [f"/people/{p['person_id']}" for p in expected]
    with en.expect_download() as download:
        en.click("#people-export")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert len(rows) == min(total, 1000) + 1
    boxes = en.locator("input[data-person]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    assert en.inner_text("#people-selected") == "2 selected"
    en.select_option("#people-advisor", label=ADVISOR[0])
    en.click("#people-assign")
    en.wait_for_function("document.body.dataset.assigned === '2'")
    shot(en, "daily-people-selected")


def test_people_list_offers_no_sort_on_personal_columns_without_personal_view(browser: Any, site: Site) -> None:
    """An analyst sees names and phones masked, so sorting by them (which would reveal their order) is not
    offered; other person properties sort as before."""
    tab = signed_in_tab(browser, site.url, ANALYST, "en")
    try:
        tab.goto(site.url + "/people")
        wait_ready(tab)
        tab.wait_for_selector(".people-table")
        assert tab.locator("[data-testid='sort-person.name']").count() == 0
        sortable = [b.get_attribute("data-testid") for b in tab.locator(".people-table button.sort").all()]
        assert sortable, "other person properties can be sorted by"
        assert not any(b.removeprefix("sort-person.") in ("name", "phone", "mobile") for b in sortable if b)
        assert tab.errors == []
    finally:
        tab.context.close()


def test_timeline_times_are_times_in_the_project_zone_and_the_header_names_the_person(en: Any, site: Site) -> None:
    scheduled = site.query({"kind": "trends", "series": [{"event": "lesson_scheduled"}],
                            "date_range": {"date_from": "-90d"},
                            "breakdown": {"properties": ["person.name"], "limit": 5}})
    names = [s["breakdown"][0] for s in scheduled["series"] if s["breakdown"][0] not in (None, "$other")]
    assert names, "the simulated school schedules lessons of learners with names"
    name = names[0]
    by_name = [{"property": "person.name", "op": "eq", "value": name}]
    person = site.query({"kind": "persons", "filters": by_name})["persons"][0]
    timeline = site.query({"kind": "person", "person_id": person["person_id"], "limit": 50,
                           "events": ["lesson_scheduled"]})
    starts = timeline["events"][0]["properties"]["starts_at"]
    en.goto(f"{site.url}/people/{person['person_id']}")
    wait_ready(en)
    assert en.inner_text("#person-name") == name
    groups = en.locator("[data-group]").all()
    assert groups, "the learner's events carry their class"
    assert all(not re.fullmatch(r"[a-z]+-[\w-]+", g.inner_text()) for g in groups)  # names, not keys
    shown = en.locator("[data-property=starts_at]").first.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", shown), shown
    moment = dt.datetime.fromtimestamp(starts / 1_000_000, dt.UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    assert shown in {e.inner_text() for e in en.locator("[data-property=starts_at]").all()}
    assert any(e.inner_text() == f"{moment:%Y-%m-%d %H:%M}" for e in en.locator("[data-property=starts_at]").all())
    first_time = dt.datetime.fromisoformat(site.query({"kind": "person", "person_id": person["person_id"],
                                                       "limit": 1})["events"][0]["time"])
    assert en.locator("[data-testid=timeline-event] time").first.inner_text() == f"{first_time:%Y-%m-%d %H:%M:%S}"
    shot(en, "daily-person")


def test_catalogue_times_are_in_the_project_zone(en: Any, site: Site) -> None:
    with site.api() as http:
        event = next(e for e in http.get("/api/v1/catalog").json()["events"] if e["name"] == "page_view")
    en.goto(site.url + "/catalog")
    wait_ready(en)
    first = dt.datetime.fromisoformat(event["first_seen"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert en.inner_text("[data-testid=first-seen-page_view]") == f"{first:%Y-%m-%d %H:%M}"


# dashboards, admin pages, segments, sign-in -----------------------------------------------------------


def test_a_new_dashboard_refreshes_by_itself(en: Any, site: Site) -> None:
    en.goto(site.url + "/dashboards")
    wait_ready(en)
    en.fill("#dashboard-name", "Channel board")
    en.click("#new-dashboard button[type=submit]")
    en.wait_for_url("**/dashboards/*")
    wait_ready(en)
    assert en.input_value("#refresh") == "60"


def test_members_and_roles_page(en: Any, site: Site) -> None:
    en.goto(site.url + "/admin/members")
    wait_ready(en)
    en.fill("#member-form input[name=email]", "teacher@edupulse.local")
    en.fill("#member-form input[name=password]", "teacher-password-1")
    en.select_option("#member-form select[name=role]", "viewer")
    en.click("#member-form button[type=submit]")
    en.locator("[data-testid='role-teacher@edupulse.local']").wait_for()
    en.select_option("[data-testid='role-teacher@edupulse.local']", "analyst")
    en.wait_for_function("document.body.dataset.roleSaved === 'teacher@edupulse.local'")
    with site.api() as http:
        users = {u["email"]: u for u in http.get("/api/v1/users").json()["users"]}
    assert users["teacher@edupulse.local"]["role"] == "analyst"
    shot(en, "daily-admin-members")


def test_personal_api_keys_page(en: Any, site: Site) -> None:
    en.goto(site.url + "/admin/keys")
    wait_ready(en)
    en.fill("#key-form input[name=name]", "reporting script")
    en.click("#key-form button[type=submit]")
    key = en.locator("#new-key").inner_text()
    answer = httpx.post(f"{site.url}/api/v1/query", json={"kind": "trends", "series": [{"event": "page_view"}]},
                        headers={"Authorization": f"Bearer {key}", "X-EduPulse-Project": "Demo School"})
    assert answer.status_code == 200, answer.text
    assert "reporting script" in en.inner_text("#admin-root")


def test_audit_log_filter_and_export(en: Any, site: Site) -> None:
    en.goto(site.url + "/admin/audit")
    wait_ready(en)
    en.select_option("[data-testid=audit-action]", "user.")
    en.click("#audit-filter button[type=submit]")
    en.wait_for_function("document.querySelectorAll('.audit-table tbody tr').length > 0")
    with site.api() as http:
        expected = http.get("/api/v1/audit", params={"action": "user.", "limit": 500}).json()["entries"]
    with en.expect_download() as download:
        en.click("#audit-export")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in expected]
    assert all(r["action"].startswith("user.") for r in rows)


def test_lifecycle_page_shows_the_policy_the_last_review_and_a_dry_run(en: Any, site: Site) -> None:
    en.goto(site.url + "/admin/lifecycle")
    wait_ready(en)
    assert en.input_value("#policy-form input[name=disable_idle_days]") == "30"
    en.click("#lifecycle-dry-run")
    en.wait_for_function("document.body.dataset.dryRun !== undefined")
    shown = int(en.evaluate("document.body.dataset.dryRun"))
    assert en.locator("#lifecycle-preview").is_visible()
    assert shown >= 0
    shot(en, "daily-admin-lifecycle")


def test_metric_catalogue_page_shows_versions_and_where_a_metric_is_used(en: Any, site: Site) -> None:
    with site.api() as http:
        report = http.post("/api/v1/reports", json={"name": "Attendance by week", "query": {
            "kind": "trends", "series": [{"metric": "attendance_rate"}], "granularity": "week"}})
        assert report.status_code in (200, 201), report.text
        versions = http.get("/api/v1/metrics/attendance_rate").json()["versions"]
        # other tests' reports (an installed pack's) may use the metric too: the page counts them all
        used = len(http.get("/api/v1/metrics-usage").json()["usage"]["attendance_rate"])
    en.goto(site.url + "/admin/metrics")
    wait_ready(en)
    assert en.inner_text("[data-testid=usage-attendance_rate]") == f"{used} report(s)"
    en.click("[data-testid=metric-attendance_rate]")
    en.wait_for_function("document.body.dataset.metricOpen === 'attendance_rate'")
    assert en.locator(".versions-table tbody tr").count() == len(versions)
    assert "Attendance by week" in en.inner_text(".usage-table")
    assert "Attended lessons / scheduled lessons" in en.inner_text("#metric-detail")  # the definition in words


def test_metrics_over_a_cohort_are_shown_in_words_in_both_languages(en: Any, zh: Any, site: Site) -> None:
    for tab in (en, zh):
        tab.goto(site.url + "/admin/metrics")
        wait_ready(tab)
        tab.click("[data-testid=metric-renewal_rate]")
        tab.wait_for_function("document.body.dataset.metricOpen === 'renewal_rate'")
    shown = en.inner_text("#metric-detail")
    assert "the last per" in shown
    assert "known 14 days later without another" in shown
    assert "from 7 days before to 30 days after" in shown
    assert "share of the counted that meet the outcome" in shown
    assert "之前 7 天" in zh.inner_text("#metric-detail")
    assert untranslated_on(zh, Words.of("zh")) == []
    assert untranslated_on(en, Words.of("en")) == []


def test_quarantine_page_counts_refused_records(en: Any, site: Site) -> None:
    site.ingest([{"type": "track", "event": "", "distinct_id": "bad-record"}])
    with site.api() as http:
        total = http.get("/api/v1/quarantine").json()["total"]
    en.goto(site.url + "/admin/quarantine")
    wait_ready(en)
    assert en.inner_text("#admin-root strong") == f"{total:,} refused records"


def test_segment_builder_counts_members_live(en: Any, site: Site) -> None:
    en.goto(site.url + "/segments")
    wait_ready(en)
    en.select_option("[data-testid=cond-event-0]", "order_paid")
    en.locator("[data-testid=cond-days-0]").fill("60")
    counted = en.evaluate("document.body.dataset.counted")
    en.locator("[data-testid=cond-days-0]").dispatch_event("change")
    en.wait_for_function(f"document.body.dataset.counted !== '{counted}'")
    expected = site.query({"kind": "segments", "limit": 0, "definition": {"condition": {
        "event": "order_paid", "at_least": 1, "window": {"last_days": 60}}}})["total"]
    en.wait_for_function(f"document.getElementById('segment-count').dataset.total === '{expected}'")
    en.fill("#segment-name", "payers of two months")
    en.click("#segment-save")
    en.wait_for_function("document.body.dataset.segmentSaved === 'payers of two months'")
    assert "payers of two months" in en.inner_text("#segment-list")
    shot(en, "daily-segments")


def test_sign_in_page_is_styled_and_speaks_the_visitors_language(tabs: dict[str, Any], site: Site) -> None:
    browser = tabs["en"].context.browser
    for lang, title, wrong in (("zh", "登录", "邮箱或密码错误"), ("en", "Sign in", "Wrong email or password")):
        context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-US")
        tab = context.new_page()
        tab.goto(site.url + "/login")
        assert tab.locator(".login-card").is_visible()
        assert tab.inner_text("h1") == title
        assert tab.evaluate("getComputedStyle(document.body).backgroundImage").startswith("linear-gradient")
        tab.fill("input[name=email]", ADMIN[0])
        tab.fill("input[name=password]", "not the password")
        tab.click("button[type=submit]")
        assert wrong in tab.inner_text("#login-error")
        context.close()
