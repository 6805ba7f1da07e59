"""Segments on a hand-built history: event counts in windows cut in the project's time zone (absolute and
relative), "did not" and "at most" for persons without events, person properties, and / or / not, other
segments (cycles refused), merged identities; saved segments as filters in trends; the segments kind with
counts, pages and inline definitions; the API and the command line. Every query runs on DuckDB and ClickHouse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from conftest import ProjectKeys, Server
from edupulse.cli import main
from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.ops.segments import SegmentCatalog
from edupulse.queries.errors import QueryError
from engines import History


def sh(text: str) -> str:
    return f"{text}+08:00"


def login(name: str) -> dict[str, Any]:
    return {"distinct_id": name, "distinct_id_type": "login_id"}


def attended(who: dict[str, Any], time: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": "lesson_attended", **who, "time": sh(time), "properties": props}


# NOW (engines.py) is 12:00 on 10 September 2026 in Asia/Shanghai
HISTORY: list[dict[str, Any]] = [
    # an anonymous learner attends three lessons: 23:30 on the 1st and 00:30 on the 2nd local time (both on
    # the 1st in UTC), and on the 5th; the sign-in arrives later and merges the visitor into alice
    attended({"distinct_id": "dev-a"}, "2026-09-01T23:30:00", mode="live"),
    attended({"distinct_id": "dev-a"}, "2026-09-02T00:30:00", mode="live"),
    attended({"distinct_id": "dev-a"}, "2026-09-05T10:00:00", mode="replay"),
    {"type": "track", "event": "order_paid", **login("u-alice"), "time": sh("2026-09-06T10:00:00"),
     "properties": {"amount": 1999}},
    {"type": "profile_set", **login("u-alice"), "time": sh("2026-09-01T00:00:00"), "properties": {"grade": "G5"}},
    attended(login("u-bob"), "2026-09-09T10:00:00", mode="live"),
    {"type": "profile_set", **login("u-bob"), "time": sh("2026-09-01T00:00:00"), "properties": {"grade": "G3"}},
    {"type": "profile_set", **login("u-carol"), "time": sh("2026-09-01T00:00:00"),
     "properties": {"grade": "G5", "note": "it's \"quoted\"; DROP TABLE persons; --"}},
    attended(login("u-dave"), "2026-09-10T08:00:00", mode="replay"),
    attended(login("u-dave"), "2026-09-10T09:00:00", mode="replay"),
    {"type": "track", "event": "order_paid", **login("u-dave"), "time": sh("2026-09-10T09:30:00"),
     "properties": {"amount": 99}},
]
LATER = [{"type": "identify", "distinct_id": "u-alice", "anonymous_id": "dev-a", "time": sh("2026-09-06T09:00:00")}]
NAMES = {"u-alice": "alice", "u-bob": "bob", "u-carol": "carol", "u-dave": "dave"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("segments"), HISTORY, name="Segment School")
    history.add(LATER)
    catalog = SegmentCatalog(history.platform.meta)
    pid = history.project.id
    catalog.create(pid, "learners", {"condition": {"event": "lesson_attended"}}, "attended a lesson")
    catalog.create(pid, "paying learners", {"condition": {"and": [{"segment": "learners"}, {"event": "order_paid"}]}})
    catalog.create(pid, "x' OR 1=1 --", {"condition": {"property": "grade", "value": "G3"}})
    yield history
    history.close()


def members(loaded: History, condition: dict[str, Any] | None = None, **query: Any) -> list[str]:
    """Names of the members, by running the segments kind on both engines."""
    if condition is not None:
        query["definition"] = {"condition": condition}
    result = loaded.both({"kind": "segments", **query})
    assert result["total"] == len(result["persons"])
    return sorted(NAMES[i["value"]] for p in result["persons"] for i in p["identities"] if i["type"] == "login_id")


def test_counts_follow_merged_identities(loaded: History) -> None:
    assert members(loaded, {"event": "lesson_attended", "at_least": 3}) == ["alice"]
    assert members(loaded, {"event": "lesson_attended", "exactly": 2}) == ["dave"]
    assert members(loaded, {"event": "lesson_attended", "at_most": 1}) == ["bob", "carol"]


def test_windows_are_local_days(loaded: History) -> None:
    # from the 2nd local time: alice's lesson at 23:30 on the 1st is out, the one at 00:30 on the 2nd is in
    second = {"date_from": "2026-09-02", "date_to": "2026-09-05"}
    assert members(loaded, {"event": "lesson_attended", "exactly": 2, "window": second}) == ["alice"]
    first = {"date_from": "2026-09-01", "date_to": "2026-09-01"}
    assert members(loaded, {"event": "lesson_attended", "exactly": 1, "window": first}) == ["alice"]
    assert members(loaded, {"event": "lesson_attended", "window": {"last_days": 1}}) == ["dave"]  # today
    assert members(loaded, {"event": "lesson_attended", "window": {"last_days": 2}}) == ["bob", "dave"]
    assert members(loaded, {"event": "lesson_attended", "window": {"date_from": "-1d"}}) == ["bob", "dave"]


def test_did_not_properties_and_logic(loaded: History) -> None:
    assert members(loaded, {"not": {"event": "order_paid"}}) == ["bob", "carol"]
    assert members(loaded, {"event": "order_paid", "at_most": 0}) == ["bob", "carol"]
    assert members(loaded, {"and": [{"property": "grade", "value": "G5"}, {"not": {"event": "order_paid"}}]}) == [
        "carol"]
    assert members(loaded, {"or": [{"property": "person.grade", "value": "G3"},
                                   {"event": "order_paid", "filters": [{"property": "amount", "op": "gte",
                                                                        "value": 1000}]}]}) == ["alice", "bob"]
    assert members(loaded, {"not": {"property": "grade", "value": "G5"}}) == ["bob", "dave"]  # dave has no grade
    assert members(loaded, {"event": "lesson_attended", "at_least": 2,
                            "filters": [{"property": "mode", "value": "replay"}]}) == ["dave"]


def test_saved_segments_and_membership(loaded: History) -> None:
    assert members(loaded, segment="learners") == ["alice", "bob", "dave"]
    assert members(loaded, segment="paying learners") == ["alice", "dave"]
    assert members(loaded, {"and": [{"segment": "learners"}, {"not": {"segment": "paying learners"}}]}) == ["bob"]
    assert members(loaded, segment="x' OR 1=1 --") == ["bob"]
    saved = SegmentCatalog(loaded.platform.meta).get(loaded.project.id, "learners")
    assert saved is not None
    assert members(loaded, segment=saved.id) == ["alice", "bob", "dave"]
    counted = loaded.both({"kind": "segments", "segment": "learners", "limit": 0})
    assert (counted["total"], counted["persons"]) == (3, [])
    first = loaded.both({"kind": "segments", "segment": "learners", "limit": 2})
    rest = loaded.both({"kind": "segments", "segment": "learners", "limit": 2, "offset": 2})
    assert (first["total"], len(first["persons"]), first["next_offset"]) == (3, 2, 2)
    assert (len(rest["persons"]), rest["next_offset"]) == (1, None)
    assert first["persons"][0]["properties"].get("grade") in {"G5", "G3", None}


def test_segments_filter_trends(loaded: History) -> None:
    def persons(*filters: dict[str, Any]) -> int:
        result = loaded.both({"kind": "trends", "series": [{"event": "lesson_attended", "math": "unique_persons"}],
                              "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-10"},
                              "filters": list(filters)})
        return int(result["series"][0]["aggregated_value"])

    assert persons() == 3
    assert persons({"segment": "paying learners"}) == 2
    assert persons({"segment": "paying learners", "op": "not_in"}) == 1
    assert persons({"or": [{"segment": "x' OR 1=1 --"}, {"property": "mode", "value": "replay"}]}) == 3
    with pytest.raises(QueryError, match="segment 'nope': no such segment"):
        loaded.run({"kind": "trends", "series": [{"event": "x"}], "filters": [{"segment": "nope"}]})
    found = loaded.both({"kind": "persons", "filters": [{"segment": "paying learners"},
                                                        {"property": "person.grade", "value": "G5"}]})
    assert found["total"] == 1  # alice


def test_editing_a_segment_invalidates_cached_results(loaded: History) -> None:
    from edupulse.queries.service import ResultCache

    service = loaded.service(cache=ResultCache())
    catalog, pid = SegmentCatalog(loaded.platform.meta), loaded.project.id
    catalog.create(pid, "cached", {"condition": {"event": "order_paid"}})
    query = {"kind": "segments", "segment": "cached", "limit": 0}
    first = service.run(loaded.project, query).to_wire()
    assert (first["total"], first["cached"]) == (2, False)
    assert service.run(loaded.project, query).to_wire()["cached"] is True
    catalog.update(pid, "cached", definition={"condition": {"event": "order_paid", "exactly": 0}})
    changed = service.run(loaded.project, query).to_wire()
    assert (changed["total"], changed["cached"]) == (2, False)  # bob and carol now
    catalog.update(pid, "cached", definition={"condition": {"property": "grade", "value": "G3"}})
    assert service.run(loaded.project, query).to_wire()["total"] == 1
    catalog.delete(pid, "cached")


def test_cycles_and_references_are_refused(loaded: History) -> None:
    catalog, pid = SegmentCatalog(loaded.platform.meta), loaded.project.id
    with pytest.raises(MetadataError, match="'learners' would refer to itself: learners → paying learners → "
                                            "learners"):
        catalog.update(pid, "learners", definition={"condition": {"segment": "paying learners"}})
    with pytest.raises(MetadataError, match="'me' would refer to itself"):
        catalog.create(pid, "me", {"condition": {"segment": "me"}})
    with pytest.raises(MetadataError, match=r"segment 'ghost' .* does not exist"):
        catalog.create(pid, "haunted", {"condition": {"segment": "ghost"}})
    with pytest.raises(MetadataError, match="'learners' is used by 'paying learners'"):
        catalog.delete(pid, "learners")
    with pytest.raises(MetadataError, match="already exists"):
        catalog.create(pid, "learners", {"condition": {"event": "x"}})
    with pytest.raises(MetadataError, match=r"definition\.condition: a condition has one of the keys"):
        catalog.create(pid, "bad", {"condition": {"evnt": "x"}})
    with pytest.raises(MetadataError, match="at_least 3 is more than at_most 1"):
        catalog.create(pid, "bad", {"condition": {"event": "x", "at_least": 3, "at_most": 1}})
    with pytest.raises(MetadataError, match="a segment's property conditions are person properties"):
        catalog.create(pid, "bad", {"condition": {"property": "event.amount", "op": "gt", "value": 1}})
    assert [s.name for s in catalog.all(pid)] == ["learners", "paying learners", "x' OR 1=1 --"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"kind": "segments"}, 'either "segment"'),
        ({"kind": "segments", "definition": {"condition": {"event": "x", "window": {}}}},
         'a window needs "last_days" or "date_from"'),
        ({"kind": "segments", "definition": {"condition": {"event": "x", "window": {"last_days": 2,
                                                                                   "date_from": "-3d"}}}},
         "not both"),
        ({"kind": "segments", "definition": {"condition": {"and": []}}}, "at least 1 item"),
        ({"kind": "segments", "segment": "nope"}, "segment 'nope': no such segment"),
    ],
)
def test_errors_name_the_field(loaded: History, query: dict[str, Any], words: str) -> None:
    with pytest.raises(QueryError, match=words):
        loaded.run(query)


def test_hostile_names_and_values(loaded: History) -> None:
    assert members(loaded, {"event": "lesson_attended' OR '1'='1"}) == []
    assert members(loaded, {"property": "note", "value": "it's \"quoted\"; DROP TABLE persons; --"}) == ["carol"]
    assert members(loaded, {"property": "x') OR 1=1 --", "op": "is_set"}) == []
    assert members(loaded, segment="learners") == ["alice", "bob", "dave"]


def test_api_and_command_line(server: Server, project: ProjectKeys, tmp_path: Path) -> None:
    api = {"Authorization": f"Bearer {project.api_key}"}
    records = [r for r in HISTORY if r["type"] != "profile_set"]
    assert httpx.post(f"{server.url}/api/v1/ingest", json={"batch": records},
                      headers={"Authorization": f"Bearer {project.write_key}"}).json()["rejected"] == 0
    made = httpx.post(f"{server.url}/api/v1/segments", headers=api, json={
        "name": "payers", "description": "paid once", "definition": {"condition": {"event": "order_paid"}}})
    assert made.status_code == 201, made.text
    assert made.json()["definition"] == {"condition": {"event": "order_paid", "filters": []}}
    assert httpx.post(f"{server.url}/api/v1/segments", headers=api, json={
        "name": "payers", "definition": {"condition": {"event": "x"}}}).status_code == 409
    bad = httpx.post(f"{server.url}/api/v1/segments", headers=api, json={"name": "b", "definition": {"x": 1}})
    assert bad.status_code == 400
    assert "definition.condition" in bad.json()["error"]
    assert httpx.get(f"{server.url}/api/v1/segments", headers={
        "Authorization": f"Bearer {project.write_key}"}).status_code == 403
    changed = httpx.put(f"{server.url}/api/v1/segments/payers", headers=api, json={"description": "paid"})
    assert changed.json()["description"] == "paid"
    assert httpx.get(f"{server.url}/api/v1/segments/{made.json()['id']}", headers=api).json()["name"] == "payers"
    query = {"kind": "segments", "segment": "payers", "limit": 0}
    for _ in range(100):  # the loader stores acknowledged records within moments
        answer = httpx.post(f"{server.url}/api/v1/query", json=query, headers=api)
        assert answer.status_code == 200, answer.text
        if answer.json()["total"] == 2:
            break
    assert answer.json()["total"] == 2
    assert httpx.get(f"{server.url}/api/v1/segments/nope", headers=api).status_code == 404
    base = ["--data-dir", str(server.settings.data_dir), "--metadata-url", server.settings.resolved_metadata_url,
            "segment"]
    cli = CliRunner()
    created = cli.invoke(main, [*base, "create", "learners", "--project", project.name, "--definition",
                                json.dumps({"condition": {"event": "lesson_attended", "at_least": 2}})])
    assert created.exit_code == 0, created.output
    listed = cli.invoke(main, [*base, "list", "--project", project.name, "--json"])
    assert [json.loads(line)["name"] for line in listed.output.splitlines()] == ["learners", "payers"]
    shown = cli.invoke(main, [*base, "show", "learners", "--project", project.name])
    assert json.loads(shown.output)["definition"]["condition"]["at_least"] == 2
    refused = cli.invoke(main, [*base, "create", "bad", "--project", project.name, "--definition", "{\"x\": 1}"])
    assert refused.exit_code != 0
    assert "definition.condition" in refused.output
    assert cli.invoke(main, [*base, "delete", "payers", "--project", project.name]).exit_code == 0
    assert httpx.get(f"{server.url}/api/v1/segments/payers", headers=api).status_code == 404


def test_catalog_on_each_metadata_database(meta: MetadataStore) -> None:
    first = meta.create_project("A").project.id
    second = meta.create_project("B").project.id
    catalog = SegmentCatalog(meta)
    made = catalog.create(first, "学员 'x'", {"condition": {"event": "lesson_attended", "at_least": 2}}, "说明")
    assert catalog.create(second, "学员 'x'", {"condition": {"event": "x"}}).id != made.id  # names are per project
    assert catalog.get(first, made.id) == made
    assert catalog.get(first, str(made.id)) == made
    assert catalog.get(second, made.id) is None  # another project's id is not found
    changed = catalog.update(first, made.id, definition={"condition": {"not": {"event": "x"}}}, description="d")
    assert changed.definition == {"condition": {"not": {"event": "x", "filters": []}}}
    assert changed.updated_at >= made.updated_at
    assert changed.created_at == made.created_at
    renamed = catalog.update(first, made.id, name="learners")
    assert [s.name for s in catalog.all(first)] == ["learners"]
    catalog.delete(first, "learners")
    assert catalog.all(first) == []
    assert renamed.description == "d"
    with pytest.raises(MetadataError, match="no such segment"):
        catalog.delete(first, "learners")
