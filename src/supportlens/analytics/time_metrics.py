"""``ticket_time_metrics``: one row per ticket with every per-ticket duration of METRICS.md, in
calendar or business minutes (each ticket's calendar), evaluated at ``as_of``.

The tickets are chosen and ordered in SQL (current state, the caller's scope and filters).  Tickets
with events normally carry their time facts (analytics/facts.py): the answer is then those plus the
current status interval up to ``as_of``, column-wise, without reading the activity log.  When any
chosen ticket's facts cannot serve (computed under other status names or another calendar, missing,
or newer than ``as_of``), the tickets' activity log is read and folded by the vectorized timeline
instead: the same numbers, the slow way.  A ticket with no events (snapshot-only) has first response
and resolution from its timestamps, and no time in status: the snapshot does not say when its status
changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.common import PipeContext, PipeResult, TableRows, conditions, run, tickets_from
from supportlens.analytics.facts import (
    category_totals,
    current_intervals,
    facts_serve,
    join_present,
    status_fragments,
)
from supportlens.analytics.history import (
    TICKET_COLUMNS,
    History,
    epoch_ms,
    load_history,
    row_calendars,
    ticket_calendars,
    timestamp_ms,
)
from supportlens.analytics.scope import Conditions
from supportlens.analytics.timeline import (
    CATEGORIES,
    CalendarClock,
    DurationClock,
    Timelines,
)
from supportlens.domain.calendars import on_closed_weekday
from supportlens.domain.metrics import minutes_array
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.timestamps import format_timestamp, format_timestamps

_F = "Nullable(Float64)"
COLUMNS: list[tuple[str, str]] = [
    ("ticket_id", "String"),
    ("status", "Nullable(String)"),
    ("status_category", "Nullable(String)"),
    ("agent_id", "Nullable(String)"),
    ("group_id", "Nullable(String)"),
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
    ("created_on_weekend", "Bool"),
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
    table = answer_from_facts(context, where, page, as_of=as_of, business_hours=business_hours)
    if table is None:
        table = answer_from_log(context, where, page, as_of=as_of, business_hours=business_hours)
    matched = int(total.rows[0][0])
    return PipeResult(
        COLUMNS, TableRows(table), matched, total.elapsed, rows_before_limit=matched, table=table
    )


def answer_from_log(
    context: PipeContext, where: Conditions, page: str, *, as_of: datetime, business_hours: bool
) -> pa.Table:
    """The answer computed from the chosen tickets' activity log (always possible, slower)."""
    history = load_history(context, where, as_of=as_of, business_hours=business_hours, order_and_limit=page)
    return _table(context, history, business_hours)


