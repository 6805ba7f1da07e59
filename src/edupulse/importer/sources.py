"""Import files as chunks of rows: CSV, JSON Lines and Parquet, read by pyarrow, and where each row came from
(Excel workbooks: excel.py).

A chunk is an Arrow table (or, for JSON Lines that pyarrow cannot type, plain rows) plus the index of its
first record in the file. Rows are numbered in file order from 0; `Source.locate` turns those numbers into
what a person looks for in the file: "line 12" (CSV counts the header as line 1) or "row 12" (Parquet).
Structurally broken input (a CSV line with the wrong number of fields, a line that is not JSON) never
reaches a chunk: it comes with the chunk as a `Reject` that already names its line.
"""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

FORMATS = ("csv", "jsonl", "parquet", "xlsx")  # xlsx: importer/excel.py
_SUFFIXES = {
    ".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet",
    ".pq": "parquet", ".xlsx": "xlsx",
}
COMPRESSED = (".gz", ".bz2", ".zst")
_BLOCK_BYTES = 8 << 20


class SourceError(ValueError):
    """The file as a whole cannot be read (missing, wrong format, bad header); nothing was imported from it."""


@dataclass
class Reject:
    """One refused row: where it is, which column, why, and the row itself (as JSON text)."""

    index: int | None  # record number in the file (0-based); None when the reader located it already
    column: str | None
    reason: str
    record: str
    location: str | None = None


@dataclass
class Chunk:
    start: int  # record number of the first row
    table: pa.Table | None = None
    rows: list[dict[str, Any]] | None = None  # instead of `table`: rows pyarrow could not give one type per column
    rejects: list[Reject] = field(default_factory=list)  # broken input met while reading this chunk

    @property
    def num_rows(self) -> int:
        if self.table is not None:
            return self.table.num_rows
        return len(self.rows or [])

    def pylist(self) -> list[dict[str, Any]]:
        return self.rows if self.rows is not None else (self.table.to_pylist() if self.table is not None else [])


def checked_header(names: Sequence[str | None], where: str) -> list[str]:
    """The column names of a header row; SourceError (at `where`) for a column without a name or named twice."""
    seen: set[str] = set()
    for name in names:
        if name is None or not name.strip():
            raise SourceError(f"{where}: a column has no name; name every column in the header")
        if name in seen:
            raise SourceError(f"{where}: column {name!r} appears twice in the header")
        seen.add(name)
    return [str(name) for name in names]


def detect_format(path: Path, override: str | None = None) -> str:
    """The format from `--format`, else from the file name (`.csv`, `.jsonl`/`.ndjson`/`.json`, `.parquet`,
    `.xlsx`)."""
    if override:
        if override not in FORMATS:
            raise SourceError(f"unknown format {override!r}; use one of {', '.join(FORMATS)}")
        return override
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    found = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if found is None:
        raise SourceError(f"cannot tell the format of {path.name} from its name; give --format {'|'.join(FORMATS)}")
    return found


def open_source(path: Path, fmt: str, chunk_rows: int, encoding: str = "utf-8") -> Source:
    """A text or Parquet file (a workbook is excel.XlsxSource)."""
    if not path.is_file():
        raise SourceError(f"{path} does not exist or is not a file")
    if fmt == "csv":
        return CsvSource(path, chunk_rows, encoding)
    if fmt == "jsonl":
        return JsonLinesSource(path, chunk_rows, encoding)
    return ParquetSource(path, chunk_rows)


class Source:
    """A file being imported: its column names, its chunks, and where a record is in it."""

    text_only = False  # CSV: every value is text (numbers are read where a number is needed)
    unit = "line"

    def __init__(self, path: Path, chunk_rows: int) -> None:
        self.path = path
        self.name = path.name
        self.chunk_rows = chunk_rows
        self.columns: list[str] = []
        self.total_rows: int | None = None

    def chunks(self) -> Iterator[Chunk]:
        raise NotImplementedError

    def locate(self, indexes: list[int]) -> dict[int, int]:
        """1-based line (or row) numbers of these records."""
        return {i: i + 1 for i in indexes}

    def where(self, number: int | None, column: str | None = None) -> str:
        text = f"{self.name} {self.unit} {number}" if number is not None else self.name
        return f"{text} column {column}" if column else text

    def close(self) -> None:
        """Release what reading held open."""


def _text_stream(path: Path, encoding: str) -> io.TextIOWrapper:
    raw = pa.input_stream(str(path), compression="detect")
    return io.TextIOWrapper(raw, encoding="utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding,
                            newline="")


# CSV --------------------------------------------------------------------------------------------


