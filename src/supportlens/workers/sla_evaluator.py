"""The background SLA evaluator: marks breaches and fires escalation levels, as events.

Each pass (the server runs one every ``sla_evaluator_interval_seconds``, workers/periodic.py)
evaluates the SLA of each workspace's recent tickets (created within ``lookback_days``) and records,
through the one ingest path:
- an ``sla_breached`` event for each target that breached (``at`` = the instant it breached);
- an ``escalated`` event for each escalation level that came due (``at`` = its firing time).

Each event id is derived from the ticket, the target, its instance and the level, and the activity
log keeps the first arrival of an id: re-evaluating, or restarting the server, never records one
twice, and one that came due while the server was down is recorded at the next run (with the time
it fired).  These bookkeeping events are not part of a ticket's history (domain/events.py).

Passes after the first are incremental: without a new event, a ticket's SLA changes only with time,
and only while some target's clock runs or an escalation level is still to come.  So a pass looks
at the tickets the previous pass left with such a target or level ("pending") and at those
received since shortly before the previous pass began; anything else has nothing left to record.
The very first pass, and any pass after the workspace's policies, calendars or status names
changed, looks at every recent ticket; what a pass leaves is kept (workers/passes.py), so a
restart goes on incrementally.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from supportlens.analytics.common import PipeContext, conditions
from supportlens.analytics.sla_state import SlaSetup, evaluate_tickets
from supportlens.auth.repository import Workspace
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.sla import TargetStatus, TicketSla
from supportlens.ingest.service import TICKET_EVENTS_SOURCE, IngestService
from supportlens.workers.passes import Pass, PassStore

log = logging.getLogger(__name__)
SOURCE = "sla_evaluator"
# How far before the previous pass a ticket's arrival still counts as new: covers writes accepted
# before that pass read the store but committed after it.
ARRIVAL_MARGIN = timedelta(minutes=10)


# Part of every setup digest: a release that evaluates differently starts with full passes.
_EVALUATION_VERSION = "1"


def setup_digest(setup: SlaSetup) -> str:
    """A digest of everything a ticket's SLA depends on besides its events and the time."""
    calendars = setup.calendars
    parts = (
        _EVALUATION_VERSION,
        repr(setup.policies),
        calendars.fingerprints(),
        sorted(calendars.group_index.items()),
        sorted((name, category.value) for name, category in setup.statuses.custom.items()),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def still_pending(sla: TicketSla) -> bool:
    """Whether time alone can still change what this ticket's SLA calls for."""
    return any(t.state is TargetStatus.ACTIVE for t in sla.targets) or any(
        not e.fired for e in sla.escalations
    )


@dataclass(frozen=True, slots=True)
class RunReport:
    workspaces: int
    tickets: int
    events: int  # breaches and escalations handed to the writer (already recorded ones included)


@dataclass(frozen=True, slots=True)
class FiredLevel:
    """An escalation level of a ticket's SLA policy that has come due."""

    ticket_id: str
    level: int
    target_type: str
    actions: tuple[str, ...]


def findings(sla: TicketSla) -> list[TicketEvent]:
    """The bookkeeping events one ticket's SLA state calls for, with stable ids."""

    def finding(
        kind: EventType,
        target: str,
        instance: int,
        suffix: str,
        at: datetime,
        to: str,
        actions: str | None = None,
    ) -> TicketEvent:
        return TicketEvent(
            event_id=f"sla:{sla.ticket_id}:{target}:{instance}:{suffix}",
            ticket_id=sla.ticket_id,
            at=at,
            type=kind,
            actor_type=ActorType.SYSTEM,
            field=target,
            to_value=to,
            from_value=actions,
        )

    found = [
        finding(
            EventType.SLA_BREACHED,
            t.type.value,
            t.instance,
            "breached",
            t.breached_at,
            str(t.target_minutes),
        )
        for t in sla.targets
        if t.breached and t.breached_at is not None
    ]
    found.extend(
        finding(
            EventType.ESCALATED,
            e.target_type.value,
            e.instance,
            f"level{e.level}",
            e.fires_at,
            str(e.level),
            ",".join(e.actions),
        )
        for e in sla.escalations
        if e.fired
    )
    return found


class SlaEvaluator:
    def __init__(
        self,
        ingest: IngestService,
        workspaces: Callable[[], Iterable[Workspace]],
        context: Callable[[Workspace], PipeContext],
        *,
        lookback_days: int,
        arrival_margin: timedelta = ARRIVAL_MARGIN,
        passes: PassStore | None = None,
        on_escalations: Callable[[str, list[FiredLevel]], object] | None = None,
    ) -> None:
        self._ingest = ingest
        self._workspaces = workspaces
        self._context = context
        self._lookback = timedelta(days=lookback_days)
        self._previous: dict[str, Pass] = {}  # by workspace id
        self._arrival_margin = arrival_margin
        self._passes = passes  # where passes are kept across restarts (none: in memory only)
        # Told of every fired level after each pass (the ticket records raise their level).
        self._on_escalations = on_escalations

    def run_once(self, now: datetime | None = None) -> RunReport:
        """Evaluate every workspace once and wait until the findings are committed."""
        moment = now or datetime.now(UTC)
        workspaces = tickets = recorded = 0
        for workspace in self._workspaces():
            # Arrival times are stamped by this clock whatever ``now`` says (tests move ``now``).
            began = datetime.now(UTC)
            context = self._context(workspace)
            setup = SlaSetup.of(context)
            where = conditions(context)
            where.between("created_at", moment - self._lookback, moment)
            digest = setup_digest(setup)
            previous = self._previous.get(workspace.id)
            if previous is None and self._passes is not None:
                previous = self._passes.load(workspace.id)
            if previous is not None and previous.setup == digest:
                since = previous.began - self._arrival_margin
                where.listed_or_received_since(sorted(previous.pending), since)
            evaluated = evaluate_tickets(context, where, as_of=moment, setup=setup)
            pending = frozenset(t.ticket["ticket_id"] for t in evaluated if still_pending(t.sla))
            events = [event for ticket in evaluated for event in findings(ticket.sla)]
            if events:
                result = self._ingest.ingest_events(
                    workspace.id, events, [], source=SOURCE, quarantine_as=TICKET_EVENTS_SOURCE
                )
                result.committed.result()
            if self._on_escalations is not None:
                fired = [
                    FiredLevel(t.sla.ticket_id, e.level, e.target_type.value, e.actions)
                    for t in evaluated
                    for e in t.sla.escalations
                    if e.fired
                ]
                if fired:
                    self._on_escalations(workspace.id, fired)
            finished = Pass(digest, began, pending)
            self._previous[workspace.id] = finished
            if self._passes is not None:
                self._passes.save(workspace.id, finished)
            workspaces += 1
            tickets += len(evaluated)
            recorded += len(events)
        return RunReport(workspaces, tickets, recorded)
