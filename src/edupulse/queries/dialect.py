"""What differs between the engines, as small tables of functions from trees to trees.

Every analysis model builds one sqlglot tree and renders it for DuckDB or ClickHouse; the few places where
the engines differ (time arithmetic, JSON, percentiles, integer division) are looked up here, never
branched on in the models.

Times are compared as UTC instants. Bucketing into the project's time zone is integer arithmetic on
microseconds since 1970 shifted by the zone's UTC offset ("local microseconds"): no per-row time-zone
database look-ups (they cost about ten times the rest of a scan), the same results on both engines, and
daylight-saving changes handled by a CASE over the offsets in force during the queried range.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlglot import exp

Fn = Callable[..., exp.Expr]

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US


def _n(value: int | float) -> exp.Expr:
    return exp.Literal.number(value)


def _s(value: str) -> exp.Expr:
    return exp.Literal.string(value)


def paren(node: exp.Expr) -> exp.Expr:
    """Parenthesize an operator expression used as an operand (trees built by hand carry no precedence)."""
    return exp.Paren(this=node) if isinstance(node, exp.Binary) else node


def _duck_timestamp(moment: dt.datetime) -> exp.Expr:
    text = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return exp.cast(_s(text + "+00"), exp.DataType.build("TIMESTAMPTZ"))


def _ch_timestamp(moment: dt.datetime) -> exp.Expr:
    text = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return exp.func("toDateTime64", _s(text), _n(6), _s("UTC"))


def _duck_json_text(column: exp.Expr, name: str) -> exp.Expr:
    # A JSON pointer (RFC 6901) reaches any member name: no quoting rules of JSONPath to get wrong.
    pointer = "/" + name.replace("~", "~0").replace("/", "~1")
    return exp.func("json_extract_string", column, _s(pointer))


def _ch_json_text(column: exp.Expr, name: str) -> exp.Expr:
    # JSONExtractString gives '' for numbers and booleans; read their JSON text like DuckDB's ->> does.
    key = _s(name)
    raw = exp.func("JSONExtractRaw", column, key)
    return exp.If(
        this=exp.func("JSONType", column, key).eq(_s("String")),
        true=exp.func("JSONExtractString", column, key),
        false=exp.func("nullIf", exp.func("nullIf", raw, _s("")), _s("null")),
    )


def _duck_quantile(value: exp.Expr, q: float) -> exp.Expr:
    return exp.func("quantile_cont", value, _n(q))


def _ch_quantile(value: exp.Expr, q: float) -> exp.Expr:
    # quantileExactInclusive interpolates linearly between values, as DuckDB's quantile_cont does.
    return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[_n(q)], params=[value])


def _duck_month_start(local_us: exp.Expr) -> exp.Expr:
    return exp.func("epoch_us", exp.func("date_trunc", _s("month"), exp.func("make_timestamp", local_us)))


def _ch_month_start(local_us: exp.Expr) -> exp.Expr:
    month = exp.func("toStartOfMonth", exp.func("fromUnixTimestamp64Micro", local_us, _s("UTC")))
    seconds = exp.func("toInt64", exp.func("toUnixTimestamp", exp.func("toDateTime", month, _s("UTC"))))
    return paren(exp.Mul(this=seconds, expression=_n(SECOND_US)))


def _duck_month_number(local_us: exp.Expr) -> exp.Expr:
    moment = exp.Anonymous(this="make_timestamp", expressions=[local_us])
    return _months(exp.Anonymous(this="year", expressions=[moment]),
                   exp.Anonymous(this="month", expressions=[moment.copy()]))


def _ch_month_number(local_us: exp.Expr) -> exp.Expr:
    moment = exp.func("fromUnixTimestamp64Micro", local_us, _s("UTC"))
    return _months(exp.Anonymous(this="toYear", expressions=[moment]),
                   exp.Anonymous(this="toMonth", expressions=[moment.copy()]))


def _months(year: exp.Expr, month: exp.Expr) -> exp.Expr:
    # months since January 1970
    total = exp.Add(this=exp.Mul(this=year, expression=_n(12)), expression=month)
    return paren(exp.Sub(this=total, expression=_n(1970 * 12 + 1)))


@dataclass(frozen=True)
class Dialect:
    """One engine's spelling of the operations whose SQL differs."""

    name: str
    timestamp: Callable[[dt.datetime], exp.Expr]  # a UTC instant literal
    epoch_us: Fn  # microseconds since 1970 of a time column
    int_div: Fn  # integer division of non-negative integers
    month_start: Fn  # local microseconds -> local microseconds of the month's first midnight
    month_number: Fn  # local microseconds -> months since January 1970
    json_text: Callable[[exp.Expr, str], exp.Expr]  # a JSON member as text (numbers as their JSON text)
    to_double: Fn  # text or number -> double, NULL when not a number
    to_text: Fn
    strpos: Fn  # 1-based position of a substring, 0 when absent
    quantile: Callable[[exp.Expr, float], exp.Expr]  # interpolated percentile aggregate
    count_if: Fn
    any_value: Fn
    array_agg: Fn
    resolved: Fn  # (override's person, event's person) -> the person after merges, after a LEFT JOIN
    arg_min: Fn  # the value of the first argument on the row with the smallest second argument
    arg_max: Fn  # the value of the first argument on the row with the largest second argument

    # DuckDB 2.0.0 can drop a LIMIT over a LEFT JOIN of two keys (the events_resolved view); an explicit
    # OFFSET 0 keeps it
    limit_needs_offset: bool = False


