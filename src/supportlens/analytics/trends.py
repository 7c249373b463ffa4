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
from supportlens.analytics.common import PipeContext, PipeResult, selection, tickets_from
from supportlens.analytics.durations import COUNTED, NO_DURATIONS, counts_per_group, ticket_durations
from supportlens.analytics.history import from_epoch_ms, timestamp_ms
from supportlens.analytics.params import ParamError, Window
from supportlens.analytics.scope import Conditions
from supportlens.analytics.timeline import I64
from supportlens.domain.metrics import MS_PER_DAY, MS_PER_HOUR, average
from supportlens.domain.periods import (
    IntervalError,
    PeriodUnit,
    parse_interval,
    period_starts,
)

_F = "Nullable(Float64)"

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


def _quarter_hours(context: PipeContext, where: Conditions, measures: str) -> tuple[pa.Table, I64, float]:
    """The UTC quarter hours holding tickets of ``where`` (the quarter's start as ``bucket`` and the
    ``measures``, SQL), each one's start (epoch ms), and the query's time.  A quarter hour never
    straddles a local hour: every offset since 1972 is a multiple of 15 minutes."""
    sql = (
        f"SELECT {context.engine.dialect.utc_quarter_hour('created_at')} AS bucket, {measures} "
        f"FROM {tickets_from(context)} WHERE {where.where} GROUP BY bucket"
    )
    started = time.perf_counter()
    buckets = context.engine.fetch_arrow(sql, where.params, timeout=context.timeout)
    elapsed = time.perf_counter() - started
    starts, _ = timestamp_ms(buckets, "bucket")
    return buckets, starts, elapsed


def time_trends(
    context: PipeContext,
    window: Window,
    *,
    filters: Mapping[str, str | None],
    time_interval: str,
    business_hours: bool,
) -> PipeResult:
    """Counts, satisfaction and times per period from each ticket's row: medians and p90s exact
    (and business time possible), periods cut as ``period_codes`` cuts them (exact across DST
    changes and fractional offsets)."""
    try:
        interval = parse_interval(time_interval)
        periods = period_starts(window.start, window.end, interval.unit, context.timezone)
    except IntervalError as exc:
        raise ParamError("time_interval", str(exc)) from None
    # One read: the counts and sums from the same rows as the times (they add up exactly).
    started = time.perf_counter()
    durations = ticket_durations(context, filters, window, *COUNTED, business_hours=business_hours)
    elapsed = time.perf_counter() - started
    created, _ = timestamp_ms(durations.tickets, "created_at")
    names, codes = period_codes(created, interval.unit, context.timezone)
    times = durations.grouped(names, codes)
    found = counts_per_group(durations.tickets, names, codes)
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


_QUARTER_HOUR = timedelta(minutes=15)


def arrivals(context: PipeContext, window: Window, *, filters: Mapping[str, str | None]) -> PipeResult:
    """Tickets created per ISO weekday (1 = Monday) and hour of local wall-clock time, all 168
    cells.  Each ticket's created_at is converted to local time exactly across DST: a fall-back
    hour holds both UTC hours that show it, a skipped hour holds none."""
    where = selection(context, filters, window.start, window.end)
    buckets, starts, elapsed = _quarter_hours(context, where, "count(*) AS tickets")
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
    _, starts, _ = _quarter_hours(context, where, "count(*) AS tickets")
    labels = [str(label) for label in period_labels(starts, PeriodUnit.HOUR, context.timezone)]
    cells = {label: _weekday_hour(label) for label in set(labels)}  # four quarter hours a label
    spans: list[tuple[datetime, datetime]] = []
    for start, label in sorted(
        (from_epoch_ms(int(ms)), label) for ms, label in zip(starts, labels, strict=True)
    ):
        cell_weekday, cell_hour = cells[label]
        if weekday not in (None, cell_weekday) or hour not in (None, cell_hour):
            continue
        if spans and spans[-1][1] == start:  # adjacent quarter hours make one span
            spans[-1] = (spans[-1][0], start + _QUARTER_HOUR)
        else:
            spans.append((start, start + _QUARTER_HOUR))
    return spans
