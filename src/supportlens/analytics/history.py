"""Tickets with their activity log, folded into timelines: what every history-based pipe reads.

The tickets are chosen in SQL (current state, the caller's scope and filters), their events read
in one query, and the timelines computed by ``analytics/timeline.py`` in calendar time or in the
business time of each ticket's calendar (its group's, else the workspace default), with clocks
spanning everything the computation touches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.common import PipeContext, tickets_from
from supportlens.analytics.history_memo import FoldedLog, log_key
from supportlens.analytics.scope import Conditions
from supportlens.analytics.timeline import (
    CalendarClock,
    DurationClock,
    EventColumns,
    TicketCalendars,
    Timelines,
    calendar_codes,
    compute_timelines,
    event_columns,
    running_to,
    status_categories,
)
from supportlens.domain.calendars import BusinessClock, Schedule
from supportlens.domain.events import HISTORY_FILTER
from supportlens.domain.statuses import StatusMap
from supportlens.store.base import ParamType
from supportlens.store.schema import TICKET_EVENTS

I64 = npt.NDArray[np.int64]
TICKET_COLUMNS = (
    "ticket_id",
    "status",
    "agent_id",
    "group_id",
    "category",
    "priority",
    "channel",
    "created_at",
    "first_response_at",
    "resolved_at",
    "satisfaction_score",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


@dataclass(frozen=True)
class History:
    tickets: pa.Table  # TICKET_COLUMNS (or those load_history was asked for), in the order chosen
    timelines: Timelines | None  # None when no chosen ticket has events
    timeline_of: I64  # per ticket row: its index in ``timelines``, or -1 (snapshot-only)
    clock: DurationClock  # what durations of ticket rows are measured by (indexed by row)
    calendars: Callable[[], TicketCalendars]  # makes ``business``
    as_of: datetime

    @cached_property
    def business(self) -> TicketCalendars:
        """Each row's calendar over the span, for "is open" questions.  Made when first asked for:
        a run in calendar time rarely asks, and making it costs ~9 ms at a million tickets."""
        return self.calendars()

    def column_ms(self, name: str) -> tuple[I64, npt.NDArray[np.bool_]]:
        """A timestamp column of the tickets as epoch ms, and where it is set."""
        return timestamp_ms(self.tickets, name)

    def timeline_rows(self) -> I64:
        """The ticket row of each timeline (every timeline is one of the chosen rows')."""
        logged = np.flatnonzero(self.timeline_of >= 0)
        rows = np.zeros(len(logged), dtype=np.int64)
        rows[self.timeline_of[logged]] = logged
        return rows


def timestamp_ms(table: pa.Table, name: str) -> tuple[I64, npt.NDArray[np.bool_]]:
    """A timestamp column as epoch ms (0 where null), and where it is set."""
    column = table.column(name)
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(
        column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).fill_null(0).to_numpy(), dtype=np.int64
    )
    return values, valid


# What load_history itself reads of the tickets: ids, and the times and group that decide calendars.
_HISTORY_COLUMNS = ("ticket_id", "created_at", "first_response_at", "resolved_at", "group_id")


def load_history(
    context: PipeContext,
    where: Conditions,
    *,
    as_of: datetime,
    business_hours: bool,
    order_and_limit: str = "",
    ticket_columns: Sequence[str] = TICKET_COLUMNS,
) -> History:
    """The tickets matching ``where`` (optionally ordered and paged) with their timelines; of the
    tickets, ``ticket_columns`` and those the timelines need (a caller that reads a few of a hundred
    thousand rows' columns saves most of the read)."""
    source = tickets_from(context)
    chosen = f"SELECT {', '.join(TICKET_COLUMNS)} FROM {source} WHERE {where.where} {order_and_limit}"
    read_columns = ", ".join(dict.fromkeys((*_HISTORY_COLUMNS, *ticket_columns)))
    versions = f"{read_columns}, seq AS history_seq, last_event_at AS history_logged_until"
    read = context.engine.fetch_arrow(
        f"SELECT {versions} FROM {source} WHERE {where.where} {order_and_limit}",
        where.params,
        timeout=context.timeout,
    )
    tickets = read.drop_columns(["history_seq", "history_logged_until"])
    log = _folded_log(context, where, chosen, read)

    def calendars() -> TicketCalendars:
        return row_calendars(context, tickets, as_of, log.span)

    business = calendars() if business_hours else None
    clock: DurationClock = CalendarClock() if business is None else business
    timelines: Timelines | None = None
    timeline_of = np.full(tickets.num_rows, -1, dtype=np.int64)
    if log.columns is not None:
        columns, ticket_ids = log.columns, log.ticket_ids
        found = pc.index_in(tickets.column("ticket_id"), value_set=pa.array(ticket_ids, pa.string()))
        timeline_of = np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        if business is None:
            timelines = _calendar_timelines(log, columns, context.statuses, epoch_ms(as_of))
        else:
            # Every ticket with events is one of the chosen rows (the events were read for those).
            calendar_of_timeline = np.zeros(columns.tickets, dtype=np.int64)
            logged = timeline_of >= 0
            calendar_of_timeline[timeline_of[logged]] = business.calendar_of[logged]
            timelines = compute_timelines(
                columns,
                as_of_ms=epoch_ms(as_of),
                statuses=context.statuses,
                clock=business.reindexed(calendar_of_timeline),
            )
    return History(
        tickets, timelines, timeline_of, clock, calendars if business is None else lambda: business, as_of
    )


