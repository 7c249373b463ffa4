"""The state of every SLA target (METRICS.md "SLA policies"): the pipes ``ticket_sla``,
``sla_attainment`` and ``sla_at_risk``, and one ticket's SLA for ``/v1/support/tickets/{id}/sla``.

Each ticket is evaluated by the domain reference (``domain.sla.evaluate``; a snapshot-only ticket by
its shortcut ``evaluate_snapshot``, which gives the same answer) under the workspace's policies and
calendars.  That is exact and simple but costs Python time per ticket and event (tens of
microseconds per ticket): fine for thousands of tickets, not for millions; a vectorized engine would
be the next step, tested against this one.  What surrounds it works on columns (reading the tickets
and events, formatting times and minutes), as per row it would cost as much as the evaluation.

The tickets are chosen in SQL like every pipe's (current state, the caller's scope and filters), with
the columns policy conditions and snapshots need (tags, updated_at: ``load_history`` reads neither),
and their events come whole from ``Engine.events_of``.

A ticket without events is evaluated from synthetic events derived from its stored snapshot
(``snapshot_events``, which ``snapshot_sla`` reads the short way): created at ``created_at`` (by the
customer, with the snapshot's priority, category, channel, agent, tags), an agent reply at
``first_response_at``, and a change into its current status at ``resolved_at`` when that status is
resolved, else at ``updated_at``, else at creation (a resolved ticket whose resolution time is unknown
is resolved from the start, as the backlog never counts it open).  What the snapshot does not say
(later replies, pauses, reopens) cannot count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa

from supportlens.analytics.activity import Filters, period_label
from supportlens.analytics.common import PipeContext, PipeResult, conditions, tickets_from
from supportlens.analytics.scope import Conditions
from supportlens.configuration.sla import builtin_policy
from supportlens.domain.calendars import CalendarChoice, Schedule
from supportlens.domain.events import TICKET_ATTRIBUTES, ActorType, EventType, TicketEvent
from supportlens.domain.metrics import minutes_array, percentage
from supportlens.domain.periods import PeriodUnit
from supportlens.domain.sla import (
    PolicySet,
    TargetState,
    TargetStatus,
    TargetType,
    TicketSla,
    attainment,
    evaluate,
    evaluate_snapshot,
)
from supportlens.domain.statuses import StatusMap
from supportlens.ingest.timestamps import format_timestamps

TICKET_COLUMNS = (
    "ticket_id",
    "customer_id",
    "agent_id",
    "group_id",
    "category",
    "priority",
    "status",
    "channel",
    "tags",
    "created_at",
    "first_response_at",
    "resolved_at",
    "updated_at",
)
_TIMES = ("created_at", "first_response_at", "resolved_at", "updated_at")
_TYPE_ORDER = {kind: index for index, kind in enumerate(TargetType)}
_TS = "DateTime64(3)"
_NTS = "Nullable(DateTime64(3))"


@dataclass(frozen=True, slots=True)
class SlaSetup:
    """What evaluation needs besides the events: the policies, the workspace's calendars (and the
    calendar of each group) and the status names."""

    policies: PolicySet
    calendars: CalendarChoice
    statuses: StatusMap

    def calendars_for(self, group_id: str | None) -> Mapping[str | None, Schedule]:
        """The calendars one ticket's policies pick from: a policy without a calendar of its own
        follows the ticket's calendar, its group's where the group has one, else the default."""
        return self.calendars.for_group(group_id)

    @classmethod
    def of(cls, context: PipeContext) -> SlaSetup:
        policies = context.sla_policies() if context.sla_policies else PolicySet((), builtin_policy())
        return cls(policies, context.calendar_choice(), context.statuses)

    def policy_name(self, policy_id: str) -> str:
        found = (p for p in (*self.policies.policies, self.policies.default) if p.id == policy_id)
        return next(found).name


@dataclass(frozen=True, slots=True)
class EvaluatedTicket:
    ticket: dict[str, Any]  # TICKET_COLUMNS, timestamps aware UTC
    sla: TicketSla
    has_events: bool


# Events ------------------------------------------------------------------------------------------


def events_from_table(table: pa.Table) -> dict[str, list[TicketEvent]]:
    """Stored activity-log rows (TICKET_EVENTS schema) as domain events per ticket, in arrival order
    (the domain orders by time and keeps arrival order between events at the same instant).  Read
    column by column: a row-wise ``to_pylist`` costs several times more on millions of events."""
    table = table.sort_by("seq")
    columns = [_CONVERTED.get(name, _as_is)(table.column(name)) for name in _EVENT_FIELDS]
    by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
    for values in zip(*columns, strict=True):
        event = TicketEvent(*values)
        by_ticket[event.ticket_id].append(event)
    return dict(by_ticket)


def _moments(column: pa.ChunkedArray) -> list[datetime | None]:
    """A timestamp column (UTC instants, zoned or naive) as aware UTC datetimes, None for null.
    From the integer microseconds: several times cheaper than Arrow's own datetimes."""
    micros = column.cast(pa.timestamp("us")).cast(pa.int64()).to_pylist()
    return [None if us is None else _EPOCH + timedelta(microseconds=us) for us in micros]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_EVENT_TYPES = {kind.value: kind for kind in EventType}
