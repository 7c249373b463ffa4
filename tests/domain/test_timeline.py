"""The per-ticket time metrics reference against a brute-force oracle that steps minute by minute
through random histories (reopens, repeated statuses, notes between changes, ties, events
arriving out of order, evaluation times inside the history)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusCategory
from supportlens.domain.timeline import ticket_time_metrics

T0 = datetime(2024, 3, 8, 9, 0, tzinfo=UTC)
MINUTE = 60_000
STATUSES = [
    "open",
    "pending",
    "waiting for customer",
    "waiting for third party",
    "resolved",
    "closed",
    "escalated",
]


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def event(n: int, minute: int, kind: EventType, **fields: object) -> TicketEvent:
    return TicketEvent(event_id=f"e{n}", ticket_id="T1", at=at(minute), type=kind, **fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class History:
    events: list[TicketEvent]  # in arrival order
    as_of: int  # minutes after T0


@st.composite
def histories(draw: st.DrawFn) -> History:
    created_minute = draw(st.integers(0, 30))
    creator = draw(st.sampled_from([ActorType.CUSTOMER, ActorType.AGENT, None]))
    initial = draw(st.one_of(st.none(), st.sampled_from(STATUSES)))
    events = [event(0, created_minute, EventType.CREATED, actor_type=creator, status=initial)]
    for n in range(1, draw(st.integers(0, 14)) + 1):
        minute = draw(st.integers(0, 400))  # some before creation, many ties
        kind = draw(
            st.sampled_from(
                [
                    EventType.STATUS_CHANGED,
                    EventType.STATUS_CHANGED,
                    EventType.REPLY,
                    EventType.CUSTOMER_MESSAGE,
                    EventType.INTERNAL_NOTE,
                ]
            )
        )
        if kind is EventType.STATUS_CHANGED:
            events.append(event(n, minute, kind, status=draw(st.sampled_from(STATUSES))))
        elif kind is EventType.REPLY:
            actor = draw(st.sampled_from([ActorType.AGENT, ActorType.BOT, ActorType.SYSTEM, None]))
            events.append(event(n, minute, kind, actor_type=actor))
        else:
            events.append(event(n, minute, kind, actor_type=ActorType.AGENT))
    # Arrival order is not time order.
    events = draw(st.permutations(events))
    return History(list(events), draw(st.integers(0, 450)))


def _oracle_status(history: History, minute: int, created: int) -> str:
    """The status in force during ``minute``: the last status event (by its time, then arrival)
    acting at or before it, among those seen by the evaluation time; events before creation act
    at creation."""
    latest: tuple[int, int, str] | None = None
    for index, e in enumerate(history.events):
        e_minute = max(_minute(e.at), created)
        if e.status is None or _minute(e.at) > history.as_of or e_minute > minute:
            continue
        key = (_minute(e.at), index, e.status)
        if latest is None or key[:2] > latest[:2]:
            latest = key
    return latest[2] if latest else "new"


def _minute(moment: datetime) -> int:
    return int((moment - T0).total_seconds() // 60)


@settings(max_examples=300, deadline=None)
@given(histories())
def test_time_in_status_matches_minute_by_minute_oracle(history: History) -> None:
    created = min(_minute(e.at) for e in history.events if e.type is EventType.CREATED)
    metrics = ticket_time_metrics(history.events, as_of=at(history.as_of), statuses=DEFAULT_STATUS_MAP)

    expected: dict[str, int] = {}
    timeline = [_oracle_status(history, m, created) for m in range(created, max(history.as_of, created))]
    for status in timeline:
        expected[status] = expected.get(status, 0) + MINUTE
    assert {s: ms for s, ms in metrics.time_in_status_ms.items() if ms} == expected

    categories = [DEFAULT_STATUS_MAP.category(s) for s in timeline]
    resolved = [c is not None and c.is_resolved for c in categories]
    final = _oracle_status(history, max(history.as_of, created), created)
    # Minute-level transitions, plus a change at the evaluation instant itself (it is seen).
    sampled = [*resolved, DEFAULT_STATUS_MAP.is_resolved(final)]
    assert metrics.reopens == sum(1 for a, b in itertools.pairwise(sampled) if a and not b)
    pending = sum(MINUTE for c in categories if c is StatusCategory.PENDING)
    assert metrics.agent_wait_ms == pending
    assert metrics.agent_work_ms == sum(
        MINUTE for c in categories if c in (StatusCategory.NEW, StatusCategory.OPEN)
    )
    assert metrics.status == final
    assert metrics.ongoing == (DEFAULT_STATUS_MAP.category(final) is not StatusCategory.CLOSED)

    entered = [i for i in range(len(resolved)) if resolved[i] and (i == 0 or not resolved[i - 1])]
    end_resolved = DEFAULT_STATUS_MAP.is_resolved(final)
    if entered:
        assert metrics.first_resolution_ms == entered[0] * MINUTE
    elif end_resolved:  # resolved exactly at the evaluation time
        assert metrics.first_resolution_ms == (max(history.as_of, created) - created) * MINUTE
    else:
        assert metrics.first_resolution_ms is None
    if not end_resolved:
        assert metrics.full_resolution_ms is None


@settings(max_examples=300, deadline=None)
@given(histories())
def test_replies_and_first_response_follow_the_definitions(history: History) -> None:
    metrics = ticket_time_metrics(history.events, as_of=at(history.as_of), statuses=DEFAULT_STATUS_MAP)
    created_event = next(e for e in history.events if e.type is EventType.CREATED)
    created = _minute(created_event.at)
    seen = sorted(
        (
            (max(_minute(e.at), created), i, e)
            for i, e in enumerate(history.events)
            if _minute(e.at) <= history.as_of
        ),
        key=lambda item: item[:2],
    )
    human = [m for m, _, e in seen if e.type is EventType.REPLY and e.actor_type in (ActorType.AGENT, None)]
    if created_event.actor_type is ActorType.AGENT:
        human = human[1:]
    assert metrics.agent_replies == len(human)
    assert metrics.first_response_ms == ((human[0] - created) * MINUTE if human else None)
    resolved_now = DEFAULT_STATUS_MAP.is_resolved(metrics.status)
    assert metrics.one_touch == (resolved_now and len(human) == 1)
    followups = sum(1 for m, _, e in seen if e.type is EventType.CUSTOMER_MESSAGE and m > created)
    allowed = 1 if created_event.actor_type is ActorType.AGENT else 0
    assert metrics.first_contact_resolution == (resolved_now and followups <= allowed)
    # Bots, system auto-replies and internal notes never count as a response.
    assert all(t >= 0 for t in metrics.reply_times_ms)


def test_freshdesk_style_history_by_hand() -> None:
    """Open 60 min, Waiting for Customer 30, Open 30 (reply at 20), Resolved 10, reopened, Closed."""
    events = [
        event(0, 0, EventType.CREATED, actor_type=ActorType.CUSTOMER, status="Open".lower()),
        event(1, 20, EventType.REPLY, actor_type=ActorType.BOT),
        event(2, 25, EventType.INTERNAL_NOTE, actor_type=ActorType.AGENT),
        event(3, 40, EventType.REPLY, actor_type=ActorType.AGENT),
        event(4, 60, EventType.STATUS_CHANGED, status="waiting for customer"),
        event(5, 90, EventType.CUSTOMER_MESSAGE, actor_type=ActorType.CUSTOMER),
        event(6, 90, EventType.STATUS_CHANGED, status="open"),
        event(7, 100, EventType.STATUS_CHANGED, status="open"),  # a full property set: no change
        event(8, 110, EventType.REPLY, actor_type=ActorType.AGENT),
        event(9, 120, EventType.STATUS_CHANGED, status="resolved"),
        event(10, 130, EventType.STATUS_CHANGED, status="open"),
        event(11, 140, EventType.STATUS_CHANGED, status="closed"),
    ]
    metrics = ticket_time_metrics(events, as_of=at(200), statuses=DEFAULT_STATUS_MAP)
    assert metrics.time_in_status_ms == {
        "open": 100 * MINUTE,
        "waiting for customer": 30 * MINUTE,
        "resolved": 10 * MINUTE,
        "closed": 60 * MINUTE,
    }
    assert metrics.first_response_ms == 40 * MINUTE
    assert metrics.first_resolution_ms == 120 * MINUTE
    assert metrics.full_resolution_ms == 140 * MINUTE
    assert metrics.reopens == 1
    assert metrics.agent_replies == 2
    assert metrics.reply_times_ms == (40 * MINUTE, 20 * MINUTE)
    assert metrics.requester_wait_ms == 100 * MINUTE
    assert metrics.agent_wait_ms == 30 * MINUTE
    assert not metrics.one_touch
    assert not metrics.first_contact_resolution
    assert not metrics.ongoing
