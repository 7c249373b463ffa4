"""Per-ticket time metrics for many tickets at once, with numpy: the vectorized twin of
``domain/timeline.py`` (the reference it is tested against, rule for rule).

Input is the activity log as columns sorted by ticket, then time, then arrival; every step is an
array operation over all tickets together, so a million tickets with ten million events take
seconds.  Durations go through a clock: calendar time, or business time where ``cumulative(t)``
is the business milliseconds up to ``t`` and a duration is ``cumulative(b) - cumulative(a)``.  Each
ticket may follow its own calendar (its group's), so the clock is asked per ticket; both ends of a
duration always belong to the same ticket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.domain.calendars import BusinessClock, CalendarChoice
from supportlens.domain.events import ActorType, EventType
from supportlens.domain.statuses import StatusCategory, StatusMap
from supportlens.domain.timeline import INITIAL_STATUS

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

# Small integer codes for the columns the computation reads.
EVENT_CODES: dict[str, int] = {kind.value: code for code, kind in enumerate(EventType)}
ACTOR_CODES: dict[str | None, int] = {None: -1, **{a.value: code for code, a in enumerate(ActorType)}}
CATEGORIES: tuple[StatusCategory, ...] = tuple(StatusCategory)
_CATEGORY_CODE = {category: code for code, category in enumerate(CATEGORIES)}
_REPLY, _CREATED, _CUSTOMER = (EVENT_CODES[t] for t in ("reply", "created", "customer_message"))
_AGENT = ACTOR_CODES["agent"]
_NO_STATUS = -1


class DurationClock(Protocol):
    def cumulative(self, ts_ms: I64, ticket: I64) -> I64:
        """Milliseconds that count (all, or business ones) from a fixed origin up to each instant,
        by the calendar of the ticket (index) each instant belongs to."""
        ...


class CalendarClock:
    """Calendar time: every millisecond counts."""

    def cumulative(self, ts_ms: I64, ticket: I64) -> I64:
        return ts_ms


class TicketCalendars:
    """Business time where each ticket follows one of a few calendars: ``calendar_of[ticket]`` is
    an index into ``clocks``.  The clocks' origins differ, so only differences taken within one
    ticket mean anything (which is all a duration is)."""

    def __init__(self, clocks: Sequence[BusinessClock], calendar_of: I64) -> None:
        if not clocks:
            raise ValueError("TicketCalendars needs at least one clock")
        self.clocks = tuple(clocks)
        self.calendar_of = calendar_of

    def reindexed(self, calendar_of: I64) -> TicketCalendars:
        """The same clocks for another numbering of the tickets."""
        return TicketCalendars(self.clocks, calendar_of)

    def cumulative(self, ts_ms: I64, ticket: I64) -> I64:
        if len(self.clocks) == 1:
            return self.clocks[0].cumulative(ts_ms)
        ts = np.asarray(ts_ms, dtype=np.int64)
        which = self.calendar_of[ticket]
        out = np.empty(len(ts), dtype=np.int64)
        for code, clock in enumerate(self.clocks):
            rows = np.flatnonzero(which == code)
            if rows.size:
                out[rows] = clock.cumulative(ts[rows])
        return out


def calendar_codes(choice: CalendarChoice, groups: pa.ChunkedArray | pa.Array) -> I64:
    """Each ticket's calendar as an index into ``choice.schedules``, given its group."""
    if not choice.group_index or len(groups) == 0:
        return np.zeros(len(groups), dtype=np.int64)
    encoded = pc.dictionary_encode(groups)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    names = encoded.dictionary.to_pylist()
    code_of_group = np.array([*(choice.index_of(name) for name in names), 0], dtype=np.int64)
    indices = np.asarray(encoded.indices.fill_null(len(names)).to_numpy(zero_copy_only=False), dtype=np.int64)
    codes: I64 = code_of_group[indices]
    return codes


@dataclass(frozen=True, slots=True)
class EventColumns:
    """The activity log of some tickets, sorted by (ticket, at, arrival).  ``status`` holds codes
    into ``status_names`` (-1 where the event sets no status)."""

    ticket: I64  # ticket index 0..n-1, non-decreasing
    at_ms: I64
    kind: I64  # EVENT_CODES
    actor: I64  # ACTOR_CODES
    status: I64
    status_names: tuple[str, ...]
    tickets: int


