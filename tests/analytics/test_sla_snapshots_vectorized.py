"""The vectorized evaluator of snapshot-only tickets (``domain.sla_snapshots.evaluate_snapshots``, what
the SLA pipes use) gives exactly the reference's targets (``domain.sla.evaluate_snapshot``), field by
field, for random batches of snapshots (times in any order, before creation or after the evaluation,
missing; statuses of every category and unknown names; attributes policy conditions read) under random
policies (conditions, calendar-time and business-hours targets, pause categories, at-risk thresholds,
a calendar of their own) and calendars (a group's calendar in a zone with DST and holidays, a calendar
that stops being valid so that due times never come), at any instant."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.domain.calendars import (
    ALWAYS_OPEN,
    BusinessCalendar,
    CalendarChoice,
    Holiday,
    OpenWindow,
    default_business_hours,
)
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.sla import (
    Conditions,
    PolicySet,
    SlaError,
    SlaPolicy,
    Target,
    TargetState,
    TargetType,
    evaluate_snapshot,
)
from supportlens.domain.sla_snapshots import SNAPSHOT_COLUMNS, evaluate_snapshots
from supportlens.domain.statuses import DEFAULT_STATUS_MAP
from tests.analytics.test_sla_snapshot import CUSTOM, STATUSES
from tests.domain.test_sla import CALENDARS, PRIORITIES, T0, sla_policies

# Around T0, and around the start of daylight saving time in New York (2024-03-10 07:00 UTC).
BASES = [T0, datetime(2024, 3, 9, 14, tzinfo=UTC)]
NEW_YORK = BusinessCalendar(
    "America/New_York",
    tuple(OpenWindow(day, time(8), time(18)) for day in range(6)),
    holidays=(
        Holiday(date(2024, 3, 11)),
        Holiday(date(2024, 3, 12), time(12), time(15)),
        Holiday((T0 + timedelta(days=1)).date()),
    ),
    name="new york",
)


def _expiring(base: datetime) -> BusinessCalendar:
    """Open on weekdays until the day after ``base``, then never again."""
    return dataclasses.replace(
        default_business_hours("Europe/Berlin"), valid_until=(base + timedelta(days=1)).date(), name="ends"
    )


def _moment(draw: Callable[..., Any], base: datetime, low: int = -120, high: int = 3000) -> datetime:
    """Minutes around ``base``, sometimes with milliseconds; as_of also with microseconds."""
    offset = timedelta(minutes=draw(st.integers(low, high)))
    if draw(st.booleans()):
        offset += timedelta(milliseconds=draw(st.integers(0, 59_999)))
    return base + offset


@st.composite
def snapshots(draw: st.DrawFn, base: datetime) -> dict[str, Any]:
    created_at = _moment(draw, base, 0, 600)

    def maybe() -> datetime | None:  # ties with creation are common
        return [None, created_at, _moment(draw, base), _moment(draw, base)][draw(st.integers(0, 3))]

    status = draw(st.sampled_from(STATUSES))
    return {
        "created_at": created_at,
        "replied_at": maybe(),
        "status_at": None if status is None else (maybe() or created_at),
        "status": status,
        "priority": draw(st.sampled_from(PRIORITIES)),
        "category": draw(st.sampled_from([None, "Billing", "bugs", " "])),
        "channel": draw(st.sampled_from([None, "email", "Chat"])),
        "group_id": draw(st.sampled_from([None, "g1", " g1 ", "g2"])),
        "tags": draw(st.sampled_from([None, [], ["vip"], ["VIP ", "x"], [""]])),
    }


@st.composite
def policy_sets(draw: st.DrawFn) -> PolicySet:
    def policy(policy_id: str) -> SlaPolicy:
        return dataclasses.replace(
            draw(sla_policies(policy_id)), calendar_id=draw(st.sampled_from([None, "ny", "ends", "missing"]))
        )

    conditions = [
        Conditions(priority=frozenset({"urgent"})),
        Conditions(tags=frozenset({"vip"})),
        Conditions(category=frozenset({"billing"}), channel=frozenset({"email"})),
        Conditions(group_id=frozenset({"g1"})),
    ]
    chosen = draw(st.lists(st.sampled_from(conditions), max_size=3))
    ordered = tuple(
        dataclasses.replace(policy(f"p{index}"), conditions=condition)
        for index, condition in enumerate(chosen)
    )
    return PolicySet(ordered, policy("std"))


@st.composite
def calendar_choices(draw: st.DrawFn, base: datetime) -> CalendarChoice:
    default = draw(st.sampled_from([*CALENDARS.values(), NEW_YORK]))
    ends = _expiring(base)
    group = draw(st.sampled_from([NEW_YORK, ends, ALWAYS_OPEN, CALENDARS["split"]]))
    return CalendarChoice((default, group, NEW_YORK, ends), (None, "g", "ny", "ends"), {"g1": 1, "g2": 3})


def _created(ticket: dict[str, Any]) -> TicketEvent:
    return TicketEvent(
        event_id="e0",
        ticket_id="S1",
        at=ticket["created_at"],
        type=EventType.CREATED,
        actor_type=ActorType.CUSTOMER,
        group_id=ticket["group_id"],
        category=ticket["category"],
        priority=ticket["priority"],
        channel=ticket["channel"],
        tags=tuple(ticket["tags"]) if ticket["tags"] else None,
    )


def _table(tickets: list[dict[str, Any]]) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    types = {"created_at": ts, "replied_at": ts, "status_at": ts, "tags": pa.list_(pa.string())}
    return pa.table(
        {
            name: pa.array([t[name] for t in tickets], types.get(name, pa.string()))
            for name in SNAPSHOT_COLUMNS
        }
    )


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()


def _as_row(index: int, target: TargetState) -> dict[str, Any]:
    row = {field.name: getattr(target, field.name) for field in dataclasses.fields(target)}
    row["type"], row["state"], row["row"] = target.type.value, target.state.value, index
    return row


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_every_target_is_evaluate_snapshots(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(BASES))
    tickets = data.draw(st.lists(snapshots(base), min_size=1, max_size=6))
    policies = data.draw(policy_sets())
    choice = data.draw(calendar_choices(base))
    statuses = data.draw(st.sampled_from([DEFAULT_STATUS_MAP, CUSTOM]))
    times = [t[name] for t in tickets for name in ("created_at", "replied_at", "status_at")]
    ties = [moment for moment in times if moment is not None]
    as_of = (
        data.draw(st.sampled_from(ties)) if data.draw(st.booleans()) else _moment(data.draw, base, -60, 3600)
    )
    as_of += timedelta(microseconds=data.draw(st.sampled_from([0, 0, 1, 499, 500, 501, 999])))
    expected = []
    for index, ticket in enumerate(tickets):
        status = None if ticket["status"] is None else (ticket["status_at"], ticket["status"])
        sla = evaluate_snapshot(
            _created(ticket),
            ticket["replied_at"],
            status,
            policies=policies,
            calendars=choice.for_group(ticket["group_id"]),
            statuses=statuses,
            as_of=as_of,
        )
        expected += [_as_row(index, target) for target in sla.targets]
    found = evaluate_snapshots(
        _table(tickets), policies=policies, calendars_for=choice.for_group, statuses=statuses, as_of=as_of
    )
    assert _rows(found) == expected
    # Unordered (for callers that count or sort them): the same rows.
    unordered = evaluate_snapshots(
        _table(tickets),
        policies=policies,
        calendars_for=choice.for_group,
        statuses=statuses,
        as_of=as_of,
        in_order=False,
    )
    assert sorted(_rows(unordered), key=_order) == expected


def _order(row: dict[str, Any]) -> tuple[int, int]:
    """By ticket row, then in the reference's order of target types (one instance each here)."""
    return row["row"], list(TargetType).index(TargetType(row["type"]))


def test_no_tickets_no_targets() -> None:
    policies = PolicySet(
        (), SlaPolicy(id="p", name="p", targets={"default": (Target(TargetType.RESOLUTION, 60),)})
    )
    found = evaluate_snapshots(
        _table([]),
        policies=policies,
        calendars_for=CalendarChoice.only(ALWAYS_OPEN).for_group,
        statuses=DEFAULT_STATUS_MAP,
        as_of=T0,
    )
    assert found.num_rows == 0


def test_as_of_must_be_aware() -> None:
    policies = PolicySet(
        (), SlaPolicy(id="p", name="p", targets={"default": (Target(TargetType.RESOLUTION, 60),)})
    )
    with pytest.raises(SlaError, match="as_of"):
        evaluate_snapshots(
            _table([]),
            policies=policies,
            calendars_for=CalendarChoice.only(ALWAYS_OPEN).for_group,
            statuses=DEFAULT_STATUS_MAP,
            as_of=T0.replace(tzinfo=None),
        )
