"""What a simulation is asked to do, and what it reports when it is done."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

MAX_DAYS = 3650
MIN_DAYS = 14


class SimulationError(ValueError):
    """A simulation that cannot run as asked, with a reason a person can act on."""


@dataclass(frozen=True)
class SimulationConfig:
    """Inputs of a simulation. The same inputs (and project time zone) give byte-identical records and truth."""

    seed: int
    learners: int
    days: int = 120
    end: dt.date | None = None  # the period is the `days` whole days before this date; default today
    truth_path: Path | None = None  # default <data-dir>/simulation-truth-<project>.json
    batch_size: int = 5000  # records per ingestion call

    def check(self) -> None:
        if self.learners < 1:
            raise SimulationError("--learners must be at least 1")
        if not MIN_DAYS <= self.days <= MAX_DAYS:
            raise SimulationError(f"--days must be between {MIN_DAYS} and {MAX_DAYS}, got {self.days}")
        if not 1 <= self.batch_size <= 10_000:
            raise SimulationError("batch size must be between 1 and 10000 records")

    def resolved_end(self, tz: ZoneInfo, max_past_days: int | None = None, today: dt.date | None = None) -> dt.date:
        """The end date; refuses one after today (events would lie in the future) and a period starting
        further back than the ingestion accepts."""
        today = today or dt.datetime.now(tz).date()
        end = self.end or today
        if end > today:
            raise SimulationError(
                f"--end {end.isoformat()} is after today ({today.isoformat()} in {tz.key}); "
                "simulated events must lie in the past"
            )
        start = end - dt.timedelta(days=self.days)
        if max_past_days is not None and (today - start).days >= max_past_days:
            raise SimulationError(
                f"the period would start on {start.isoformat()}, more than {max_past_days} days ago, "
                "which ingestion refuses; choose a later --end or fewer --days"
            )
        return end


@dataclass
class SimulationSummary:
    """What was written: counts for the person who ran it, and where the ground truth is."""

    project: str
    seed: int
    learners: int
    start: dt.date
    end: dt.date
    events: int
    records: int
    rejected: int
    events_by_name: dict[str, int]
    persons: int
    orders: int
    revenue: float
    spend_rows: int
    truth_path: Path | None
    seconds: float = 0.0
    rejections: list[str] = field(default_factory=list)  # the first few reasons, if any

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def run_tag(seed: int, learners: int, days: int, end: dt.date) -> str:
    """Prefix of every event id of one run: reruns with the same inputs reuse ids and are deduplicated."""
    text = f"{seed}:{learners}:{days}:{end.isoformat()}"
    return "sim" + hashlib.blake2b(text.encode(), digest_size=4).hexdigest() + "-"


def default_truth_path(data_dir: Path, project: str) -> Path:
    safe = re.sub(r"[^\w.-]+", "-", project).strip("-.") or "project"
    return data_dir / f"simulation-truth-{safe}.json"
