"""Every page of the web UI in both languages, in headless Chromium: the crawl starts at the home page and
follows the site's own links (the navigation, lists, reports, a shared dashboard...), visiting each kind of
page once per language. On each page: no JavaScript error, no failed controller, no visible string of the
other language or raw message key (the translation checker of web_pages_support), and a screenshot in
test-screenshots/<lang>/. Then every page route of the app must have been visited, so a new page is checked
as soon as something links to it (or the test says which route nobody reached)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from web_pages_support import (
    SHOTS,
    Words,
    crawl_key,
    page_links,
    signed_in_tab,
    template_of,
    untranslated_on,
    wait_ready,
)

from edupulse.api.app import create_app
from edupulse.conf import Settings
from web_site import ADMIN, Site, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]

# Page routes that are not pages of their own: the language switch and the analysis menu redirect.
NOT_PAGES = {"/lang/{code}", "/analysis"}
# Pages no link leads to, visited by address.
BY_ADDRESS = ["/analysis/unknown-kind"]  # the error page


def page_routes() -> list[str]:
    """GET routes of the web UI's page routers (edupulse.web.*) and the sign-in page."""
    app = create_app(Settings())
    found = set()
    for route in app.routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        if route.endpoint.__module__.startswith("edupulse.web.") or route.path == "/login":
            found.add(route.path)
    return sorted(found - NOT_PAGES)


@pytest.fixture(scope="module")
def shared_things(site: Site) -> None:
    """Data every kind of page needs in order to be linked or filled: a saved report on a shared dashboard, a
    segment, a journey, learning records (xAPI)."""
    with site.api() as http:
        board = http.post("/api/v1/dashboards", json={"name": "Crawl board"}).json()
        http.post("/api/v1/reports", json={"name": "Crawl report", "dashboard_id": board["id"], "query": {
            "kind": "trends", "series": [{"event": "page_view"}], "date_range": {"date_from": "-13d"}}})
        http.post(f"/api/v1/dashboards/{board['id']}/share", json={"enabled": True})
        http.post("/api/v1/segments", json={"name": "crawl payers", "definition": {
            "condition": {"event": "order_paid", "at_least": 1}}})
        http.post("/api/v1/journeys", json={"name": "crawl journey", "trigger": {"event": "trial_booked"},
                                            "goal": {"event": "order_paid"},
                                            "steps": [{"wait": {"value": 1, "unit": "hour"}},
                                                      {"if": {"property": "person.grade", "op": "gte", "value": 3},
                                                       "then": [{"exit": True}]}]})
    # Learning records for the ingestion page's LRS card: a standard verb, another one, a voided statement,
    # a refused one.
    verbs = [("attended", "出席"), ("experienced", "体验"), ("attended", "出席")]
    sent = [{"actor": {"objectType": "Agent", "name": "Crawl Learner", "mbox": "mailto:crawl@school.example"},
             "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}", "display": {"en-US": verb, "zh-CN": zh}},
             "object": {"id": f"https://school.example/lesson/crawl-{i}",
                        "definition": {"name": {"en-US": "Crawl lesson", "zh-CN": "巡检课"}}}}
            for i, (verb, zh) in enumerate(verbs)]
    headers = {"X-Experience-API-Version": "1.0.3"}
    ids = httpx.post(site.url + "/xapi/statements", json=sent, auth=(site.project.write_key, ""), headers=headers,
                     timeout=30).json()
    httpx.post(site.url + "/xapi/statements", auth=(site.project.write_key, ""), headers=headers, timeout=30,
               json={"actor": sent[0]["actor"], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
                     "object": {"objectType": "StatementRef", "id": ids[2]}}).raise_for_status()
    refused = httpx.post(site.url + "/xapi/statements", json={**sent[0], "verb": {"id": "not an IRI"}}, timeout=30,
                         auth=(site.project.write_key, ""), headers=headers)  # the quarantine shows its sources
    assert refused.status_code == 400


def crawl(tab: Any, site: Site, lang: str, routes: list[str]) -> tuple[dict[str, list[str]], set[str]]:
    """Visit each kind of page once; (problems per page, route templates reached)."""
    words = Words.of(lang)
    problems: dict[str, list[str]] = {}
    reached: set[str] = set()
    seen: set[str] = set()
    queue = [site.url + "/", *(site.url + path for path in BY_ADDRESS)]
    while queue:
        url = queue.pop(0)
        key = crawl_key(url)
        if key in seen:
            continue
        seen.add(key)
        response = tab.goto(url)
        path = url[len(site.url):].split("?")[0]
        if response is not None and response.status >= 400 and path not in BY_ADDRESS:  # a link to no page
            problems[path] = [f"answered {response.status} (linked from a page)"]
            continue
        wait_ready(tab)
        template = template_of(path, routes)
        if template:
            reached.add(template)
        found = untranslated_on(tab, words)
        failed = tab.evaluate("document.body.dataset.failed || ''")
        if failed:
            found.append(f"the page's script failed: {failed}")
        if tab.errors:
            found.append(f"JavaScript errors: {tab.errors}")
            tab.errors.clear()
        if found:
            problems[path] = found
        (SHOTS / lang).mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SHOTS / lang / f"{key.strip('/').replace('/', '_').replace('*', 'id') or 'home'}.png"),
                       full_page=True)
        queue += [link for link in page_links(tab, site.url) if crawl_key(link) not in seen]
    return problems, reached


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_in_both_languages_has_no_untranslated_string(browser: Any, site: Site, shared_things: None,
                                                                  lang: str) -> None:
    routes = page_routes()
    tab = signed_in_tab(browser, site.url, ADMIN, lang)
    try:
        problems, reached = crawl(tab, site, lang, routes)
        context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-US")
        signed_out = context.new_page()
        signed_out.goto(site.url + "/login")
        login = untranslated_on(signed_out, Words.of(lang))
        signed_out.screenshot(path=str(SHOTS / lang / "login.png"), full_page=True)
        context.close()
    finally:
        tab.context.close()
    if login:
        problems["/login"] = login
    reached.add("/login")
    assert problems == {}, "untranslated or broken pages:\n" + "\n".join(f"{p}: {v}" for p, v in problems.items())
    assert set(routes) - reached == set(), "page routes no link leads to: link them, or add them to BY_ADDRESS"
