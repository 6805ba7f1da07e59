"""Uploaded tag values: a CSV of identity and value (a header line, then `identity,value` rows), e.g. a CRM's own
lead grade. Every bad line is reported with its number and reason and the good lines are kept; identities
are matched to persons in the store (after merges); `incremental` keeps units the file does not name,
`overwrite` removes their values."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

MAX_VALUE = 1000


@dataclass
class ParsedUpload:
    rows: list[tuple[int, str, str]] = field(default_factory=list)  # (line, identity, value)
    problems: list[str] = field(default_factory=list)
    numbers: dict[int, float] = field(default_factory=dict)  # line -> the number of a number or time value

    def table(self) -> pa.Table:
        lines, ids, values = (zip(*self.rows, strict=True) if self.rows else ((), (), ()))
        return pa.table({"line": pa.array(lines, pa.int64()), "id_value": pa.array(ids, pa.string()),
                         "value": pa.array(values, pa.string()),
                         "number": pa.array([self.numbers.get(line) for line in lines], pa.float64())})


def parse_csv(text: str, value_type: str = "string") -> ParsedUpload:
    """The good rows and a reason for each bad line (line numbers as in the file, the header is line 1). Values
    are read as of `value_type` (typed_value): a number or time keeps its number, a value not of the type is a
    bad line."""
    out = ParsedUpload()
    reader = csv.reader(io.StringIO(text))
    seen: dict[str, int] = {}
    for index, row in enumerate(reader, start=1):
        if index == 1:
            continue  # the header
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            out.problems.append(f"line {index}: expected 2 columns (identity, value), found {len(row)}")
            continue
        identity, value = row[0].strip(), row[1].strip()
        if not identity:
            out.problems.append(f"line {index}: the identity is empty")
        elif not value:
            out.problems.append(f"line {index}: the value is empty")
        elif len(value) > MAX_VALUE:
            out.problems.append(f"line {index}: the value is longer than {MAX_VALUE} characters")
        elif identity in seen:
            out.problems.append(f"line {index}: {identity!r} was given already on line {seen[identity]}")
        else:
            try:
                value, number = typed_value(value_type, value)
            except ValueError as exc:
                out.problems.append(f"line {index}: {exc}")
                continue
            seen[identity] = index
            out.rows.append((index, identity, value))
            if number is not None:
                out.numbers[index] = number
    return out


def upload_select(project_id: int, id_type: str, person: bool) -> str:
    """The values of the staged rows (table `tag_upload`) by person (identities of `id_type`, after merges) or
    by group key. Both engines read this SQL alike (a LEFT JOIN of the overrides gives 0 or NULL)."""
    if not person:
        return ("SELECT id_value AS unit, value, number, NULL AS detail "
                "FROM tag_upload")
    kind = id_type.replace("'", "''")
    # two identities of one person: the greater value
    return (f"SELECT CASE WHEN o.person_id > 0 THEN o.person_id ELSE i.person_id END AS unit, max(u.value) AS value, "
            f"max(u.number) AS number, NULL AS detail FROM tag_upload AS u "
            f"JOIN identities AS i ON i.project_id = {int(project_id)} AND i.id_type = '{kind}' "
            f"AND i.id_value = u.id_value LEFT JOIN person_overrides AS o ON o.project_id = {int(project_id)} "
            f"AND o.old_person_id = i.person_id GROUP BY CASE WHEN o.person_id > 0 THEN o.person_id ELSE "
            f"i.person_id END")


def typed_value(value_type: str, value: Any) -> tuple[str, float | None]:
    """A value given by hand (a form, a journey) as stored for a tag of `value_type`: (value text, number);
    ValueError with the reason when it is not one. Numbers and times keep their number (times in seconds since
    1970, UTC), booleans are `true` or `false`."""
    if value is None or isinstance(value, dict | list):
        raise ValueError("the value must be a single text, number or true/false")
    text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip()
    if not text:
        raise ValueError("the value is empty")
    if len(text) > MAX_VALUE:
        raise ValueError(f"the value is longer than {MAX_VALUE} characters")
    if value_type == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number (the tag's values are numbers)") from None
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not a finite number")
        return (str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)), number
    if value_type == "boolean":
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return "true", None
        if lowered in ("false", "0", "no"):
            return "false", None
        raise ValueError(f"{text!r} is not true or false (the tag's values are booleans)")
    if value_type == "time":
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is not a time in ISO 8601, e.g. 2026-12-07T09:00:00+08:00") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        moment = moment.astimezone(dt.UTC)
        return moment.isoformat(), moment.timestamp()
    return text, None
