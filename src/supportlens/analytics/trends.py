"""time_trends (volumes and times per period) and arrivals (tickets per weekday and hour), cut in
the reporting timezone: the ``timezone`` parameter, else the workspace's."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from supportlens.analytics.activity import local_period_starts, period_codes, period_labels
from supportlens.analytics.common import RESOLVED, PipeContext, PipeResult, selection, tickets_from
from supportlens.analytics.durations import NO_DURATIONS, ticket_durations
from supportlens.analytics.history import from_epoch_ms, timestamp_ms
from supportlens.analytics.params import ParamError, Window
from supportlens.analytics.scope import Conditions
from supportlens.analytics.timeline import I64
from supportlens.domain.metrics import MS_PER_DAY, MS_PER_HOUR, average
from supportlens.domain.periods import (
    IntervalError,
    PeriodUnit,
    UtcBucket,
    parse_interval,
    period_starts,
    utc_bucket,
)

_F = "Nullable(Float64)"
_ADDITIVE = ("ticket_count", "resolved_tickets", "satisfaction_sum", "satisfaction_n")

COLUMNS = [
    ("time_period", "String"),
    ("ticket_count", "UInt64"),
    ("resolved_tickets", "UInt64"),
    ("avg_resolution_time_minutes", _F),
    ("avg_response_time_minutes", _F),
    ("avg_satisfaction_score", _F),
    ("median_response_time_minutes", _F),
    ("p90_response_time_minutes", _F),
    ("median_resolution_time_minutes", _F),
    ("p90_resolution_time_minutes", _F),
]


def _utc_buckets(
    context: PipeContext, where: Conditions, bucket: UtcBucket, measures: str
) -> tuple[pa.Table, I64, float]:
    """The UTC ``bucket``s holding tickets of ``where`` (the bucket's start as ``bucket`` and the
    ``measures``, SQL), each bucket's start (epoch ms), and the query's time."""
    sql = (
        f"SELECT {context.engine.dialect.utc_bucket('created_at', bucket)} AS bucket, {measures} "
        f"FROM {tickets_from(context)} WHERE {where.where} GROUP BY bucket"
    )
    started = time.perf_counter()
    buckets = context.engine.fetch_arrow(sql, where.params, timeout=context.timeout)
    elapsed = time.perf_counter() - started
    starts, _ = timestamp_ms(buckets, "bucket")
    return buckets, starts, elapsed


def _local_buckets(
    context: PipeContext, where: Conditions, bucket: UtcBucket, unit: PeriodUnit, measures: str
) -> tuple[pa.Table, I64, list[str], float]:
    """``_utc_buckets`` with the local period of ``unit`` holding each bucket."""
    buckets, starts, elapsed = _utc_buckets(context, where, bucket, measures)
    labels = [str(label) for label in period_labels(starts, unit, context.timezone)]
    return buckets, starts, labels, elapsed


def _local_periods(
    context: PipeContext,
    where: Conditions,
    bucket: UtcBucket,
    unit: PeriodUnit,
    measures: str,
    names: tuple[str, ...],
) -> tuple[dict[str, dict[str, int]], float]:
    """The additive ``measures`` (SQL, naming the columns ``names``) of the tickets of ``where``
    per local period of ``unit``, keyed by the period's local start ('YYYY-MM-DD HH:MM:SS').

    Two stages, both exact because counts and sums add up: in SQL every ticket into its UTC
    ``bucket`` (cheap integer grouping over all rows; a bucket never straddles a local period
    boundary), then here each of those few buckets into its local period by ``period_labels``, as
    the history pipes cut periods: exact across DST changes (a fall-back hour is one period) and
    fractional offsets, where ClickHouse's toStartOfHour is not (after Lord Howe's half-hour DST
    change it truncates to :30 for the rest of the day)."""
    buckets, _, labels, elapsed = _local_buckets(context, where, bucket, unit, measures)
    periods, period_of = np.unique(np.array(labels, dtype=object), return_inverse=True)
    found: dict[str, dict[str, int]] = {str(period): {} for period in periods}
    for name in names:
        totals = np.zeros(len(periods), dtype=np.int64)
        np.add.at(totals, period_of, np.asarray(buckets.column(name).cast(pa.int64()).fill_null(0), np.int64))
        for period, total in zip(periods, totals.tolist(), strict=True):
            found[str(period)][name] = total
    return found, elapsed


def time_trends(
    context: PipeContext,
    window: Window,
    *,
    filters: Mapping[str, str | None],
    time_interval: str,
    business_hours: bool,
) -> PipeResult:
    """Counts and satisfaction per period from SQL; the times from each ticket's durations, so that
    medians and p90s are exact (and business time possible)."""
    try:
        interval = parse_interval(time_interval)
        periods = period_starts(window.start, window.end, interval.unit, context.timezone)
        bucket = utc_bucket(window.start, window.end, interval.unit, context.timezone)
    except IntervalError as exc:
        raise ParamError("time_interval", str(exc)) from None
    where = selection(context, filters, window.start, window.end)
    measures = (
        f"count(*) AS ticket_count, {context.engine.dialect.count_if(RESOLVED)} AS resolved_tickets, "
        "sum(satisfaction_score) AS satisfaction_sum, count(satisfaction_score) AS satisfaction_n"
    )
    found, elapsed = _local_periods(context, where, bucket, interval.unit, measures, _ADDITIVE)
    durations = ticket_durations(context, filters, window, business_hours=business_hours)
    created, _ = timestamp_ms(durations.tickets, "created_at")
    times = durations.grouped(*period_codes(created, interval.unit, context.timezone))
    rows: list[dict[str, Any]] = []
    for start in periods:
        row = found.get(start, {})
        mine = times.get(start, NO_DURATIONS)
        rows.append(
            {
                "time_period": interval.label(start),
                "ticket_count": int(row.get("ticket_count") or 0),
                "resolved_tickets": int(row.get("resolved_tickets") or 0),
                "avg_resolution_time_minutes": mine.resolution_mean,
                "avg_response_time_minutes": mine.response_mean,
                "avg_satisfaction_score": average(row.get("satisfaction_sum"), row.get("satisfaction_n")),
                "median_response_time_minutes": mine.response_median,
                "p90_response_time_minutes": mine.response_p90,
                "median_resolution_time_minutes": mine.resolution_median,
                "p90_resolution_time_minutes": mine.resolution_p90,
            }
        )
    return PipeResult(COLUMNS, rows, sum(r["ticket_count"] for r in rows), elapsed)


ARRIVAL_COLUMNS = [
    ("weekday", "UInt8"),
    ("weekday_name", "String"),
    ("hour", "UInt8"),
    ("tickets", "UInt64"),
]
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _weekday_hour(period: str) -> tuple[int, int]:
    """The ISO weekday (1 = Monday) and hour of a local hour's start ('YYYY-MM-DD HH:MM:SS')."""
    local = datetime.fromisoformat(period)  # strptime cost most of the pipe at a year of hours
    return local.isoweekday(), local.hour


