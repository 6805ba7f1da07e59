"""The person timeline and person search on a hand-built history: a person found by an anonymous id that was
merged, by a merged-away person id, by a value alone; timelines paged by cursor and offset through events that
share a time; filters by event name and days in the project's time zone; search by identity prefix, person
properties and hostile text. Every query runs on DuckDB and ClickHouse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edupulse.queries.errors import QueryError
from engines import History, csv_of


def sh(text: str) -> str:
    return f"{text}+08:00"


def login(name: str) -> dict[str, Any]:
    return {"distinct_id": name, "distinct_id_type": "login_id"}


HISTORY: list[dict[str, Any]] = [
    # dev-1 browses anonymously (23:30 on the 1st local time is the 1st; 00:30 is the 2nd), then signs in
    {"type": "track", "event": "page_view", "distinct_id": "dev-1", "time": sh("2026-09-01T23:30:00"),
     "properties": {"utm_source": "douyin", "page": "/math"}},
    {"type": "track", "event": "page_view", "distinct_id": "dev-1", "time": sh("2026-09-02T00:30:00"),
     "properties": {"page": "/english", "tags": ["a", "b"]}},
    {"type": "identify", "distinct_id": "u-alice", "anonymous_id": "dev-1", "time": sh("2026-09-02T00:31:00"),
     "identities": {"mobile": "13800000001"}},
    {"type": "track", "event": "order_paid", **login("u-alice"), "time": sh("2026-09-02T20:00:00"),
     "properties": {"amount": 1999, "order_type": "first", "coupon": "X1"}},
    {"type": "profile_set", **login("u-alice"), "time": sh("2026-09-02T00:00:00"),
     "properties": {"grade": "G5", "city": "杭州", "name": "Alice O'Neil"}},
    # bob: five events at the same instant, two more later
    *[{"type": "track", "event": "quiz_answered", **login("u-bob"), "time": sh("2026-09-03T10:00:00"),
       "properties": {"question_id": f"q{i}"}, "event_id": f"bob-q{i}"} for i in range(5)],
    {"type": "track", "event": "lesson_attended", **login("u-bob"), "time": sh("2026-09-03T11:00:00"),
     "properties": {"lesson_id": "L1"}},
    {"type": "track", "event": "lesson_attended", **login("u-bob"), "time": sh("2026-09-04T11:00:00"),
     "properties": {"lesson_id": "L2"}},
    {"type": "profile_set", **login("u-bob"), "time": sh("2026-09-02T00:00:00"),
     "properties": {"grade": "G3", "lessons": 9}},
    # the same value under two types belongs to two persons
    {"type": "track", "event": "page_view", "distinct_id": "shared-1", "time": sh("2026-09-05T09:00:00")},
    {"type": "track", "event": "page_view", **login("shared-1"), "time": sh("2026-09-05T09:00:00")},
    # dev-9 and u-dave are two persons until the sign-in links them: a merge
    {"type": "track", "event": "page_view", "distinct_id": "dev-9", "time": sh("2026-09-06T08:00:00")},
    {"type": "track", "event": "lesson_attended", **login("u-dave"), "time": sh("2026-09-06T09:00:00")},
    {"type": "profile_set", **login("u-carol"), "time": sh("2026-09-02T00:00:00"),
     "properties": {"grade": "G5", "note": "x') OR 1=1 --", "lessons": "10"}},
]


# a later batch: the sign-in merges the two stored persons
LATER = [{"type": "identify", "distinct_id": "u-dave", "anonymous_id": "dev-9", "time": sh("2026-09-06T10:00:00")}]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("person"), HISTORY, name="Person School")
    history.add(LATER)
    yield history
    history.close()


def person(loaded: History, **query: Any) -> dict[str, Any]:
    return loaded.both({"kind": "person", **query})


def persons(loaded: History, **query: Any) -> dict[str, Any]:
    return loaded.both({"kind": "persons", **query})


def test_found_by_a_merged_anonymous_id(loaded: History) -> None:
    result = person(loaded, identity={"type": "anonymous_id", "value": "dev-1"})
    alice = result["person"]
    assert alice["properties"] == {"grade": "G5", "city": "杭州", "name": "Alice O'Neil"}
    assert {(i["type"], i["value"]) for i in alice["identities"]} == {
        ("anonymous_id", "dev-1"), ("login_id", "u-alice"), ("mobile", "13800000001")}
    assert result["found_by"] == {"identity": {"type": "anonymous_id", "value": "dev-1"}}
    # the anonymous page views are in her timeline, newest first, in the project's time zone
    assert [(e["event"], e["time"]) for e in result["events"]] == [
        ("order_paid", "2026-09-02T20:00:00+08:00"), ("page_view", "2026-09-02T00:30:00+08:00"),
        ("page_view", "2026-09-01T23:30:00+08:00")]
    assert result["events"][0]["properties"] == {"amount": 1999, "order_type": "first", "coupon": "X1"}
    assert result["events"][1]["properties"] == {"page": "/english", "tags": ["a", "b"]}
    assert result["events"][1]["distinct_id"] == "dev-1"
    assert result["total_events"] == 3
    assert result["next_cursor"] is None


def test_found_by_value_alone_or_by_id(loaded: History) -> None:
    by_login = person(loaded, identity={"value": "u-alice"})
    pid = by_login["person"]["person_id"]
    assert person(loaded, identity={"value": "13800000001"})["person"]["person_id"] == pid
    assert person(loaded, person_id=pid)["person"]["identities"] == by_login["person"]["identities"]
    assert by_login["person"]["merged_from"] == []


def test_a_merged_away_person(loaded: History) -> None:
    dave = person(loaded, identity={"type": "anonymous_id", "value": "dev-9"})
    assert [e["event"] for e in dave["events"]] == ["lesson_attended", "page_view"]
    (loser,) = dave["person"]["merged_from"]
    found = person(loaded, person_id=loser)
    assert found["person"]["person_id"] == dave["person"]["person_id"]
    assert found["found_by"] == {"person_id": loser, "merged_into": dave["person"]["person_id"]}
    assert found["total_events"] == 2


def test_value_of_two_persons_needs_its_type(loaded: History) -> None:
    with pytest.raises(QueryError, match=r"belongs to 2 persons.*give its type"):
        loaded.run({"kind": "person", "identity": {"value": "shared-1"}})
    one = person(loaded, identity={"type": "login_id", "value": "shared-1"})
    other = person(loaded, identity={"type": "anonymous_id", "value": "shared-1"})
    assert one["person"]["person_id"] != other["person"]["person_id"]
    assert one["total_events"] == other["total_events"] == 1


def test_cursor_pages_through_events_of_one_instant(loaded: History) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = person(loaded, identity={"value": "u-bob"}, limit=2, **({"cursor": cursor} if cursor else {}))
        assert page["total_events"] == 7
        seen += [e["properties"].get("question_id") or e["properties"]["lesson_id"] for e in page["events"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert seen[:2] == ["L2", "L1"]
    assert sorted(seen[2:]) == ["q0", "q1", "q2", "q3", "q4"]  # each once, none repeated or skipped
    by_offset = [e["properties"].get("question_id") or e["properties"]["lesson_id"]
                 for offset in (0, 3, 6) for e in person(loaded, identity={"value": "u-bob"}, limit=3,
                                                         offset=offset)["events"]]
    assert by_offset == seen
    # a cursor from an offset page continues where it stopped, inside the run of equal times
    middle = person(loaded, identity={"value": "u-bob"}, limit=3, offset=3)
    rest = person(loaded, identity={"value": "u-bob"}, limit=10, cursor=middle["next_cursor"])
    assert [e["properties"].get("question_id") for e in rest["events"]] == seen[6:]


def test_filters_by_event_and_local_days(loaded: History) -> None:
    only = person(loaded, identity={"value": "u-alice"}, events=["page_view"])
    assert [e["event"] for e in only["events"]] == ["page_view", "page_view"]
    second = person(loaded, identity={"value": "u-alice"}, date_range={"date_from": "2026-09-02",
                                                                       "date_to": "2026-09-02"})
    assert [e["time"] for e in second["events"]] == ["2026-09-02T20:00:00+08:00", "2026-09-02T00:30:00+08:00"]
    relative = person(loaded, identity={"value": "u-bob"}, date_range={"date_from": "-6d"})  # now: 10 September
    assert relative["total_events"] == 1


def test_search_by_identity_prefix_and_properties(loaded: History) -> None:
    found = persons(loaded, search="u-")
    assert found["total"] == 4
    logins = [[i["value"] for i in p["identities"] if i["type"] == "login_id"] for p in found["persons"]]
    assert logins == [["u-alice"], ["u-bob"], ["u-carol"], ["u-dave"]]  # by person id
    typed = persons(loaded, search="shared", identity_type="login_id")
    assert typed["total"] == 1
    g5 = persons(loaded, filters=[{"property": "person.grade", "value": "G5"}], limit=1)
    assert g5["total"] == 2
    assert len(g5["persons"]) == 1
    assert g5["next_offset"] == 1
    rest = persons(loaded, filters=[{"property": "person.grade", "value": "G5"}], limit=1, offset=1)
    assert rest["next_offset"] is None
    assert {g5["persons"][0]["properties"]["grade"], rest["persons"][0]["properties"]["grade"]} == {"G5"}
    both = persons(loaded, search="u-", filters=[{"or": [{"property": "person.grade", "value": "G3"},
                                                        {"property": "person.city", "value": "杭州"}]}])
    assert both["total"] == 2


def test_sorted_by_a_person_property(loaded: History) -> None:
    def logins(**query: Any) -> list[str]:
        found = persons(loaded, search="u-", **query)["persons"]
        return [i["value"] for p in found for i in p["identities"] if i["type"] == "login_id"]

    # numbers by value (9 before 10, whether stored as a number or as text), unset last in both directions
    assert logins(order_by="person.lessons") == ["u-bob", "u-carol", "u-alice", "u-dave"]
    assert logins(order_by="person.lessons", descending=True) == ["u-carol", "u-bob", "u-alice", "u-dave"]
    # text as text; equal values by person id
    assert logins(order_by="person.grade", descending=True) == ["u-alice", "u-carol", "u-bob", "u-dave"]
    with pytest.raises(QueryError, match="sorted by a person property"):
        loaded.run({"kind": "persons", "order_by": "amount"})


def test_hostile_text_stays_a_value(loaded: History) -> None:
    assert persons(loaded, search="' OR '1'='1")["total"] == 0
    assert persons(loaded, filters=[{"property": "person.note", "value": "x') OR 1=1 --"}])["total"] == 1
    assert persons(loaded, filters=[{"property": "person.x\"); DROP TABLE persons; --", "op": "is_set"}])["total"] == 0
    with pytest.raises(QueryError, match="no identity"):
        loaded.run({"kind": "person", "identity": {"value": "u-alice' OR 1=1 --"}})
    assert persons(loaded, search="u-")["total"] == 4


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"kind": "person"}, 'either "person_id" or "identity"'),
        ({"kind": "person", "person_id": 1, "identity": {"value": "x"}}, "not both"),
        ({"kind": "person", "person_id": 999999}, "person_id: no person 999999"),
        ({"kind": "person", "identity": {"type": "mobile", "value": "u-alice"}}, "no identity mobile 'u-alice'"),
        ({"kind": "person", "person_id": 1, "cursor": "!!"}, "not a cursor"),
        ({"kind": "person", "person_id": 1, "limit": 5000}, "limit: Input should be less than or equal to 1000"),
        ({"kind": "persons", "filters": [{"property": "amount", "op": "gt", "value": 1}]},
         "filter 0: persons are filtered by person properties"),
        ({"kind": "persons", "colour": 1}, "colour: Extra inputs"),
    ],
)
def test_errors_name_the_field(loaded: History, query: dict[str, Any], words: str) -> None:
    with pytest.raises(QueryError, match=words):
        loaded.run(query)


def test_csv_tables(loaded: History) -> None:
    text = csv_of(loaded.run({"kind": "person", "identity": {"value": "u-alice"}}))
    assert text.splitlines()[0] == "time,event,distinct_id,properties"
    assert "order_paid" in text
    listing = csv_of(loaded.run({"kind": "persons", "search": "u-"}))
    assert listing.splitlines()[0] == "person_id,properties,identities"
