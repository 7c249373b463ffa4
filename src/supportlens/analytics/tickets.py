"""Ticket-level pipes: ticket_details (a filtered list), ticket_metrics (one summary row) and
category_analysis (a row per category)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from supportlens.analytics.common import (
    QUANTILES,
    RESOLUTION_MS,
    RESOLVED,
    RESPONSE_MS,
    PipeContext,
    PipeResult,
    averages,
    duration_sums,
    run,
    selection,
    tickets_from,
)
from supportlens.analytics.durations import NO_DURATIONS, DurationSummary, ticket_durations
from supportlens.analytics.params import Window
from supportlens.domain.metrics import minutes, percentage
from supportlens.ingest.timestamps import format_timestamp

DETAIL_COLUMNS = [
    ("ticket_id", "String"),
    ("customer_id", "Nullable(String)"),
    ("agent_id", "Nullable(String)"),
    ("category", "Nullable(String)"),
    ("priority", "Nullable(String)"),
    ("status", "Nullable(String)"),
    ("created_at", "DateTime64(3)"),
    ("first_response_at", "Nullable(DateTime64(3))"),
    ("resolved_at", "Nullable(DateTime64(3))"),
    ("satisfaction_score", "Nullable(Int16)"),
    ("tags", "Array(String)"),
    ("updated_at", "Nullable(DateTime64(3))"),
    ("channel", "Nullable(String)"),
    ("subject", "Nullable(String)"),
    ("response_time_minutes", "Nullable(Float64)"),
    ("resolution_time_minutes", "Nullable(Float64)"),
]
_TIMESTAMP_COLUMNS = ("created_at", "first_response_at", "resolved_at", "updated_at")


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    # Engines hand back naive UTC values for UTC columns.
    return format_timestamp(value if value.tzinfo else value.replace(tzinfo=UTC))


def ticket_details(
    context: PipeContext,
    *,
    filters: Mapping[str, str | None],
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int,
    offset: int,
) -> PipeResult:
    where = selection(context, filters, created_after, created_before)
    source = tickets_from(context)
    total = run(context, f"SELECT count(*) AS n FROM {source} WHERE {where.where}", where)
    names = [name for name, _ in DETAIL_COLUMNS[:-2]]
    sql = (
        f"SELECT {', '.join(names)}, {RESPONSE_MS}, {RESOLUTION_MS} FROM {source} WHERE {where.where} "
        f"ORDER BY created_at DESC, ticket_id ASC LIMIT {int(limit)} OFFSET {int(offset)}"
    )
    result = run(context, sql, where)
    rows: list[dict[str, Any]] = []
    for found in result.dicts():
        row = {name: found[name] for name in names}
        for column in _TIMESTAMP_COLUMNS:
            row[column] = _timestamp(found[column])
        row["tags"] = list(found["tags"] or [])
        row["satisfaction_score"] = (
            None if found["satisfaction_score"] is None else int(found["satisfaction_score"])
        )
        row["response_time_minutes"] = minutes(found["response_ms"])
        row["resolution_time_minutes"] = minutes(found["resolution_ms"])
        rows.append(row)
    matched = int(total.rows[0][0])
    return PipeResult(
        DETAIL_COLUMNS, rows, matched, total.elapsed + result.elapsed, rows_before_limit=matched
    )


METRICS_COLUMNS = [
    ("start_date", "DateTime64(3)"),
    ("end_date", "DateTime64(3)"),
    ("total_tickets", "UInt64"),
    ("resolved_tickets", "UInt64"),
    ("open_tickets", "UInt64"),
    ("avg_resolution_time_minutes", "Nullable(Float64)"),
    ("avg_first_response_time_minutes", "Nullable(Float64)"),
    ("avg_satisfaction_score", "Nullable(Float64)"),
    ("median_resolution_time_minutes", "Nullable(Float64)"),
    ("p90_resolution_time_minutes", "Nullable(Float64)"),
    ("median_first_response_time_minutes", "Nullable(Float64)"),
    ("p90_first_response_time_minutes", "Nullable(Float64)"),
]


def ticket_metrics(
    context: PipeContext, window: Window, *, filters: Mapping[str, str | None], business_hours: bool
) -> PipeResult:
    where = selection(context, filters, window.start, window.end)
    dialect = context.engine.dialect
    quantiles = (
        f"{dialect.quantiles(RESOLUTION_MS, QUANTILES)} AS resolution_quantiles, "
        f"{dialect.quantiles(RESPONSE_MS, QUANTILES)} AS response_quantiles"
    )
    sql = (
        f"SELECT count(*) AS total, {dialect.count_if(RESOLVED)} AS resolved, {duration_sums()}, "
        f"{quantiles} "
        f"FROM {tickets_from(context)} WHERE {where.where}"
    )
    result = run(context, sql, where)
    found = result.dicts()[0]
    if business_hours:
        times = ticket_durations(context, filters, window, business_hours=True).overall()
    else:
        times = DurationSummary.from_sql(found)
    _, _, avg_satisfaction = averages(found)
    total, resolved = int(found["total"] or 0), int(found["resolved"] or 0)
    row = {
        "start_date": format_timestamp(window.start),
        "end_date": format_timestamp(window.end),
        "total_tickets": total,
        "resolved_tickets": resolved,
        "open_tickets": total - resolved,
        "avg_resolution_time_minutes": times.resolution_mean,
        "avg_first_response_time_minutes": times.response_mean,
        "avg_satisfaction_score": avg_satisfaction,
        "median_resolution_time_minutes": times.resolution_median,
        "p90_resolution_time_minutes": times.resolution_p90,
        "median_first_response_time_minutes": times.response_median,
        "p90_first_response_time_minutes": times.response_p90,
    }
    return PipeResult(METRICS_COLUMNS, [row], total, result.elapsed)


CATEGORY_COLUMNS = [
    ("category", "Nullable(String)"),
    ("ticket_count", "UInt64"),
    ("percentage_of_total", "Float64"),
    ("avg_resolution_time_minutes", "Nullable(Float64)"),
    ("avg_response_time_minutes", "Nullable(Float64)"),
    ("avg_satisfaction_score", "Nullable(Float64)"),
]


def category_analysis(
    context: PipeContext, window: Window, *, filters: Mapping[str, str | None], business_hours: bool
) -> PipeResult:
    where = selection(context, filters, window.start, window.end)
    sql = (
        f"SELECT category, count(*) AS ticket_count, {duration_sums()} "
        f"FROM {tickets_from(context)} WHERE {where.where} GROUP BY category"
    )
    result = run(context, sql, where)
    found = sorted(
        result.dicts(), key=lambda r: (-int(r["ticket_count"]), r["category"] is None, r["category"] or "")
    )
    if business_hours:
        durations = ticket_durations(context, filters, window, "category", business_hours=True)
        times = durations.summaries(durations.tickets.column("category"))
    else:
        times = {r["category"]: DurationSummary.from_sql(r) for r in found}
    whole = sum(int(r["ticket_count"]) for r in found)
    rows = []
    for r in found:
        _, _, avg_satisfaction = averages(r)
        mine = times.get(r["category"], NO_DURATIONS)
        rows.append(
            {
                "category": r["category"],
                "ticket_count": int(r["ticket_count"]),
                "percentage_of_total": percentage(r["ticket_count"], whole),
                "avg_resolution_time_minutes": mine.resolution_mean,
                "avg_response_time_minutes": mine.response_mean,
                "avg_satisfaction_score": avg_satisfaction,
            }
        )
    return PipeResult(CATEGORY_COLUMNS, rows, whole, result.elapsed)
