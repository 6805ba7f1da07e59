"""Importing ad spend: one row per date, channel and campaign, upserted into the store's spend table.

Spend has no API record, so its rules live here: a date (ISO text, a date, or a time read in the project's
time zone), a channel, an optional campaign, a cost that is a number of at least 0, and optional impressions
and clicks that are whole numbers of at least 0.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa

from edupulse.importer.job import ChunkResult, Job
from edupulse.importer.mapping import MappingError
from edupulse.importer.sources import Chunk
from edupulse.importer.values import NUMBER_TEXT, ValueProblem, plain
from edupulse.ingest.records import RecordError, from_micros, parse_time
from edupulse.store.base import WriteBatch

SPEND_SCHEMA = pa.schema([
    ("project_id", pa.int32()), ("date", pa.date32()), ("channel", pa.string()), ("campaign", pa.string()),
    ("cost", pa.float64()), ("impressions", pa.int64()), ("clicks", pa.int64()),
])
MAX_LABEL_LEN = 255
SpendRow = tuple[dt.date, str, str, float, int | None, int | None]


class SpendImporter:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.seen: dict[tuple[dt.date, str, str], int] = {}  # key -> record number of its row in this import

    def setup(self) -> None:
        for target in ("channel", "campaign"):
            if target in self.job.layout.constants:
                try:
                    _label(self.job.layout.constants[target], target, required=target == "channel")
                except RecordError as exc:
                    raise MappingError(f"--value {target}: {exc.reason}") from None

    def finish(self) -> None:
        """Nothing is written in the background."""

    def process(self, chunk: Chunk) -> ChunkResult:
        result = ChunkResult()
        good: list[tuple[int, SpendRow]] = []
        for i, row in enumerate(chunk.pylist()):
            index = chunk.start + i
            try:
                spend = self._row(row)
                first = self.seen.get(spend[:3])
                if first is not None:
                    line = self.job.source.locate([first])[first]
                    raise RecordError("date", f"repeats the date, channel and campaign of {self.job.source.unit} "
                                              f"{line}; give one row per date, channel and campaign")
            except RecordError as exc:
                result.rejects.append(self.job.reject(index, exc, row))
                continue
            self.seen[spend[:3]] = index
            good.append((i, spend))
        cut = self.job.cut(result.rejects, chunk.start)
        if cut is not None:
            good = [item for item in good if item[0] < cut]
            result.stopped = True
        if good:
            self.job.platform.store.write(WriteBatch(spend=self._table([s for _, s in good])))
            result.imported += len(good)
        return result

    def _get(self, row: dict[str, Any], target: str) -> Any:
        source = self.job.layout.fields.get(target)
        value = row.get(source) if source is not None else self.job.layout.constants.get(target)
        try:
            return plain(value) if not isinstance(value, dt.date) else value
        except ValueProblem as exc:
            raise RecordError(target, str(exc)) from None

    def _row(self, row: dict[str, Any]) -> SpendRow:
        date = self._date(self._get(row, "date"))
        channel = _label(self._get(row, "channel"), "channel", required=True)
        campaign = _label(self._get(row, "campaign"), "campaign", required=False)
        cost = _number(self._get(row, "cost"), "cost", required=True)
        impressions = _count(self._get(row, "impressions"), "impressions")
        clicks = _count(self._get(row, "clicks"), "clicks")
        assert cost is not None
        return date, channel, campaign, cost, impressions, clicks

    def _date(self, value: Any) -> dt.date:
        zone = self.job.ctx.timezone
        if isinstance(value, dt.datetime):
            return (value.astimezone(zone) if value.tzinfo else value).date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str) and value.strip():
            text = value.strip()
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                pass
            try:
                return from_micros(parse_time(text, "date", zone)).astimezone(zone).date()
            except RecordError:
                pass
        if value is None or value == "":
            raise RecordError("date", "is empty; every spend row needs its date (YYYY-MM-DD)")
        raise RecordError("date", f"{str(value)[:40]!r} is not a date; use YYYY-MM-DD such as 2026-09-01")

    def _table(self, rows: list[SpendRow]) -> pa.Table:
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array([self.job.project.id] * len(rows), pa.int32())]
        arrays += [pa.array(values, spec.type) for values, spec in zip(columns, list(SPEND_SCHEMA)[1:], strict=True)]
        return pa.Table.from_arrays(arrays, schema=SPEND_SCHEMA)


def _label(value: Any, field: str, required: bool) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RecordError(field, f"is empty; every spend row needs its {field}")
        return ""
    if not isinstance(value, str):
        raise RecordError(field, f"must be text, got {type(value).__name__}")
    value = value.strip()
    if len(value) > MAX_LABEL_LEN:
        raise RecordError(field, f"is {len(value)} characters long; at most {MAX_LABEL_LEN} are allowed")
    return value


def _number(value: Any, field: str, required: bool) -> float | None:
    if isinstance(value, str) and NUMBER_TEXT.match(value.strip()):
        value = float(value.strip())
    if value is None or value == "":
        if required:
            raise RecordError(field, "is empty; give the amount spent (0 for none)")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(field, f"must be a number, got {str(value)[:40]!r}")
    if not math.isfinite(value) or value < 0:
        raise RecordError(field, f"must be a finite number of at least 0, got {value}")
    return float(value)


def _count(value: Any, field: str) -> int | None:
    number = _number(value, field, required=False)
    if number is None:
        return None
    if number != int(number):
        raise RecordError(field, f"must be a whole number, got {number}")
    return int(number)
