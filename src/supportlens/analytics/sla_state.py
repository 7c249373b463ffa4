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
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.activity import Filters, label_codes, period_codes
from supportlens.analytics.common import PipeContext, PipeResult, TableRows, conditions, tickets_from
from supportlens.analytics.history import timestamp_ms
from supportlens.analytics.scope import Conditions
from supportlens.analytics.sla_memo import (
    LISTED_SCHEMA,
    NEVER,
    KeptEvaluation,
    TargetStates,
    encoded_listed,
    encoded_states,
    setup_fingerprint,
)
from supportlens.configuration.sla import builtin_policy
from supportlens.domain.calendars import CalendarChoice, Schedule
from supportlens.domain.events import TICKET_ATTRIBUTES, ActorType, EventType, TicketEvent
from supportlens.domain.metrics import MS_PER_MINUTE, minutes_array, percentage
from supportlens.domain.periods import PeriodUnit
from supportlens.domain.sla import (
    PolicySet,
    SlaPolicy,
    TargetState,
    TargetStatus,
    TargetType,
    TicketSla,
    advanced,
    evaluate,
    evaluate_snapshot,
)
from supportlens.domain.sla_snapshots import TARGET_SCHEMA, evaluate_snapshots, to_us
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

    def policies_by_id(self) -> dict[str, SlaPolicy]:
        return {p.id: p for p in (*self.policies.policies, self.policies.default)}

    def policy_name(self, policy_id: str) -> str:
        return self.policies_by_id()[policy_id].name


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


@dataclass(frozen=True, slots=True)
class EvaluatedTargets:
    """The tickets matching a selection (TICKET_COLUMNS, ``logged_until``: the last event's time,
    ``ticket_seq``: the version; by creation time then id) and every target of each as columns
    (``domain.sla_snapshots.TARGET_SCHEMA``: ``row`` is the ticket's row), in the order
    ``evaluate_tickets`` lists them unless asked otherwise, with the same values."""

    tickets: pa.Table
    targets: pa.Table


def evaluate_targets(
    context: PipeContext,
    where: Conditions,
    *,
    as_of: datetime,
    setup: SlaSetup,
    page: str = "",
    in_order: bool = True,
) -> EvaluatedTargets:
    """``evaluate_tickets``'s targets as columns: the tickets with events by the reference, one at a
    time (they are few), the snapshot-only ones by the vectorized evaluator, all at once.  ``page``
    (``LIMIT ... OFFSET ...``) takes a page of the tickets in their order.  ``in_order=False``: the
    targets in no particular order, for callers that count or sort them (putting millions of rows
    in order is a good part of the work)."""
    sql = (
        f"SELECT {', '.join(TICKET_COLUMNS)}, last_event_at AS logged_until, seq AS ticket_seq"
        f" FROM {tickets_from(context)} WHERE {where.where} ORDER BY created_at, ticket_id {page}"
    )
    read = context.engine.fetch_arrow(sql, where.params, timeout=context.timeout)
    table = read
    calendars: dict[str | None, Mapping[str | None, Schedule]] = {}  # per group, built once

    def calendars_for(group_id: str | None) -> Mapping[str | None, Schedule]:
        if group_id not in calendars:
            calendars[group_id] = setup.calendars_for(group_id)
        return calendars[group_id]

    # Tickets with a history (``last_event_at`` is set exactly on those) go to the reference.
    last_event_ms, has_events = timestamp_ms(read, "logged_until")
    snapshot_rows = np.flatnonzero(~has_events)
    # Only what the snapshot evaluation reads: a take of every column cost as much as the rest.
    snapshots = table.select(_SNAPSHOT_SOURCE).take(pa.array(snapshot_rows, pa.int64()))
    found = evaluate_snapshots(
        _snapshot_columns(snapshots, setup.statuses),
        policies=setup.policies,
        calendars_for=calendars_for,
        statuses=setup.statuses,
        as_of=as_of,
        in_order=in_order,
    )
    found = found.set_column(0, "row", pa.array(snapshot_rows[found.column("row").to_numpy()], pa.int64()))
    logged_rows = np.flatnonzero(has_events)
    with_events = _with_events(context, setup, read, logged_rows, last_event_ms, as_of, calendars_for)
    targets = pa.concat_tables([found, _target_columns(with_events)])
    if not in_order:
        return EvaluatedTargets(table, targets)
    order = np.argsort(targets.column("row").to_numpy(), kind="stable")
    return EvaluatedTargets(table, targets.take(pa.array(order, pa.int64())))