class CsvSource(Source):
    text_only = True

    def __init__(self, path: Path, chunk_rows: int, encoding: str) -> None:
        super().__init__(path, chunk_rows)
        self.encoding = encoding
        self.delimiter = ","
        self.columns = self._header()
        self._invalid = 0
        self._scanner: _CsvScanner | None = None

    def _header(self) -> list[str]:
        try:
            with _text_stream(self.path, self.encoding) as stream:
                self.delimiter = _delimiter(stream.readline())
            with _text_stream(self.path, self.encoding) as stream:  # opened again: a compressed one cannot seek
                header = next(csv.reader(stream, delimiter=self.delimiter), None)
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{self.name} is not {self.encoding} text ({exc.reason} at byte {exc.start}); "
                "give its encoding, e.g. --encoding gbk"
            ) from None
        if not header:
            raise SourceError(f"{self.name} is empty: the first line must name the columns")
        return checked_header(header, f"{self.name} line 1")

    def _on_invalid(self, _row: Any) -> str:
        self._invalid += 1
        return "skip"

    def chunks(self) -> Iterator[Chunk]:
        reader = pacsv.open_csv(
            str(self.path),
            read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES, encoding=self.encoding),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                             invalid_row_handler=self._on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(self.columns, pa.string()), strings_can_be_null=True
            ),
        )
        start, invalid_before = 0, 0
        pending: list[pa.RecordBatch] = []
        size = 0
        try:
            for batch in _batches(reader, self.name):
                pending.append(batch)
                size += batch.num_rows
                if size >= self.chunk_rows:
                    yield self._chunk(pending, start, invalid_before)
                    start, invalid_before, pending, size = start + size, self._invalid, [], 0
            if pending or self._invalid > invalid_before:
                yield self._chunk(pending, start, invalid_before)
        finally:
            reader.close()

    def _chunk(self, batches: list[pa.RecordBatch], start: int, invalid_before: int) -> Chunk:
        schema = pa.schema([pa.field(name, pa.string()) for name in self.columns])
        table = pa.Table.from_batches(batches, schema=schema)
        return Chunk(start=start, table=table, rejects=self._invalid_rows(invalid_before, self._invalid))

    def _invalid_rows(self, first: int, end: int) -> list[Reject]:
        if first == end:
            return []
        found = self.scanner().invalid(first, end)
        expected = len(self.columns)
        return [
            Reject(None, None, f"has {len(fields)} fields but the header has {expected}; "
                   "check the delimiters and quotes of this line", _row_text(fields), self.where(line))
            for line, fields in found
        ]

    def scanner(self) -> _CsvScanner:
        if self._scanner is None:
            self._scanner = _CsvScanner(self.path, self.encoding, len(self.columns), self.delimiter)
        return self._scanner

    def locate(self, indexes: list[int]) -> dict[int, int]:
        return self.scanner().lines(indexes)

    def close(self) -> None:
        if self._scanner is not None:
            self._scanner.close()


def _delimiter(header: str) -> str:
    """A comma, unless the header line has none and has semicolons (Excel in many European locales) or tabs
    (a tab-separated export): then that."""
    if "," in header:
        return ","
    return max((";", "\t"), key=header.count) if (";" in header or "\t" in header) else ","


class _CsvScanner:
    """Finds the lines of records, reading the file once, forward, and only as far as asked.

    Used only when something must be reported: the fast reader does not know line numbers, and a quoted
    value may span lines.
    """

    def __init__(self, path: Path, encoding: str, columns: int, delimiter: str = ",") -> None:
        self._stream = _text_stream(path, encoding)
        self._reader = csv.reader(self._stream, delimiter=delimiter)
        self._columns = columns
        next(self._reader, None)  # the header
        self._last_line = self._reader.line_num
        self._bad = 0
        self._lines = array("q")  # line of each record with the right number of fields, in order
        self._bad_rows: dict[int, tuple[int, list[str]]] = {}

    def _advance(self) -> bool:
        try:
            fields = next(self._reader)
        except StopIteration:
            return False
        line = self._last_line + 1
        self._last_line = self._reader.line_num
        if not fields:
            return True
        if len(fields) == self._columns:
            self._lines.append(line)
        else:
            self._bad_rows[self._bad] = (line, fields)
            self._bad += 1
        return True

    def lines(self, indexes: list[int]) -> dict[int, int]:
        if indexes:
            target = max(indexes)
            while len(self._lines) <= target and self._advance():
                pass
        known = len(self._lines)
        return {i: self._lines[i] if i < known else i + 2 for i in indexes}

    def invalid(self, first: int, end: int) -> list[tuple[int, list[str]]]:
        while self._bad < end and self._advance():
            pass
        return [self._bad_rows.pop(i, (0, [])) for i in range(first, end)]

    def close(self) -> None:
        self._stream.close()