# Timelines kept per folded log: one per status map in use (a map rarely changes).
_CLOSED_PER_LOG = 2


def _calendar_timelines(
    log: FoldedLog, columns: EventColumns, statuses: StatusMap, as_of_ms: int
) -> Timelines:
    """The log's timelines in calendar time at ``as_of_ms``.  After its last event (a run at "now")
    only the current status intervals depend on ``as_of_ms``: the rest is computed once and kept
    with the log (~25 ms a run at 20,000 tickets with logs), then run on to ``as_of_ms``."""
    if as_of_ms < int(columns.at_ms.max()):
        return compute_timelines(columns, as_of_ms=as_of_ms, statuses=statuses, clock=CalendarClock())
    categories = status_categories(columns, statuses)
    closed = log.closed.get(categories)
    if closed is None:
        closed = compute_timelines(
            columns, as_of_ms=as_of_ms, statuses=statuses, clock=CalendarClock(), closed_only=True
        )
        _read_only(closed)  # shared by every later run: an in-place change would leak into them
        if len(log.closed) >= _CLOSED_PER_LOG:
            log.closed.clear()
        log.closed[categories] = closed
    return running_to(closed, as_of_ms)


def _read_only(value: Any) -> None:
    for item in (getattr(value, f.name) for f in dataclasses.fields(value)):
        if isinstance(item, np.ndarray):
            item.flags.writeable = False
        elif dataclasses.is_dataclass(item):
            _read_only(item)


def _folded_log(context: PipeContext, where: Conditions, chosen: str, read: pa.Table) -> FoldedLog:
    """The events of the ``chosen`` tickets (``read``: their rows with ``history_seq`` and
    ``history_logged_until``) folded into columns: as kept from an earlier run that chose the same
    versions (analytics/history_memo.py), else read."""
    memo = context.folded_logs
    key = ""
    if memo is not None:
        logged = read.column("history_logged_until").is_valid()
        seqs = read.column("history_seq").filter(logged).cast(pa.int64()).to_numpy()
        key = log_key(context.scope.workspace_id, np.asarray(seqs, dtype=np.int64))
        kept = memo.get(key)
        if kept is not None:
            return kept
    events_sql = (
        f"SELECT ticket_id, occurred_at, seq, type, actor_type, status FROM {TICKET_EVENTS.name} "
        f"WHERE workspace_id = {where.dialect.param('workspace_id', ParamType.STRING)} "
        f"AND ticket_id IN (SELECT ticket_id FROM ({chosen}) chosen) AND {HISTORY_FILTER}"
    )
    events = context.engine.fetch_arrow(events_sql, where.params, timeout=context.timeout)
    times = events.column("occurred_at")
    span = pa.array([pc.min(times).as_py(), pc.max(times).as_py()], times.type)
    log = FoldedLog(None, [], span)
    if events.num_rows:
        columns, ticket_ids, _ = event_columns(events)
        log = FoldedLog(columns, ticket_ids, span)
    if memo is not None:
        memo.keep(key, log)
    return log


def ticket_calendars(context: PipeContext, groups: pa.ChunkedArray) -> tuple[list[Schedule], I64]:
    """Each ticket's calendar, given its group: the schedules in use (the default first) and, per
    ticket, an index into them.  A group without a calendar of its own follows the default."""
    choice = context.calendar_choice()
    codes = calendar_codes(choice, groups)
    if len(codes) == 0:
        return [choice.schedules[0]], codes
    used, compact = np.unique(codes, return_inverse=True)  # only the calendars these tickets follow
    return [choice.schedules[int(i)] for i in used], compact.astype(np.int64)


def row_calendars(
    context: PipeContext, tickets: pa.Table, as_of: datetime, *more: pa.ChunkedArray
) -> TicketCalendars:
    """Each ticket row's business clock (its group's calendar, else the default), spanning every
    instant the computation may touch (as_of, the tickets' timestamps, ``more``) with a day to spare."""
    instants = [as_of]
    for column in (*(tickets.column(n) for n in ("created_at", "first_response_at", "resolved_at")), *more):
        if len(column):
            low, high = pc.min(column).as_py(), pc.max(column).as_py()
            instants += [aware_utc(v) for v in (low, high) if v is not None]
    low, high = min(instants) - timedelta(days=1), max(instants) + timedelta(days=1)
    schedules, calendar_of_row = ticket_calendars(context, tickets.column("group_id"))
    return TicketCalendars([BusinessClock(s, low, high) for s in schedules], calendar_of_row)


def aware_utc(value: datetime) -> datetime:
    """Engines hand back naive UTC values for UTC columns."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