def _table(context: PipeContext, history: History, business_hours: bool) -> pa.Table:
    """All rows at once, column by column: tickets with an activity log take their values from
    the timelines, snapshot-only tickets from their timestamps (nulls for the rest)."""
    tickets = history.tickets
    n = tickets.num_rows
    created, _ = history.column_ms("created_at")
    rows = np.arange(n, dtype=np.int64)
    outside = history.business.cumulative(created + 1, rows) - history.business.cumulative(created, rows) == 0
    index = history.timeline_of
    logged = index >= 0
    at = np.maximum(index, 0)
    timelines = history.timelines
    columns: dict[str, Any] = {
        **_common_columns(tickets, history.as_of, business_hours, logged),
        "created_outside_business_hours": pa.array(outside),
        "created_on_weekend": _weekend(context, tickets, created),
    }
    # Only tickets without an activity log need their timestamps read (often none).
    needed = timelines is None or not logged.all()
    snapshot = _snapshot_columns(context, history, created, logged) if needed else _NO_SNAPSHOT
    if timelines is None:
        columns.update(snapshot)
    else:
        names = np.array(timelines.status_names, dtype=object)
        categories = np.array([c.value for c in CATEGORIES], dtype=object)
        logged_status = names[timelines.status[at]]
        columns["status"] = _either(logged, logged_status, snapshot.get("status"))
        columns["status_category"] = _either(
            logged, categories[timelines.status_category[at]], snapshot.get("status_category")
        )
        # The timeline's creation (its first event) where there is one, else the stored one.
        created_ms = np.where(logged, timelines.created_ms[at], created)
        columns["created_at"] = format_timestamps(pa.array(created_ms, pa.timestamp("ms", tz="UTC")))
        columns["created_on_weekend"] = _weekend(context, tickets, created_ms)
        columns["ongoing"] = pa.array(timelines.ongoing[at], mask=~logged)
        for name, values, has in (
            ("first_response_minutes", timelines.first_response_ms, timelines.has_first_response),
            ("first_resolution_minutes", timelines.first_resolution_ms, timelines.has_first_resolution),
            ("full_resolution_minutes", timelines.full_resolution_ms, timelines.has_full_resolution),
        ):
            mine = pa.array(minutes_array(values[at]), mask=~(logged & has[at]))
            columns[name] = _either(logged, mine, snapshot.get(name))
        for name, ms in (
            ("requester_wait_minutes", timelines.category_ms(*_REQUESTER_WAIT)),
            ("agent_wait_minutes", timelines.category_ms(StatusCategory.PENDING)),
            ("on_hold_minutes", timelines.category_ms(StatusCategory.ON_HOLD)),
            ("agent_work_minutes", timelines.category_ms(*_AGENT_WORK)),
            *(
                (f"in_{c.value}_minutes", timelines.in_category_ms[:, code])
                for code, c in enumerate(CATEGORIES)
            ),
        ):
            columns[name] = pa.array(minutes_array(ms[at]), mask=~logged)
        columns["minutes_in_status"] = _per_status_json(timelines, at, logged)
        columns["reopens"] = pa.array(timelines.reopens[at], mask=~logged)
        columns["agent_replies"] = pa.array(timelines.agent_replies[at], mask=~logged)
        columns["one_touch"] = pa.array(timelines.one_touch[at], mask=~logged)
        columns["first_contact_resolution"] = pa.array(timelines.first_contact_resolution[at], mask=~logged)
    return pa.table({name: columns[name] for name, _ in COLUMNS})


def _weekend(context: PipeContext, tickets: pa.Table, created_ms: np.ndarray) -> pa.Array:
    """Whether each ticket was created on a weekday its calendar has no opening hours (its group's
    calendar, else the workspace's)."""
    schedules, calendar_of = ticket_calendars(context, tickets.column("group_id"))
    weekend = np.zeros(len(created_ms), dtype=bool)
    for code, schedule in enumerate(schedules):
        rows = np.flatnonzero(calendar_of == code)
        if rows.size:
            weekend[rows] = on_closed_weekday(schedule, created_ms[rows])
    return pa.array(weekend)


def _common_columns(
    tickets: pa.Table, as_of: datetime, business_hours: bool, logged: np.ndarray
) -> dict[str, Any]:
    n = tickets.num_rows
    return {
        **{
            name: tickets.column(name)
            for name in ("ticket_id", "agent_id", "group_id", "category", "priority")
        },
        "as_of": pa.array([format_timestamp(as_of)] * n, pa.string()),
        "business_hours": pa.array(np.full(n, business_hours)),
        "has_activity_log": pa.array(logged),
    }


_NO_SNAPSHOT: dict[str, Any] = {}
_SHARED_FACTS = (
    "last_event_at",
    "facts_key",
    "timeline_created_at",
    "timeline_status",
    "status_since",
    "reopens",
    "agent_replies",
    "one_touch",
    "first_contact_resolution",
    "ongoing",
    "created_outside_business_hours",
)
_CLOCK_FACTS = (
    "first_response_ms",
    "first_resolution_ms",
    "full_resolution_ms",
    *(f"in_{c.value}_ms" for c in CATEGORIES),
    "in_current_status_ms",
    "other_statuses",
)


