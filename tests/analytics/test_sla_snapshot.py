"""Snapshot-only tickets: ``snapshot_sla`` (the domain's ``evaluate_snapshot`` shortcut, what the SLA
pipes use) gives exactly the reference's answer on the ticket's synthetic events, ``evaluate(
snapshot_events(ticket))``, for random snapshots (times in any order, before creation or after the
evaluation, any status, custom status names), policies with conditions, and calendars."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.analytics.sla_state import SlaSetup, snapshot_events, snapshot_sla
from supportlens.domain.calendars import CalendarChoice
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.sla import (
    Conditions,
    PolicySet,
    SlaError,
    SlaPolicy,
    Target,
    TargetType,
    evaluate,
    evaluate_snapshot,
)
from supportlens.domain.statuses import DEFAULT_STATUS_MAP, StatusCategory, StatusMap
from tests.domain.test_sla import CALENDARS, PRIORITIES, T0, sla_policies

STATUSES = [
    None,
    "new",
    "New",
    "open",
    "pending",
    "on hold",
    "solved",
    "Closed",
    "closed",
    "triage",
    "parked",
]
CUSTOM = StatusMap(
    {"triage": StatusCategory.NEW, "parked": StatusCategory.ON_HOLD, "new": StatusCategory.OPEN}
)


def _moment(draw: Callable[..., Any], low: int = -120, high: int = 3000) -> datetime:
    """Minutes around T0, sometimes with seconds and milliseconds (as_of may be any instant)."""
    offset = timedelta(minutes=draw(st.integers(low, high)))
    if draw(st.booleans()):
        offset += timedelta(milliseconds=draw(st.integers(0, 59_999)))
    return T0 + offset


@st.composite
def snapshots(draw: st.DrawFn) -> dict[str, Any]:
    created_at = _moment(draw, 0, 600)

    def maybe() -> datetime | None:  # ties with creation are common
        return [None, created_at, _moment(draw), _moment(draw)][draw(st.integers(0, 3))]

    return {
        "ticket_id": "S1",
        "customer_id": "c1",
        "agent_id": draw(st.sampled_from([None, "a1"])),
        "group_id": draw(st.sampled_from([None, "g1", " g1 "])),
        "category": draw(st.sampled_from([None, "Billing", "bugs", " "])),
        "priority": draw(st.sampled_from(PRIORITIES)),
        "status": draw(st.sampled_from(STATUSES)),
        "channel": draw(st.sampled_from([None, "email", "Chat"])),
        "tags": draw(st.sampled_from([None, [], ["vip"], ["VIP ", "x"]])),
        "created_at": created_at,
        "first_response_at": maybe(),
        "resolved_at": maybe(),
        "updated_at": maybe(),
    }


@st.composite
def setups(draw: st.DrawFn) -> SlaSetup:
    vip = dataclasses.replace(
        draw(sla_policies("vip")),
        conditions=draw(
            st.sampled_from(
                [
                    Conditions(priority=frozenset({"urgent"})),
                    Conditions(tags=frozenset({"vip"})),
                    Conditions(category=frozenset({"billing"}), channel=frozenset({"email"})),
                    Conditions(group_id=frozenset({"g1"})),
                ]
            )
        ),
    )
    schedule = CALENDARS[draw(st.sampled_from(sorted(CALENDARS)))]
    statuses = draw(st.sampled_from([DEFAULT_STATUS_MAP, CUSTOM]))
    return SlaSetup(PolicySet((vip,), draw(sla_policies("std"))), CalendarChoice.only(schedule), statuses)


@settings(max_examples=600, deadline=None)
@given(snapshots(), setups(), st.data())
def test_snapshot_sla_is_evaluate_of_the_snapshot_events(
    ticket: dict[str, Any], setup: SlaSetup, data: st.DataObject
) -> None:
    times = [ticket[name] for name in ("created_at", "first_response_at", "resolved_at", "updated_at")]
    ties = [moment for moment in times if moment is not None]
    as_of = data.draw(st.sampled_from(ties)) if data.draw(st.booleans()) else _moment(data.draw, -60, 3600)
    calendars = setup.calendars_for(ticket["group_id"])
    expected = evaluate(
        snapshot_events(ticket, setup.statuses),
        policies=setup.policies,
        calendars=calendars,
        statuses=setup.statuses,
        as_of=as_of,
    )
    assert snapshot_sla(ticket, setup, calendars, as_of) == expected


@pytest.mark.parametrize("actor", [ActorType.AGENT, None])
def test_evaluate_snapshot_takes_a_customers_creation_only(actor: ActorType | None) -> None:
    created = TicketEvent("e0", "S1", T0, EventType.CREATED, actor_type=actor)
    policies = PolicySet(
        (), SlaPolicy(id="p", name="p", targets={"default": (Target(TargetType.RESOLUTION, 60),)})
    )
    with pytest.raises(SlaError, match="customer's created event"):
        evaluate_snapshot(
            created, None, None, policies=policies, calendars={}, statuses=DEFAULT_STATUS_MAP, as_of=T0
        )
