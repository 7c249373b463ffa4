"""time_trends: volumes and average times per period, cut in the reporting timezone."""

from __future__ import annotations

from typing import Any

from supportlens.analytics.common import (
    RESOLVED,
    PipeContext,
    PipeResult,
    averages,
    conditions,
    duration_sums,
    run,
    tickets_from,
)
from supportlens.analytics.params import ParamError, Window
from supportlens.domain.periods import IntervalError, parse_interval, period_starts, utc_bucket
from supportlens.store.base import ParamType

_ADDITIVE = (
    "ticket_count",
    "resolved_tickets",
    "resolution_ms_sum",
    "resolution_n",
    "response_ms_sum",
    "response_n",
    "satisfaction_sum",
    "satisfaction_n",
)

COLUMNS = [
    ("time_period", "String"),
    ("ticket_count", "UInt64"),
    ("resolved_tickets", "UInt64"),
    ("avg_resolution_time_minutes", "Nullable(Float64)"),
    ("avg_response_time_minutes", "Nullable(Float64)"),
    ("avg_satisfaction_score", "Nullable(Float64)"),
]


def time_trends(
    context: PipeContext, window: Window, *, category: str | None, priority: str | None, time_interval: str
) -> PipeResult:
    try:
        interval = parse_interval(time_interval)
        periods = period_starts(window.start, window.end, interval.unit, context.timezone)
        bucket = utc_bucket(window.start, window.end, interval.unit, context.timezone)
    except IntervalError as exc:
        raise ParamError("time_interval", str(exc)) from None
    where = conditions(context)
    where.between("created_at", window.start, window.end)
    where.equals("category", category)
    where.equals("priority", priority)
    zone = where.bind("reporting_timezone", context.timezone, ParamType.STRING)
    dialect = context.engine.dialect
    # Two stages, both exact because counts and sums add up: first every ticket into its UTC
    # bucket (cheap integer grouping over all rows), then each of those few buckets into its
    # local period; utc_bucket picks buckets that never straddle a local period boundary.
    buckets = (
        f"SELECT {dialect.utc_bucket('created_at', bucket)} AS bucket, count(*) AS ticket_count, "
        f"{dialect.count_if(RESOLVED)} AS resolved_tickets, {duration_sums()} "
        f"FROM {tickets_from(context)} WHERE {where.where} GROUP BY bucket"
    )
    period = dialect.local_period_start("bucket", interval.unit, zone)
    totals = ", ".join(f"sum({column}) AS {column}" for column in _ADDITIVE)
    periods_sql = f"SELECT {period} AS period_start, {totals} FROM ({buckets}) AS b GROUP BY period_start"
    sql = f"SELECT {dialect.format_local('period_start')} AS period, * FROM ({periods_sql}) AS p"
    result = run(context, sql, where)
    found: dict[str, dict[str, Any]] = {row["period"]: row for row in result.dicts()}
    rows: list[dict[str, Any]] = []
    for start in periods:
        row = found.get(start, {})
        resolution, response, satisfaction = averages(row)
        rows.append(
            {
                "time_period": interval.label(start),
                "ticket_count": int(row.get("ticket_count") or 0),
                "resolved_tickets": int(row.get("resolved_tickets") or 0),
                "avg_resolution_time_minutes": resolution,
                "avg_response_time_minutes": response,
                "avg_satisfaction_score": satisfaction,
            }
        )
    return PipeResult(COLUMNS, rows, sum(r["ticket_count"] for r in rows), result.elapsed)
