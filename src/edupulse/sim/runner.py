"""Run a simulation: plan the world, emit it through the ingestion write path, write spend and truth."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from edupulse.meta.db import ProjectInfo
from edupulse.runtime import Platform
from edupulse.sim.acquisition import Acquisition, plan_spend
from edupulse.sim.classes import ClassRegistry
from edupulse.sim.clock import Clock
from edupulse.sim.config import (
    SimulationConfig,
    SimulationError,
    SimulationSummary,
    default_truth_path,
    run_tag,
)
from edupulse.sim.emit import Emitter, Record, RecordSink
from edupulse.sim.institutions import emit_institutions, institution_count
from edupulse.sim.leads import IdentityValues, plan_leads
from edupulse.sim.learning import Learning
from edupulse.sim.orders import Orders
from edupulse.sim.rand import stream
from edupulse.sim.schools import emit_schools, school_count
from edupulse.sim.truth import WorldParts, build_truth, write_truth
from edupulse.store.base import WriteBatch

# progress(phase, done, total): phase "generate" counts learners, institutions and schools; "load" counts records
Progress = Callable[[str, int, int], None]
MAX_REJECTED = 1000
SpendRows = list[tuple[dt.date, str, str, float, int, int]]
SPEND_SCHEMA = pa.schema([
    ("project_id", pa.int32()), ("date", pa.date32()), ("channel", pa.string()), ("campaign", pa.string()),
    ("cost", pa.float64()), ("impressions", pa.int64()), ("clicks", pa.int64()),
])


@dataclass
class World:
    """A generated world: its ground truth and its ad spend (events went to the sink)."""

    truth: dict[str, Any]
    spend: SpendRows
    events: int
    records: int
    persons: int
    start: dt.date
    end: dt.date


def _noop(phase: str, done: int, total: int) -> None:
    return None


def generate(
    config: SimulationConfig, end: dt.date, tz: ZoneInfo, sink: RecordSink, progress: Progress | None = None
) -> World:
    """Emit the whole world as native records to `sink`; pure: same arguments, same records and truth."""
    config.check()
    report = progress or _noop
    seed = config.seed
    clock = Clock(end, config.days, tz)
    em = Emitter(run_tag(seed, config.learners, config.days, end), clock.start_ms, clock.end_ms,
                 config.batch_size, sink)
    leads, skills = plan_leads(config.learners, seed, clock, stream(seed, "leads"))
    spend: SpendRows = [
        (clock.date(day), channel, campaign, cost, impressions, clicks)
        for day, channel, campaign, cost, impressions, clicks in plan_spend(leads, config.days, stream(seed, "spend"))
    ]
    orders = Orders(em, stream(seed, "orders"))
    classes = ClassRegistry(clock, em, stream(seed, "classes"))
    classes.emit_courses()
    acquisition = Acquisition(clock, em, stream(seed, "acquisition"), orders, IdentityValues(seed), leads)
    learning = Learning(clock, em, stream(seed, "learning"), orders, classes)
    n_institutions, n_schools = institution_count(config.learners), school_count(config.learners)
    total = len(leads) + n_institutions + n_schools
    for lead in leads:
        first = acquisition.emit(lead)
        if first is not None:
            learning.serve(lead, first)
        if lead.idx % 250 == 0:
            report("generate", lead.idx, total)
    institutions, staff = emit_institutions(n_institutions, clock, em, stream(seed, "institutions"))
    report("generate", len(leads) + n_institutions, total)
    schools, school_people = emit_schools(n_schools, clock, em, stream(seed, "schools"))
    em.flush()
    report("generate", total, total)
    parts = WorldParts(
        config={"seed": seed, "learners": config.learners, "days": config.days, "start": clock.start_date.isoformat(),
                "end": end.isoformat(), "end_exclusive": True, "timezone": tz.key},
        emitter=em, leads=leads, advisor_skills=skills, visitors=acquisition.visitors, book=orders.book,
        learning=learning.facts, teacher_factors=classes.teacher_factor, classes=len(classes.classes), spend=spend,
        institutions=institutions, staff_persons=staff, schools=schools, school_persons=school_people,
    )
    return World(build_truth(parts), spend, em.events, em.records, parts.persons, clock.start_date, end)


def spend_table(project_id: int, rows: SpendRows) -> pa.Table:
    """The rows as the store's `spend` table: project_id, date, channel, campaign, cost, impressions, clicks."""
    arrays = [pa.array([project_id] * len(rows), pa.int32())]
    for i, spec in enumerate(list(SPEND_SCHEMA)[1:]):
        arrays.append(pa.array([row[i] for row in rows], spec.type))
    return pa.Table.from_arrays(arrays, schema=SPEND_SCHEMA)


def simulate(
    platform: Platform, project: ProjectInfo, config: SimulationConfig, progress: Progress | None = None
) -> SimulationSummary:
    """Simulate an education organization into `project` through the ingestion write path.

    Records go through `platform.ingestor.ingest` in batches, ad spend straight into the store, and the
    ground truth to `config.truth_path` (default `<data-dir>/simulation-truth-<project>.json`). Returns
    once everything is loaded into the store.
    """
    started = time.perf_counter()
    tz = ZoneInfo(project.timezone)
    end = config.resolved_end(tz, platform.settings.ingest.max_past_days)
    rejections: list[str] = []
    rejected = 0
    loaded_before = platform.loader.loaded_records if platform.loader is not None else 0

    def ingest(batch: list[Record]) -> None:
        nonlocal rejected
        outcome = platform.ingestor.ingest(project, batch, source="simulator")
        if outcome.rejected:
            rejected += outcome.rejected
            for result in outcome.results:
                if result["status"] == "rejected" and len(rejections) < 5:
                    rejections.append(f"{result['field']}: {result['reason']}")
            if rejected > MAX_REJECTED:  # something is wrong with every record: do not flood the quarantine
                raise SimulationError(f"ingestion refused {rejected} simulated records: " + "; ".join(rejections))

    world = generate(config, end, tz, ingest, progress)
    platform.store.write(WriteBatch(spend=spend_table(project.id, world.spend)))
    _wait_for_loader(platform, world.records, loaded_before, progress)
    truth_path = config.truth_path or default_truth_path(platform.settings.data_dir, project.name)
    write_truth(world.truth, truth_path)
    summary = world.truth["summary"]
    return SimulationSummary(
        project=project.name, seed=config.seed, learners=config.learners, start=world.start, end=world.end,
        events=world.events, records=world.records, rejected=rejected, events_by_name=summary["events_by_name"],
        persons=world.persons, orders=summary["orders"], revenue=summary["revenue"], spend_rows=len(world.spend),
        truth_path=truth_path, seconds=time.perf_counter() - started, rejections=rejections,
    )


def _wait_for_loader(platform: Platform, records: int, loaded_before: int, progress: Progress | None) -> None:
    loader = platform.loader
    if loader is None:
        raise SimulationError("the platform is not open")
    target = platform.wal.durable
    if progress is not None:
        while not loader.wait_for(target, timeout=0.25):
            progress("load", min(loader.loaded_records - loaded_before, records), records)
    try:
        # generous: the loader moves tens of thousands of records a second
        platform.flush(timeout=max(120.0, records / 2000))
    except TimeoutError:
        raise SimulationError(
            f"the records are logged but not all loaded into the store yet ({loader.last_error or 'still loading'}); "
            "they will be loaded the next time the data directory is opened"
        ) from None
    if progress is not None:
        progress("load", records, records)
