"""Excel workbooks (.xlsx) import like the other formats: the first sheet, its header row, typed cells (a date
and time without a zone in the project's time zone, a mobile number stored as a number read as its digits),
empty rows skipped, bad rows quarantined by their sheet row, and a file that is not a workbook refused with the
reason. The workbooks are written by openpyxl, as an order system's export would be."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from test_import import BASE, PROJECT, event_rows, imp, quarantine, rows

from edupulse.cli import main
from edupulse.conf import Settings
from edupulse.importer import ColumnMapping, SourceError
from edupulse.runtime import Platform

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    opened = Platform(Settings(data_dir=tmp_path / "data")).open(background_loader=False)
    opened.meta.create_project(PROJECT)
    yield opened
    opened.close()


def write_xlsx(path: Path, header: list[str], data: list[list[Any]], title: str = "订单") -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    sheet.append(header)
    for row in data:
        sheet.append(row)
    book.save(path)
    return path


def test_events_from_a_workbook_equal_the_other_formats(platform: Platform, tmp_path: Path) -> None:
    records = event_rows()
    header = list(records[0])
    # Excel keeps no time zone: the export's times are the school's wall-clock times
    data = [[r[c].astimezone(SHANGHAI).replace(tzinfo=None) if c == "time" else r[c] for c in header]
            for r in records]
    path = write_xlsx(tmp_path / "events.xlsx", header, data)
    summary = imp(platform, "events", path, mapping=ColumnMapping(columns={"groups.school": "school"}))
    assert (summary.format, summary.rows_read, summary.imported, summary.rejected) == ("xlsx", 50, 50, 0)
    assert rows(platform, "SELECT count(*), count(DISTINCT person_id) FROM events") == [(50, 7)]
    typed = rows(platform, "SELECT prop_course_id, prop_score, properties->>'device', group_0 FROM events "
                           "ORDER BY time LIMIT 2")
    assert typed == [("course-0", 0.0, "phone", "school-0"), ("course-1", 1.0, "ipad", "school-1")]
    assert rows(platform, "SELECT epoch_us(min(time)) FROM events")[0][0] == int(BASE.timestamp() * 1_000_000)


def test_an_order_export_with_its_own_columns(platform: Platform, tmp_path: Path) -> None:
    header = ["下单时间", "手机号", "订单号", "金额", "课程", "备注"]
    paid = dt.datetime(2026, 10, 2, 20, 15)
    data: list[list[Any]] = [
        [paid, 13800000001, "O-1", 1999.5, "eng-l1", None],
        [None, None, None, None, None, None],  # an empty row in the middle: skipped
        ["昨天", 13800000002, "O-2", 999, "eng-l1", "时间不对"],  # row 4: not a time
        [paid + dt.timedelta(hours=1), 13800000003, "O-3", 1299, "math-l2", "老学员"],
    ]
    path = write_xlsx(tmp_path / "orders.xlsx", header, data)
    mapping = ColumnMapping(
        columns={"time": "下单时间", "distinct_id": "手机号", "properties.order_id": "订单号",
                 "properties.amount": "金额", "properties.course_id": "课程", "properties.note": "备注"},
        values={"event": "order_paid", "distinct_id_type": "mobile"})
    summary = imp(platform, "events", path, mapping=mapping)
    assert (summary.rows_read, summary.imported, summary.rejected) == (3, 2, 1)
    assert rows(platform, "SELECT distinct_id, prop_order_id, prop_amount, epoch_us(time) FROM events "
                          "ORDER BY time") == [
        ("13800000001", "O-1", 1999.5, int(paid.replace(tzinfo=SHANGHAI).timestamp() * 1_000_000)),
        ("13800000003", "O-3", 1299.0, int((paid + dt.timedelta(hours=1)).replace(tzinfo=SHANGHAI).timestamp()
                                           * 1_000_000))]
    [entry] = quarantine(platform)
    assert entry["location"].startswith("orders.xlsx row 4")
    assert "昨天" in entry["record"]


@pytest.mark.parametrize(("content", "words"), [
    (b"order,mobile\n1,2\n", "is not an Excel workbook"),
])
def test_a_file_that_is_not_a_workbook_says_so(platform: Platform, tmp_path: Path, content: bytes,
                                               words: str) -> None:
    path = tmp_path / "orders.xlsx"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=words):
        imp(platform, "events", path)


@pytest.mark.parametrize(("header", "words"), [
    (["event", "distinct_id", "event"], "column 'event' appears twice"),
    (["event", None, "time"], "a column has no name"),
    ([], "is empty"),
])
def test_header_problems_name_the_sheet_and_row(platform: Platform, tmp_path: Path, header: list[Any],
                                                words: str) -> None:
    path = write_xlsx(tmp_path / "bad.xlsx", header, [["page_view", "u1", "2026-10-01T08:00:00Z"]] if header else [])
    with pytest.raises(SourceError, match=words) as refused:
        imp(platform, "events", path)
    assert "bad.xlsx sheet '订单' row 1" in str(refused.value)


def test_the_command_reads_a_workbook(tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(main, [*data_dir, "project", "create", PROJECT]).exit_code == 0
    path = write_xlsx(tmp_path / "leads.xlsx", ["event", "distinct_id", "time", "channel"],
                      [["lead_created", "L1", dt.datetime(2026, 10, 3, 9), "douyin"]])
    done = runner.invoke(main, [*data_dir, "import", "events", str(path), "--project", PROJECT])
    assert done.exit_code == 0, done.output
    assert "(xlsx)" in done.output