@dataclass(frozen=True, slots=True)
class StatusIntervals:
    """Every visit to a status, in order: ticket index, status code, start and end (epoch ms)."""

    ticket: I64
    status: I64
    start_ms: I64
    end_ms: I64


@dataclass(frozen=True, slots=True)
class ReplyWaits:
    """Each wait for a human reply that ended (METRICS.md reply times), in order per ticket:
    the ticket, when the reply came, how long it took (by the clock) and its rank (0 = first)."""

    ticket: I64
    reply_at_ms: I64
    wait_ms: I64
    rank: I64


@dataclass(frozen=True, slots=True)
class Timelines:
    """One entry per ticket (``None``-able values as masked arrays: value plus a ``has_`` mask)."""

    created_ms: I64
    status: I64  # current status code (into status_names, where INITIAL_STATUS is appended)
    status_names: tuple[str, ...]
    status_category: I64  # index into CATEGORIES
    in_status_ms: npt.NDArray[np.int64]  # shape (tickets, len(status_names))
    in_category_ms: npt.NDArray[np.int64]  # shape (tickets, len(CATEGORIES))
    first_response_ms: I64
    has_first_response: BOOL
    first_resolution_ms: I64
    has_first_resolution: BOOL
    full_resolution_ms: I64
    has_full_resolution: BOOL
    first_response_at_ms: I64
    resolved_at_ms: I64  # the last entry into a resolved category (valid where has_full_resolution)
    reopens: I64
    agent_replies: I64
    one_touch: BOOL
    first_contact_resolution: BOOL
    ongoing: BOOL
    current_start_ms: I64  # when the current status interval began
    intervals: StatusIntervals
    replies: ReplyWaits

    def category_ms(self, *categories: StatusCategory) -> I64:
        columns = [_CATEGORY_CODE[c] for c in categories]
        total: I64 = self.in_category_ms[:, columns].sum(axis=1)
        return total


def event_columns(events: pa.Table) -> tuple[EventColumns, list[str], I64]:
    """The activity log (ticket_id, occurred_at, seq, type, actor_type, status columns) as the
    integer columns the timeline reads, ordered by (ticket, time, arrival); also the ticket ids
    (by index) and the row order, for callers that need other columns in the same order.

    Every text column is dictionary-encoded once and only its integer codes are reordered: far
    cheaper than sorting or reordering strings.  Tickets need only be grouped, not in id order."""
    tickets = pc.dictionary_encode(events.column("ticket_id")).combine_chunks()
    at = epoch_ms_column(events.column("occurred_at"))
    ticket = _codes(tickets)
    order: I64 = np.lexsort((events.column("seq").cast(pa.int64()).to_numpy(), at, ticket))
    statuses = pc.dictionary_encode(events.column("status")).combine_chunks()
    kinds = pc.dictionary_encode(events.column("type")).combine_chunks()
    actors = pc.dictionary_encode(events.column("actor_type")).combine_chunks()
    kind_codes = np.array([EVENT_CODES[k] for k in kinds.dictionary.to_pylist()], dtype=np.int64)
    actor_codes = np.array([*(ACTOR_CODES[a] for a in actors.dictionary.to_pylist()), ACTOR_CODES[None]])
    columns = EventColumns(
        ticket=ticket[order],
        at_ms=at[order],
        kind=kind_codes[_codes(kinds)[order]],
        actor=actor_codes[_codes(actors, missing=len(actor_codes) - 1)[order]],
        status=_codes(statuses, missing=_NO_STATUS)[order],
        status_names=tuple(statuses.dictionary.to_pylist()),
        tickets=len(tickets.dictionary),
    )
    return columns, tickets.dictionary.to_pylist(), order


