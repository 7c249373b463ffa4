"""The state of every SLA target (METRICS.md "SLA policies"): the pipes ``ticket_sla``,
``sla_attainment`` and ``sla_at_risk``, and one ticket's SLA for ``/v1/support/tickets/{id}/sla``.

Each ticket is evaluated by the domain reference (``domain.sla.evaluate``) under the workspace's
policies and calendars.  That is exact and simple but costs Python time per ticket and event (about
what ``domain.timeline`` costs per ticket): fine for thousands of tickets, not for millions; a
vectorized engine would be the next step, tested against this one.

The tickets are chosen in SQL like every pipe's (current state, the caller's scope and filters), with
the columns policy conditions and snapshots need (tags, updated_at: ``load_history`` reads neither),
and their events come whole from ``Engine.events_of``.

A ticket without events is evaluated from synthetic events derived from its stored snapshot: created
at ``created_at`` (by the customer, with the snapshot's priority, category, channel, agent, tags), an
agent reply at ``first_response_at``, and a change into its current status at ``resolved_at`` when that
status is resolved, else at ``updated_at``, else at creation (a resolved ticket whose resolution time
is unknown is resolved from the start, as the backlog never counts it open).  What the snapshot does
not say (later replies, pauses, reopens) cannot count.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pyarrow as pa

from supportlens.analytics.activity import Filters, period_label
from supportlens.analytics.common import PipeContext, PipeResult, conditions, tickets_from
from supportlens.analytics.history import aware_utc
from supportlens.analytics.scope import Conditions
from supportlens.configuration.sla import builtin_policy
from supportlens.domain.calendars import CalendarChoice, Schedule
from supportlens.domain.events import TICKET_ATTRIBUTES, ActorType, EventType, TicketEvent
from supportlens.domain.metrics import minutes, percentage
from supportlens.domain.periods import PeriodUnit
from supportlens.domain.sla import (
    PolicySet,
    TargetState,
    TargetStatus,
    TargetType,
    TicketSla,
    attainment,
    evaluate,
)
from supportlens.domain.statuses import StatusMap
from supportlens.ingest.timestamps import format_timestamp

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
    columns = {name: table.column(name).to_pylist() for name in _EVENT_FIELDS}
    kinds = [_EVENT_TYPES[kind] for kind in columns.pop("type")]
    actors = [_ACTOR_TYPES[actor] for actor in columns.pop("actor_type")]
    moments = [aware_utc(moment) for moment in columns.pop("occurred_at")]
    tags = [tuple(t) if t else None for t in columns.pop("tags")]
    by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
    names = list(columns)
    for index, values in enumerate(zip(*columns.values(), strict=True)):
        fields = dict(zip(names, values, strict=True))
        by_ticket[fields["ticket_id"]].append(
            TicketEvent(
                **fields,
                at=moments[index],
                type=kinds[index],
                actor_type=actors[index],
                tags=tags[index],
            )
        )
    return dict(by_ticket)


_EVENT_TYPES = {kind.value: kind for kind in EventType}
_ACTOR_TYPES: dict[str | None, ActorType | None] = {None: None, **{actor.value: actor for actor in ActorType}}
# The stored columns a domain event is made of (``occurred_at`` is its ``at``).
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


def snapshot_events(ticket: Mapping[str, Any], statuses: StatusMap) -> list[TicketEvent]:
    """The synthetic history of a snapshot-only ticket (see the module docstring)."""
    ticket_id = ticket["ticket_id"]
    created_at: datetime = ticket["created_at"]
    events = [
        TicketEvent(
            event_id=f"{ticket_id}:snapshot:created",
            ticket_id=ticket_id,
            at=created_at,
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
    ]
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
    status = ticket["status"]
    if status is not None:
        resolved = statuses.is_resolved(status) and ticket["resolved_at"] is not None
        at = ticket["resolved_at"] if resolved else ticket["updated_at"] or created_at
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


# Evaluation --------------------------------------------------------------------------------------


def evaluate_tickets(
    context: PipeContext, where: Conditions, *, as_of: datetime, setup: SlaSetup
) -> list[EvaluatedTicket]:
    """Every ticket matching ``where`` (by creation time, then id) with its SLA at ``as_of``."""
    sql = (
        f"SELECT {', '.join(TICKET_COLUMNS)} FROM {tickets_from(context)} WHERE {where.where} "
        "ORDER BY created_at, ticket_id"
    )
    tickets = context.engine.fetch_arrow(sql, where.params, timeout=context.timeout).to_pylist()
    for ticket in tickets:
        for name in _TIMES:
            if ticket[name] is not None:
                ticket[name] = aware_utc(ticket[name])
    ids = [ticket["ticket_id"] for ticket in tickets]
    logs = events_from_table(context.engine.events_of(context.scope.workspace_id, ids)) if ids else {}
    evaluated = []
    for ticket in tickets:
        events = logs.get(ticket["ticket_id"])
        sla = evaluate(
            events or snapshot_events(ticket, setup.statuses),
            policies=setup.policies,
            calendars=setup.calendars_for(ticket["group_id"]),
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


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


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


def target_row(ticket_id: str, target: TargetState) -> dict[str, Any]:
    """One target as a ``ticket_sla`` row."""
    return {
        "ticket_id": ticket_id,
        "policy_id": target.policy_id,
        "target_type": target.type.value,
        "instance": target.instance,
        "priority": target.priority,
        "target_minutes": target.target_minutes,
        "business_hours": target.business_hours,
        "state": target.state.value,
        "breached": target.breached,
        "started_at": _time(target.started_at),
        "due_at": _time(target.due_at),
        "achieved_at": _time(target.achieved_at),
        "breached_at": _time(target.breached_at),
        "elapsed_minutes": minutes(target.elapsed_ms),
        "remaining_minutes": minutes(target.remaining_ms),
        "at_risk": target.at_risk,
    }


def ticket_sla(context: PipeContext, filters: Filters) -> PipeResult:
    evaluated = _evaluated(context, filters)
    rows = [target_row(e.sla.ticket_id, target) for e in evaluated for target in e.sla.targets]
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
    grouped: dict[str | None, list[TicketSla]] = defaultdict(list)
    running: dict[tuple[str | None, TargetType], int] = defaultdict(int)
    for e in evaluated:
        mine: dict[str | None, list[TargetState]] = defaultdict(list)
        for target in e.sla.targets:
            label = label_of(e, target)
            mine[label].append(target)
            if target.completed_at is None:
                running[(label, target.type)] += 1
        for label, targets in mine.items():
            grouped[label].append(dataclasses.replace(e.sla, targets=tuple(targets)))
    rows: list[dict[str, Any]] = []
    for label in sorted(grouped, key=lambda g: (g is None, g or "")):
        counts = attainment(grouped[label])
        kinds = {t.type for sla in grouped[label] for t in sla.targets}
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
    rows = [
        {
            "ticket_id": e.sla.ticket_id,
            "target_type": target.type.value,
            "instance": target.instance,
            "priority": target.priority,
            "agent_id": e.ticket["agent_id"],
            "policy_id": target.policy_id,
            "due_at": _time(target.due_at),
            "remaining_minutes": minutes(target.remaining_ms),
            "breached": target.breached,
            "at_risk": target.at_risk,
        }
        for e, target in at_risk_targets(evaluated)
    ]
    return PipeResult(AT_RISK_COLUMNS, rows, len(evaluated), 0.0)
