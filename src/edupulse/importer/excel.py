"""Excel workbooks (.xlsx) as an import source: the first worksheet, its first row naming the columns, one record
per row below it. Order systems and CRMs export .xlsx more often than anything else, so it is read as it is,
without a round trip through CSV and its encodings.

Cells keep their types (numbers, booleans, dates and times); a date and time without a zone is a wall-clock time
and is read in the project's time zone, as an ISO 8601 text without an offset is. A formula gives the value Excel
saved with the file. Rows without any value are skipped. Records are numbered from 0 in sheet order, and a
record is found in the sheet by its row number ("row 12", the header being row 1).

openpyxl is the `excel` extra, imported when a workbook is opened."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edupulse.importer.sources import COMPRESSED, Chunk, Source, SourceError, checked_header

EXTRA = "the excel extra (pip install 'edupulse[excel]'; make install has it)"


def open_workbook(path: Path, chunk_rows: int) -> XlsxSource:
    if not path.is_file():
        raise SourceError(f"{path} does not exist or is not a file")
    if path.suffix.lower() in COMPRESSED:
        raise SourceError(f"{path.name}: a workbook is compressed already; give the .xlsx file itself")
    return XlsxSource(path, chunk_rows)


class XlsxSource(Source):
    unit = "row"

    def __init__(self, path: Path, chunk_rows: int) -> None:
        super().__init__(path, chunk_rows)
        try:
            import openpyxl
        except ImportError:
            raise SourceError(f"reading {self.name} needs openpyxl, {EXTRA}") from None
        try:
            self._book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise SourceError(f"{self.name} is not an Excel workbook (.xlsx) ({exc}); an old .xls must be saved "
                              "as .xlsx or CSV first") from None
        try:
            if not self._book.worksheets:
                raise SourceError(f"{self.name} has no worksheet")
            self._sheet = self._book.worksheets[0]
            self._rows = self._sheet.iter_rows(values_only=True)
            self.columns = self._header(next(self._rows, None))
        except BaseException:
            self.close()
            raise
        self._row_numbers: dict[int, int] = {}  # record number -> sheet row, where rows were skipped

    def _header(self, row: tuple[Any, ...] | None) -> list[str]:
        where = f"{self.name} sheet {self._sheet.title!r} row 1"
        if not row or all(cell is None for cell in row):
            raise SourceError(f"{where} is empty: the first row must name the columns")
        names = [None if cell is None else str(cell).strip() for cell in row]
        while names and names[-1] is None:  # trailing empty cells of a wider sheet
            names.pop()
        return checked_header(names, where)

    def chunks(self) -> Iterator[Chunk]:
        width = len(self.columns)
        rows: list[dict[str, Any]] = []
        start = record = 0
        for sheet_row, cells in enumerate(self._rows, start=2):
            values = list(cells[:width]) + [None] * (width - len(cells))
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            if sheet_row != record + 2:
                self._row_numbers[record] = sheet_row
            rows.append(dict(zip(self.columns, values, strict=True)))
            record += 1
            if len(rows) >= self.chunk_rows:
                yield Chunk(start=start, rows=rows)
                start, rows = record, []
        if rows:
            yield Chunk(start=start, rows=rows)
        self.total_rows = record

    def locate(self, indexes: list[int]) -> dict[int, int]:
        """Sheet row numbers of these records (the header is row 1)."""
        return {i: self._row_numbers.get(i, i + 2) for i in indexes}

    def close(self) -> None:
        rows = getattr(self, "_rows", None)
        if rows is not None:
            rows.close()  # the sheet's stream holds the file open until its reader is closed
        self._book.close()