def answer_from_facts(
    context: PipeContext, where: Conditions, page: str, *, as_of: datetime, business_hours: bool
) -> pa.Table | None:
    """The answer from the stored facts, or None when a chosen ticket's facts cannot serve."""
    clock_name = "business" if business_hours else "calendar"
    names = (*TICKET_COLUMNS, *_SHARED_FACTS, *(f"{clock_name}_{n}" for n in _CLOCK_FACTS))
    sql = f"SELECT {', '.join(names)} FROM {tickets_from(context)} WHERE {where.where} {page}"
    tickets = context.engine.fetch_arrow(sql, where.params, timeout=context.timeout)
    as_of_ms = epoch_ms(as_of)
    if not facts_serve(context, tickets, as_of_ms):
        return None
    _, logged = timestamp_ms(tickets, "last_event_at")
    business = row_calendars(context, tickets, as_of, tickets.column("status_since"))
    clock: DurationClock = business if business_hours else CalendarClock()
    history = History(tickets, None, np.where(logged, 0, -1), clock, lambda: business, as_of)
    created, _ = history.column_ms("created_at")
    snapshot = _snapshot_columns(context, history, created, logged) if not logged.all() else _NO_SNAPSHOT
    mine = _fact_columns(context, tickets, logged, clock_name, as_of_ms, clock)
    rows = np.arange(tickets.num_rows, dtype=np.int64)
    outside = business.cumulative(created + 1, rows) - business.cumulative(created, rows) == 0
    columns: dict[str, Any] = {
        **_common_columns(tickets, as_of, business_hours, logged),
        **{name: _either(logged, mine[name], snapshot.get(name)) for name in mine},
        "created_outside_business_hours": _either(
            logged, tickets.column("created_outside_business_hours"), pa.array(outside)
        ),
        "created_on_weekend": _weekend(
            context, tickets, np.where(logged, timestamp_ms(tickets, "timeline_created_at")[0], created)
        ),
    }
    return pa.table({name: columns[name] for name, _ in COLUMNS})


def _fact_columns(
    context: PipeContext,
    tickets: pa.Table,
    logged: np.ndarray,
    clock_name: str,
    as_of_ms: int,
    clock: DurationClock,
) -> dict[str, Any]:
    """The columns of the tickets with events (null elsewhere): stored closed time plus the current
    status interval from ``status_since`` to ``as_of``."""
    n = tickets.num_rows
    current = current_intervals(context, tickets, logged, as_of_ms, clock)
    open_ms, current_category = current.open_ms, current.category
    status_names, codes = current.status_names, current.status_codes

    def stored(name: str) -> tuple[np.ndarray, np.ndarray]:
        column = tickets.column(f"{clock_name}_{name}")
        has = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        return np.asarray(column.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64), has

    def minutes_of(ms: np.ndarray, has: np.ndarray | None = None) -> pa.Array:
        return pa.array(minutes_array(ms), mask=~(logged if has is None else logged & has))

    in_category = category_totals(tickets, clock_name, current)

    def total(*categories: StatusCategory) -> np.ndarray:
        summed: np.ndarray = in_category[:, [_CATEGORY_INDEX[c] for c in categories]].sum(axis=1)
        return summed

    out: dict[str, Any] = {
        "status": tickets.column("timeline_status"),
        "status_category": pa.array(
            np.array([c.value for c in CATEGORIES], dtype=object)[current_category], pa.string(), mask=~logged
        ),
        "created_at": format_timestamps(tickets.column("timeline_created_at")),
        "ongoing": tickets.column("ongoing"),
        "first_response_minutes": minutes_of(*stored("first_response_ms")),
        "first_resolution_minutes": minutes_of(*stored("first_resolution_ms")),
        "full_resolution_minutes": minutes_of(*stored("full_resolution_ms")),
        "requester_wait_minutes": minutes_of(total(*_REQUESTER_WAIT)),
        "agent_wait_minutes": minutes_of(total(StatusCategory.PENDING)),
        "on_hold_minutes": minutes_of(total(StatusCategory.ON_HOLD)),
        "agent_work_minutes": minutes_of(total(*_AGENT_WORK)),
        **{f"in_{c.value}_minutes": minutes_of(in_category[:, i]) for i, c in enumerate(CATEGORIES)},
        "reopens": tickets.column("reopens"),
        "agent_replies": tickets.column("agent_replies"),
        "one_touch": tickets.column("one_touch"),
        "first_contact_resolution": tickets.column("first_contact_resolution"),
    }
    # minutes_in_status: the other statuses' stored fragment, then the current one's total.
    current_ms = stored("in_current_status_ms")[0] + open_ms
    keys = pa.array([orjson.dumps(name).decode() + ":" for name in status_names], pa.string())
    current = pc.binary_join_element_wise(
        keys.take(pa.array(codes)) if status_names else pa.nulls(n, pa.string()),
        pc.cast(pa.array(minutes_array(current_ms)), pa.string()),
        "",
    )
    body = join_present([tickets.column(f"{clock_name}_other_statuses"), current], ",", n)
    out["minutes_in_status"] = pc.if_else(
        pa.array(logged), pc.binary_join_element_wise("{", body, "}", ""), pa.scalar(None, pa.string())
    )
    return out