_ACTOR_TYPES: dict[str | None, ActorType | None] = {None: None, **{actor.value: actor for actor in ActorType}}
# The stored columns a domain event is made of, in the order of its fields (``occurred_at`` is its
# ``at``): events are built positionally, cheaper than by keyword.
_EVENT_FIELDS = (
    "event_id",
    "ticket_id",
    "occurred_at",
    "type",
    "actor_type",
    "actor_id",
    "field",
    "from_value",
    "to_value",
    "score",
    *TICKET_ATTRIBUTES,
    "tags",
)


def _as_is(column: pa.ChunkedArray) -> list[Any]:
    values: list[Any] = column.to_pylist()
    return values


# How a stored column becomes the values of its event field (the others are taken as they are).
_CONVERTED: dict[str, Callable[[pa.ChunkedArray], list[Any]]] = {
    "occurred_at": _moments,
    "type": lambda column: [_EVENT_TYPES[kind] for kind in column.to_pylist()],
    "actor_type": lambda column: [_ACTOR_TYPES[actor] for actor in column.to_pylist()],
    "tags": lambda column: [tuple(t) if t else None for t in column.to_pylist()],
}


def snapshot_events(ticket: Mapping[str, Any], statuses: StatusMap) -> list[TicketEvent]:
    """The synthetic history of a snapshot-only ticket (see the module docstring); evaluation reads
    it through ``snapshot_sla``."""
    ticket_id = ticket["ticket_id"]
    events = [_snapshot_created(ticket)]
    if ticket["first_response_at"] is not None:
        events.append(
            TicketEvent(
                event_id=f"{ticket_id}:snapshot:first_response",
                ticket_id=ticket_id,
                at=ticket["first_response_at"],
                type=EventType.REPLY,
                actor_type=ActorType.AGENT,
                actor_id=ticket["agent_id"],
            )
        )
    change = _snapshot_status(ticket, statuses)
    if change is not None:
        at, status = change
        events.append(
            TicketEvent(
                event_id=f"{ticket_id}:snapshot:status",
                ticket_id=ticket_id,
                at=at,
                type=EventType.STATUS_CHANGED,
                to_value=status,
                status=status,
            )
        )
    return events


def snapshot_sla(
    ticket: Mapping[str, Any], setup: SlaSetup, calendars: Mapping[str | None, Schedule], as_of: datetime
) -> TicketSla:
    """``evaluate`` of ``snapshot_events(ticket)``, by the domain's shortcut for such histories."""
    return evaluate_snapshot(
        _snapshot_created(ticket),
        ticket["first_response_at"],
        _snapshot_status(ticket, setup.statuses),
        policies=setup.policies,
        calendars=calendars,
        statuses=setup.statuses,
        as_of=as_of,
    )


