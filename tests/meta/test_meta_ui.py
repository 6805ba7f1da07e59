"""Reports, dashboards, share tokens and catalogue descriptions in the metadata store, on SQLite and (with
EDUPULSE_TEST_POSTGRES_URL) on PostgreSQL."""

from __future__ import annotations

import pytest

from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.meta.ui import UIStore

QUERY = {"kind": "trends", "series": [{"event": "order_paid", "math": "sum", "property": "amount"}]}


def test_reports_and_dashboards(meta: MetadataStore) -> None:
    ui = UIStore(meta)
    one = meta.create_project("One").project.id
    two = meta.create_project("Two").project.id
    report = ui.save_report(one, " Revenue 收入 ", QUERY, "a@x")
    assert report["name"] == "Revenue 收入"
    assert report["kind"] == "trends"
    board = ui.save_dashboard(one, "Board", refresh_seconds=10, date_from="-7d")
    ui.add_to_dashboard(one, board["id"], report["id"])
    ui.add_to_dashboard(one, board["id"], report["id"])  # once only
    items = ui.dashboard(one, board["id"])["items"]
    assert [i["report"]["query"] for i in items] == [QUERY]
    with pytest.raises(MetadataError, match="no dashboard"):  # another project's dashboard is not there
        ui.dashboard(two, board["id"])
    with pytest.raises(MetadataError, match="no report"):
        ui.add_to_dashboard(two, board["id"], report["id"])
    with pytest.raises(MetadataError, match="shortest is 10 s"):
        ui.save_dashboard(one, "Fast", refresh_seconds=5)
    renamed = ui.save_report(one, "Revenue", {**QUERY, "granularity": "week"}, "a@x", report["id"])
    assert renamed["query"]["granularity"] == "week"
    ui.delete_report(one, report["id"])
    assert ui.dashboard(one, board["id"])["items"] == []


def test_share_tokens_are_new_each_time_and_can_be_withdrawn(meta: MetadataStore) -> None:
    ui = UIStore(meta)
    project = meta.create_project("One").project.id
    board = ui.save_dashboard(project, "Board")
    first = ui.share(project, board["id"], True)
    second = ui.share(project, board["id"], True)
    assert first
    assert second
    assert first != second
    assert ui.dashboard_by_token(first) is None
    found = ui.dashboard_by_token(second)
    assert found is not None
    assert found[0] == project
    ui.share(project, board["id"], False)
    assert ui.dashboard_by_token(second) is None
    assert ui.dashboard_by_token("") is None


def test_descriptions(meta: MetadataStore) -> None:
    ui = UIStore(meta)
    project = meta.create_project("One").project.id
    ui.describe(project, "event", "order_paid", " 首单或续费 ", "admin@x")
    ui.describe(project, "event", "order_paid", "a paid order", "admin@x")
    ui.describe(project, "property", "person.grade", "年级", "admin@x")
    ui.describe(project, "event", "order_paid", "学员支付了订单", "admin@x", lang="zh", display_name=" 支付订单 ")
    assert ui.descriptions(project) == {
        ("event", "order_paid"): {"description": "a paid order",
                                  "texts": {"zh": {"display_name": "支付订单", "description": "学员支付了订单"}}},
        ("property", "person.grade"): {"description": "年级", "texts": {}}}
    with pytest.raises(MetadataError, match="lang 'fr'"):
        ui.describe(project, "event", "order_paid", "", "admin@x", lang="fr")
    with pytest.raises(MetadataError, match="kind must be"):
        ui.describe(project, "table", "x", "", "admin@x")


def test_first_descriptions_of_one_name_at_once_all_succeed(meta: MetadataStore) -> None:
    """Two requests describing a name nobody described yet both insert its row; the later one updates it
    instead of failing (it was answered 503 before)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    ui = UIStore(meta)
    project = meta.create_project("Described at once").project.id
    barrier = Barrier(4)

    def describe(i: int) -> None:
        barrier.wait()
        ui.describe(project, "event", "lesson_attended", f"text {i}", f"user{i}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(describe, range(4)))
    assert ui.descriptions(project)[("event", "lesson_attended")]["description"].startswith("text ")