def _with_events(
    context: PipeContext,
    setup: SlaSetup,
    read: pa.Table,
    rows: npt.NDArray[np.int64],
    last_event_ms: npt.NDArray[np.int64],
    as_of: datetime,
    calendars_for: Callable[[str | None], Mapping[str | None, Schedule]],
) -> list[tuple[int, TargetState]]:
    """The targets of the ticket rows with events, by the reference, or as kept from an earlier run
    and advanced to ``as_of`` (analytics/sla_memo.py)."""
    memo, workspace_id = context.sla_memo, context.scope.workspace_id
    ids = read.column("ticket_id").take(pa.array(rows, pa.int64())).to_pylist()
    groups = read.column("group_id").take(pa.array(rows, pa.int64())).to_pylist()
    seqs = read.column("ticket_seq").take(pa.array(rows, pa.int64())).to_pylist()
    # Kept evaluations serve an evaluation time at or after the ticket's last event.
    after_last = (last_event_ms[rows] * 1000 <= to_us(as_of)).tolist()
    fingerprint = setup_fingerprint(setup.policies, setup.calendars, setup.statuses) if memo else ""

    def kept_evaluations() -> dict[int, KeptEvaluation]:
        kept: dict[int, KeptEvaluation] = {}
        if memo is not None:
            for index, (ticket_id, seq, usable) in enumerate(zip(ids, seqs, after_last, strict=True)):
                found = memo.get(workspace_id, ticket_id, int(seq), fingerprint) if usable else None
                if found is not None:
                    kept[index] = found
        return kept

    with ExitStack() as turn:
        kept = kept_evaluations()
        if memo is not None and len(ids) - len(kept) > _MANY_TO_EVALUATE:
            # Wait for a large evaluation of the workspace under way: it keeps most of these.
            turn.enter_context(memo.evaluating(workspace_id))
            kept = kept_evaluations()
        missing = [ticket_id for index, ticket_id in enumerate(ids) if index not in kept]
        logs = events_from_table(context.engine.events_of(workspace_id, missing)) if missing else {}
        found_targets: list[tuple[int, TargetState]] = []
        policies = setup.policies_by_id()
        for index, (row, ticket_id, group_id) in enumerate(zip(rows.tolist(), ids, groups, strict=True)):
            earlier = kept.get(index)
            if earlier is not None:
                targets: Sequence[TargetState] = [
                    advanced(
                        target,
                        status_since=earlier.status_since,
                        evaluated_at=earlier.evaluated_at,
                        policy=policies[target.policy_id],
                        calendars=calendars_for(group_id),
                        as_of=as_of,
                    )
                    for target in earlier.targets
                ]
            else:
                sla = evaluate(
                    logs[ticket_id],
                    policies=setup.policies,
                    calendars=calendars_for(group_id),
                    statuses=setup.statuses,
                    as_of=as_of,
                )
                targets = sla.targets
                if memo is not None and after_last[index] and sla.status_since is not None:
                    memo.keep(
                        workspace_id,
                        ticket_id,
                        int(seqs[index]),
                        fingerprint,
                        targets,
                        evaluated_at=as_of,
                        status_since=sla.status_since,
                    )
            found_targets.extend((row, target) for target in targets)
        return found_targets


# Tickets with events to evaluate past which a run takes its turn (sla_memo._Turns): ~0.2 s of work.
_MANY_TO_EVALUATE = 1_000


_SNAPSHOT_SOURCE = (
    "status",
    "resolved_at",
    "updated_at",
    "created_at",
    "first_response_at",
    "priority",
    "category",
    "channel",
    "group_id",
    "tags",
)


