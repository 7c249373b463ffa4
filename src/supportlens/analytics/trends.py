"""time_trends (volumes and times per period) and arrivals (tickets per weekday and hour), cut in
the reporting timezone: the ``timezone`` parameter, else the workspace's."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

from supportlens.analytics.activity import (
    QUARTER_HOUR_MS,
    SINCE_1972_MS,
    local_period_starts,
    period_codes,
    period_labels,
)
from supportlens.analytics.common import (
    RESOLUTION_MS,
    RESOLVED,
    RESPONSE_MS,
    PipeContext,
    PipeResult,
    selection,
    tickets_from,
)
from supportlens.analytics.durations import (
    COUNTED,
    NO_DURATIONS,
    DurationSummary,
    TicketDurations,
    counts_per_group,
    ticket_durations,
)
from supportlens.analytics.group_memo import Kept, KeptGroups, fingerprints
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


def _quarter_hours(
    context: PipeContext, where: Conditions, measures: str, per_row: str = ""
) -> tuple[pa.Table, I64, float]:
    """The UTC quarter hours holding tickets of ``where`` (the quarter's start as ``bucket`` and the
    ``measures``, SQL, which may aggregate the ``per_row`` columns computed once per ticket row),
    each one's start (epoch ms), and the query's time.  A quarter hour never straddles a local
    hour: every offset since 1972 is a multiple of 15 minutes."""
    sql = (
        f"SELECT bucket, {measures} FROM (SELECT {context.engine.dialect.utc_quarter_hour('created_at')}"
        f" AS bucket{', ' + per_row if per_row else ''} FROM {tickets_from(context)} WHERE {where.where})"
        " quarters GROUP BY bucket"
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
    started = time.perf_counter()
    if business_hours or context.kept_periods is None:
        durations = ticket_durations(context, filters, window, *COUNTED, business_hours=business_hours)
        found = _period_results(durations, interval.unit, context.timezone)
    else:
        found = _kept_or_computed(context, context.kept_periods, window, filters, interval.unit)
    elapsed = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    for start in periods:
        times, counts = found[start].value if start in found else (NO_DURATIONS, {})
        rows.append(
            {
                "time_period": interval.label(start),
                "ticket_count": int(counts.get("ticket_count") or 0),
                "resolved_tickets": int(counts.get("resolved_tickets") or 0),
                "avg_resolution_time_minutes": times.resolution_mean,
                "avg_response_time_minutes": times.response_mean,
                "avg_satisfaction_score": average(
                    counts.get("satisfaction_sum"), counts.get("satisfaction_n")
                ),
                "median_response_time_minutes": times.response_median,
                "p90_response_time_minutes": times.response_p90,
                "median_resolution_time_minutes": times.resolution_median,
                "p90_resolution_time_minutes": times.resolution_p90,
            }
        )
    return PipeResult(COLUMNS, rows, sum(r["ticket_count"] for r in rows), elapsed)


# What a period's result is computed from (COUNTED reads these), hashed per row for its
# fingerprint (calendar time).
_HASHED = (RESPONSE_MS, RESOLUTION_MS, RESOLVED, "satisfaction_score")
PeriodResult: TypeAlias = tuple[DurationSummary, Mapping[str, int]]


def _period_results(
    durations: TicketDurations, unit: PeriodUnit, timezone: str
) -> dict[str, Kept[PeriodResult]]:
    """Each period's times and counts from its rows (one read: the counts and sums from the same
    rows as the times, so they add up exactly), under the fingerprint of those rows when they were
    read with their hash halves (else an empty one)."""
    tickets = durations.tickets
    created, _ = timestamp_ms(tickets, "created_at")
    names, codes = period_codes(created, unit, timezone)
    times = durations.grouped(names, codes)
    counts = counts_per_group(tickets, names, codes)
    if "hash_high" in tickets.column_names:
        ones = np.ones(len(codes), dtype=np.int64)
        found = fingerprints(names, codes, ones, _ints(tickets, "hash_high"), _ints(tickets, "hash_low"))
    else:
        found = dict.fromkeys(names, (0, 0, 0))
    present = np.bincount(codes, minlength=len(names)) > 0  # names may hold periods without a row
    return {
        name: Kept(found[name], (times[name], counts[name]))
        for name, has_rows in zip(names, present, strict=True)
        if has_rows
    }


def _kept_or_computed(
    context: PipeContext,
    kept_periods: KeptGroups[PeriodResult],
    window: Window,
    filters: Mapping[str, str | None],
    unit: PeriodUnit,
) -> dict[str, Kept[PeriodResult]]:
    """The periods' results, in calendar time: kept from an earlier run for every period whose
    rows have the same fingerprint, computed from a read of the others' rows (analytics/group_memo.py)."""
    query = (
        context.scope.workspace_id,
        tuple(sorted(context.scope.fixed_filters.items())),
        tuple(sorted(filters.items())),
        unit,
        context.timezone,
    )
    dialect = context.engine.dialect
    where = selection(context, filters, window.start, window.end)
    high, low = dialect.hash_halves("row_hash")
    buckets, starts, _ = _quarter_hours(
        context,
        where,
        f"count(*) AS row_count, CAST(sum({high}) AS BIGINT) AS hash_high,"
        f" CAST(sum({low}) AS BIGINT) AS hash_low",
        per_row=f"{dialect.row_hash(_HASHED)} AS row_hash",
    )
    if len(starts) and int(starts.min()) < SINCE_1972_MS:
        # A quarter hour may straddle a local period boundary then: no fingerprint per period.
        durations = ticket_durations(context, filters, window, *COUNTED, business_hours=False)
        return _period_results(durations, unit, context.timezone)
    names, codes = period_codes(starts, unit, context.timezone)
    now = fingerprints(
        names, codes, _ints(buckets, "row_count"), _ints(buckets, "hash_high"), _ints(buckets, "hash_low")
    )
    kept = kept_periods.get(query)
    found = {name: kept[name] for name in names if name in kept and kept[name].fingerprint == now[name]}
    # (``names`` may hold periods without a row, between those with rows: nothing to compute.)
    changed = [code for code, name in enumerate(names) if name not in found and now[name][0]]
    if changed:
        # The changed periods' rows: each period within its first and last quarter hour.  When
        # most periods changed (a first run), all rows, with no spans to test.
        spans = None
        if 2 * len(changed) <= sum(1 for rows, _, _ in now.values() if rows):
            first = np.full(len(names), np.iinfo(np.int64).max, dtype=np.int64)
            last = np.full(len(names), np.iinfo(np.int64).min, dtype=np.int64)
            np.minimum.at(first, codes, starts)
            np.maximum.at(last, codes, starts)
            spans = [
                (from_epoch_ms(int(first[code])), from_epoch_ms(int(last[code]) + QUARTER_HOUR_MS))
                for code in changed
            ]
        durations = ticket_durations(
            context,
            filters,
            window,
            *COUNTED,
            *(
                f"{half} AS hash_{name}"
                for half, name in zip(
                    dialect.hash_halves(dialect.row_hash(_HASHED)), ("high", "low"), strict=True
                )
            ),
            business_hours=False,
            created_within=spans,
        )
        found.update(_period_results(durations, unit, context.timezone))
    kept_periods.keep(query, found)
    return found


def _ints(table: pa.Table, name: str) -> I64:
    return np.asarray(table.column(name).to_numpy(), dtype=np.int64)


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
