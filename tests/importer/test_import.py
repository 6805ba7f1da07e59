"""Bulk import: every kind and format through the real store, errors that name the line and column,
idempotent re-import, and the command line."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from edupulse.cli import main
from edupulse.conf import Settings
from edupulse.importer import (
    ColumnMapping,
    ImportOptions,
    ImportStopped,
    ImportSummary,
    MappingError,
    SourceError,
    load_mapping,
    run_import,
)
from edupulse.importer.job import ImportProblem
from edupulse.runtime import Platform

PROJECT = "Import School"
UTC = dt.UTC
BASE = dt.datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    platform = Platform(settings).open(background_loader=False)
    platform.meta.create_project(PROJECT)
    yield platform
    platform.close()


def imp(platform: Platform, kind: str, path: Path, **options: Any) -> ImportSummary:
    return run_import(platform, ImportOptions(kind=kind, path=path, project=PROJECT, **options))


def rows(platform: Platform, sql: str) -> list[tuple[Any, ...]]:
    return platform.store.query(sql).rows


def quarantine(platform: Platform) -> list[dict[str, Any]]:
    project = platform.meta.project_by_name(PROJECT)
    assert project is not None
    return platform.meta.quarantine(project.id)


def event_rows(n: int = 50) -> list[dict[str, Any]]:
    return [
        {"event": "lesson_attended" if i % 2 else "page_view", "distinct_id": f"learner-{i % 7}",
         "time": BASE + dt.timedelta(minutes=i), "course_id": f"course-{i % 3}", "score": float(i),
         "device": "ipad" if i % 3 else "phone", "school": f"school-{i % 2}"}
        for i in range(n)
    ]


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    columns = list(records[0])
    lines = [",".join(columns)]
    for record in records:
        cells = [v.isoformat() if isinstance(v, dt.datetime) else str(v) for v in (record.get(c, "") for c in columns)]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, default=lambda v: v.isoformat()) + "\n" for r in records),
                    encoding="utf-8")
    return path


def write_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}


# events ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_events_every_format(platform: Platform, tmp_path: Path, fmt: str) -> None:
    path = WRITERS[fmt](tmp_path / f"events.{fmt}", event_rows())
    summary = imp(platform, "events", path, mapping=ColumnMapping(columns={"groups.school": "school"}))
    assert (summary.rows_read, summary.imported, summary.rejected, summary.duplicates) == (50, 50, 0, 0)
    assert rows(platform, "SELECT count(*), count(DISTINCT person_id), count(DISTINCT insert_id) FROM events") == [
        (50, 7, 50)]
    # standard properties land in typed columns, the others in the JSON column, groups in their slot
    typed = rows(platform, "SELECT prop_course_id, prop_score, properties->>'device', group_0 FROM events "
                           "ORDER BY time LIMIT 2")
    assert typed == [("course-0", 0.0, "phone", "school-0"), ("course-1", 1.0, "ipad", "school-1")]
    first = rows(platform, "SELECT epoch_us(min(time)) FROM events")[0][0]
    assert first == int(BASE.timestamp() * 1_000_000)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_reimport_stores_each_row_once(platform: Platform, tmp_path: Path, fmt: str) -> None:
    records = event_rows(30)
    records.append(dict(records[-1]))  # two identical rows are two events (two equal orders on one day)
    path = WRITERS[fmt](tmp_path / f"events.{fmt}", records)
    first = imp(platform, "events", path)
    again = imp(platform, "events", path)
    assert (first.imported, first.duplicates) == (31, 0)
    assert (again.imported, again.duplicates) == (0, 31)
    assert rows(platform, "SELECT count(*) FROM events") == [(31,)]


def test_given_event_ids_make_reimport_idempotent_and_repeat_within_file_once(
    platform: Platform, tmp_path: Path
) -> None:
    records = [{**r, "event_id": f"e-{i}"} for i, r in enumerate(event_rows(10))]
    records.append({**records[0], "score": 99.0})  # the same id again: a retry, stored once
    path = write_parquet(tmp_path / "events.parquet", records)
    first = imp(platform, "events", path)
    assert (first.imported, first.duplicates) == (10, 1)
    # an overlapping export with more rows: only the new ones are stored
    more = [*records, {**event_rows(11)[10], "event_id": "e-10"}]
    second = imp(platform, "events", write_parquet(tmp_path / "more.parquet", more))
    assert (second.imported, second.duplicates) == (1, 11)
    assert rows(platform, "SELECT count(*), count(DISTINCT insert_id) FROM events") == [(11, 11)]
    assert rows(platform, "SELECT prop_score FROM events WHERE insert_id = 'e-0'") == [(0.0,)]


def test_bad_rows_name_line_and_column_and_good_rows_stay(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event,distinct_id,time,score\n"
        "page_view,u1,2026-10-01T08:00:00+08:00,1\n"
        "page_view,u2,yesterday,2\n"              # line 3: not a time
        "page_view,,2026-10-01T09:00:00+08:00,3\n"  # line 4: no distinct id
        "page_view,u3,2099-01-01T00:00:00Z,4\n"    # line 5: far in the future
        "page_view,u4,2026-10-01T10:00:00+08:00,lots\n"  # line 6: score is a typed number
        "page_view,u5,2026-10-01T11:00:00+08:00,5\n",
        encoding="utf-8",
    )
    summary = imp(platform, "events", path)
    assert (summary.imported, summary.rejected) == (2, 4)
    assert rows(platform, "SELECT distinct_id FROM events ORDER BY time") == [("u1",), ("u5",)]
    entries = {e["location"]: e["reason"] for e in quarantine(platform)}
    assert set(entries) == {"events.csv line 3 column time", "events.csv line 4 column distinct_id",
                            "events.csv line 5 column time", "events.csv line 6 column score"}
    assert "ISO 8601" in entries["events.csv line 3 column time"]
    assert "future" in entries["events.csv line 5 column time"]
    assert "number" in entries["events.csv line 6 column score"]
    # importing the same file again quarantines nothing new
    imp(platform, "events", path)
    assert len(quarantine(platform)) == 4


def test_jsonl_bad_lines_are_quarantined_by_line(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = json.dumps({"event": "page_view", "distinct_id": "u1", "time": "2026-10-01T08:00:00Z"})
    path.write_text(f"{good}\n{{broken\n[1, 2]\n{good.replace('u1', 'u2')}\n", encoding="utf-8")
    summary = imp(platform, "events", path)
    assert (summary.imported, summary.rejected) == (2, 2)
    locations = sorted(e["location"] for e in quarantine(platform))
    assert locations == ["events.jsonl line 2", "events.jsonl line 3"]


def test_strict_stops_at_first_bad_row(platform: Platform, tmp_path: Path) -> None:
    records = event_rows(10)
    records[4]["time"] = "not a time"
    path = write_jsonl(tmp_path / "events.jsonl", records)
    with pytest.raises(ImportStopped) as stopped:
        imp(platform, "events", path, strict=True)
    assert "line 5" in str(stopped.value)
    assert stopped.value.summary.imported == 4
    assert rows(platform, "SELECT count(*) FROM events") == [(4,)]


def test_too_many_rejected_rows_stop_the_import(platform: Platform, tmp_path: Path) -> None:
    records = [{"event": "page_view", "distinct_id": f"u{i}", "time": "garbage"} for i in range(20)]
    with pytest.raises(ImportStopped, match="more than 5 rejected rows"):
        imp(platform, "events", write_jsonl(tmp_path / "e.jsonl", records), max_rejected=5)


def test_mapping_constants_and_skips(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("user_id,paid_at,amount,order_no,internal\n"
                    "13800000001,2026-10-01 09:30:00,1999,O-1,x\n"
                    "13800000002,2026-10-02 10:00:00,2999,O-2,y\n", encoding="utf-8")
    mapping = load_mapping(None, ["distinct_id=user_id", "time=paid_at", "properties.order_id=order_no"],
                           ["event=order_paid", "distinct_id_type=mobile"], ["internal"])
    summary = imp(platform, "events", path, mapping=mapping)
    assert summary.imported == 2
    assert rows(platform, "SELECT event, prop_order_id, prop_amount, properties FROM events ORDER BY time") == [
        ("order_paid", "O-1", 1999.0, None), ("order_paid", "O-2", 2999.0, None)]
    assert rows(platform, "SELECT DISTINCT id_type FROM identities") == [("mobile",)]
    # a time without a zone is read in the project's time zone (Asia/Shanghai)
    assert rows(platform, "SELECT epoch_us(min(time)) FROM events")[0][0] == int(
        dt.datetime(2026, 10, 1, 1, 30, tzinfo=UTC).timestamp() * 1_000_000)


def test_mapping_errors_say_what_to_change(platform: Platform, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", event_rows(3))
    with pytest.raises(MappingError, match="time"):
        imp(platform, "events", path, mapping=ColumnMapping(skip={"time"}))
    with pytest.raises(MappingError, match="no_such"):
        imp(platform, "events", path, mapping=ColumnMapping(columns={"distinct_id": "no_such"}))
    with pytest.raises(MappingError, match="TARGET=COLUMN"):
        load_mapping(None, ["distinct_id"])
    bad_file = tmp_path / "mapping.json"
    bad_file.write_text("[1]", encoding="utf-8")
    with pytest.raises(MappingError, match="JSON object"):
        load_mapping(bad_file)
    with pytest.raises(ImportProblem, match="no project named"):
        run_import(platform, ImportOptions(kind="events", path=path, project="Nope"))
    with pytest.raises(SourceError):
        imp(platform, "events", tmp_path / "events.csv", format="parquet")


def test_mapping_file(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("who,when,what\nu1,2026-10-01T08:00:00Z,page_view\n", encoding="utf-8")
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps({"map": {"distinct_id": "who", "time": "when", "event": "what"}}),
                            encoding="utf-8")
    assert imp(platform, "events", path, mapping=load_mapping(mapping_file)).imported == 1


def test_compressed_and_other_encodings(platform: Platform, tmp_path: Path) -> None:
    text = "event,distinct_id,time,city\npage_view,u1,2026-10-01T08:00:00Z,北京\n"
    gz = tmp_path / "events.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(text.replace("u1", "u2").encode("gbk"))
    assert imp(platform, "events", gz).imported == 1
    assert imp(platform, "events", gbk, encoding="gbk").imported == 1
    assert rows(platform, "SELECT DISTINCT properties->>'city' FROM events") == [("北京",)]


def test_merged_history_counts_imported_events(platform: Platform, tmp_path: Path) -> None:
    """Events imported under an anonymous id belong to the person once an identity file links the ids."""
    events = write_csv(tmp_path / "events.csv", [
        {"event": "page_view", "distinct_id": "dev-1", "time": BASE.isoformat()},
        {"event": "page_view", "distinct_id": "dev-2", "time": BASE.isoformat()},
    ])
    imp(platform, "events", events)
    links = tmp_path / "links.csv"
    links.write_text("anonymous_id,login_id\ndev-1,alice\ndev-2,alice\n", encoding="utf-8")
    assert imp(platform, "identities", links).imported == 2
    assert rows(platform, "SELECT count(DISTINCT resolved_person_id) FROM events_resolved") == [(1,)]


# profiles, identities, spend --------------------------------------------------------------------


def person_properties(platform: Platform, id_type: str, value: str) -> dict[str, Any]:
    found = rows(platform, f"SELECT p.properties FROM persons p JOIN identities i USING (project_id, person_id) "
                           f"WHERE i.id_type = '{id_type}' AND i.id_value = '{value}'")
    return json.loads(found[0][0]) if found and found[0][0] else {}


def test_profiles_follow_operation_semantics(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "profiles.csv"
    path.write_text(
        "distinct_id,distinct_id_type,op,time,grade,lessons_bought,first_channel\n"
        "alice,login_id,set,2026-10-02T00:00:00Z,G5,,\n"
        "alice,login_id,set,2026-10-01T00:00:00Z,G4,,\n"           # older: does not overwrite
        "alice,login_id,set_once,2026-10-03T00:00:00Z,,,douyin\n"
        "alice,login_id,set_once,2026-10-04T00:00:00Z,,,baidu\n"     # once set, kept
        "alice,login_id,increment,2026-10-05T00:00:00Z,,10,\n"
        "alice,login_id,increment,2026-10-06T00:00:00Z,,5,\n",
        encoding="utf-8",
    )
    summary = imp(platform, "profiles", path)
    assert (summary.imported, summary.rejected) == (6, 0)
    assert person_properties(platform, "login_id", "alice") == {
        "grade": "G5", "first_channel": "douyin", "lessons_bought": 15}
    again = imp(platform, "profiles", path)
    assert (again.imported, again.duplicates) == (0, 6)
    assert person_properties(platform, "login_id", "alice")["lessons_bought"] == 15


def test_profile_bad_operation_is_rejected_with_its_column(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "profiles.csv"
    path.write_text("distinct_id,op,grade\nu1,explode,G1\nu2,set,G2\n", encoding="utf-8")
    summary = imp(platform, "profiles", path)
    assert (summary.imported, summary.rejected) == (1, 1)
    [entry] = quarantine(platform)
    assert entry["location"] == "profiles.csv line 2 column op"


def test_identities_link_rows_and_refuse_two_login_ids(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(
        "crm_lead_id,mobile,login_id\n"
        "L1,13800000001,alice\n"
        "L2,13800000002,bob\n"
        "L1,,bob\n",              # would join alice and bob: refused, recorded as a warning
        encoding="utf-8",
    )
    summary = imp(platform, "identities", path)
    assert summary.warnings == 1
    persons = rows(platform, "SELECT id_value, person_id FROM identities ORDER BY id_value")
    by_value = dict(persons)
    assert by_value["L1"] == by_value["13800000001"] == by_value["alice"]
    assert by_value["L2"] == by_value["bob"] != by_value["alice"]
    project = platform.meta.project_by_name(PROJECT)
    assert project is not None
    [warning] = platform.meta.warnings(project.id)
    assert "login_id" in warning["message"]
    again = imp(platform, "identities", path)
    assert again.duplicates == 2  # linked already; the refused link is tried again and refused again
    assert len(platform.meta.warnings(project.id)) == 1


def test_identities_unknown_column_says_how_to_map(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("Phone Number,login_id\n13800000001,alice\n", encoding="utf-8")
    with pytest.raises(MappingError, match="--map mobile="):
        imp(platform, "identities", path)
    assert imp(platform, "identities", path, mapping=ColumnMapping(columns={"mobile": "Phone Number"})).imported == 1


def test_spend_upserts_by_date_channel_campaign(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "spend.csv"
    path.write_text("date,channel,campaign,cost,impressions,clicks\n"
                    "2026-10-01,douyin,autumn,1200.5,100000,2300\n"
                    "2026-10-01,baidu,brand,800,50000,900\n"
                    "2026-10-02,douyin,autumn,-3,1,1\n"
                    "2026-10-01,douyin,autumn,5,1,1\n", encoding="utf-8")
    summary = imp(platform, "spend", path)
    assert (summary.imported, summary.rejected) == (2, 2)
    reasons = {e["location"]: e["reason"] for e in quarantine(platform)}
    assert "spend.csv line 4 column cost" in reasons
    assert "repeats" in reasons["spend.csv line 5 column date"]
    corrected = tmp_path / "spend2.csv"
    corrected.write_text("date,channel,campaign,cost\n2026-10-01,douyin,autumn,1300\n", encoding="utf-8")
    imp(platform, "spend", corrected)
    assert rows(platform, "SELECT date, channel, campaign, cost FROM spend ORDER BY channel") == [
        (dt.date(2026, 10, 1), "baidu", "brand", 800.0), (dt.date(2026, 10, 1), "douyin", "autumn", 1300.0)]


# the command line --------------------------------------------------------------------------------


def test_cli_import_prints_summary_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(main, [*data, "project", "create", PROJECT]).exit_code == 0
    path = write_csv(tmp_path / "events.csv", event_rows(20))
    result = runner.invoke(main, [*data, "import", "events", str(path), "--project", PROJECT,
                                  "--map", "groups.school=school"])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output
    assert "20" in result.output
    result = runner.invoke(main, [*data, "import", "events", str(path), "--project", PROJECT,
                                  "--map", "groups.school=school", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["duplicates_skipped"]) == (0, 20)


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    path = write_csv(tmp_path / "events.csv", event_rows(2))
    result = runner.invoke(main, [*data, "import", "events", str(path), "--project", "Missing"])
    assert result.exit_code != 0
    assert "no project named 'Missing'" in result.output
    assert runner.invoke(main, [*data, "project", "create", PROJECT]).exit_code == 0
    result = runner.invoke(main, [*data, "import", "events", str(path), "--project", PROJECT, "--map", "oops"])
    assert result.exit_code == 2
    assert "TARGET=COLUMN" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event": "e", "distinct_id": "u", "time": "nope"}\n', encoding="utf-8")
    result = runner.invoke(main, [*data, "import", "events", str(bad), "--project", PROJECT, "--strict"])
    assert result.exit_code == 1
    assert "bad.jsonl line 1 column time" in result.output


def test_given_ids_repeated_across_chunks_are_stored_once(platform: Platform, tmp_path: Path) -> None:
    records = [{**r, "event_id": f"e-{i % 12}"} for i, r in enumerate(event_rows(12))]
    records += [dict(r) for r in records[:5]]  # the same events again, later in the file (other chunks)
    path = write_parquet(tmp_path / "events.parquet", records)
    summary = imp(platform, "events", path, chunk_rows=4)
    assert (summary.imported, summary.duplicates) == (12, 5)
    assert rows(platform, "SELECT count(*), count(DISTINCT insert_id) FROM events") == [(12, 12)]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_imported_exposures_must_name_an_experiment_and_variant(platform: Platform, tmp_path: Path,
                                                                fmt: str) -> None:
    """An imported `$experiment_exposure` row is checked as the ingestion API checks it: it names an experiment
    of the project and one of its variants, or it is refused with the reason and the good rows stay."""
    from edupulse.experiments.model import parse_spec
    from edupulse.meta.experiments import ExperimentStore

    project = platform.meta.project_by_name(PROJECT)
    assert project is not None
    ExperimentStore(platform.meta).create(project.id, parse_spec({
        "key": "price_page", "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "metrics": [{"event": "order_paid"}]}), "test", BASE - dt.timedelta(days=1))
    exposures = [("price_page", "b"), ("price_page", "c"), ("no_such", "control"), ("price_page", "control")]
    records = [{"event": "$experiment_exposure", "distinct_id": f"learner-{i}", "time": BASE + dt.timedelta(minutes=i),
                "experiment": experiment, "variant": variant}
               for i, (experiment, variant) in enumerate(exposures)]
    records.append({"event": "page_view", "distinct_id": "learner-9", "time": BASE, "experiment": "x",
                    "variant": "y"})
    summary = imp(platform, "events", WRITERS[fmt](tmp_path / f"exposures.{fmt}", records))
    assert (summary.imported, summary.rejected) == (3, 2)
    stored = rows(platform, "SELECT distinct_id FROM events WHERE event = '$experiment_exposure' ORDER BY 1")
    assert stored == [("learner-0",), ("learner-3",)]
    reasons = sorted(e["reason"] for e in quarantine(platform))
    assert "is not a variant of experiment 'price_page'" in reasons[0]
    assert "'no_such' is not an experiment of this project" in reasons[1]


@pytest.mark.parametrize(("name", "delimiter"), [("orders.csv", ";"), ("orders.tsv", "\t"), ("orders.csv.gz", ";")])
def test_a_csv_with_semicolons_or_tabs_is_read_by_its_header(platform: Platform, tmp_path: Path, name: str,
                                                              delimiter: str) -> None:
    """Excel in many European locales saves CSV with semicolons; other exports are tab-separated. A header with
    no comma and such separators sets the delimiter, and bad lines are still named."""
    lines = ["event;distinct_id;time;amount;note", "order_paid;u1;2026-10-02T20:15:00+08:00;1999.5;erste, Rate",
             "order_paid;u2;2026-10-02T21:15:00+08:00;zu viel;", "order_paid;u3;2026-10-02T22:15:00+08:00;99;"]
    text = "\n".join(line.replace(";", delimiter) for line in lines) + "\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    summary = imp(platform, "events", path)
    assert (summary.imported, summary.rejected) == (2, 1)
    assert rows(platform, "SELECT distinct_id, prop_amount, properties->>'note' FROM events ORDER BY time") == [
        ("u1", 1999.5, "erste, Rate"), ("u3", 99.0, None)]
    [entry] = quarantine(platform)
    assert entry["location"] == f"{name} line 3 column amount"
