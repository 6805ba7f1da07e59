"""Writes the pinned wire files of tests/queries/test_wire.py: for every case of wire_cases.py its response as
sent (`wire/<case>.json`, timings zeroed and the SQL texts replaced by their count) and its CSV
(`wire/<case>.csv`); a refused query as its status and error.

    .venv/bin/python tests/queries/wire_capture.py     # only when a change of the wire is intended
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from edupulse.queries.errors import QueryError  # noqa: E402
from wire_cases import ERRORS, NOW, build_wire_school, cases, refusal, wire  # noqa: E402

WIRE = HERE / "wire"


def main() -> None:
    WIRE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as root:
        school = build_wire_school(Path(root))
        try:
            for name, query in {**cases(), **ERRORS}.items():
                try:
                    answer = school.service.run(school.project, query, now=NOW)
                except QueryError as exc:
                    (WIRE / f"{name}.json").write_bytes(refusal(exc) + b"\n")
                    continue
                (WIRE / f"{name}.json").write_bytes(wire(answer) + b"\n")
                (WIRE / f"{name}.csv").write_text(answer.to_csv(), encoding="utf-8")
        finally:
            school.platform.close()


if __name__ == "__main__":
    main()
