"""``ticket_time_metrics``: one row per ticket with every per-ticket duration of METRICS.md, in
calendar or business minutes, evaluated at ``as_of``.

The tickets are chosen and ordered in SQL (current state, the caller's scope and filters), their
activity log is read in one query, and the durations come from the vectorized timeline.  A ticket
with no events (snapshot-only) has first response and resolution from its timestamps, and no time
in status: the snapshot does not say when its status changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from supportlens.analytics.common import PipeContext, PipeResult, conditions, run, tickets_from
from supportlens.analytics.history import History, aware_utc, epoch_ms, from_epoch_ms, load_history
from supportlens.analytics.timeline import (
    CATEGORIES,
    Timelines,
)
from supportlens.domain.metrics import minutes
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.timestamps import format_timestamp

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
    *((f"in_{category.value}_minutes", _F) for category in StatusCategory),
    ("minutes_in_status", "Nullable(String)"),  # JSON object: status name -> minutes
    ("reopens", "Nullable(UInt32)"),
    ("agent_replies", "Nullable(UInt32)"),
    ("one_touch", "Nullable(Bool)"),
    ("first_contact_resolution", "Nullable(Bool)"),
    ("created_outside_business_hours", "Bool"),
    ("has_activity_log", "Bool"),
]


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
    total = run(context, f"SELECT count(*) AS n FROM {tickets_from(context)} WHERE {where.where}", where)
    page = (
        f"ORDER BY created_at DESC, ticket_id ASC LIMIT {int(selection.limit)} OFFSET {int(selection.offset)}"
    )
    history = load_history(context, where, as_of=as_of, business_hours=business_hours, order_and_limit=page)
    created, _ = history.column_ms("created_at")
    outside = history.business.cumulative(created + 1) - history.business.cumulative(created) == 0
    states = history.tickets.to_pylist()
    rows: list[dict[str, Any]] = []
    for position, state in enumerate(states):
        row: dict[str, Any] = {
            "ticket_id": state["ticket_id"],
            "agent_id": state["agent_id"],
            "category": state["category"],
            "priority": state["priority"],
            "as_of": format_timestamp(as_of),
            "business_hours": business_hours,
            "created_outside_business_hours": bool(outside[position]),
        }
        index = int(history.timeline_of[position])
        if index < 0 or history.timelines is None:
            row.update(_from_snapshot(context, state, history))
        else:
            row.update(_from_timeline(history.timelines, index))
        rows.append(row)
    matched = int(total.rows[0][0])
    return PipeResult(COLUMNS, rows, matched, total.elapsed, rows_before_limit=matched)


def _from_timeline(timelines: Timelines, index: int) -> dict[str, Any]:
    names = timelines.status_names
    current = timelines.status[index]
    per_status = {
        names[code]: minutes(int(ms))
        for code, ms in enumerate(timelines.in_status_ms[index])
        if ms or code == current
    }
    by_category = {
        f"in_{category.value}_minutes": minutes(int(timelines.in_category_ms[index][code]))
        for code, category in enumerate(CATEGORIES)
    }

    def optional(values: np.ndarray, has: np.ndarray) -> float | None:
        return minutes(int(values[index])) if has[index] else None

    return {
        "status": names[timelines.status[index]],
        "status_category": CATEGORIES[timelines.status_category[index]].value,
        "created_at": format_timestamp(from_epoch_ms(int(timelines.created_ms[index]))),
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


def _from_snapshot(context: PipeContext, state: dict[str, Any], history: History) -> dict[str, Any]:
    """A ticket without events: only its timestamps are known (METRICS.md, snapshot-only tickets)."""
    created_at = aware_utc(state["created_at"])

    def since_created(moment: datetime | None) -> float | None:
        if moment is None or aware_utc(moment) > history.as_of:
            return None
        a, b = np.array([epoch_ms(created_at)]), np.array([epoch_ms(aware_utc(moment))])
        return minutes(int((history.clock.cumulative(b) - history.clock.cumulative(a))[0]))

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
        **{f"in_{c.value}_minutes": None for c in StatusCategory},
        "minutes_in_status": None,
        "reopens": None,
        "agent_replies": None,
        "one_touch": None,
        "first_contact_resolution": None,
        "has_activity_log": False,
    }
