"""Per-ticket time metrics from the activity log: the pure reference of METRICS.md "Per-ticket
durations".  The vectorized implementation (``analytics/timeline.py``) is tested against this.

A ticket's events are read in order of ``(at, arrival)``.  Rules this module fixes (each in
docs/decisions.md):
- creation is the ``created`` event, else the ticket's earliest event;
- before its first known status a ticket is ``new``; a status event that repeats the current
  status changes nothing (sources that send full property sets repeat it all the time);
- events after the evaluation time ``as_of`` are not seen yet;
- every status interval, including the current one, runs to the next change or to ``as_of``;
  the ticket is ``ongoing`` while its current status is not in the ``closed`` category;
- replies and customer messages before creation count as at creation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.statuses import StatusCategory, StatusMap

# Milliseconds of (business or calendar) time between two instants; 0 when b <= a.
Clock = Callable[[datetime, datetime], int]
INITIAL_STATUS = "new"

_REQUESTER_WAIT = frozenset({StatusCategory.NEW, StatusCategory.OPEN, StatusCategory.ON_HOLD})
_AGENT_WORK = frozenset({StatusCategory.NEW, StatusCategory.OPEN})


def calendar_ms(a: datetime, b: datetime) -> int:
    """Calendar time: every millisecond counts."""
    return max(0, round((b - a).total_seconds() * 1000))


@dataclass(frozen=True, slots=True)
class StatusInterval:
    status: str
    category: StatusCategory
    start: datetime
    end: datetime
    ongoing: bool


@dataclass(frozen=True, slots=True)
class TicketTimeMetrics:
    ticket_id: str
    created_at: datetime
    status: str
    status_category: StatusCategory
    time_in_status_ms: dict[str, int]
    time_in_category_ms: dict[StatusCategory, int]
    first_response_ms: int | None
    first_resolution_ms: int | None
    full_resolution_ms: int | None
    requester_wait_ms: int
    agent_wait_ms: int
    on_hold_ms: int
    agent_work_ms: int
    reopens: int
    agent_replies: int
    one_touch: bool
    first_contact_resolution: bool
    created_outside_business_hours: bool
    ongoing: bool
    # Each customer message that waited for us, to the next agent reply (METRICS.md reply times).
    reply_times_ms: tuple[int, ...] = field(default_factory=tuple)

    @property
    def is_resolved(self) -> bool:
        return self.status_category.is_resolved


def order_events(events: Sequence[TicketEvent]) -> list[TicketEvent]:
    """By time; events at the same instant keep their arrival order (Python's sort is stable)."""
    return sorted(events, key=lambda e: e.at)


def status_intervals(
    events: Sequence[TicketEvent], statuses: StatusMap, as_of: datetime, created_at: datetime
) -> list[StatusInterval]:
    """The ticket's status history as consecutive intervals from creation to ``as_of``."""
    changes: list[tuple[datetime, str]] = []
    current = INITIAL_STATUS
    for event in events:
        if event.status is None or event.at > as_of:
            continue
        if event.status != current:
            changes.append((max(event.at, created_at), event.status))
            current = event.status
    intervals: list[StatusInterval] = []
    status, start = INITIAL_STATUS, created_at
    for at, new_status in changes:
        if at > start:
            intervals.append(_interval(statuses, status, start, at, ongoing=False))
        status, start = new_status, at
    end = max(as_of, start)
    category = _category(statuses, status)
    intervals.append(
        StatusInterval(status, category, start, end, ongoing=category is not StatusCategory.CLOSED)
    )
    return intervals


def _category(statuses: StatusMap, status: str) -> StatusCategory:
    category = statuses.category(status)
    assert category is not None  # status names are never blank here
    return category


def _interval(
    statuses: StatusMap, status: str, start: datetime, end: datetime, *, ongoing: bool
) -> StatusInterval:
    return StatusInterval(status, _category(statuses, status), start, end, ongoing)


def creation_time(events: Sequence[TicketEvent]) -> datetime:
    created = [e.at for e in events if e.type is EventType.CREATED]
    return min(created) if created else min(e.at for e in events)


def ticket_time_metrics(
    events: Sequence[TicketEvent],
    *,
    as_of: datetime,
    statuses: StatusMap,
    clock: Clock = calendar_ms,
    is_open: Callable[[datetime], bool] | None = None,
) -> TicketTimeMetrics:
    """Every per-ticket duration of METRICS.md, measured by ``clock`` (calendar or business
    time); ``is_open`` (the business calendar) decides "created outside business hours"."""
    if not events:
        raise ValueError("a ticket needs at least one event")
    ordered = order_events(events)
    created_at = creation_time(ordered)
    intervals = status_intervals(ordered, statuses, as_of, created_at)

    in_status: dict[str, int] = {}
    in_category: dict[StatusCategory, int] = {}
    first_resolved: datetime | None = None
    last_resolved: datetime | None = None
    reopens = 0
    previous: StatusInterval | None = None
    for interval in intervals:
        spent = clock(interval.start, interval.end)
        in_status[interval.status] = in_status.get(interval.status, 0) + spent
        in_category[interval.category] = in_category.get(interval.category, 0) + spent
        if interval.category.is_resolved and (previous is None or not previous.category.is_resolved):
            first_resolved = first_resolved or interval.start
            last_resolved = interval.start
        if previous is not None and previous.category.is_resolved and not interval.category.is_resolved:
            reopens += 1
        previous = interval
    current = intervals[-1]
    resolved_now = current.category.is_resolved

    talk = conversation(ordered, created_at, as_of)
    created_by_agent, replies, customer_messages = talk.created_by_agent, talk.replies, talk.messages
    # The request itself: the creation by a customer, or an agent-created ticket's first answer.
    allowed_followups = 1 if created_by_agent else 0
    followups = sum(1 for at in customer_messages if at > created_at)

    def total(categories: frozenset[StatusCategory]) -> int:
        return sum(ms for category, ms in in_category.items() if category in categories)

    return TicketTimeMetrics(
        ticket_id=ordered[0].ticket_id,
        created_at=created_at,
        status=current.status,
        status_category=current.category,
        time_in_status_ms=in_status,
        time_in_category_ms=in_category,
        first_response_ms=clock(created_at, replies[0]) if replies else None,
        first_resolution_ms=clock(created_at, first_resolved) if first_resolved else None,
        full_resolution_ms=clock(created_at, last_resolved) if resolved_now and last_resolved else None,
        requester_wait_ms=total(_REQUESTER_WAIT),
        agent_wait_ms=total(frozenset({StatusCategory.PENDING})),
        on_hold_ms=total(frozenset({StatusCategory.ON_HOLD})),
        agent_work_ms=total(_AGENT_WORK),
        reopens=reopens,
        agent_replies=len(replies),
        one_touch=resolved_now and len(replies) == 1,
        first_contact_resolution=resolved_now and followups <= allowed_followups,
        created_outside_business_hours=is_open is not None and not is_open(created_at),
        ongoing=current.ongoing,
        reply_times_ms=tuple(
            clock(start, replies[answer]) for start, answer in reply_waits(talk) if answer is not None
        ),
    )


@dataclass(frozen=True, slots=True)
class Conversation:
    """Who said what, as the metrics count it: human replies (an agent's first public message on
    a ticket it created is the request, not a reply) and customer messages, both acting at
    creation when earlier, seen by ``as_of``."""

    created_at: datetime
    created_by_agent: bool
    replies: list[datetime]
    messages: list[datetime]


def conversation(ordered: Sequence[TicketEvent], created_at: datetime, as_of: datetime) -> Conversation:
    # Who created the ticket does not depend on the evaluation time.
    created_by_agent = any(e.type is EventType.CREATED and e.actor_type is ActorType.AGENT for e in ordered)
    seen = [e for e in ordered if e.at <= as_of]
    replies = [max(e.at, created_at) for e in seen if e.is_agent_reply]
    if created_by_agent:
        replies = replies[1:]
    messages = [max(e.at, created_at) for e in seen if e.type is EventType.CUSTOMER_MESSAGE]
    return Conversation(created_at, created_by_agent, replies, messages)


def reply_waits(talk: Conversation) -> list[tuple[datetime, int | None]]:
    """Each wait for a reply as (start, index of the reply answering it, or None while waiting): a
    customer's creation of the ticket, and each later run of customer messages, waits from its
    first message; a message and a reply at the same instant: the reply answers it."""
    waits: list[tuple[datetime, int | None]] = []
    waiting_since = None if talk.created_by_agent else talk.created_at
    stream = sorted([(at, 0, -1) for at in talk.messages] + [(at, 1, i) for i, at in enumerate(talk.replies)])
    for at, is_reply, index in stream:
        if is_reply:
            if waiting_since is not None:
                waits.append((waiting_since, index))
                waiting_since = None
        elif waiting_since is None:
            waiting_since = at
    if waiting_since is not None:
        waits.append((waiting_since, None))
    return waits