def _snapshot_columns(tickets: pa.Table, statuses: StatusMap) -> pa.Table:
    """What ``evaluate_snapshots`` reads of snapshot-only tickets: ``snapshot_sla``'s events (the
    status entered at ``_snapshot_status``'s time), as columns."""
    status = tickets.column("status")
    encoded = pc.dictionary_encode(status.combine_chunks())
    resolved_name = pa.array(
        [statuses.is_resolved(name) for name in encoded.dictionary.to_pylist()], pa.bool_()
    )
    resolved = pc.fill_null(pc.take(resolved_name, encoded.indices), False)
    resolved = pc.and_(resolved, pc.is_valid(tickets.column("resolved_at")))
    otherwise = pc.coalesce(tickets.column("updated_at"), tickets.column("created_at"))
    status_at = pc.if_else(resolved, tickets.column("resolved_at"), otherwise)
    status_at = pc.if_else(pc.is_valid(status), status_at, pa.scalar(None, status_at.type))
    return pa.table(
        {
            "created_at": tickets.column("created_at"),
            "replied_at": tickets.column("first_response_at"),
            "status_at": status_at,
            "status": status,
            "priority": tickets.column("priority"),
            "category": tickets.column("category"),
            "channel": tickets.column("channel"),
            "group_id": tickets.column("group_id"),
            "tags": tickets.column("tags"),
        }
    )


def _target_columns(found: Sequence[tuple[int, TargetState]]) -> pa.Table:
    """(ticket row, target) pairs of the reference as ``TARGET_SCHEMA`` columns."""
    states = [target for _, target in found]
    values: dict[str, list[Any]] = {"row": [row for row, _ in found]}
    for name in TARGET_SCHEMA.names[1:]:
        values[name] = [getattr(target, name) for target in states]
    values["type"] = [kind.value for kind in values["type"]]
    values["state"] = [state.value for state in values["state"]]
    return pa.Table.from_pydict(values, schema=TARGET_SCHEMA)


def _selection(context: PipeContext, filters: Filters, *, unresolved_only: bool = False) -> Conditions:
    where = conditions(context)
    for column in ("agent_id", "group_id", "category", "priority", "channel"):
        where.equals(column, getattr(filters, column))
    where.between("created_at", filters.window.start, filters.window.end)
    if unresolved_only:
        where.unresolved_at(filters.as_of)
    return where


def _target_states(
    context: PipeContext, filters: Filters, columns: Sequence[str], target_columns: Sequence[str]
) -> EvaluatedTargets:
    """The targets of the selected tickets as ``row`` and ``target_columns`` of
    ``sla_memo.STATE_SCHEMA``, in no particular order: those of ticket versions kept from earlier
    runs (analytics/sla_memo.py, ``TargetStates``), the others evaluated, and kept in turn.
    ``tickets`` holds ticket_id, ``columns`` (of TICKET_COLUMNS) and ``ticket_seq``: reading a
    string column of a million tickets costs ~8 ms."""
    wanted = ["row", *target_columns]
    where = _selection(context, filters)
    setup = SlaSetup.of(context)
    if context.sla_states is None:
        every = evaluate_targets(context, where, as_of=filters.as_of, setup=setup, in_order=False)
        return EvaluatedTargets(every.tickets, encoded_states(every.targets).select(wanted))
    reused = _reusing(
        context,
        where,
        ("ticket_id", *columns),
        context.sla_states,
        setup=setup,
        as_of=filters.as_of,
        keeping=lambda fresh: _Keeping(
            _steady_from_ms(fresh.tickets, filters.as_of), None, encoded_states(fresh.targets)
        ),
        target_columns=target_columns,
    )
    return EvaluatedTargets(
        reused.tickets, pa.concat_tables([reused.taken, reused.fresh_kept.select(wanted)])
    )


class _Keeping(NamedTuple):
    """What to keep of evaluated tickets (``TargetStates.keep``): from when (NEVER: not kept) and
    until when each is usable (None: ever after), and the targets (``row``: the evaluated ticket)."""

    valid_from_ms: npt.NDArray[np.int64]
    valid_until_ms: npt.NDArray[np.int64] | None
    targets: pa.Table