# Quarter hours never straddle a local hour (every offset since 1972 is a multiple of 15 minutes);
# ``utc_bucket`` would sample the zone's offsets over the whole window, which may span centuries
# here (no limit on the number of periods applies).
_ARRIVAL_BUCKET = UtcBucket.QUARTER_HOUR
_ARRIVAL_BUCKET_WIDTH = timedelta(minutes=15)


def arrivals(context: PipeContext, window: Window, *, filters: Mapping[str, str | None]) -> PipeResult:
    """Tickets created per ISO weekday (1 = Monday) and hour of local wall-clock time, all 168
    cells.  Each ticket's created_at is converted to local time exactly across DST: a fall-back
    hour holds both UTC hours that show it, a skipped hour holds none."""
    where = selection(context, filters, window.start, window.end)
    buckets, starts, elapsed = _utc_buckets(context, where, _ARRIVAL_BUCKET, "count(*) AS tickets")
    weekday, hour = _local_weekday_hour(starts, context.timezone)
    counts = np.zeros(len(_WEEKDAY_NAMES) * 24, dtype=np.int64)
    np.add.at(
        counts, (weekday - 1) * 24 + hour, np.asarray(buckets.column("tickets").cast(pa.int64()), np.int64)
    )
    rows: list[dict[str, Any]] = [
        {"weekday": day + 1, "weekday_name": name, "hour": hour, "tickets": int(counts[day * 24 + hour])}
        for day, name in enumerate(_WEEKDAY_NAMES)
        for hour in range(24)
    ]
    return PipeResult(ARRIVAL_COLUMNS, rows, int(counts.sum()), elapsed)


def _local_weekday_hour(starts_ms: I64, timezone: str) -> tuple[I64, I64]:
    """The ISO weekday (1 = Monday) and local hour of each instant (epoch ms) in ``timezone``: from
    the local hour's start as a number (1970-01-01 was a Thursday), or from its label where Arrow's
    zone rules do not reach."""
    local = local_period_starts(starts_ms, PeriodUnit.HOUR, timezone)
    if local is None:
        pairs = [_weekday_hour(str(label)) for label in period_labels(starts_ms, PeriodUnit.HOUR, timezone)]
        found = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        return found[:, 0], found[:, 1]
    local_ms = np.asarray(local.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    return (local_ms // MS_PER_DAY + 3) % 7 + 1, (local_ms // MS_PER_HOUR) % 24


def created_in_local_hours(
    context: PipeContext, where: Conditions, *, weekday: int | None, hour: int | None
) -> list[tuple[datetime, datetime]]:
    """Where the tickets of ``where`` that ``arrivals`` counts in the cell of ``weekday`` and
    ``hour`` (either may be None: any) were created: UTC spans [start, end) that together hold
    exactly those tickets' created_at, from the same UTC quarter hours and local labels."""
    _, starts, labels, _ = _local_buckets(
        context, where, _ARRIVAL_BUCKET, PeriodUnit.HOUR, "count(*) AS tickets"
    )
    cells = {label: _weekday_hour(label) for label in set(labels)}  # four quarter hours a label
    spans: list[tuple[datetime, datetime]] = []
    for start, label in sorted(
        (from_epoch_ms(int(ms)), label) for ms, label in zip(starts, labels, strict=True)
    ):
        cell_weekday, cell_hour = cells[label]
        if weekday not in (None, cell_weekday) or hour not in (None, cell_hour):
            continue
        if spans and spans[-1][1] == start:  # adjacent quarter hours make one span
            spans[-1] = (spans[-1][0], start + _ARRIVAL_BUCKET_WIDTH)
        else:
            spans.append((start, start + _ARRIVAL_BUCKET_WIDTH))
    return spans
