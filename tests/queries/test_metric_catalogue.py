"""The metric catalogue: default education metrics computed from the standard events, CRUD with versions in
the audit log, a saved query naming a metric follows its definition, errors name what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from edupulse.meta.audit import AuditFilter
from edupulse.meta.catalogue import DEFAULT_METRICS
from edupulse.queries.errors import QueryError
from edupulse.queries.service import QueryService
from gov_fixtures import NOW, Gov

RANGE = {"date_from": "2026-09-01", "date_to": "2026-09-05"}


def query(gov: Gov, body: dict[str, Any], who: str = "analyst") -> dict[str, Any]:
    response = gov.client.post("/api/v1/query", json=body, headers=gov.bearer(who))
    assert response.status_code == 200, response.text
    return response.json()


def test_defaults_are_listed_and_valid(gov: Gov) -> None:
    listed = gov.client.get("/api/v1/metrics", headers=gov.bearer("viewer")).json()["metrics"]
    names = {m["name"] for m in listed}
    assert set(DEFAULT_METRICS) <= names
    assert {"attendance_rate", "completion_rate", "first_order_conversion", "renewal_rate", "referral_rate", "cac",
            "roi"} <= names


def test_attendance_rate_from_standard_events(gov: Gov) -> None:
    result = query(gov, {"kind": "trends", "series": [{"metric": "attendance_rate"},
                                                      {"event": "lesson_attended"}],
                         "date_range": RANGE})
    rate, attended = result["series"]
    assert rate["metric"] == "attendance_rate"
    assert rate["unit"] == "%"
    assert rate["aggregated_value"] == pytest.approx(3 / 4 * 100)  # 3 attended of 4 scheduled
    assert rate["data"][:3] == [None, pytest.approx(100.0), pytest.approx(50.0)]  # no lessons on the 1st
    assert attended["index"] == 1
    assert attended["aggregated_value"] == 3
    assert result["metrics"]["attendance_rate"]["version"] >= 1


def test_metric_series_errors_say_what_is_wrong(gov: Gov) -> None:
    bad = gov.client.post("/api/v1/query", headers=gov.bearer("analyst"), json={
        "kind": "trends", "series": [{"event": "x"}, {"metric": "no_such_metric"}]})
    assert bad.status_code == 400
    assert "series.1.metric: no metric named 'no_such_metric'" in bad.json()["error"]
    extra = gov.client.post("/api/v1/query", headers=gov.bearer("analyst"), json={
        "kind": "trends", "series": [{"metric": "attendance_rate", "math": "sum"}]})
    assert "series.0: a metric series takes only metric, name, filters and channel, not math" in extra.json()["error"]
    spend = gov.client.post("/api/v1/query", headers=gov.bearer("analyst"), json={
        "kind": "trends", "series": [{"metric": "cac"}], "breakdown": {"properties": ["utm_source"]}})
    assert "uses ad spend" in spend.json()["error"]
    with pytest.raises(QueryError, match="no metric catalogue"):
        QueryService(gov.platform.store).run(gov.a, {"kind": "trends", "series": [{"metric": "attendance_rate"}]})


def test_a_report_naming_metrics_is_checked_with_their_current_definitions(gov: Gov) -> None:
    def save(series: list[dict[str, Any]], **more: Any) -> Any:
        return gov.client.post("/api/v1/reports", headers=gov.bearer("analyst"), json={
            "name": "metric report", "query": {"kind": "trends", "series": series, **more}})

    missing = save([{"metric": "no_such_metric"}])
    assert missing.status_code == 400
    assert "series.0.metric: no metric named 'no_such_metric'" in missing.json()["detail"]
    spend = save([{"metric": "cac"}], breakdown={"properties": ["utm_source"]})
    assert spend.status_code == 400
    assert "uses ad spend" in spend.json()["detail"]
    saved = save([{"metric": "attendance_rate"}])
    assert saved.status_code == 200, saved.text
    assert gov.client.delete(f"/api/v1/reports/{saved.json()['id']}", headers=gov.bearer("analyst")).status_code == 200


def test_catalogue_crud_needs_metrics_edit_and_validates(gov: Gov) -> None:
    body = {"name": "live_attendance", "definition": {
        "title": "live attendance", "unit": "lessons", "numerator": {"event": "lesson_attended"}}}
    assert gov.client.post("/api/v1/metrics", json=body, headers=gov.bearer("analyst")).status_code == 403
    invalid = gov.client.post("/api/v1/metrics", headers=gov.bearer("admin"), json={
        "name": "broken", "definition": {"title": "t", "unit": "u", "numerator": {"event": "x", "math": "sum"}}})
    assert invalid.status_code == 400
    assert "numerator: Value error, math sum needs a numeric property" in invalid.json()["detail"]
    bad_name = gov.client.post("/api/v1/metrics", json={**body, "name": "Bad Name"}, headers=gov.bearer("admin"))
    assert bad_name.status_code == 400
    created = gov.client.post("/api/v1/metrics", json=body, headers=gov.bearer("admin"))
    assert created.status_code == 201, created.text
    assert gov.client.post("/api/v1/metrics", json=body, headers=gov.bearer("admin")).status_code == 409
    # metrics belong to their project
    other = gov.client.get("/api/v1/metrics/live_attendance", headers=gov.bearer("viewer_b"))
    assert other.status_code == 404
    deleted = gov.client.delete("/api/v1/metrics/live_attendance", headers=gov.bearer("admin"))
    assert deleted.status_code == 200
    gone = gov.client.post("/api/v1/query", headers=gov.bearer("analyst"),
                           json={"kind": "trends", "series": [{"metric": "live_attendance"}]})
    assert gone.status_code == 400


def test_a_definition_change_shows_in_a_saved_query(gov: Gov) -> None:
    # a saved report keeps only the query; it names the metric, not its definition
    saved = {"kind": "trends", "series": [{"metric": "completion_rate", "name": "完课率"}], "date_range": RANGE}
    before = query(gov, saved)
    assert before["series"][0]["aggregated_value"] == 0  # no lesson_completed events: 0 of 4 scheduled
    version = before["series"][0]["metric_version"]
    new_definition = {"title": "完课率 completion rate (attended live)", "unit": "%", "scale": 100,
                      "numerator": {"event": "lesson_attended",
                                    "filters": [{"property": "mode", "value": "live"}]},
                      "denominator": {"event": "lesson_scheduled"}}
    changed = gov.client.put("/api/v1/metrics/completion_rate", json={"definition": new_definition},
                             headers=gov.bearer("admin"))
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == version + 1
    after = query(gov, saved)
    assert after["series"][0]["label"] == "完课率"
    assert after["series"][0]["metric_version"] == version + 1
    assert after["series"][0]["aggregated_value"] == pytest.approx(2 / 4 * 100)
    # the same for the query engine called directly with the catalogue (dashboards, exports)
    direct = gov.platform.query_service().run(gov.a, saved, now=NOW).to_wire()
    assert direct["series"][0]["aggregated_value"] == pytest.approx(50.0)
    entry = gov.platform.meta.audit.entries(AuditFilter(action="metric.update", target="completion_rate"))[0]
    assert entry["detail"]["version"] == version + 1
    assert entry["detail"]["previous_version"] == version
    history = gov.client.get("/api/v1/metrics/completion_rate", headers=gov.bearer("viewer")).json()["versions"]
    assert [v["version"] for v in history] == list(range(1, version + 2))
    # an unchanged definition makes no new version
    same = gov.client.put("/api/v1/metrics/completion_rate", json={"definition": new_definition},
                          headers=gov.bearer("admin"))
    assert same.json()["version"] == version + 1


def test_spend_metrics(gov: Gov) -> None:
    result = query(gov, {"kind": "trends", "series": [{"metric": "cac"}, {"metric": "roi"}], "date_range": RANGE})
    cac, roi = result["series"]
    assert cac["aggregated_value"] is None  # no first orders
    assert roi["aggregated_value"] is None  # no spend
    assert cac["unit"] == "CNY"



def test_cac_and_roi_use_the_spend_table(tmp_path: Any) -> None:
    import datetime as dt

    import pyarrow as pa

    from edupulse.conf import Settings
    from edupulse.importer.spend import SPEND_SCHEMA
    from edupulse.runtime import Platform
    from edupulse.store.base import WriteBatch
    from gov_fixtures import sh

    platform = Platform(Settings(data_dir=tmp_path / "data")).open(background_loader=False)
    try:
        project = platform.meta.create_project("Spend School").project
        # p1 and p2 come from a douyin lead on the 2nd, p3 on the 3rd; all pay a first order
        leads = [{"type": "track", "event": "lead_created", "distinct_id": who, "distinct_id_type": "login_id",
                  "time": sh(f"2026-09-0{day}T09:00:00"), "properties": {"channel": "douyin"}}
                 for who, day in (("p1", 2), ("p2", 2), ("p3", 3))]
        orders = [{"type": "track", "event": "order_paid", "distinct_id": who, "distinct_id_type": "login_id",
                   "time": sh(f"2026-09-0{day}T12:00:00"), "properties": {"amount": amount, "order_type": "first"}}
                  for who, day, amount in (("p1", 2, 1000), ("p2", 2, 3000), ("p3", 4, 2000))]
        orders = [*leads, *orders]
        assert platform.ingestor.ingest(project, orders).rejected == 0
        platform.loader.catch_up()  # type: ignore[union-attr]
        rows = [(project.id, dt.date(2026, 9, d), "douyin", "autumn", cost, None, None)
                for d, cost in ((2, 800.0), (3, 400.0), (4, 300.0))]
        spend = pa.Table.from_arrays([pa.array(col, f.type) for col, f in zip(zip(*rows, strict=True), SPEND_SCHEMA,
                                                                             strict=True)], schema=SPEND_SCHEMA)
        platform.store.write(WriteBatch(spend=spend))
        result = platform.query_service().run(project, {
            "kind": "trends", "series": [{"metric": "cac"}, {"metric": "roi"}, {"metric": "cac", "channel": "douyin"},
                                         {"metric": "roi", "channel": "baidu"}],
            "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-04"}}, now=NOW).to_wire()
    finally:
        platform.close()
    cac, roi, douyin, baidu = result["series"]
    assert cac["data"] == [None, pytest.approx(400.0), None, pytest.approx(300.0)]  # 800/2, nobody on the 3rd
    assert cac["aggregated_value"] == pytest.approx(1500 / 3)
    # ROI by the day of the lead: the revenue its persons paid (within 365 days) / that day's spend
    assert roi["data"] == [None, pytest.approx(4000 / 800), pytest.approx(2000 / 400), 0.0]
    assert roi["aggregated_value"] == pytest.approx(6000 / 1500)
    assert douyin["aggregated_value"] == pytest.approx(1500 / 3)  # all spend and customers are douyin's
    assert baidu["aggregated_value"] is None  # no spend: no ROI


def test_defaults_nobody_changed_follow_the_product(meta: Any) -> None:
    """A project made with earlier defaults gets the current ones as a new version; a metric someone edited
    keeps its definition."""
    from edupulse.meta.catalogue import DEFAULTS_AUTHOR, MetricCatalogue

    project = meta.create_project("Older School").project
    catalogue = MetricCatalogue(meta)
    old = {"title": "续费率 renewal rate", "unit": "%", "scale": 100,
           "numerator": {"event": "order_paid", "math": "unique_persons"},
           "denominator": {"event": "course_completed", "math": "unique_persons"}}
    catalogue.create(project.id, "renewal_rate", old, owner_user_id=None, author=DEFAULTS_AUTHOR)
    catalogue.create(project.id, "referral_rate", old, owner_user_id=None, author="admin@school.example")
    renewal = catalogue.get(project.id, "renewal_rate")
    assert renewal is not None
    assert renewal["version"] == 2
    assert renewal["definition"]["cohort"]["event"] == "lesson_scheduled"
    referral = catalogue.get(project.id, "referral_rate")
    assert referral is not None
    assert (referral["version"], referral["definition"]) == (1, old)
    assert catalogue.upgrade_defaults(project.id) == []  # once
