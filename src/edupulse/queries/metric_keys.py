"""A catalogue metric's raw counts per bucket and per breakdown value, read back from one statement each: the
cohort counts of metric_cohorts.cohort_tree and the ad spend of the spend table (kept by day, channel and
campaign), both keyed by the breakdown values, and the largest keys kept with the rest added up as `$other`
(counts and spend add up, ratios do not: they are taken after the keys are folded).

A key is the tuple of breakdown values (`()` without a breakdown); a missing value is `$none`, as in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from edupulse.queries.common import OTHER, Granularity
from edupulse.queries.dialect import wall_clock
from edupulse.queries.errors import QueryError
from edupulse.queries.metric_cohorts import NONE, ChannelAttribution
from edupulse.queries.trends import TrendsPeriod, bucket_label

Key = tuple[str, ...]

# The columns of the spend table a breakdown can name: ad spend is imported per date, channel and campaign.
SPEND_COLUMNS = {"channel": "channel", "event.channel": "channel", "campaign": "campaign",
                 "event.campaign": "campaign"}


@dataclass(frozen=True)
class CohortCounts:
    """A cohort metric's counts per bucket of a period and over the whole period (metric_cohorts.py)."""

    entries: list[float]
    hits: list[float]
    values: list[float]
    total: tuple[float, float, float]  # entries, hits, values over the whole period

    @classmethod
    def empty(cls, width: int) -> CohortCounts:
        return cls([0.0] * width, [0.0] * width, [0.0] * width, (0.0, 0.0, 0.0))

    def __add__(self, other: CohortCounts) -> CohortCounts:
        return CohortCounts(_add(self.entries, other.entries), _add(self.hits, other.hits),
                            _add(self.values, other.values),
                            (self.total[0] + other.total[0], self.total[1] + other.total[1],
                             self.total[2] + other.total[2]))


@dataclass(frozen=True)
class SpendCounts:
    """Ad spend per bucket of a period and in total."""

    data: list[float]
    total: float

    @classmethod
    def empty(cls, width: int) -> SpendCounts:
        return cls([0.0] * width, 0.0)

    def __add__(self, other: SpendCounts) -> SpendCounts:
        return SpendCounts(_add(self.data, other.data), self.total + other.total)


def _add(a: list[float], b: list[float]) -> list[float]:
    return [x + y for x, y in zip(a, b, strict=True)]


def spend_columns(properties: Sequence[str], attribution: ChannelAttribution | None, where: str) -> tuple[str, ...]:
    """The spend table's columns for breakdown properties (a metric with a channel attribution reads its own
    channel property as the spend's channel); QueryError when ad spend is not kept by one of them."""
    columns = []
    for prop in properties:
        if attribution is not None and prop in (attribution.property, f"event.{attribution.property}"):
            columns.append("channel")
        elif prop in SPEND_COLUMNS:
            columns.append(SPEND_COLUMNS[prop])
        else:
            raise QueryError(f"{where} uses ad spend, which is kept by channel and campaign only: it cannot be broken "
                             f"down by {prop!r}; break it down by channel or campaign")
    return tuple(columns)


def spend_tree(project_id: int, start: dt.date, end: dt.date, channel: str | None = None,
               by: Sequence[str] = ()) -> exp.Select:
    """Rows (date, key columns..., cost): ad spend per day of the project (of one channel) from `start` to `end`
    (both included), per value of the spend columns `by` (channel, campaign; an empty campaign is `$none`)."""
    c = exp.column
    where = [c("project_id").eq(exp.Literal.number(project_id)),
             exp.Between(this=c("date"), low=_date(start), high=_date(end))]
    if channel is not None:
        where.append(c("channel").eq(exp.Literal.string(channel)))
    keys = [exp.func("coalesce", exp.func("nullif", c(column), exp.Literal.string("")), exp.Literal.string(NONE))
            .as_(f"s{i}") for i, column in enumerate(by)]
    tree = exp.select(c("date"), *keys, exp.Sum(this=c("cost")), copy=False).from_("spend", copy=False).where(
        exp.and_(*where), copy=False)
    return tree.group_by(c("date"), *[c(f"s{i}") for i in range(len(by))], copy=False)


def spend_by_bucket(rows: Iterable[tuple[Any, ...]], period: TrendsPeriod, granularity: Granularity,
                    width: int = 0) -> dict[Key, SpendCounts]:
    """The rows of `spend_tree` added up per key and bucket of a period (a day's spend goes to the bucket of its
    date: spend is kept by day)."""
    position = {label: i for i, label in enumerate(period.buckets)}
    out: dict[Key, SpendCounts] = {}
    for row in rows:
        day, key, cost = row[0], tuple(str(v) for v in row[1:1 + width]), row[1 + width]
        found = position.get(_bucket_label(day, granularity))
        if found is None:
            continue
        counts = out.setdefault(key, SpendCounts.empty(len(period.buckets)))
        counts.data[found] += float(cost)
    out = {key: SpendCounts(c.data, float(sum(c.data))) for key, c in out.items()}
    if not width:
        out.setdefault((), SpendCounts.empty(len(period.buckets)))
    return out


def cohort_counts(rows: Iterable[tuple[Any, ...]], period: TrendsPeriod, granularity: Granularity,
                  width: int = 0) -> dict[Key, CohortCounts]:
    """The rows of metric_cohorts.cohort_tree per key and bucket of a period (a bucket without entries: 0)."""
    position = {label: i for i, label in enumerate(period.buckets)}
    size = len(period.buckets)
    out: dict[Key, CohortCounts] = {}
    for row in rows:
        bucket, whole, n, hit, value = row[:5]
        key = tuple(str(v) for v in row[5:5 + width])
        counts = out.setdefault(key, CohortCounts.empty(size))
        numbers = (float(n or 0), float(hit or 0), float(value or 0))
        if whole:
            out[key] = CohortCounts(counts.entries, counts.hits, counts.values, numbers)
            continue
        found = position.get(bucket_label(wall_clock(bucket), granularity))
        if found is not None:
            counts.entries[found], counts.hits[found], counts.values[found] = numbers
    if not width:
        out.setdefault((), CohortCounts.empty(size))
    return out


def top_keys(sizes: dict[Key, float], limit: int) -> tuple[list[Key], list[Key]]:
    """The `limit` keys of the largest sizes (then by key), and the rest (to be added up as `$other`)."""
    ordered = sorted(sizes, key=lambda k: (-sizes[k], k))
    return ordered[:limit], ordered[limit:]


def other_key(width: int) -> Key:
    return (OTHER,) * width


def shown(key: Key) -> list[Any]:
    """A key as a result's breakdown values ($none is null)."""
    return [None if v == NONE else v for v in key]


def _date(day: dt.date) -> exp.Expr:
    return exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.build("DATE"))


def _bucket_label(day: dt.date, granularity: Granularity) -> str:
    if granularity is Granularity.week:
        day = day - dt.timedelta(days=day.weekday())
    elif granularity is Granularity.month:
        day = day.replace(day=1)
    return day.isoformat()
