"""The sql kind: a SELECT over the documented views sees its project's rows only, whatever the query does
(self-joins, CTEs that shadow a view, subqueries, unions, case and quoting tricks), and everything that could
write, change settings, reach files, other schemas or the environment is refused with a clear message, on
DuckDB and ClickHouse alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import documented_queries
from edupulse.conf import QuerySettings
from edupulse.queries.errors import QueryError, QueryTimeout
from engines import NOW, History, csv_of, requires_chdb

ENGINES = ["duckdb", "clickhouse"]


def sh(text: str) -> str:
    return f"{text}+08:00"


OURS: list[dict[str, Any]] = [
    {"type": "track", "event": "page_view", "distinct_id": "dev-1", "time": sh("2026-09-01T23:30:00"),
     "properties": {"utm_source": "douyin", "page": "/math"}},
    {"type": "identify", "distinct_id": "u-1", "anonymous_id": "dev-1", "time": sh("2026-09-02T00:00:00")},
    {"type": "track", "event": "order_paid", "distinct_id": "u-1", "distinct_id_type": "login_id",
     "time": sh("2026-09-02T10:00:00"), "properties": {"amount": 100}},
    {"type": "track", "event": "page_view", "distinct_id": "u-2", "distinct_id_type": "login_id",
     "time": sh("2026-09-03T10:00:00"), "properties": {"page": "/"}},
    {"type": "profile_set", "distinct_id": "u-1", "distinct_id_type": "login_id", "time": sh("2026-09-02T00:00:00"),
     "properties": {"grade": "G5"}},
]
THEIRS: list[dict[str, Any]] = [
    {"type": "track", "event": "secret_event", "distinct_id": "spy", "time": sh("2026-09-02T10:00:00"),
     "properties": {"amount": 999999}},
    {"type": "profile_set", "distinct_id": "spy", "time": sh("2026-09-02T00:00:00"), "properties": {"ssn": "007"}},
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    history = History(tmp_path_factory.mktemp("sql"), OURS, name="SQL School")
    other = history.platform.meta.create_project("Other School").project
    assert history.platform.ingestor.ingest(other, THEIRS).rejected == 0
    history.platform.flush()
    yield history
    history.close()


def sql(loaded: History, text: str, **extra: Any) -> dict[str, Any]:
    return loaded.both({"kind": "sql", "sql": text, **extra})


def rows(loaded: History, text: str) -> list[list[Any]]:
    return sql(loaded, text)["rows"]


def test_views_hold_the_project_rows(loaded: History) -> None:
    result = sql(loaded, "SELECT event, count(*) AS n FROM events GROUP BY event ORDER BY event")
    assert result["columns"] == ["event", "n"]
    assert result["rows"] == [["order_paid", 1], ["page_view", 2]]
    assert result["truncated"] is False
    # person_id is the person after merges: the anonymous page view is u-1's
    assert rows(loaded, "SELECT count(DISTINCT person_id) AS n FROM events") == [[2]]
    assert rows(loaded, "SELECT count(*) AS n FROM persons") == [[2]]
    assert rows(loaded, "SELECT id_type, id_value FROM identities ORDER BY id_value") == [
        ["anonymous_id", "dev-1"], ["login_id", "u-1"], ["login_id", "u-2"]]
    assert rows(loaded, "SELECT sum(prop_amount) AS n FROM events") == [[100.0]]
    assert rows(loaded, "SELECT count(*) AS n FROM spend") == [[0]]
    assert rows(loaded, "SELECT group_school FROM events WHERE event = 'order_paid'") == [[None]]
    # times are UTC instants: 23:30 on 1 September in Shanghai
    assert rows(loaded, "SELECT time FROM events ORDER BY time LIMIT 1") == [["2026-09-01T15:30:00+00:00"]]


@pytest.mark.parametrize(
    "text",
    [
        "SELECT count(*) AS n FROM events a, events b",  # 3 x 3
        "SELECT count(*) AS n FROM (SELECT * FROM events UNION ALL SELECT * FROM events) AS x",
        "WITH events AS (SELECT * FROM persons) SELECT count(*) AS n FROM events",  # shadowing: persons
        "WITH a AS (SELECT * FROM events), b AS (SELECT * FROM a) SELECT count(*) AS n FROM b",
        'SELECT count(*) AS n FROM "EVENTS" e WHERE e.event IN (SELECT event FROM Events)',
        "SELECT (SELECT count(*) FROM persons) AS n",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT count(*) AS n FROM r, events WHERE events.event = 'page_view'",
    ],
)
def test_no_query_reaches_another_project(loaded: History, text: str) -> None:
    result = sql(loaded, text)
    assert result["rows"][0][0] in {9, 6, 2, 3}
    assert "secret" not in str(result["rows"])


def test_other_projects_are_invisible(loaded: History) -> None:
    assert rows(loaded, "SELECT DISTINCT event FROM events ORDER BY event") == [["order_paid"], ["page_view"]]
    assert rows(loaded, "SELECT count(*) AS n FROM persons WHERE properties LIKE '%ssn%'") == [[0]]
    twice = "SELECT max(prop_amount) AS m FROM events UNION ALL SELECT max(prop_amount) AS m FROM events"
    assert rows(loaded, twice) == [[100.0], [100.0]]


HOSTILE = [
    ("DROP TABLE events", "only SELECT"),
    ("DELETE FROM events", "only SELECT"),
    ("UPDATE persons SET properties = '{}'", "only SELECT"),
    ("INSERT INTO events (event) VALUES ('x')", "only SELECT"),
    ("CREATE TABLE x AS SELECT 1", "only SELECT"),
    ("SELECT 1; DROP TABLE events", "one statement only"),
    ("SELECT 1 -- comment\n; DELETE FROM events", "one statement only"),
    ("ATTACH 'other.db' AS other", ""),
    ("COPY events TO '/tmp/events.csv'", ""),
    ("SET threads = 1", ""),
    ("PRAGMA database_list", ""),
    ("EXPLAIN SELECT 1", ""),
    ("SHOW TABLES", ""),
    ("DESCRIBE events", ""),
    ("SELECT * FROM read_csv('/etc/passwd')", "not allowed"),
    ("SELECT * FROM read_parquet('x.parquet')", "not allowed"),
    ("SELECT * FROM '/etc/passwd'", "not a view"),
    ("SELECT * FROM file('/etc/passwd')", ""),  # DuckDB reads a table named file
    ("SELECT * FROM url('http://127.0.0.1/')", "not allowed"),
    ("SELECT getenv('HOME')", "getenv"),
    ("SELECT current_setting('threads')", "not allowed"),
    ("SELECT * FROM duckdb_tables()", "not allowed"),
    ("SELECT * FROM information_schema.tables", "without a schema"),
    ("SELECT * FROM system.tables", "without a schema"),
    ("SELECT * FROM main.events", "without a schema"),
    ("SELECT * FROM edupulse.events", "without a schema"),
    ("SELECT * FROM memory.main.events", "without a schema"),
    ("SELECT * FROM events_resolved", "not a view"),
    ('SELECT * FROM "events_resolved"', "not a view"),
    ("SELECT * FROM person_overrides", "not a view"),
    ("SELECT * FROM checkpoints", "not a view"),
    ("SELECT * FROM sqlite_master", "not a view"),
    ("SELECT * FROM \u0435vents", "not a view"),  # a Cyrillic е
    ("SELECT * FROM (WITH y AS (SELECT 1) SELECT * FROM y) AS z, y", "'y' is not a view"),  # y is out of scope
    ("SELECT * FROM query('SELECT * FROM events_resolved')", "not allowed"),
    ("SELECT json_execute_serialized_sql('x')", "not allowed"),
    ("SELECT nextval('s')", "not allowed"),
    ("SELECT dictGet('d', 'x', 1)", "not allowed"),
    ("SELECT 1 INTO OUTFILE 'x'", ""),
    ("LOAD httpfs", ""),
    ("INSTALL httpfs", ""),
    ("SELECT * FROM \uff25\uff36\uff25\uff2e\uff34\uff33", "not a view"),  # full-width letters
    ('SELECT * FROM "main"."events"', "without a schema"),
    ("SELECT * FROM events TABLESAMPLE 10%", "not supported"),
    ("PIVOT events ON event USING count(*)", ""),
    ("SELECT nosuchcolumn FROM events", "refused the query"),
    ("SELECT * FROM events WHERE time > $1", ""),
    ("", "at least 1 character"),
    ("   ", ""),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("text", "words"), HOSTILE)
def test_hostile_sql_is_refused(loaded: History, engine: str, text: str, words: str) -> None:
    with pytest.raises(QueryError, match="sql") as caught:
        loaded.run({"kind": "sql", "sql": text}, engine)
    assert words in str(caught.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_nothing_was_written(loaded: History, engine: str) -> None:
    for text, _ in HOSTILE:
        with pytest.raises(QueryError):
            loaded.run({"kind": "sql", "sql": text}, engine)
    assert loaded.run({"kind": "sql", "sql": "SELECT count(*) FROM events"}, engine)["rows"] == [[3]]
    assert loaded.platform.store.query("SELECT count(*) FROM events").rows == [(4,)]


@requires_chdb
def test_clickhouse_only_escapes(loaded: History) -> None:
    for text in ("SELECT 1 FROM events SETTINGS max_execution_time = 0", "SELECT 1 FORMAT JSON",
                 "SELECT count(*) FROM events WHERE (1, 'x', 'y', 1) IN identities",
                 "SELECT * FROM remote('127.0.0.1', edupulse.events)", "SELECT * FROM merge('edupulse', '.*')",
                 "SELECT * FROM Python(rows)", "SELECT file('/etc/passwd')", "SELECT * FROM numbers(10)",
                 "SELECT * FROM view(SELECT * FROM edupulse.events)", "SELECT joinGet('j', 'v', 1)",
                 "SELECT * FROM events WHERE person_id GLOBAL IN persons"):
        with pytest.raises(QueryError, match="sql: "):
            loaded.run({"kind": "sql", "sql": text}, "clickhouse")


def test_duckdb_from_first_syntax(loaded: History) -> None:
    assert loaded.run({"kind": "sql", "sql": "FROM events SELECT count(*) AS n"})["rows"] == [[3]]


def test_comments_and_quotes_stay_inert(loaded: History) -> None:
    assert rows(loaded, "SELECT 1 AS one /* ; DROP TABLE events */") == [[1]]
    # sqlglot reads node metadata from comments; the compiler's own marks must not come from a user
    marked = "SELECT count(*) AS n FROM events AS e /* sqlglot.meta edupulse_scan=2 */"
    assert rows(loaded, marked) == [[3]]
    from edupulse.queries.sql import restrict

    tree = restrict(marked, _context(loaded))
    assert not any(node.meta for node in tree.walk() if node._meta)
    assert rows(loaded, "SELECT 'x''; DROP TABLE events; --' AS s") == [["x'; DROP TABLE events; --"]]
    assert sql(loaded, 'SELECT 1 AS "a""b"')["columns"] == ['a"b']


def _context(loaded: History) -> Any:
    return loaded.service().context(loaded.project)


def test_row_limit(loaded: History) -> None:
    result = sql(loaded, "SELECT event FROM events ORDER BY time", limit=2)
    assert result["rows"] == [["page_view"], ["order_paid"]]
    assert result["truncated"] is True
    capped = sql(loaded, "SELECT event FROM events ORDER BY time LIMIT 100", limit=1)
    assert (capped["rows"], capped["truncated"]) == ([["page_view"]], True)
    own = sql(loaded, "SELECT event FROM events ORDER BY time LIMIT 1")
    assert (own["rows"], own["truncated"]) == ([["page_view"]], False)
    with pytest.raises(QueryError, match="limit"):
        loaded.run({"kind": "sql", "sql": "SELECT 1", "limit": 10**7})


def test_time_limit(loaded: History) -> None:
    service = loaded.service(limits=QuerySettings(timeout_seconds=1))
    slow = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) "
            "SELECT count(*) FROM r")
    with pytest.raises(QueryTimeout):
        service.run(loaded.project, {"kind": "sql", "sql": slow}, now=NOW)


def test_csv(loaded: History) -> None:
    text = csv_of(loaded.run({"kind": "sql", "sql": "SELECT event, count(*) AS n FROM events GROUP BY 1 ORDER BY 1"}))
    assert text == "event,n\norder_paid,1\npage_view,2\n"


def test_documented_examples_are_valid(loaded: History) -> None:
    """The JSON examples of the person, persons, segments and sql sections of docs/queries.md parse; the sql
    one runs."""
    examples = documented_queries()
    kinds = {e["kind"] for e in examples}
    assert {"person", "persons", "segments", "sql"} <= kinds
    for example in examples:
        if example["kind"] in {"person", "persons", "segments", "sql"}:
            loaded.service().parse(example)
    (documented,) = [e for e in examples if e["kind"] == "sql"]
    assert sql(loaded, documented["sql"])["rows"] == [["page_view", 2, 2], ["order_paid", 1, 1]]