DUCKDB = Dialect(
    name="duckdb",
    timestamp=_duck_timestamp,
    epoch_us=lambda t: exp.func("epoch_us", t),
    int_div=lambda a, b: exp.IntDiv(this=paren(a), expression=paren(b)),
    month_start=_duck_month_start,
    month_number=_duck_month_number,
    json_text=_duck_json_text,
    to_double=lambda v: exp.TryCast(this=v, to=exp.DataType.build("DOUBLE")),
    to_text=lambda v: exp.cast(v, exp.DataType.build("TEXT")),
    strpos=lambda text, part: exp.func("strpos", text, part),
    quantile=_duck_quantile,
    count_if=lambda cond: exp.func("count_if", cond),
    any_value=lambda v: exp.func("any_value", v),
    array_agg=lambda v: exp.func("list", v),
    resolved=lambda merged, own: exp.func("coalesce", merged, own),
    arg_min=lambda v, by: exp.func("arg_min", v, by),
    arg_max=lambda v, by: exp.func("arg_max", v, by),
    limit_needs_offset=True,
)

CLICKHOUSE = Dialect(
    name="clickhouse",
    timestamp=_ch_timestamp,
    epoch_us=lambda t: exp.func("toUnixTimestamp64Micro", t),
    int_div=lambda a, b: exp.func("intDiv", a, b),
    month_start=_ch_month_start,
    month_number=_ch_month_number,
    json_text=_ch_json_text,
    to_double=lambda v: exp.func("toFloat64OrNull", exp.func("toString", v)),
    to_text=lambda v: exp.func("toString", v),
    strpos=lambda text, part: exp.func("position", text, part),
    quantile=_ch_quantile,
    count_if=lambda cond: exp.func("countIf", cond),
    any_value=lambda v: exp.func("any", v),
    array_agg=lambda v: exp.func("groupArray", v),
    # a LEFT JOIN without a match gives 0, not NULL (person ids start at 1)
    resolved=lambda merged, own: exp.If(this=exp.GT(this=merged, expression=_n(0)), true=merged, false=own),
    arg_min=lambda v, by: exp.func("argMin", v, by),
    arg_max=lambda v, by: exp.func("argMax", v, by),
)

DIALECTS = {d.name: d for d in (DUCKDB, CLICKHOUSE)}


# time zones ----------------------------------------------------------------------------------------


def utc_offsets(tz: ZoneInfo, low: dt.datetime, high: dt.datetime) -> list[tuple[dt.datetime | None, int]]:
    """The zone's UTC offsets in force from `low` to `high`: [(from instant or None, offset µs), ...]."""

    def offset(moment: dt.datetime) -> int:
        delta = moment.astimezone(tz).utcoffset() or dt.timedelta()
        return int(delta.total_seconds()) * SECOND_US

    pieces: list[tuple[dt.datetime | None, int]] = [(None, offset(low))]
    step = dt.timedelta(days=1)
    moment = low
    while moment < high:
        following = min(moment + step, high)
        if offset(following) != pieces[-1][1]:
            # find the first second with the new offset
            a, b = moment, following
            while (b - a) > dt.timedelta(seconds=1):
                middle = a + (b - a) / 2
                if offset(middle) == pieces[-1][1]:
                    a = middle
                else:
                    b = middle
            b = b.replace(microsecond=0) + (dt.timedelta(seconds=1) if b.microsecond else dt.timedelta())
            pieces.append((b, offset(b)))
        moment = following
    return pieces


def local_us(d: Dialect, time: exp.Expr, tz: ZoneInfo, low: dt.datetime, high: dt.datetime) -> exp.Expr:
    """Microseconds since 1970 of the wall-clock time in `tz` (valid for times from `low` to `high`)."""
    pieces = utc_offsets(tz, low, high)
    epoch = d.epoch_us(time)
    if len(pieces) == 1:
        return paren(exp.Add(this=epoch, expression=_n(pieces[0][1])))
    case = exp.Case()
    for (_, current), (boundary, _) in itertools.pairwise(pieces):
        assert boundary is not None
        case = case.when(exp.LT(this=time, expression=d.timestamp(boundary)), _n(current))
    case = case.else_(_n(pieces[-1][1]))
    return paren(exp.Add(this=epoch, expression=exp.Paren(this=case)))


def truncate_us(d: Dialect, local: exp.Expr, granularity: str) -> exp.Expr:
    """The local microseconds of the start of the minute / hour / day / week (Monday) / month."""
    if granularity == "month":
        return d.month_start(local)
    if granularity == "week":
        day = d.int_div(local, _n(DAY_US))
        # 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays
        monday = exp.Sub(this=day, expression=paren(exp.Mod(this=paren(exp.Add(this=day, expression=_n(3))),
                                                           expression=_n(7))))
        return paren(exp.Mul(this=paren(monday), expression=_n(DAY_US)))
    unit = {"minute": MINUTE_US, "hour": HOUR_US, "day": DAY_US}[granularity]
    return paren(exp.Mul(this=paren(d.int_div(local, _n(unit))), expression=_n(unit)))


def wall_clock(local_microseconds: int) -> dt.datetime:
    """A naive wall-clock datetime of local microseconds."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(local_microseconds))
