"""The web UI over HTTP on a real server: sign-in, sessions and CSRF, the session path of the JSON API,
reports, dashboards and share links, the data catalogue, ingestion status, CSV export, both languages."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from edupulse.auth.permissions import Permission
from edupulse.web.i18n import catalogue, catalogue_files, from_accept_language
from edupulse.web.nav import NAV
from web_site import ADMIN, ANALYST, Site

WEB = Path(__file__).parents[2] / "src" / "edupulse" / "web"
TRENDS = {"kind": "trends", "series": [{"event": "page_view"}, {"event": "page_view", "math": "unique_persons"}],
          "date_range": {"date_from": "-14d"}}


def test_pages_need_sign_in_and_say_where_to_go(site: Site) -> None:
    with httpx.Client(base_url=site.url) as http:
        for path in ("/", "/analysis/trends", "/dashboards", "/people", "/catalog", "/ingestion", "/settings"):
            response = http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/login"
        assert http.get("/docs").status_code == 200  # the API docs stay


def test_pages_follow_the_session_of_the_sign_in_page(site: Site) -> None:
    with site.signed_in() as (http, csrf):
        home = http.get("/")
        assert home.status_code == 200
        assert ADMIN[0] in home.text
        assert csrf
        # a forged session cookie signs nobody in
        http.cookies.set("edupulse_session", "x" + http.cookies["edupulse_session"][1:])
        assert http.get("/").status_code == 303


def test_project_switcher_needs_the_csrf_token_and_a_project_of_the_user(site: Site) -> None:
    with site.signed_in(ANALYST) as (http, csrf):
        refused = http.post("/project", data={"project_id": "1", "csrf_token": "forged", "next": "/"})
        assert refused.status_code == 403
        moved = http.post("/project", data={"project_id": "1", "csrf_token": csrf, "next": "//evil.example"})
        assert moved.status_code == 303
        assert moved.headers["location"] == "/"


def test_query_api_with_a_session_needs_the_csrf_header_and_equals_the_key_path(site: Site) -> None:
    with site.signed_in() as (http, csrf):
        assert http.post("/api/v1/query", json=TRENDS).status_code == 403
        by_session = http.post("/api/v1/query", json=TRENDS, headers={"X-CSRF-Token": csrf})
        assert by_session.status_code == 200, by_session.text
        by_key = site.query(TRENDS)
        assert by_session.json()["series"] == by_key["series"]
        # a wrong key is not rescued by a valid cookie
        bad = http.post("/api/v1/query", json=TRENDS, headers={"X-CSRF-Token": csrf, "Authorization": "Bearer sk_x"})
        assert bad.status_code == 401
        # GET endpoints read with the cookie alone
        assert http.get("/api/v1/quarantine").status_code == 200
    assert httpx.post(f"{site.url}/api/v1/query", json=TRENDS).status_code == 401


def test_catalogue_lists_events_and_properties_with_volumes(site: Site) -> None:
    with site.api() as http:
        catalogue = http.get("/api/v1/catalog").json()
    events = {e["name"]: e for e in catalogue["events"]}
    assert "page_view" in events
    assert "order_paid" in events
    everything = site.query({"kind": "trends", "series": [{"event": "order_paid"}],
                             "date_range": {"date_from": "2000-01-01"}, "granularity": "month"})
    assert events["order_paid"]["volume"] == everything["series"][0]["aggregated_value"]
    assert events["order_paid"]["first_seen"] <= events["order_paid"]["last_seen"]
    props = {p["name"]: p for p in catalogue["properties"]}
    assert props["amount"]["type"] == "number"
    assert "order_paid" in props["amount"]["events"]
    assert props["amount"]["volume"] >= events["order_paid"]["volume"]
    assert catalogue["person_properties"], "the simulated persons have properties"


def test_only_admins_edit_catalogue_descriptions(site: Site) -> None:
    with site.signed_in(ANALYST) as (http, csrf):
        refused = http.put("/api/v1/catalog/descriptions", headers={"X-CSRF-Token": csrf},
                           json={"kind": "event", "name": "order_paid", "description": "x"})
        assert refused.status_code == 403
        other_scheme = http.put("/api/v1/catalog/descriptions", json={"kind": "event", "name": "order_paid",
                                                                       "description": "x"},
                                headers={"X-CSRF-Token": csrf, "Authorization": "Basic YTpi"})
        assert other_scheme.status_code == 403  # only a valid secret API key acts as an admin
    with site.signed_in(ADMIN) as (http, csrf):
        done = http.put("/api/v1/catalog/descriptions", headers={"X-CSRF-Token": csrf},
                        json={"kind": "event", "name": "order_paid", "description": "首单或续费 / a paid order"})
        assert done.status_code == 200, done.text
        bad = http.put("/api/v1/catalog/descriptions", headers={"X-CSRF-Token": csrf},
                       json={"kind": "table", "name": "x", "description": ""})
        assert bad.status_code == 422
        events = {e["name"]: e for e in http.get("/api/v1/catalog").json()["events"]}
    assert events["order_paid"]["description"] == "首单或续费 / a paid order"


def test_reports_dashboards_and_share_links(site: Site) -> None:
    with site.api() as http:
        refused = http.post("/api/v1/reports", json={"name": "x", "query": {"kind": "trends", "series": []}})
        assert refused.status_code == 400
        assert "series" in refused.json()["detail"]
        dashboard = http.post("/api/v1/dashboards", json={"name": "Channel board", "refresh_seconds": 10}).json()
        too_fast = http.post("/api/v1/dashboards", json={"name": "x", "refresh_seconds": 5})
        assert too_fast.status_code == 422
        report = http.post("/api/v1/reports", json={"name": "Page views", "query": TRENDS,
                                                    "dashboard_id": dashboard["id"]}).json()
        board = http.get(f"/api/v1/dashboards/{dashboard['id']}").json()
        assert [i["report"]["id"] for i in board["items"]] == [report["id"]]
        site.ingest([{"type": "track", "event": "hotline_called", "distinct_id": "caller-1",
                      "properties": {"phone": "13812345678"}}])
        calls = {"kind": "trends", "series": [{"event": "hotline_called"}], "date_range": {"date_from": "-3d"},
                 "breakdown": {"properties": ["phone"]}}
        deadline = time.monotonic() + 20
        while not site.query(calls)["series"] and time.monotonic() < deadline:
            time.sleep(0.1)  # the loader stores acknowledged records within moments
        phone_report = http.post("/api/v1/reports", json={
            "name": "Calls", "dashboard_id": dashboard["id"], "query": calls}).json()
        sql_report = http.post("/api/v1/reports", json={
            "name": "Raw", "dashboard_id": dashboard["id"],
            "query": {"kind": "sql", "sql": "SELECT count(*) AS n FROM events"}}).json()
        share = http.post(f"/api/v1/dashboards/{dashboard['id']}/share", json={"enabled": True}).json()
        token = share["share_token"]
        assert len(token) >= 40
        http.put(f"/api/v1/dashboards/{dashboard['id']}", json={"name": "Channel board", "refresh_seconds": 10,
                                                                 "date_from": "-3d", "date_to": "today"})
    with httpx.Client(base_url=site.url) as anonymous:  # the token is the only credential
        page = anonymous.get(f"/share/{token}")
        assert page.status_code == 200
        assert "Channel board" in page.text
        shared = anonymous.get(f"/api/v1/share/{token}/reports/{report['id']}").json()
        assert shared["date_from"] == (dt.date.fromisoformat(shared["date_to"]) - dt.timedelta(days=3)).isoformat()
        assert shared["series"] == site.query({**TRENDS, "date_range": {"date_from": "-3d"}})["series"]
        # the holder of a link has no role: personal data is masked, and SQL reports are not shown
        phones = anonymous.get(f"/api/v1/share/{token}/reports/{phone_report['id']}").json()
        shown = [s["breakdown"][0] for s in phones["series"]]
        assert "13812345678" not in shown
        assert "138****5678" in shown
        assert anonymous.get(f"/api/v1/share/{token}/reports/{sql_report['id']}").status_code == 403
        assert anonymous.get(f"/api/v1/share/{token}/reports/999999").status_code == 404
        assert anonymous.get(f"/share/{token[:-1]}x").status_code == 404
        assert anonymous.get(f"/api/v1/dashboards/{dashboard['id']}").status_code == 401
    with site.api() as http:
        http.post(f"/api/v1/dashboards/{dashboard['id']}/share", json={"enabled": False})
    assert httpx.get(f"{site.url}/share/{token}").status_code == 404


def test_csv_export_of_a_query_with_the_session(site: Site) -> None:
    with site.signed_in() as (http, csrf):
        response = http.post("/api/v1/query?format=csv", json=TRENDS, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.lstrip("\ufeff").splitlines()
    result = site.query(TRENDS)
    assert len(lines) == 1 + len(result["series"])  # a header, then a line per series
    assert all(bucket in lines[0] for bucket in result["buckets"])


def test_ingestion_status_counts_new_events_by_minute(site: Site) -> None:
    with site.api() as http:
        before = http.get("/api/v1/ingestion/stats", params={"minutes": 5}).json()
    site.ingest([{"type": "track", "event": "status_probe", "distinct_id": f"probe-{uuid.uuid4().hex[:8]}"}
                 for _ in range(7)])
    site.ingest([{"type": "track", "event": "", "distinct_id": "x"}])  # refused: quarantined with a reason
    with site.api() as http:
        for _ in range(100):
            after = http.get("/api/v1/ingestion/stats", params={"minutes": 5}).json()
            if sum(m["events"] for m in after["per_minute"]) >= sum(m["events"] for m in before["per_minute"]) + 7:
                break
        quarantine = http.get("/api/v1/quarantine").json()
    assert sum(m["events"] for m in after["per_minute"]) - sum(m["events"] for m in before["per_minute"]) >= 7
    assert len(after["per_minute"]) == 5
    assert quarantine["total"] >= 1
    assert quarantine["records"][0]["reason"]


def test_language_from_the_browser_then_from_the_switch(site: Site) -> None:
    assert from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert from_accept_language("fr-FR, en;q=0.5") == "en"
    assert from_accept_language("") == "zh"
    with httpx.Client(base_url=site.url, headers={"Accept-Language": "en-US,en;q=0.9"}) as http:
        assert ">Error<" in http.get("/share/unknown").text
        switched = http.get("/lang/zh", params={"next": "/share/unknown"})
        assert switched.status_code == 303
        assert switched.headers["location"] == "/share/unknown"
        assert ">错误<" in http.get("/share/unknown").text
        assert http.get("/lang/zh", params={"next": "https://evil.example"}).headers["location"] == "/"


def test_message_catalogues_cover_every_key_the_ui_uses() -> None:
    english = catalogue("en")
    chinese = catalogue("zh")
    assert set(english) == set(chinese)
    for path in catalogue_files("en")[1:]:  # a feature's words are in the same file name in both languages
        assert set(json.loads(path.read_text())) == set(json.loads(
            (path.parent.parent / "zh" / path.name).read_text())), path.name
    used = set()
    for path in (WEB / "templates").rglob("*.html"):
        used |= set(re.findall(r"t\['([a-z_]+\.[a-z_.]+)'\]", path.read_text()))
    for path in (p for p in (WEB / "static").rglob("*.js") if "vendor" not in p.parts):
        text = path.read_text()
        used |= set(re.findall(r"\bt\(\"([a-z_]+\.[a-z_.0-9]+)\"(?!\s*\+)", text))
        # a key made of a prefix and a value (t("op." + op)): some key has the prefix
        for prefix in re.findall(r"\bt\(\"([a-z_]+\.[a-z_.]*)\"\s*\+", text):
            assert any(key.startswith(prefix) for key in english), f"{path.name}: no message starts with {prefix!r}"
    used = {key for key in used if not key.startswith("kind.")} | {f"kind.{k}" for k in
                                                                    ("trends", "funnel", "retention")}
    assert used - set(english) == set()


@pytest.mark.parametrize("path", ["/static/app.js", "/static/app.css", "/static/vendor/echarts/echarts.min.js"])
def test_front_end_files_are_served_from_this_server(site: Site, path: str) -> None:
    response = httpx.get(site.url + path)
    assert response.status_code == 200, f"{path}: run `make install` (npm ci installs the charting library)"


def test_every_menu_entry_names_a_permission_and_a_message() -> None:
    english = catalogue("en")
    for item in NAV:
        assert item.needs is None or item.needs in {p.value for p in Permission}, item
        assert item.label in english, item
        assert item.section in ("main", "admin"), item


def test_the_lrs_summary_is_for_those_who_watch_ingestion(site: Site) -> None:
    with site.signed_in(ANALYST) as (http, _):
        refused = http.get("/api/v1/xapi/summary")
    assert refused.status_code == 403
    assert "quarantine:view" in refused.text
    with site.signed_in() as (http, _):
        shown = http.get("/api/v1/xapi/summary")
    assert shown.status_code == 200, shown.text
    assert shown.json()["endpoint"] == site.url + "/xapi/"
