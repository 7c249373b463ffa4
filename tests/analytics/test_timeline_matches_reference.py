"""The vectorized per-ticket time metrics equal the pure reference, ticket for ticket, on random
histories of many tickets at once (calendar time here; business time in the calendar tests); so do
timelines computed without the current status intervals and then run on to the evaluation time
(``running_to``, what a run at "now" reuses)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.analytics.timeline import (
    ACTOR_CODES,
    CATEGORIES,
    EVENT_CODES,
    CalendarClock,
    DurationClock,
    EventColumns,
    Timelines,
    compute_timelines,
    running_to,
)
from supportlens.domain.events import TicketEvent
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusCategory, StatusMap
from supportlens.domain.timeline import Clock, TicketTimeMetrics, calendar_ms, ticket_time_metrics
from tests.domain.test_timeline import History, at, histories


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def columns_of(tickets: list[list[TicketEvent]]) -> EventColumns:
    """Sorted by (ticket, at, arrival), as the store hands them over."""
    names: list[str] = []
    rows: list[tuple[int, int, int, int, int, int]] = []
    for index, events in enumerate(tickets):
        for arrival, e in enumerate(events):
            if e.status is not None and e.status not in names:
                names.append(e.status)
            code = names.index(e.status) if e.status is not None else -1
            rows.append(
                (index, _ms(e.at), arrival, EVENT_CODES[e.type.value], ACTOR_CODES[e.actor_type], code)
            )
    rows.sort(key=lambda r: r[:3])
    array = np.array(rows, dtype=np.int64).reshape(-1, 6)
    return EventColumns(
        ticket=array[:, 0].copy(),
        at_ms=array[:, 1].copy(),
        kind=array[:, 3].copy(),
        actor=array[:, 4].copy(),
        status=array[:, 5].copy(),
        status_names=tuple(names),
        tickets=len(tickets),
    )


def assert_same(result: Timelines, index: int, expected: TicketTimeMetrics) -> None:
    names = result.status_names
    in_status = {names[c]: int(ms) for c, ms in enumerate(result.in_status_ms[index]) if ms}
    assert in_status == {s: ms for s, ms in expected.time_in_status_ms.items() if ms}
    in_category = {CATEGORIES[c]: int(ms) for c, ms in enumerate(result.in_category_ms[index]) if ms}
    assert in_category == {c: ms for c, ms in expected.time_in_category_ms.items() if ms}
    assert names[result.status[index]] == expected.status
    assert CATEGORIES[result.status_category[index]] is expected.status_category
    assert result.created_ms[index] == _ms(expected.created_at)

    def optional(values: np.ndarray, has: np.ndarray) -> int | None:
        return int(values[index]) if has[index] else None

    assert optional(result.first_response_ms, result.has_first_response) == expected.first_response_ms
    assert optional(result.first_resolution_ms, result.has_first_resolution) == expected.first_resolution_ms
    assert optional(result.full_resolution_ms, result.has_full_resolution) == expected.full_resolution_ms
    assert result.reopens[index] == expected.reopens
    assert result.agent_replies[index] == expected.agent_replies
    assert bool(result.one_touch[index]) == expected.one_touch
    assert bool(result.first_contact_resolution[index]) == expected.first_contact_resolution
    assert bool(result.ongoing[index]) == expected.ongoing
    mine = result.replies.ticket == index
    assert tuple(int(ms) for ms in result.replies.wait_ms[mine]) == expected.reply_times_ms
    assert list(result.replies.rank[mine]) == list(range(len(expected.reply_times_ms)))
    # Calendar time here: the visits' spans add up to the time in all statuses.
    visits = result.intervals.ticket == index
    spent = result.intervals.end_ms[visits] - result.intervals.start_ms[visits]
    assert int(spent.sum()) == sum(expected.time_in_status_ms.values())


def check(
    histories_: list[History],
    as_of: datetime,
    *,
    statuses: StatusMap = DEFAULT_STATUS_MAP,
    clock: DurationClock | None = None,
    reference_clock: Clock = calendar_ms,
) -> None:
    tickets = [
        [
            TicketEvent(**{**_fields(e), "ticket_id": f"T{i}", "event_id": f"T{i}-{e.event_id}"})
            for e in history.events
        ]
        for i, history in enumerate(histories_)
    ]
    columns = columns_of(tickets)
    result = compute_timelines(
        columns, as_of_ms=_ms(as_of), statuses=statuses, clock=clock or CalendarClock()
    )
    for index, events in enumerate(tickets):
        expected = ticket_time_metrics(events, as_of=as_of, statuses=statuses, clock=reference_clock)
        assert_same(result, index, expected)
    if clock is None and _ms(as_of) >= columns.at_ms.max():
        closed = compute_timelines(
            columns, as_of_ms=_ms(as_of), statuses=statuses, clock=CalendarClock(), closed_only=True
        )
        assert_equal(running_to(closed, _ms(as_of)), result)


def assert_equal(found: object, expected: object) -> None:
    """Field by field, arrays by value."""
    if dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            assert_equal(getattr(found, field.name), getattr(expected, field.name))
    elif isinstance(expected, np.ndarray):
        assert isinstance(found, np.ndarray)
        assert found.dtype == expected.dtype
        assert np.array_equal(found, expected)
    else:
        assert found == expected


def _fields(event: TicketEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in TicketEvent.__slots__}


@settings(max_examples=150, deadline=None)
@given(st.lists(histories(), min_size=1, max_size=12), st.integers(0, 450))
def test_vectorized_equals_reference(batch: list[History], as_of: int) -> None:
    check(batch, at(as_of))


_CUSTOM = StatusMap({"escalated": StatusCategory.ON_HOLD, "waiting for customer": StatusCategory.SOLVED})


@settings(max_examples=50, deadline=None)
@given(st.lists(histories(), min_size=1, max_size=6))
def test_a_workspace_status_name_changes_the_category(batch: list[History]) -> None:
    check(batch, at(300), statuses=_CUSTOM)


@settings(max_examples=30, deadline=None)
@given(st.lists(histories(), min_size=1, max_size=6))
def test_as_of_far_in_the_future(batch: list[History]) -> None:
    check(batch, datetime(2030, 1, 1, tzinfo=UTC))


@settings(max_examples=150, deadline=None)
@given(st.lists(histories(), min_size=1, max_size=12), st.integers(0, 600), st.booleans())
def test_running_on_to_as_of_after_every_event(batch: list[History], later: int, custom: bool) -> None:
    """At or after every event (``later`` minutes after the last), under either status map."""
    last = max(e.at for history in batch for e in history.events)
    statuses = _CUSTOM if custom else DEFAULT_STATUS_MAP
    check(batch, last + timedelta(minutes=later), statuses=statuses)
