"""The ClickHouse store on a ClickHouse server, over its HTTP interface.

The SQL is the in-process store's (store/clickhouse.py); only the transport differs: statements and Arrow
rows travel over HTTP (store/clickhouse_client.py), the rows a statement probes against (insert ids, person
ids, keys) are written into it as literals, settings and the query id travel as URL parameters, and a
cancelled analysis is stopped on the server with KILL QUERY by its query id.

Several API processes may share one server: the typed property columns are read again before each write
(another process may have declared one), and `shared` (set by the platform when the metadata database is
shared too) gives a data version common to all processes, so caches of one process see others' writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

from edupulse.store.base import QueryControl, QueryInterrupted, WriteBatch
from edupulse.store.clickhouse import ClickHouseStore, _escape
from edupulse.store.clickhouse_client import ClickHouseError, ClickHouseHttp, ServerAddress, parse_url
from edupulse.store.clickhouse_schema import Layout

TIMEOUT_EXCEEDED, QUERY_WAS_CANCELLED = 159, 394
READ_SETTINGS = {"output_format_arrow_string_as_string": 1}


class SharedVersion(Protocol):
    """A data version kept where every API process sees it (the metadata database)."""

    def bump(self) -> int: ...

    def current(self) -> int: ...


class ClickHouseServerStore(ClickHouseStore):
    """Events, identities and properties in a ClickHouse server (or cluster, with `cluster`)."""

    def __init__(self, url: str, cluster: str | None = None, timeout: float = 300.0, verify_tls: bool = True) -> None:
        self.address: ServerAddress = parse_url(url)
        super().__init__(None, Layout(self.address.database, cluster or None))
        self.client = ClickHouseHttp(self.address, timeout, verify_tls)
        self.timeout = timeout
        self.shared: SharedVersion | None = None
        self._database_ready = False

    # lifecycle ------------------------------------------------------------------------------------

    def open(self) -> None:
        if not self.client.ping():
            raise ConnectionError(f"no ClickHouse server answers at {self.address.redacted()}")
        self._migrate()

    def close(self) -> None:
        self.client.close()

    # transport ------------------------------------------------------------------------------------

    def _execute(self, sql: str, fmt: str = "TabSeparated", settings: dict[str, Any] | None = None) -> Any:
        # the database parameter names a database that must exist: not until the schema made it
        database = self.address.database if self._database_ready else None
        out = self.client.request(sql, settings=settings, database=database)
        if sql.lstrip().upper().startswith("CREATE DATABASE"):
            self._database_ready = True
        return out

    def _arrow(self, sql: str, settings: dict[str, Any] | None = None, query_id: str | None = None,
               timeout: float | None = None) -> pa.Table:
        database = self.address.database if self._database_ready else None
        body = self.client.request(sql + "\nFORMAT ArrowStream", settings={**READ_SETTINGS, **(settings or {})},
                                   query_id=query_id, database=database, timeout=timeout)
        if not body:
            return pa.table({})
        return pa.ipc.open_stream(body).read_all()

    def _insert(self, table: str, data: pa.Table, columns: Sequence[str] | None = None,
                token: str | None = None) -> None:
        if data.num_rows == 0:
            return
        if columns:
            data = data.select(list(columns))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        names = ", ".join(f"`{c}`" for c in data.column_names)
        self.client.request(f"INSERT INTO {self._t(table)} ({names}) FORMAT ArrowStream",
                            data=sink.getvalue().to_pybytes(),
                            settings={"insert_deduplication_token": token} if token else None,
                            database=self.address.database)

    def _probe(self, probe: pa.Table) -> str:
        rows = list(zip(*[c.to_pylist() for c in probe.columns], strict=True))
        if probe.num_columns == 1:
            return "(" + ", ".join(_value(r[0]) for r in rows) + ")"
        if len(rows) == 1:  # ((a, b)) would read as the tuple itself, not a set of one tuple
            rows = rows * 2
        return "(" + ", ".join("(" + ", ".join(_value(v) for v in r) + ")" for r in rows) + ")"

    # shared use -----------------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        if batch.raw_events is not None and batch.raw_events.num_rows:
            self.refresh_typed()  # split by the columns every process declared, not only this one's
        super().write(batch)
        if self.shared is not None:
            self.shared.bump()

    def declare_property(self, name: str, kind: Any) -> None:
        self.refresh_typed()
        super().declare_property(name, kind)
        if self.shared is not None:
            self.shared.bump()

    def data_version(self) -> int:
        if self.shared is not None:
            return self.shared.current()
        return self._version

    # analyses -------------------------------------------------------------------------------------

    def _select(self, sql: str, settings: dict[str, Any], control: QueryControl | None) -> pa.Table:
        query_id = f"edupulse-{uuid.uuid4().hex}"
        limit = settings.get("max_execution_time")
        if control is not None:
            conn = self.client.connection()

            def interrupt() -> None:  # from the cancelling thread: stop it on the server, drop the request
                self.kill(query_id)
                self.client.abort(conn)

            control.attach(interrupt)
        try:
            return self._arrow(sql, settings, query_id, None if limit is None else float(limit) + 30.0)
        except (OSError, http.client.HTTPException):
            if control is not None and control.cancelled:
                raise QueryInterrupted("cancelled") from None
            raise
        except ClickHouseError as exc:
            if control is not None and control.cancelled:
                raise QueryInterrupted("cancelled") from None
            if exc.code == TIMEOUT_EXCEEDED:
                raise QueryInterrupted("timeout") from None
            if exc.code == QUERY_WAS_CANCELLED:
                raise QueryInterrupted("cancelled") from None
            raise
        except TimeoutError:
            self.kill(query_id)
            raise QueryInterrupted("timeout") from None
        finally:
            if control is not None:
                control.attach(None)

    def kill(self, query_id: str) -> None:
        """Stop a running statement on the server (KILL QUERY by its id)."""
        # an error means it ended meanwhile, or the server is gone: nothing left to stop
        with contextlib.suppress(ClickHouseError, OSError):
            self.client.request(f"KILL QUERY WHERE query_id = '{_escape(query_id)}' ASYNC", timeout=10.0)

    def storage_bytes(self) -> int:
        rows = self._rows("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = "
                          f"'{_escape(self.address.database)}'")
        return int(rows[0][0] or 0)

    def copy_table(self, table: str, data: pa.Table, token: str | None = None) -> None:
        """Append rows to one table (used when moving an embedded project's data here)."""
        self._insert(table, data, token=token)


def _value(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dt.datetime):
        return f"toDateTime64('{v.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=' ')}', 6, 'UTC')"
    if isinstance(v, dt.date):
        return f"toDate('{v.isoformat()}')"
    return f"'{_escape(str(v))}'"