@dataclass(frozen=True, slots=True)
class _Reused:
    """What ``_reusing`` gives: the selected ``tickets``, the ``taken`` targets of their versions kept
    (the store's schema), and the others' targets evaluated: all of them (``fresh``, TARGET_SCHEMA)
    and as kept (``fresh_kept``).  ``row`` of each is the ticket's row in ``tickets``."""

    tickets: pa.Table
    taken: pa.Table
    fresh: pa.Table
    fresh_kept: pa.Table


def _reusing(
    context: PipeContext,
    where: Conditions,
    columns: Sequence[str],
    kept: TargetStates,
    *,
    setup: SlaSetup,
    as_of: datetime,
    keeping: Callable[[EvaluatedTargets], _Keeping],
    target_columns: Sequence[str] | None = None,
) -> _Reused:
    """The tickets of ``where`` (``columns`` of TICKET_COLUMNS and ``ticket_seq``) with the targets
    ``kept`` holds of their versions usable at ``as_of`` (``row`` and ``target_columns`` of them,
    by default all); the other tickets are evaluated, and what ``keeping`` says of them is kept in
    turn."""
    sql = f"SELECT {', '.join(columns)}, seq AS ticket_seq FROM {tickets_from(context)} WHERE {where.where}"
    tickets = context.engine.fetch_arrow(sql, where.params, timeout=context.timeout)
    seqs = _seqs(tickets)
    workspace_id, as_of_ms = context.scope.workspace_id, to_us(as_of) // 1000
    fingerprint = setup_fingerprint(setup.policies, setup.calendars, setup.statuses)
    with ExitStack() as turn:
        found, taken = kept.find(workspace_id, fingerprint, seqs, as_of_ms, columns=target_columns)
        if (~found).sum() > _WHOLE_EVALUATION_SHARE * len(seqs):
            # Wait for a large evaluation of the workspace under way: it keeps most of these.
            turn.enter_context(kept.evaluating(workspace_id))
            found, taken = kept.find(workspace_id, fingerprint, seqs, as_of_ms, columns=target_columns)
        missing = np.flatnonzero(~found)
        if not len(missing):
            return _Reused(tickets, taken, TARGET_SCHEMA.empty_table(), taken.schema.empty_table())
        whole = len(missing) > _WHOLE_EVALUATION_SHARE * len(seqs)
        if not whole:
            where = where.copy()
            where.among(tickets.column("ticket_id").take(pa.array(missing, pa.int64())).to_pylist())
        fresh = evaluate_targets(context, where, as_of=as_of, setup=setup, in_order=False)
        to_keep = keeping(fresh)
        kept.keep(
            workspace_id,
            fingerprint,
            _seqs(fresh.tickets),
            to_keep.valid_from_ms,
            to_keep.targets,
            in_use=seqs[found],
            valid_until_ms=to_keep.valid_until_ms,
        )
        if whole:
            chosen = fresh.tickets.select([*columns, "ticket_seq"])
            return _Reused(chosen, taken.schema.empty_table(), fresh.targets, to_keep.targets)
        # Each evaluated ticket's row among ours (a ticket written meanwhile may have left the selection).
        missing_ids = tickets.column("ticket_id").take(missing).combine_chunks()
        ours = pc.index_in(fresh.tickets.column("ticket_id"), value_set=missing_ids)
        row_of = np.asarray(ours.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        row_of = np.where(row_of >= 0, missing[np.maximum(row_of, 0)], -1)
        return _Reused(
            tickets, taken, _rows_among(fresh.targets, row_of), _rows_among(to_keep.targets, row_of)
        )


def _rows_among(targets: pa.Table, row_of: npt.NDArray[np.int64]) -> pa.Table:
    """``targets`` with ``row`` mapped through ``row_of``; those mapped to -1 left out."""
    rows = row_of[np.asarray(targets.column("row").to_numpy(), dtype=np.int64)]
    return targets.set_column(0, "row", pa.array(rows, pa.int64())).filter(pa.array(rows >= 0))


# Past this share of the selected tickets without kept targets, the whole selection is evaluated
# (a list of ids that long costs more to bind and match than it saves).
_WHOLE_EVALUATION_SHARE = 0.1


def _seqs(tickets: pa.Table) -> npt.NDArray[np.int64]:
    return np.asarray(tickets.column("ticket_seq").cast(pa.int64()).to_numpy(), dtype=np.int64)


def _steady_from_ms(tickets: pa.Table, as_of: datetime) -> npt.NDArray[np.int64]:
    """Each ticket's last moment if it is before ``as_of`` (an evaluation then holds what no
    longer changes), else NEVER."""
    last = _last_moment_ms(tickets)
    return np.where(_steady(last, as_of), last, NEVER)


def _steady(last_moment_ms: npt.NDArray[np.int64], as_of: datetime) -> npt.NDArray[np.bool_]:
    """Whether each last moment (whole milliseconds, the instant's own may be finer) is surely
    before ``as_of``."""
    return np.asarray((last_moment_ms + 1) * 1000 <= to_us(as_of), dtype=bool)


def _last_moment_ms(tickets: pa.Table) -> npt.NDArray[np.int64]:
    """The latest of each ticket's timestamps and last event: from then on, what ``STATE_SCHEMA``
    say of its targets no longer changes."""
    latest = np.full(tickets.num_rows, np.iinfo(np.int64).min, dtype=np.int64)
    for name in (*_TIMES, "logged_until"):
        ms, present = timestamp_ms(tickets, name)
        latest = np.where(present, np.maximum(latest, ms), latest)
    return latest


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


def _time_column(column: pa.ChunkedArray) -> pa.Array:
    """``format_timestamp`` of each instant (null stays null), a column at a time."""
    as_ms = column.cast(pa.timestamp("ms", tz="UTC"), safe=False)
    return format_timestamps(as_ms)


def _minutes_column(column: pa.ChunkedArray) -> pa.Array:
    """``minutes`` of each duration, a column at a time (the same values; ``minutes`` keeps the
    sign of a rounded-away negative, hence copysign)."""
    ms = np.asarray(column.to_numpy(), dtype=np.int64)
    return pa.array(np.copysign(minutes_array(ms), ms), pa.float64())


def ticket_sla(context: PipeContext, filters: Filters, *, limit: int, offset: int) -> PipeResult:
    """A page of the tickets (by creation time, then id), each with every target; the count of
    every matching ticket is ``rows_before_limit_at_least``."""
    where = _selection(context, filters)
    count = f"SELECT count(*) AS n FROM {tickets_from(context)} WHERE {where.where}"
    matched = int(context.engine.fetch(count, where.params, timeout=context.timeout).rows[0][0])
    found = evaluate_targets(
        context,
        where,
        as_of=filters.as_of,
        setup=SlaSetup.of(context),
        page=f"LIMIT {int(limit)} OFFSET {int(offset)}",
    )
    targets = found.targets
    rows = pa.array(targets.column("row").to_numpy(), pa.int64())
    columns = {
        "ticket_id": found.tickets.column("ticket_id").take(rows),
        "policy_id": targets.column("policy_id"),
        "target_type": targets.column("type"),
        "instance": targets.column("instance"),
        "priority": targets.column("priority"),
        "target_minutes": targets.column("target_minutes"),
        "business_hours": targets.column("business_hours"),
        "state": targets.column("state"),
        "breached": targets.column("breached"),
        **{name: _time_column(targets.column(name)) for name in _TARGET_TIMES},
        "elapsed_minutes": _minutes_column(targets.column("elapsed_ms")),
        "remaining_minutes": _minutes_column(targets.column("remaining_ms")),
        "at_risk": targets.column("at_risk"),
    }
    table = pa.table(columns)
    return PipeResult(TICKET_SLA_COLUMNS, TableRows(table), matched, 0.0, rows_before_limit=matched)


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


def _label_codes(
    context: PipeContext, found: EvaluatedTargets, by: SlaGroupBy, unit: PeriodUnit
) -> tuple[list[str | None], npt.NDArray[np.int64]]:
    """The groups and each target's index into them: an attribute of the target (type, priority in
    force when it started, policy) or of its ticket (current agent, category; creation period)."""
    targets = found.targets
    rows = np.asarray(targets.column("row").to_numpy(), dtype=np.int64)
    match by:
        case SlaGroupBy.NONE:
            return [None], np.zeros(targets.num_rows, dtype=np.int64)
        case SlaGroupBy.TARGET_TYPE:
            return [kind.value for kind in TargetType], _codes(targets, "type")
        case SlaGroupBy.PRIORITY | SlaGroupBy.POLICY:
            name = "priority" if by is SlaGroupBy.PRIORITY else "policy_id"
            column = targets.select([name]).unify_dictionaries().column(0)
            if not column.num_chunks:
                return [None], rows
            values = column.chunk(0).dictionary.to_pylist()
            indices = [_indices(chunk.indices, len(values)) for chunk in column.chunks]
            return [*values, None], np.concatenate(indices)
        case SlaGroupBy.PERIOD:
            created, _ = timestamp_ms(found.tickets, "created_at")
            names, periods = period_codes(created, unit, context.timezone)
            return list(names), periods[rows]
        case _:
            (name,) = _TICKET_GROUPS[by]
            labels, codes = label_codes(found.tickets.column(name).combine_chunks())
            return labels, codes[rows]


# The kept target columns each grouping of sla_attainment reads besides type and state.
_TARGET_GROUPS: dict[SlaGroupBy, tuple[str, ...]] = {
    SlaGroupBy.PRIORITY: ("priority",),
    SlaGroupBy.POLICY: ("policy_id",),
}
# The ticket columns each grouping of sla_attainment reads (the others group by target columns).
_TICKET_GROUPS: dict[SlaGroupBy, tuple[str, ...]] = {
    SlaGroupBy.AGENT: ("agent_id",),
    SlaGroupBy.GROUP: ("group_id",),
    SlaGroupBy.CATEGORY: ("category",),
    SlaGroupBy.PERIOD: ("created_at",),
}


def _indices(indices: pa.Array, nulls: int) -> npt.NDArray[np.int64]:
    """Dictionary indices as an array, ``nulls`` standing for null."""
    return np.asarray(indices.fill_null(nulls).to_numpy(zero_copy_only=False), dtype=np.int64)


_OUTCOME = {TargetStatus.ACHIEVED: 0, TargetStatus.BREACHED: 1}


def _codes(targets: pa.Table, name: str, kind: type[np.integer[Any]] = np.int64) -> npt.NDArray[Any]:
    """A code column of ``sla_memo.STATE_SCHEMA`` (int8) as an array of ``kind``: sla_attainment
    counts millions of targets in 16 bits (arithmetic on int64 copies took a fifth of its time)."""
    return np.asarray(targets.column(name).to_numpy(), dtype=kind)


def sla_attainment(context: PipeContext, filters: Filters, *, by: SlaGroupBy, unit: PeriodUnit) -> PipeResult:
    """Achieved ÷ (achieved + breached) of the completed targets of the tickets created in the window,
    per group and target type; ``running`` targets (active or paused) do not count yet."""
    target_columns = ("type", "state", *_TARGET_GROUPS.get(by, ()))
    found = _target_states(context, filters, _TICKET_GROUPS.get(by, ()), target_columns)
    groups, group_codes = _label_codes(context, found, by, unit)
    kinds = list(TargetType)
    size = len(groups) * len(kinds)  # cells: one per group and target type
    # Achieved 0, breached 1, running (active or paused) 2: counted per cell in one pass.
    outcome = np.array([_OUTCOME.get(state, 2) for state in TargetStatus], dtype=np.int16)
    within_group = (
        _codes(found.targets, "type", np.int16) * 3 + outcome[_codes(found.targets, "state", np.int16)]
    )
    counted = within_group if len(groups) == 1 else group_codes * (len(kinds) * 3) + within_group
    tally = np.bincount(counted, minlength=size * 3)
    counts = [tally[outcome_code::3].tolist() for outcome_code in range(3)]
    present = [index for index in range(size) if counts[0][index] + counts[1][index] + counts[2][index]]
    present.sort(
        key=lambda i: (groups[i // len(kinds)] is None, groups[i // len(kinds)] or "", i % len(kinds))
    )
    rows: list[dict[str, Any]] = []
    for index in present:
        done, late, running = (count[index] for count in counts)
        rows.append(
            {
                "group": groups[index // len(kinds)],
                "target_type": kinds[index % len(kinds)].value,
                "achieved": done,
                "breached": late,
                "running": running,
                "attainment_pct": percentage(done, done + late) if done + late else None,
            }
        )
    return PipeResult(ATTAINMENT_COLUMNS, rows, found.tickets.num_rows, 0.0)


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


def sla_at_risk(context: PipeContext, filters: Filters, *, limit: int, offset: int) -> PipeResult:
    """A ticket resolved at ``as_of`` has no running target (METRICS.md: resolving fulfils the
    resolution targets and stops the reply clocks), so only the others are evaluated.  The order is
    ``at_risk_targets``'s (due first, undated last, then ticket, target type, instance); a page of
    ``limit`` targets after ``offset`` is answered, their count in ``rows_before_limit``.  The
    targets of settled ticket versions are kept between runs (analytics/sla_memo.py, LISTED_SCHEMA):
    a run evaluates the other tickets, then those of its page that were kept."""
    where = _selection(context, filters, unresolved_only=True)
    setup, as_of = SlaSetup.of(context), filters.as_of
    columns = ("ticket_id", "agent_id")
    if context.at_risk_states is None:
        every = evaluate_targets(context, where, as_of=as_of, setup=setup, in_order=False)
        reused = _Reused(
            every.tickets.select([*columns, "ticket_seq"]),
            LISTED_SCHEMA.empty_table(),
            every.targets,
            LISTED_SCHEMA.empty_table(),
        )
    else:
        reused = _reusing(
            context,
            where,
            columns,
            context.at_risk_states,
            setup=setup,
            as_of=as_of,
            keeping=lambda fresh: _listing(fresh, as_of, setup),
        )
    tickets = reused.tickets
    fresh = reused.fresh.filter(_listed(reused.fresh))
    # Every listed target: the kept ones (source -1), then the evaluated ones (source: their row in fresh).
    listed = pa.concat_tables([reused.taken, encoded_listed(fresh)])
    source = np.concatenate([np.full(reused.taken.num_rows, -1, dtype=np.int64), np.arange(fresh.num_rows)])
    keys = pa.table(
        {
            "undue": pc.is_null(listed.column("due_at")),
            "due": pc.coalesce(listed.column("due_at"), listed.column("started_at")),
            "ticket_id": tickets.column("ticket_id").take(listed.column("row")),
            "type": listed.column("type"),
            "instance": listed.column("instance"),
        }
    )
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending") for name in keys.column_names])
    page = np.asarray(order.slice(offset, limit).to_numpy(), dtype=np.int64)
    from_fresh = source[page] >= 0
    part = fresh.take(pa.array(source[page][from_fresh], pa.int64()))
    parts = [
        part.append_column("position", pa.array(np.flatnonzero(from_fresh), pa.int64()))
        .append_column("ticket_id", tickets.column("ticket_id").take(part.column("row")))
        .append_column("agent_id", tickets.column("agent_id").take(part.column("row")))
        .drop_columns(["row"])
    ]
    if not from_fresh.all():
        parts.append(_evaluated_again(context, where, setup, as_of, keys.take(pa.array(page)), ~from_fresh))
    table = pa.concat_tables([part.select(_PAGE_COLUMNS) for part in parts]).sort_by("position")
    table = pa.table(
        {
            "ticket_id": table.column("ticket_id"),
            "target_type": table.column("type"),
            "instance": table.column("instance"),
            "priority": table.column("priority"),
            "agent_id": table.column("agent_id"),
            "policy_id": table.column("policy_id"),
            "due_at": _time_column(table.column("due_at")),
            "remaining_minutes": _minutes_column(table.column("remaining_ms")),
            "breached": table.column("breached"),
            "at_risk": table.column("at_risk"),
        }
    )
    return PipeResult(AT_RISK_COLUMNS, TableRows(table), tickets.num_rows, 0.0, rows_before_limit=len(source))


def _listed(targets: pa.Table) -> pa.ChunkedArray:
    """Which targets ``sla_at_risk`` lists: active, and at risk or breached."""
    return pc.and_(
        pc.equal(targets.column("state"), TargetStatus.ACTIVE.value),
        pc.or_(targets.column("at_risk"), targets.column("breached")),
    )


def _listing(fresh: EvaluatedTargets, as_of: datetime, setup: SlaSetup) -> _Keeping:
    """What ``sla_at_risk`` keeps of evaluated tickets (analytics/sla_memo.py, LISTED_SCHEMA): the
    listed targets of each version evaluated at or after its last moment, usable from ``as_of`` until
    one of its active targets not listed could be (ever after when none is: settled)."""
    targets = fresh.targets
    listed = _listed(targets)
    as_of_us = to_us(as_of)
    # An active target is listed once its elapsed time reaches the least that makes it at risk or
    # breached, and elapsed time runs at most as fast as the clock: not before that much later.
    # Each target's policy thresholds: looked up once per policy, then taken per target.
    policies = setup.policies_by_id()
    encoded = pc.dictionary_encode(targets.column("policy_id")).combine_chunks()
    used = [policies[p] for p in encoded.dictionary.to_pylist()]
    of_target = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    target_ms = np.asarray(targets.column("target_minutes").to_numpy(), dtype=np.int64) * MS_PER_MINUTE
    no_minutes = -1
    risk_minutes = np.array(
        [no_minutes if p.at_risk_minutes is None else p.at_risk_minutes for p in used], dtype=np.int64
    )[of_target]
    risk_percent = np.array([p.at_risk_percent for p in used], dtype=np.int64)[of_target]
    least = np.minimum(target_ms + 1, -(-(risk_percent * target_ms) // 100))
    minutes_limit = target_ms - risk_minutes * MS_PER_MINUTE
    least = np.where(risk_minutes != no_minutes, np.minimum(least, minutes_limit), least)
    elapsed = np.asarray(targets.column("elapsed_ms").to_numpy(), dtype=np.int64)
    running = pc.and_(pc.equal(targets.column("state"), TargetStatus.ACTIVE.value), pc.invert(listed))
    waiting = np.asarray(running.to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.asarray(targets.column("row").to_numpy(), dtype=np.int64)
    until = np.full(fresh.tickets.num_rows, NEVER, dtype=np.int64)
    # (A millisecond less: elapsed times are whole milliseconds.)
    np.minimum.at(until, rows[waiting], as_of_us // 1000 + (least - elapsed)[waiting] - 1)
    # Usable from the first whole millisecond at or after as_of (lookups compare milliseconds).
    valid_from = np.where(_steady(_last_moment_ms(fresh.tickets), as_of), -(-as_of_us // 1000), NEVER)
    return _Keeping(valid_from, until, encoded_listed(targets.filter(listed)))


def _evaluated_again(
    context: PipeContext,
    where: Conditions,
    setup: SlaSetup,
    as_of: datetime,
    keys: pa.Table,
    chosen: npt.NDArray[np.bool_],
) -> pa.Table:
    """The ``chosen`` targets of a page (``keys``: ticket_id, type code, instance), kept ones, with
    what moves with time (remaining time, breached, at risk) evaluated at ``as_of``, and ``position``
    in the page.  A ticket written since it was selected lists what its new version lists."""
    positions = np.flatnonzero(chosen)
    wanted = keys.take(pa.array(positions, pa.int64()))
    again = where.copy()
    again.among(pc.unique(wanted.column("ticket_id")).to_pylist())
    found = evaluate_targets(context, again, as_of=as_of, setup=setup, in_order=False)
    targets = found.targets.filter(_listed(found.targets))
    rows = targets.column("row")
    detail = (
        targets.append_column("ticket_id", found.tickets.column("ticket_id").take(rows))
        .append_column("agent_id", found.tickets.column("agent_id").take(rows))
        .drop_columns(["row"])
    )
    page = pa.table(
        {
            "ticket_id": wanted.column("ticket_id"),
            "type": _TYPE_NAMES.take(wanted.column("type")),
            "instance": wanted.column("instance"),
            "position": pa.array(positions, pa.int64()),
        }
    )
    return page.join(detail, keys=["ticket_id", "type", "instance"], join_type="inner")


_TYPE_NAMES = pa.array([kind.value for kind in TargetType], pa.string())
# What a page of sla_at_risk is made of, in one order whichever way its targets came.
_PAGE_COLUMNS = ("position", "ticket_id", "agent_id", *TARGET_SCHEMA.names[1:])
