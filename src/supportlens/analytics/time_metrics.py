"""``ticket_time_metrics``: one row per ticket with every per-ticket duration of METRICS.md, in
calendar or business minutes, evaluated at ``as_of``.

The tickets are chosen and ordered in SQL (current state, the caller's scope and filters), their
activity log is read in one query, and the durations come from the vectorized timeline.  A ticket
with no events (snapshot-only) has first response and resolution from its timestamps, and no time
in status: the snapshot does not say when its status changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.common import PipeContext, PipeResult, conditions, run, tickets_from
from supportlens.analytics.timeline import (
    CATEGORIES,
    CalendarClock,
    DurationClock,
    Timelines,
    compute_timelines,
)
from supportlens.domain.calendars import BusinessClock
from supportlens.domain.metrics import minutes
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.state import event_columns
from supportlens.ingest.timestamps import format_timestamp
from supportlens.store.base import ParamType
from supportlens.store.schema import TICKET_EVENTS

_F = "Nullable(Float64)"
COLUMNS: list[tuple[str, str]] = [
    ("ticket_id", "String"),
    ("status", "Nullable(String)"),
    ("status_category", "Nullable(String)"),
    ("agent_id", "Nullable(String)"),
    ("category", "Nullable(String)"),
    ("priority", "Nullable(String)"),
    ("created_at", "DateTime64(3)"),
    ("as_of", "DateTime64(3)"),
    ("business_hours", "Bool"),
    ("ongoing", "Nullable(Bool)"),
    ("first_response_minutes", _F),
    ("first_resolution_minutes", _F),
    ("full_resolution_minutes", _F),
    ("requester_wait_minutes", _F),
    ("agent_wait_minutes", _F),
    ("on_hold_minutes", _F),
    ("agent_work_minutes", _F),
    *((f"{category.value}_minutes", _F) for category in StatusCategory),
    ("minutes_in_status", "Nullable(String)"),  # JSON object: status name -> minutes
    ("reopens", "Nullable(UInt32)"),
    ("agent_replies", "Nullable(UInt32)"),
    ("one_touch", "Nullable(Bool)"),
    ("first_contact_resolution", "Nullable(Bool)"),
    ("created_outside_business_hours", "Bool"),
    ("has_activity_log", "Bool"),
]
_STATE = (
    "ticket_id",
    "status",
    "agent_id",
    "category",
    "priority",
    "created_at",
    "first_response_at",
    "resolved_at",
)


@dataclass(frozen=True, slots=True)
class Selection:
    filters: dict[str, str | None]
    created_after: datetime | None
    created_before: datetime | None
    limit: int
    offset: int


def ticket_time_metrics(
    context: PipeContext, selection: Selection, *, as_of: datetime, business_hours: bool
) -> PipeResult:
    where = conditions(context)
    for column, value in selection.filters.items():
        where.equals(column, value)
    where.between("created_at", selection.created_after, selection.created_before)
    source = tickets_from(context)
    total = run(context, f"SELECT count(*) AS n FROM {source} WHERE {where.where}", where)
    chosen = (
        f"SELECT {', '.join(_STATE)} FROM {source} WHERE {where.where} "
        f"ORDER BY created_at DESC, ticket_id ASC LIMIT {int(selection.limit)} OFFSET {int(selection.offset)}"
    )
    tickets = run(context, chosen, where)
    events_sql = (
        f"SELECT ticket_id, occurred_at, seq, type, actor_type, status FROM {TICKET_EVENTS.name} "
        f"WHERE workspace_id = {where.dialect.param('workspace_id', ParamType.STRING)} "
        f"AND ticket_id IN (SELECT ticket_id FROM ({chosen}) chosen)"
    )
    log = context.engine.fetch_arrow(events_sql, where.params, timeout=context.timeout)
    states = tickets.dicts()
    created = [_aware(s["created_at"]) for s in states]
    clock = _clock(context, business_hours, created, log, as_of)
    timelines, index_of = _timelines(context, log, as_of, clock)
    open_at_creation = _open_at(context, created, as_of)

    rows: list[dict[str, Any]] = []
    for state, created_at, outside in zip(states, created, open_at_creation, strict=True):
        row: dict[str, Any] = {
            "ticket_id": state["ticket_id"],
            "agent_id": state["agent_id"],
            "category": state["category"],
            "priority": state["priority"],
            "as_of": format_timestamp(as_of),
            "business_hours": business_hours,
            "created_outside_business_hours": outside,
        }
        index = index_of.get(state["ticket_id"])
        if index is None or timelines is None:
            row.update(_from_snapshot(context, state, created_at, clock, as_of))
        else:
            row.update(_from_timeline(context, timelines, index))
        rows.append(row)
    matched = int(total.rows[0][0])
    elapsed = total.elapsed + tickets.elapsed
    return PipeResult(COLUMNS, rows, matched, elapsed, rows_before_limit=matched)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _clock(
    context: PipeContext, business_hours: bool, created: list[datetime], log: pa.Table, as_of: datetime
) -> DurationClock:
    if not business_hours:
        return CalendarClock()
    instants = [as_of, *created]
    if log.num_rows:
        times = log.column("occurred_at")
        instants += [_aware(t) for t in (pc.min(times).as_py(), pc.max(times).as_py())]
    start = min(instants) - timedelta(days=1)
    end = max(instants) + timedelta(days=1)
    return BusinessClock(context.calendar, start, end)


def _timelines(
    context: PipeContext, log: pa.Table, as_of: datetime, clock: DurationClock
) -> tuple[Timelines | None, dict[str, int]]:
    if log.num_rows == 0:
        return None, {}
    columns, ticket_ids, _ = event_columns(log)
    timelines = compute_timelines(columns, as_of_ms=_ms(as_of), statuses=context.statuses, clock=clock)
    return timelines, {ticket_id: index for index, ticket_id in enumerate(ticket_ids)}


def _open_at(context: PipeContext, created: list[datetime], as_of: datetime) -> list[bool]:
    """Whether each creation instant lies outside the business calendar."""
    if not created:
        return []
    span_start, span_end = min(created) - timedelta(days=1), max(*created, as_of) + timedelta(days=1)
    clock = BusinessClock(context.calendar, span_start, span_end)
    at = np.array([_ms(c) for c in created], dtype=np.int64)
    opened = clock.cumulative(at + 1) - clock.cumulative(at) > 0
    return [not bool(flag) for flag in opened]


def _from_timeline(context: PipeContext, timelines: Timelines, index: int) -> dict[str, Any]:
    names = timelines.status_names
    current = timelines.status[index]
    per_status = {
        names[code]: minutes(int(ms))
        for code, ms in enumerate(timelines.in_status_ms[index])
        if ms or code == current
    }
    by_category = {
        f"{category.value}_minutes": minutes(int(timelines.in_category_ms[index][code]))
        for code, category in enumerate(CATEGORIES)
    }

    def optional(values: np.ndarray, has: np.ndarray) -> float | None:
        return minutes(int(values[index])) if has[index] else None

    return {
        "status": names[timelines.status[index]],
        "status_category": CATEGORIES[timelines.status_category[index]].value,
        "created_at": format_timestamp(_EPOCH + int(timelines.created_ms[index]) * _MS),
        "ongoing": bool(timelines.ongoing[index]),
        "first_response_minutes": optional(timelines.first_response_ms, timelines.has_first_response),
        "first_resolution_minutes": optional(timelines.first_resolution_ms, timelines.has_first_resolution),
        "full_resolution_minutes": optional(timelines.full_resolution_ms, timelines.has_full_resolution),
        "requester_wait_minutes": minutes(int(timelines.category_ms(*_REQUESTER_WAIT)[index])),
        "agent_wait_minutes": minutes(int(timelines.category_ms(StatusCategory.PENDING)[index])),
        "on_hold_minutes": minutes(int(timelines.category_ms(StatusCategory.ON_HOLD)[index])),
        "agent_work_minutes": minutes(int(timelines.category_ms(*_AGENT_WORK)[index])),
        **by_category,
        "minutes_in_status": orjson.dumps(per_status).decode(),
        "reopens": int(timelines.reopens[index]),
        "agent_replies": int(timelines.agent_replies[index]),
        "one_touch": bool(timelines.one_touch[index]),
        "first_contact_resolution": bool(timelines.first_contact_resolution[index]),
        "has_activity_log": True,
    }


_REQUESTER_WAIT = (StatusCategory.NEW, StatusCategory.OPEN, StatusCategory.ON_HOLD)
_AGENT_WORK = (StatusCategory.NEW, StatusCategory.OPEN)


def _from_snapshot(
    context: PipeContext, state: dict[str, Any], created_at: datetime, clock: DurationClock, as_of: datetime
) -> dict[str, Any]:
    """A ticket without events: only its timestamps are known (METRICS.md, snapshot-only tickets)."""

    def since_created(moment: datetime | None) -> float | None:
        if moment is None or _aware(moment) > as_of:
            return None
        a, b = np.array([_ms(created_at)]), np.array([_ms(_aware(moment))])
        return minutes(int((clock.cumulative(b) - clock.cumulative(a))[0]))

    category = context.statuses.category(state["status"])
    resolved = category is not None and category.is_resolved
    return {
        "status": state["status"],
        "status_category": category.value if category else None,
        "created_at": format_timestamp(created_at),
        "ongoing": None,
        "first_response_minutes": since_created(state["first_response_at"]),
        "first_resolution_minutes": None,
        "full_resolution_minutes": since_created(state["resolved_at"]) if resolved else None,
        "requester_wait_minutes": None,
        "agent_wait_minutes": None,
        "on_hold_minutes": None,
        "agent_work_minutes": None,
        **{f"{c.value}_minutes": None for c in StatusCategory},
        "minutes_in_status": None,
        "reopens": None,
        "agent_replies": None,
        "one_touch": None,
        "first_contact_resolution": None,
        "has_activity_log": False,
    }