def _either(take_first: np.ndarray, first: Any, second: Any) -> pa.Array:
    """Row by row: ``first`` where ``take_first``, else ``second`` (nulls kept); ``second`` may be
    absent when every row takes ``first``."""
    if second is None:
        return _arrow(first)
    return pc.if_else(pa.array(take_first), _arrow(first), _arrow(second))


def _arrow(values: Any) -> Any:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    return pa.array(values)


def _per_status_json(timelines: Timelines, at: np.ndarray, logged: np.ndarray) -> pa.Array:
    """Each ticket's minutes per status visited (and its current one) as a JSON object."""
    spent = timelines.in_status_ms[at]
    shown = spent != 0
    shown[np.arange(len(at)), timelines.status[at]] = True
    body = pc.binary_join_element_wise("{", status_fragments(timelines.status_names, spent, shown), "}", "")
    return pc.if_else(pa.array(logged), body, pa.scalar(None, pa.string()))


def _snapshot_columns(
    context: PipeContext, history: History, created: np.ndarray, logged: np.ndarray
) -> dict[str, Any]:
    """What a ticket's own timestamps say (METRICS.md, snapshot-only tickets); null elsewhere."""
    tickets = history.tickets
    n = tickets.num_rows
    as_of_ms = epoch_ms(history.as_of)
    encoded = pc.dictionary_encode(tickets.column("status")).combine_chunks()
    names = encoded.dictionary.to_pylist()
    known = [context.statuses.category(name) for name in names]
    codes = np.asarray(encoded.indices.fill_null(len(names)).to_numpy(zero_copy_only=False), dtype=np.int64)
    category_names = pa.array([c.value if c else None for c in known] + [None], pa.string()).take(
        pa.array(codes)
    )
    resolved = np.array([c is not None and c.is_resolved for c in known] + [False], dtype=bool)[codes]
    clock = history.clock
    rows = np.arange(n, dtype=np.int64)

    def since_created(name: str, *, only: np.ndarray | None = None) -> pa.Array:
        moment, has = history.column_ms(name)
        keep = has & (moment <= as_of_ms) & ~logged & (only if only is not None else True)
        safe = np.where(keep, moment, created)
        spent = clock.cumulative(safe, rows) - clock.cumulative(created, rows)
        return pa.array(minutes_array(spent), mask=~keep)

    nothing = pa.nulls(n, pa.float64())
    return {
        "status": tickets.column("status"),
        "status_category": category_names,
        "created_at": format_timestamps(pa.array(created, pa.timestamp("ms", tz="UTC"))),
        "ongoing": pa.nulls(n, pa.bool_()),
        "first_response_minutes": since_created("first_response_at"),
        "first_resolution_minutes": nothing,
        "full_resolution_minutes": since_created("resolved_at", only=resolved),
        **dict.fromkeys(_DURATION_COLUMNS, nothing),
        "minutes_in_status": pa.nulls(n, pa.string()),
        "reopens": pa.nulls(n, pa.int64()),
        "agent_replies": pa.nulls(n, pa.int64()),
        "one_touch": pa.nulls(n, pa.bool_()),
        "first_contact_resolution": pa.nulls(n, pa.bool_()),
    }


_DURATION_COLUMNS = (
    "requester_wait_minutes",
    "agent_wait_minutes",
    "on_hold_minutes",
    "agent_work_minutes",
    *(f"in_{c.value}_minutes" for c in StatusCategory),
)
_CATEGORY_INDEX = {category: index for index, category in enumerate(CATEGORIES)}
_REQUESTER_WAIT = (StatusCategory.NEW, StatusCategory.OPEN, StatusCategory.ON_HOLD)
_AGENT_WORK = (StatusCategory.NEW, StatusCategory.OPEN)
