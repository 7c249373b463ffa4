"""Ticket-level pipes: ticket_details (a filtered list, also the tickets behind a chart's bar or
cell), ticket_metrics (one summary row) and category_analysis (a row per category)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics import activity, trends
from supportlens.analytics.common import (
    QUANTILES,
    RESOLUTION_MS,
    RESOLVED,
    RESPONSE_MS,
    PipeContext,
    PipeResult,
    averages,
    conditions,
    duration_sums,
    run,
    selection,
    tickets_from,
)
from supportlens.analytics.durations import NO_DURATIONS, DurationSummary, ticket_durations
from supportlens.analytics.params import Window
from supportlens.analytics.scope import Conditions
from supportlens.domain.metrics import minutes, percentage
from supportlens.domain.statuses import StatusCategory
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


@dataclass(frozen=True, slots=True)
class DrillDown:
    """What a chart's bar or cell selects beyond the filters, each as the pipe behind it counts:
    tickets open at the instant ``open_at`` (``backlog``), at least ``age_min_days`` and less than
    ``age_max_days`` old then; created in the local ``created_weekday`` and ``created_hour``
    (``arrivals``); that spent time in ``in_status_category`` by ``as_of`` (``time_in_status``)."""

    as_of: datetime
    open_at: datetime | None = None
    age_min_days: int = 0
    age_max_days: int | None = None
    created_weekday: int | None = None
    created_hour: int | None = None
    in_status_category: StatusCategory | None = None


def _drilled(context: PipeContext, where: Conditions, drill: DrillDown) -> pa.Table | None:
    """The tickets of ``where`` (TICKET_COLUMNS) the history-based drill-downs select, or None
    when none is asked for."""
    found: pa.Table | None = None
    if drill.open_at is not None:
        found = activity.open_at(
            context,
            where,
            drill.open_at,
            youngest_days=drill.age_min_days,
            oldest_days=drill.age_max_days,
        )
    if drill.in_status_category is not None:
        visited = activity.visited_category(context, where, drill.in_status_category, as_of=drill.as_of)
        if found is not None:
            visited = visited.filter(
                pc.is_in(visited.column("ticket_id"), value_set=found.column("ticket_id"))
            )
        found = visited
    return found


def _page_ids(tickets: pa.Table, limit: int, offset: int) -> list[str]:
    """The ids of a page of ``tickets`` in the order of ``ticket_details``."""
    order = pc.sort_indices(tickets, sort_keys=[("created_at", "descending"), ("ticket_id", "ascending")])
    ids: list[str] = tickets.column("ticket_id").take(order[offset : offset + limit]).to_pylist()
    return ids


def ticket_details(
    context: PipeContext,
    *,
    filters: Mapping[str, str | None],
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int,
    offset: int,
    drill: DrillDown,
) -> PipeResult:
    if drill.open_at is not None and (created_before is None or drill.open_at < created_before):
        created_before = drill.open_at  # a ticket created later is not open yet
    where = selection(context, filters, created_after, created_before)
    if drill.created_weekday is not None or drill.created_hour is not None:
        spans = trends.created_in_local_hours(
            context, where, weekday=drill.created_weekday, hour=drill.created_hour
        )
        where.within("created_at", spans)
    source = tickets_from(context)
    names = [name for name, _ in DETAIL_COLUMNS[:-2]]
    select = f"SELECT {', '.join(names)}, {RESPONSE_MS}, {RESOLUTION_MS} FROM {source}"
    order = "ORDER BY created_at DESC, ticket_id ASC"
    drilled = _drilled(context, where, drill)
    if drilled is None:
        total = run(context, f"SELECT count(*) AS n FROM {source} WHERE {where.where}", where)
        matched, counted = int(total.rows[0][0]), total.elapsed
        page = run(
            context, f"{select} WHERE {where.where} {order} LIMIT {int(limit)} OFFSET {int(offset)}", where
        )
    else:
        matched, counted = drilled.num_rows, 0.0
        ids = _page_ids(drilled, limit, offset)
        if not ids:
            return PipeResult(DETAIL_COLUMNS, [], matched, 0.0, rows_before_limit=matched)
        chosen = conditions(context)
        chosen.among(ids)
        page = run(context, f"{select} WHERE {chosen.where} {order}", chosen)
    rows: list[dict[str, Any]] = []
    for found in page.dicts():
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
    return PipeResult(DETAIL_COLUMNS, rows, matched, counted + page.elapsed, rows_before_limit=matched)


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