def _row_text(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


# JSON Lines -------------------------------------------------------------------------------------


class JsonLinesSource(Source):
    """pyarrow reads JSON Lines with one type per field. When it cannot (a field that is a number in one
    line and text in another, or a line that is not JSON), the rest of the file is read line by line and
    its rows keep their values as they are."""

    def __init__(self, path: Path, chunk_rows: int, encoding: str) -> None:
        super().__init__(path, chunk_rows)
        self.encoding = encoding
        self._line_of: dict[int, int] = {}  # rows read line by line know their line
        self._nonblank: _LineCounter | None = None
        self._text_fields: list[str] = []
        self.columns = self._peek_columns()

    def _peek_columns(self) -> list[str]:
        """Field names of the first lines, and which of them hold only text there: those are read as text, so
        that pyarrow does not turn ISO times into timestamps (it drops their UTC offsets, and a time without
        an offset would then be indistinguishable from one in UTC)."""
        names: dict[str, None] = {}
        text: dict[str, bool] = {}
        with _text_stream(self.path, self.encoding) as stream:
            for count, line in enumerate(stream):
                if count >= 1000:
                    break
                try:
                    value = orjson.loads(line) if line.strip() else None
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    names.update(dict.fromkeys(value))
                    for key, item in value.items():
                        if item is not None:
                            text[key] = text.get(key, True) and isinstance(item, str)
        self._text_fields = [name for name, only_text in text.items() if only_text]
        return list(names)

    def chunks(self) -> Iterator[Chunk]:
        done = 0
        try:
            reader = pajson.open_json(
                str(self.path), read_options=pajson.ReadOptions(block_size=_BLOCK_BYTES),
                parse_options=pajson.ParseOptions(
                    newlines_in_values=False,
                    explicit_schema=pa.schema([(name, pa.string()) for name in self._text_fields]),
                ),
            ) if self.encoding.lower() in ("utf-8", "utf8") else None
            if reader is not None:
                pending: list[pa.RecordBatch] = []
                size = 0
                for batch in reader:
                    pending.append(batch)
                    size += batch.num_rows
                    if size >= self.chunk_rows:
                        yield Chunk(start=done, table=_concat(pending))
                        done, pending, size = done + size, [], 0
                if pending:
                    yield Chunk(start=done, table=_concat(pending))
                return
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # read the rest line by line (rows of the failed block were not handed out)
        yield from self._line_chunks(done)

    def _line_chunks(self, skip: int) -> Iterator[Chunk]:
        rows: list[dict[str, Any]] = []
        rejects: list[Reject] = []
        index = start = skip
        seen = 0
        with _text_stream(self.path, self.encoding) as stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                seen += 1
                if seen <= skip:
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    rejects.append(Reject(None, None, f"is not valid JSON ({exc.msg} at column {exc.colno})",
                                          line.rstrip("\r\n")[:65536], self.where(number)))
                    continue
                if not isinstance(value, dict):
                    rejects.append(Reject(None, None, "must be a JSON object {...}, one per line",
                                          line.rstrip("\r\n")[:65536], self.where(number)))
                    continue
                self._line_of[index] = number
                rows.append(value)
                index += 1
                if len(rows) >= self.chunk_rows:
                    yield Chunk(start=start, rows=rows, rejects=rejects)
                    rows, rejects, start = [], [], index
        if rows or rejects:
            yield Chunk(start=start, rows=rows, rejects=rejects)

    def locate(self, indexes: list[int]) -> dict[int, int]:
        out = {i: self._line_of[i] for i in indexes if i in self._line_of}
        rest = [i for i in indexes if i not in out]
        if rest:
            if self._nonblank is None:
                self._nonblank = _LineCounter(self.path, self.encoding)
            out.update(self._nonblank.lines(rest))
        return out

    def close(self) -> None:
        if self._nonblank is not None:
            self._nonblank.close()


class _LineCounter:
    """Line numbers of the n-th non-blank lines (pyarrow skips blank lines in JSON Lines)."""

    def __init__(self, path: Path, encoding: str) -> None:
        self._stream = _text_stream(path, encoding)
        self._line = 0
        self._records = 0
        self._lines: dict[int, int] = {}

    def lines(self, indexes: list[int]) -> dict[int, int]:
        target = max(indexes)
        while self._records <= target:
            text = self._stream.readline()
            if not text:
                break
            self._line += 1
            if text.strip():
                self._lines[self._records] = self._line
                self._records += 1
        return {i: self._lines.get(i, i + 1) for i in indexes}

    def close(self) -> None:
        self._stream.close()


# Parquet ----------------------------------------------------------------------------------------


class ParquetSource(Source):
    unit = "row"

    def __init__(self, path: Path, chunk_rows: int) -> None:
        super().__init__(path, chunk_rows)
        try:
            self._file = pq.ParquetFile(str(path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(f"{self.name} is not a Parquet file ({exc})") from None
        self.columns = list(self._file.schema_arrow.names)
        self.total_rows = self._file.metadata.num_rows

    def chunks(self) -> Iterator[Chunk]:
        start = 0
        for batch in self._file.iter_batches(batch_size=self.chunk_rows):
            yield Chunk(start=start, table=pa.Table.from_batches([batch]))
            start += batch.num_rows

    def close(self) -> None:
        self._file.close()


def _batches(reader: Any, name: str) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise SourceError(f"{name} cannot be read: {exc}; if it is not UTF-8, give --encoding") from None
        yield batch


def _concat(batches: list[pa.RecordBatch]) -> pa.Table:
    return pa.Table.from_batches(batches) if len({b.schema for b in batches}) == 1 else pa.concat_tables(
        [pa.Table.from_batches([b]) for b in batches], promote_options="permissive"
    )