def _codes(encoded: pa.DictionaryArray, missing: int = 0) -> I64:
    codes: I64 = np.asarray(encoded.indices.fill_null(missing).to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes


def epoch_ms_column(column: pa.ChunkedArray | pa.Array) -> I64:
    """A timestamp column as epoch milliseconds."""
    values: I64 = np.asarray(
        column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    return values


def _group_first(ticket: I64, tickets: int, values: I64, mask: BOOL, fill: int) -> tuple[I64, BOOL]:
    """The first masked value per ticket (rows are in time order), and whether there was one."""
    out = np.full(tickets, fill, dtype=np.int64)
    rows = np.flatnonzero(mask)
    # Reversed assignment: the earliest row of each ticket is written last and wins.
    out[ticket[rows][::-1]] = values[rows][::-1]
    has = np.zeros(tickets, dtype=bool)
    has[ticket[rows]] = True
    return out, has


def _group_last(ticket: I64, tickets: int, values: I64, mask: BOOL, fill: int) -> tuple[I64, BOOL]:
    out = np.full(tickets, fill, dtype=np.int64)
    rows = np.flatnonzero(mask)
    out[ticket[rows]] = values[rows]  # later rows overwrite earlier ones
    has = np.zeros(tickets, dtype=bool)
    has[ticket[rows]] = True
    return out, has


def compute_timelines(
    events: EventColumns,
    *,
    as_of_ms: int,
    statuses: StatusMap,
    clock: DurationClock,
    closed_only: bool = False,
) -> Timelines:
    """Every ticket's metrics at ``as_of_ms`` (events after it unseen).  ``closed_only`` leaves the
    current status interval out of the time sums (it ends where it starts), for callers that add
    it themselves for whatever evaluation time they are asked about."""
    n = events.tickets
    names = _status_names(events)
    initial_code = names.index(INITIAL_STATUS)
    category_of = np.array([_CATEGORY_CODE[c] for c in status_categories(events, statuses)], dtype=np.int64)
    resolved_code = np.array([CATEGORIES[c].is_resolved for c in category_of], dtype=bool)
    closed_code = np.array([CATEGORIES[c] is StatusCategory.CLOSED for c in category_of], dtype=bool)

    ticket, at = events.ticket, events.at_ms
    seen = at <= as_of_ms
    created_explicit, has_created = _group_first(ticket, n, at, events.kind == _CREATED, 0)
    earliest, _ = _group_first(ticket, n, at, np.ones(len(at), dtype=bool), 0)
    created = np.where(has_created, created_explicit, earliest)
    effective = np.maximum(at, created[ticket])  # events before creation act at creation

    # Status changes: drop repeats of the status already in force (starting from "new").
    rows = np.flatnonzero(seen & (events.status != _NO_STATUS))
    s_ticket, s_status, s_at = ticket[rows], events.status[rows], effective[rows]
    previous = np.empty_like(s_status)
    previous[1:] = s_status[:-1]
    first_of_ticket = np.ones(len(rows), dtype=bool)
    first_of_ticket[1:] = s_ticket[1:] != s_ticket[:-1]
    previous[first_of_ticket] = initial_code
    # Comparing with the previous row equals comparing with the last kept status: a dropped row
    # always equals the status in force.
    changed = s_status != previous
    s_ticket, s_status, s_at = s_ticket[changed], s_status[changed], s_at[changed]

    # Intervals: the initial one per ticket, then one per change.
    iv_ticket = np.concatenate([np.arange(n, dtype=np.int64), s_ticket])
    iv_status = np.concatenate([np.full(n, initial_code, dtype=np.int64), s_status])
    iv_start = np.concatenate([created, s_at])
    # Grouped by ticket, stably: each ticket's initial interval, then its changes in time order.
    order = np.argsort(iv_ticket, kind="stable")
    iv_ticket, iv_status, iv_start = iv_ticket[order], iv_status[order], iv_start[order]
    last_of_ticket = np.ones(len(iv_ticket), dtype=bool)
    last_of_ticket[:-1] = iv_ticket[1:] != iv_ticket[:-1]
    iv_end = np.empty_like(iv_start)
    iv_end[:-1] = iv_start[1:]
    current_start = iv_start[last_of_ticket]
    iv_end[last_of_ticket] = current_start if closed_only else np.maximum(as_of_ms, current_start)
    # A change at the same instant as the previous one leaves a zero-length interval: it counts
    # no time and, unless it is the current one, is not a visit (no reopen or resolution).
    visit = (iv_end > iv_start) | last_of_ticket
    spent = clock.cumulative(iv_end, iv_ticket) - clock.cumulative(iv_start, iv_ticket)

    width = len(names)
    in_status = np.bincount(iv_ticket * width + iv_status, weights=spent, minlength=n * width)
    in_status_ms = np.rint(in_status).astype(np.int64).reshape(n, width)
    iv_category = category_of[iv_status]
    ncat = len(CATEGORIES)
    in_category = np.bincount(iv_ticket * ncat + iv_category, weights=spent, minlength=n * ncat)
    in_category_ms = np.rint(in_category).astype(np.int64).reshape(n, ncat)

    v_ticket, v_start, v_status = iv_ticket[visit], iv_start[visit], iv_status[visit]
    v_resolved = resolved_code[v_status]
    v_prev = np.zeros(len(v_ticket), dtype=bool)
    v_prev[1:] = v_resolved[:-1]
    v_first = np.ones(len(v_ticket), dtype=bool)
    v_first[1:] = v_ticket[1:] != v_ticket[:-1]
    v_prev[v_first] = False
    entry = v_resolved & ~v_prev
    reopen = v_prev & ~v_resolved
    first_entry, has_first_entry = _group_first(v_ticket, n, v_start, entry, 0)
    last_entry, _ = _group_last(v_ticket, n, v_start, entry, 0)
    reopens = np.bincount(v_ticket[reopen], minlength=n).astype(np.int64)
    current, _ = _group_last(v_ticket, n, v_status, np.ones(len(v_ticket), dtype=bool), initial_code)
    resolved_now = resolved_code[current]

    # Replies by humans (an agent's first message on a ticket it created is the request).
    reply = seen & (events.kind == _REPLY) & ((events.actor == _AGENT) | (events.actor == ACTOR_CODES[None]))
    created_by_agent = np.zeros(n, dtype=bool)
    creators = (events.kind == _CREATED) & (events.actor == _AGENT)
    created_by_agent[ticket[creators]] = True
    reply_rows = np.flatnonzero(reply)
    r_ticket = ticket[reply_rows]
    rank = _rank_within(r_ticket)
    keep = ~(created_by_agent[r_ticket] & (rank == 0))
    reply_rows, r_ticket = reply_rows[keep], r_ticket[keep]
    agent_replies = np.bincount(r_ticket, minlength=n).astype(np.int64)
    first_reply_at, has_reply = _group_first(
        r_ticket, n, effective[reply_rows], np.ones(len(reply_rows), dtype=bool), 0
    )
    followups = np.bincount(
        ticket[seen & (events.kind == _CUSTOMER) & (effective > created[ticket])], minlength=n
    )
    allowed = np.where(created_by_agent, 1, 0)
    customer_rows = np.flatnonzero(seen & (events.kind == _CUSTOMER))
    replies = _reply_waits(
        n,
        created,
        ~created_by_agent,
        (ticket[customer_rows], effective[customer_rows]),
        (r_ticket, effective[reply_rows]),
        clock,
    )

    everyone = np.arange(n, dtype=np.int64)
    created_b = clock.cumulative(created, everyone)

    def since_created(ts: I64, has: BOOL) -> I64:
        """Duration from creation where ``has``; 0 elsewhere (fill values never reach the clock)."""
        duration: I64 = clock.cumulative(np.where(has, ts, created), everyone) - created_b
        return duration

    return Timelines(
        created_ms=created,
        status=current,
        status_names=names,
        status_category=category_of[current],
        in_status_ms=in_status_ms,
        in_category_ms=in_category_ms,
        first_response_ms=since_created(first_reply_at, has_reply),
        has_first_response=has_reply,
        first_resolution_ms=since_created(first_entry, has_first_entry),
        has_first_resolution=has_first_entry,
        full_resolution_ms=since_created(last_entry, has_first_entry),
        has_full_resolution=resolved_now & has_first_entry,
        first_response_at_ms=first_reply_at,
        resolved_at_ms=last_entry,
        reopens=reopens,
        agent_replies=agent_replies,
        one_touch=resolved_now & (agent_replies == 1),
        first_contact_resolution=resolved_now & (followups <= allowed),
        ongoing=~closed_code[current],
        current_start_ms=current_start,
        intervals=StatusIntervals(iv_ticket[visit], v_status, v_start, iv_end[visit]),
        replies=replies,
    )


def _status_names(events: EventColumns) -> tuple[str, ...]:
    """The log's status names, with INITIAL_STATUS appended if no event names it."""
    names = events.status_names
    return names if INITIAL_STATUS in names else (*names, INITIAL_STATUS)


def status_categories(events: EventColumns, statuses: StatusMap) -> tuple[StatusCategory, ...]:
    """The category of each of the timelines' status names under ``statuses``: all that
    ``compute_timelines`` takes from the status map."""
    return tuple(_category(statuses, name) for name in _status_names(events))


def running_to(closed: Timelines, as_of_ms: int) -> Timelines:
    """What ``compute_timelines`` gives in calendar time at ``as_of_ms``, from its ``closed_only``
    result in calendar time, for a log with no event after ``as_of_ms``: then only each ticket's
    current status interval depends on the evaluation time.  It runs to ``as_of_ms`` (from its
    start, if that is later), in the visits and in the time sums."""
    running = np.maximum(as_of_ms - closed.current_start_ms, 0)
    tickets = np.arange(len(running))
    in_status = closed.in_status_ms.copy()
    in_status[tickets, closed.status] += running
    in_category = closed.in_category_ms.copy()
    in_category[tickets, closed.status_category] += running
    visits = closed.intervals
    # Visits are grouped by ticket, each ticket's current one last.
    current = np.ones(len(visits.ticket), dtype=bool)
    current[:-1] = visits.ticket[1:] != visits.ticket[:-1]
    end = visits.end_ms.copy()
    end[current] = np.maximum(as_of_ms, visits.start_ms[current])
    return dataclasses.replace(
        closed,
        in_status_ms=in_status,
        in_category_ms=in_category,
        intervals=StatusIntervals(visits.ticket, visits.status, visits.start_ms, end),
    )


def _reply_waits(
    tickets: int,
    created: I64,
    customer_created: BOOL,
    customer: tuple[I64, I64],
    replies: tuple[I64, I64],
    clock: DurationClock,
) -> ReplyWaits:
    """Customer messages and human replies merged per ticket in time order (a message before a
    reply at the same instant).  Each reply closes a segment; the segment's first customer message
    (a customer's creation of the ticket counts as one) is when the wait began."""
    requested = np.flatnonzero(customer_created)
    c_ticket = np.concatenate([requested, customer[0]])
    c_at = np.concatenate([created[requested], customer[1]])
    r_ticket, r_at = replies
    ticket = np.concatenate([c_ticket, r_ticket])
    at = np.concatenate([c_at, r_at])
    is_reply = np.concatenate(
        [np.zeros(len(c_ticket), dtype=np.int64), np.ones(len(r_ticket), dtype=np.int64)]
    )
    order = np.lexsort((is_reply, at, ticket))
    ticket, at, is_reply = ticket[order], at[order], is_reply[order]
    # Replies before each row within its ticket: the row's segment.
    running = np.cumsum(is_reply)
    first = np.ones(len(ticket), dtype=bool)
    first[1:] = ticket[1:] != ticket[:-1]
    base = np.maximum.accumulate(np.where(first, running - is_reply, 0))
    segment = running - is_reply - base
    boundary = first.copy()
    boundary[1:] |= segment[1:] != segment[:-1]
    group = np.cumsum(boundary) - 1
    groups = int(group[-1]) + 1 if len(group) else 0
    start, waiting = _group_first(group, groups, at, is_reply == 0, 0)
    ends = np.flatnonzero((is_reply == 1) & waiting[group])
    began = start[group[ends]]
    wait_ms = clock.cumulative(at[ends], ticket[ends]) - clock.cumulative(began, ticket[ends])
    return ReplyWaits(ticket[ends], at[ends], wait_ms, _rank_within(ticket[ends]))


def _category(statuses: StatusMap, name: str) -> StatusCategory:
    category = statuses.category(name)
    assert category is not None
    return category


def _rank_within(ticket: I64) -> I64:
    """0, 1, 2... within each run of equal (sorted) ticket indexes."""
    if len(ticket) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.ones(len(ticket), dtype=bool)
    starts[1:] = ticket[1:] != ticket[:-1]
    start_index = np.maximum.accumulate(np.where(starts, np.arange(len(ticket)), 0))
    rank: I64 = np.arange(len(ticket)) - start_index
    return rank