def _snapshot_created(ticket: Mapping[str, Any]) -> TicketEvent:
    ticket_id = ticket["ticket_id"]
    return TicketEvent(
        event_id=f"{ticket_id}:snapshot:created",
        ticket_id=ticket_id,
        at=ticket["created_at"],
        type=EventType.CREATED,
        actor_type=ActorType.CUSTOMER,
        customer_id=ticket["customer_id"],
        agent_id=ticket["agent_id"],
        group_id=ticket["group_id"],
        category=ticket["category"],
        priority=ticket["priority"],
        channel=ticket["channel"],
        tags=tuple(ticket["tags"]) if ticket["tags"] else None,
    )


def _snapshot_status(ticket: Mapping[str, Any], statuses: StatusMap) -> tuple[datetime, str] | None:
    """When the snapshot's status is taken to have been entered, and the status."""
    status: str | None = ticket["status"]
    if status is None:
        return None
    resolved = statuses.is_resolved(status) and ticket["resolved_at"] is not None
    return (ticket["resolved_at"] if resolved else ticket["updated_at"] or ticket["created_at"]), status


# Evaluation --------------------------------------------------------------------------------------


def evaluate_tickets(
    context: PipeContext, where: Conditions, *, as_of: datetime, setup: SlaSetup
) -> list[EvaluatedTicket]:
    """Every ticket matching ``where`` (by creation time, then id) with its SLA at ``as_of``."""
    sql = (
        f"SELECT {', '.join(TICKET_COLUMNS)} FROM {tickets_from(context)} WHERE {where.where} "
        "ORDER BY created_at, ticket_id"
    )
    table = context.engine.fetch_arrow(sql, where.params, timeout=context.timeout)
    # Column by column, as in events_from_table: far cheaper than a row-wise to_pylist.
    columns = [
        _moments(table.column(name)) if name in _TIMES else table.column(name).to_pylist()
        for name in TICKET_COLUMNS
    ]
    tickets = [dict(zip(TICKET_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)]
    ids = [ticket["ticket_id"] for ticket in tickets]
    logs = events_from_table(context.engine.events_of(context.scope.workspace_id, ids)) if ids else {}
    evaluated = []
    calendars: dict[str | None, Mapping[str | None, Schedule]] = {}  # per group, built once
    for ticket in tickets:
        events = logs.get(ticket["ticket_id"])
        group_id = ticket["group_id"]
        if group_id not in calendars:
            calendars[group_id] = setup.calendars_for(group_id)
        if events is None:
            sla = snapshot_sla(ticket, setup, calendars[group_id], as_of)
        else:
            sla = evaluate(
                events,
                policies=setup.policies,
                calendars=calendars[group_id],
                statuses=setup.statuses,
                as_of=as_of,
            )
        evaluated.append(EvaluatedTicket(ticket, sla, events is not None))
    return evaluated


def _evaluated(
    context: PipeContext, filters: Filters, *, unresolved_only: bool = False
) -> list[EvaluatedTicket]:
    where = conditions(context)
    for column in ("agent_id", "group_id", "category", "priority", "channel"):
        where.equals(column, getattr(filters, column))
    where.between("created_at", filters.window.start, filters.window.end)
    if unresolved_only:
        where.unresolved_at(filters.as_of)
    return evaluate_tickets(context, where, as_of=filters.as_of, setup=SlaSetup.of(context))


def _times(moments: Sequence[datetime | None]) -> list[str | None]:
    """``format_timestamp`` of each instant (None stays None), a column at a time."""
    column = pa.array(moments, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("ms", tz="UTC"), safe=False)
    formatted: list[str | None] = format_timestamps(column).to_pylist()
    return formatted


def _minutes(milliseconds: Sequence[int]) -> list[float]:
    """``minutes`` of each duration, a column at a time (the same values; ``minutes`` keeps the
    sign of a rounded-away negative, hence copysign)."""
    ms = np.array(milliseconds, dtype=np.int64)
    result: list[float] = np.copysign(minutes_array(ms), ms).tolist()
    return result


# ticket_sla --------------------------------------------------------------------------------------

TICKET_SLA_COLUMNS: list[tuple[str, str]] = [
    ("ticket_id", "String"),
    ("policy_id", "String"),
    ("target_type", "String"),
    ("instance", "UInt32"),
    ("priority", "Nullable(String)"),
    ("target_minutes", "UInt32"),
    ("business_hours", "Bool"),
    ("state", "String"),
    ("breached", "Bool"),
    ("started_at", _TS),
    ("due_at", _NTS),
    ("achieved_at", _NTS),
    ("breached_at", _NTS),
    ("elapsed_minutes", "Float64"),
    ("remaining_minutes", "Float64"),
    ("at_risk", "Bool"),
]


_TARGET_TIMES = ("started_at", "due_at", "achieved_at", "breached_at")


def target_rows(found: Sequence[tuple[str, TargetState]]) -> list[dict[str, Any]]:
    """Each (ticket id, target) as a ``ticket_sla`` row; times and minutes converted a column at a
    time, as converting them one by one costs more than evaluating."""
    targets = [target for _, target in found]
    times = {name: _times([getattr(t, name) for t in targets]) for name in _TARGET_TIMES}
    elapsed = _minutes([t.elapsed_ms for t in targets])
    remaining = _minutes([t.remaining_ms for t in targets])
    return [
        {
            "ticket_id": ticket_id,
            "policy_id": target.policy_id,
            "target_type": target.type.value,
            "instance": target.instance,
            "priority": target.priority,
            "target_minutes": target.target_minutes,
            "business_hours": target.business_hours,
            "state": target.state.value,
            "breached": target.breached,
            **{name: times[name][index] for name in _TARGET_TIMES},
            "elapsed_minutes": elapsed[index],
            "remaining_minutes": remaining[index],
            "at_risk": target.at_risk,
        }
        for index, (ticket_id, target) in enumerate(found)
    ]


def ticket_sla(context: PipeContext, filters: Filters) -> PipeResult:
    evaluated = _evaluated(context, filters)
    rows = target_rows([(e.sla.ticket_id, target) for e in evaluated for target in e.sla.targets])
    return PipeResult(TICKET_SLA_COLUMNS, rows, len(evaluated), 0.0)


# sla_attainment ----------------------------------------------------------------------------------


class SlaGroupBy(StrEnum):
    TARGET_TYPE = "target_type"
    PRIORITY = "priority"
    AGENT = "agent"
    GROUP = "group"
    CATEGORY = "category"
    POLICY = "policy"
    PERIOD = "period"
    NONE = "none"  # every target together: a row per target type, its group null


ATTAINMENT_COLUMNS: list[tuple[str, str]] = [
    ("group", "Nullable(String)"),
    ("target_type", "String"),
    ("achieved", "UInt64"),
    ("breached", "UInt64"),
    ("running", "UInt64"),
    ("attainment_pct", "Nullable(Float64)"),
]


def _labeller(
    context: PipeContext, by: SlaGroupBy, unit: PeriodUnit
) -> Callable[[EvaluatedTicket, TargetState], str | None]:
    """The group of one target of one ticket: an attribute of the target (type, priority in force when
    it started, policy) or of the ticket (current agent, category; creation period)."""
    match by:
        case SlaGroupBy.NONE:
            return lambda _, __: None
        case SlaGroupBy.TARGET_TYPE:
            return lambda _, target: target.type.value
        case SlaGroupBy.PRIORITY:
            return lambda _, target: target.priority
        case SlaGroupBy.POLICY:
            return lambda _, target: target.policy_id
        case SlaGroupBy.AGENT:
            return lambda e, _: e.ticket["agent_id"]
        case SlaGroupBy.GROUP:
            return lambda e, _: e.ticket["group_id"]
        case SlaGroupBy.CATEGORY:
            return lambda e, _: e.ticket["category"]
        case SlaGroupBy.PERIOD:
            return lambda e, _: period_label(e.ticket["created_at"], unit, context.timezone)


def sla_attainment(context: PipeContext, filters: Filters, *, by: SlaGroupBy, unit: PeriodUnit) -> PipeResult:
    """Achieved ÷ (achieved + breached) of the completed targets of the tickets created in the window,
    per group and target type; ``running`` targets (active or paused) do not count yet."""
    evaluated = _evaluated(context, filters)
    label_of = _labeller(context, by, unit)
    grouped: dict[str | None, list[TargetState]] = defaultdict(list)
    running: dict[tuple[str | None, TargetType], int] = defaultdict(int)
    for e in evaluated:
        for target in e.sla.targets:
            label = label_of(e, target)
            grouped[label].append(target)
            if target.completed_at is None:
                running[(label, target.type)] += 1
    rows: list[dict[str, Any]] = []
    for label in sorted(grouped, key=lambda g: (g is None, g or "")):
        counts = attainment(grouped[label])
        kinds = {t.type for t in grouped[label]}
        for kind in sorted(kinds, key=_TYPE_ORDER.__getitem__):
            achieved = counts[kind].achieved if kind in counts else 0
            breached = counts[kind].breached if kind in counts else 0
            rows.append(
                {
                    "group": label,
                    "target_type": kind.value,
                    "achieved": achieved,
                    "breached": breached,
                    "running": running[(label, kind)],
                    "attainment_pct": percentage(achieved, achieved + breached)
                    if achieved + breached
                    else None,
                }
            )
    return PipeResult(ATTAINMENT_COLUMNS, rows, len(evaluated), 0.0)


# sla_at_risk -------------------------------------------------------------------------------------

AT_RISK_COLUMNS: list[tuple[str, str]] = [
    ("ticket_id", "String"),
    ("target_type", "String"),
    ("instance", "UInt32"),
    ("priority", "Nullable(String)"),
    ("agent_id", "Nullable(String)"),
    ("policy_id", "String"),
    ("due_at", _NTS),
    ("remaining_minutes", "Float64"),
    ("breached", "Bool"),
    ("at_risk", "Bool"),
]


def at_risk_targets(evaluated: Iterable[EvaluatedTicket]) -> list[tuple[EvaluatedTicket, TargetState]]:
    """The running (active) targets that are at risk or breached, soonest due first: a breached
    target's due time is its breach, so the longest overdue lead."""
    found = [
        (e, target)
        for e in evaluated
        for target in e.sla.targets
        if target.state is TargetStatus.ACTIVE and (target.at_risk or target.breached)
    ]
    found.sort(
        key=lambda item: (
            item[1].due_at is None,
            item[1].due_at or item[1].started_at,
            item[0].sla.ticket_id,
            _TYPE_ORDER[item[1].type],
            item[1].instance,
        )
    )
    return found


def sla_at_risk(context: PipeContext, filters: Filters) -> PipeResult:
    """A ticket resolved at ``as_of`` has no running target (METRICS.md: resolving fulfils the
    resolution targets and stops the reply clocks), so only the others are evaluated."""
    evaluated = _evaluated(context, filters, unresolved_only=True)
    found = at_risk_targets(evaluated)
    due = _times([target.due_at for _, target in found])
    remaining = _minutes([target.remaining_ms for _, target in found])
    rows = [
        {
            "ticket_id": e.sla.ticket_id,
            "target_type": target.type.value,
            "instance": target.instance,
            "priority": target.priority,
            "agent_id": e.ticket["agent_id"],
            "policy_id": target.policy_id,
            "due_at": due[index],
            "remaining_minutes": remaining[index],
            "breached": target.breached,
            "at_risk": target.at_risk,
        }
        for index, (e, target) in enumerate(found)
    ]
    return PipeResult(AT_RISK_COLUMNS, rows, len(evaluated), 0.0)
