"""Uploaded tag values: a CSV of identity and value (a header line, then `identity,value` rows), e.g. a CRM's own
lead grade. Every bad line is reported with its number and reason and the good lines are kept; identities
are matched to persons in the store (after merges); `incremental` keeps units the file does not name,
`overwrite` removes their values."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import pyarrow as pa

MAX_VALUE = 1000


@dataclass
class ParsedUpload:
    rows: list[tuple[int, str, str]] = field(default_factory=list)  # (line, identity, value)
    problems: list[str] = field(default_factory=list)

    def table(self) -> pa.Table:
        lines, ids, values = (zip(*self.rows, strict=True) if self.rows else ((), (), ()))
        return pa.table({"line": pa.array(lines, pa.int64()), "id_value": pa.array(ids, pa.string()),
                         "value": pa.array(values, pa.string())})


def parse_csv(text: str) -> ParsedUpload:
    """The good rows and a reason for each bad line (line numbers as in the file, the header is line 1)."""
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
            seen[identity] = index
            out.rows.append((index, identity, value))
    return out


def upload_select(project_id: int, id_type: str, person: bool) -> str:
    """The values of the staged rows (table `tag_upload`) by person (identities of `id_type`, after merges) or
    by group key. Both engines read this SQL alike (a LEFT JOIN of the overrides gives 0 or NULL)."""
    if not person:
        return ("SELECT id_value AS unit, value, CAST(NULL AS DOUBLE) AS number, CAST(NULL AS VARCHAR) AS detail "
                "FROM tag_upload")
    kind = id_type.replace("'", "''")
    # two identities of one person: the greater value
    return (f"SELECT CASE WHEN o.person_id > 0 THEN o.person_id ELSE i.person_id END AS unit, max(u.value) AS value, "
            f"CAST(NULL AS DOUBLE) AS number, CAST(NULL AS VARCHAR) AS detail FROM tag_upload AS u "
            f"JOIN identities AS i ON i.project_id = {int(project_id)} AND i.id_type = '{kind}' "
            f"AND i.id_value = u.id_value LEFT JOIN person_overrides AS o ON o.project_id = {int(project_id)} "
            f"AND o.old_person_id = i.person_id GROUP BY CASE WHEN o.person_id > 0 THEN o.person_id ELSE "
            f"i.person_id END")
