"""The background SLA evaluator: marks breaches and fires escalation levels, as events.

Each pass (the server runs one every ``sla_evaluator_interval_seconds``, workers/periodic.py)
evaluates the SLA of each workspace's recent tickets (created within ``lookback_days``) and records,
through the one ingest path (as columns, ``IngestService.ingest_event_columns``):
- an ``sla_breached`` event for each target that breached (``at`` = the instant it breached);
- an ``escalated`` event for each escalation level that came due (``at`` = its firing time).

A pass reads its tickets' targets as columns (``analytics.sla_state.evaluate_targets``: snapshot-only
tickets all at once, tickets with a log one by one or as kept from an earlier evaluation) and derives
its findings on arrays (``findings``).  Ticket by ticket, through ``domain.sla``'s objects, a first
pass over a million tickets took over a minute of CPU; this way ~9 s.

Each event id is derived from the ticket, the target, its instance and the level, and the activity
log keeps the first arrival of an id: re-evaluating, or restarting the server, never records one
twice, and one that came due while the server was down is recorded at the next run (with the time
it fired).  These bookkeeping events are not part of a ticket's history (domain/events.py).

Passes after the first are incremental: without a new event, a ticket's SLA records change only with
time, at known instants: when a running target falls due (its breach) and when an escalation level
fires.  So a pass keeps, for each ticket with such an instant to come ("pending"), the first of them,
and the next pass looks only at the pending tickets whose instant has come and at those received
since the previous pass read the store; anything else has nothing new to record.  (Looking at every
pending ticket instead, each pass at a million tickets evaluated ~15,000 and handed their ~26,000
findings, all recorded already, back to the writer.)  "Since"
is exact when this process writes the store alone (a DuckDB file): the arrival of the oldest write
still on its way when that pass read, else the time it began (``IngestService.settled_before``);
where other processes may write too (a ClickHouse server), ``ARRIVAL_MARGIN`` before it began.
The very first pass, and any pass after the workspace's policies, calendars or status names
changed, looks at every recent ticket; what a pass leaves is kept (workers/passes.py), so a
restart goes on incrementally.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from supportlens.analytics.common import PipeContext, conditions
from supportlens.analytics.sla_state import EvaluatedTargets, SlaSetup, evaluate_targets
from supportlens.auth.repository import Workspace
from supportlens.domain.events import ActorType, EventType
from supportlens.domain.sla import SlaPolicy, TargetStatus
from supportlens.domain.sla_snapshots import micros, to_us
from supportlens.ingest.service import IngestService
from supportlens.workers.passes import Pass, PassStore

log = logging.getLogger(__name__)
SOURCE = "sla_evaluator"
# Where other processes may write to the store too (IngestService.settled_before is None): how far
# before the previous pass a ticket's arrival still counts as new, to cover writes accepted
# before that pass read the store but committed after it.
ARRIVAL_MARGIN = timedelta(minutes=10)


# Findings handed to the writer at once: a first pass over a large workspace finds hundreds of
# thousands, and one commit of them all (~2 s at 444,000) would hold every post queued behind it.
FINDINGS_PER_COMMIT = 20_000

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


@dataclass(frozen=True, slots=True)
class Findings:
    """What one pass found in the tickets it evaluated."""

    # The bookkeeping events their SLA states call for, with stable ids (``_events``' columns).
    events: pa.Table
    # The tickets whose SLA records time alone can still change, each with the first instant it
    # does (epoch microseconds): a running target's due time (its breach), a level's firing time.
    pending: Mapping[str, int]
    fired: list[FiredLevel]


_US = pa.timestamp("us", tz="UTC")
_US_PER_MINUTE = 60_000_000


def findings(evaluated: EvaluatedTargets, policies: Mapping[str, SlaPolicy], as_of: datetime) -> Findings:
    """The findings of ``evaluated`` (its targets as columns) at ``as_of``, by ``domain.sla``'s rules
    on arrays: a breached target's ``sla_breached`` at its ``breached_at``; each escalation level of
    a target not achieved, with a due time, at ``due_at + offset``, unless that falls after a late
    fulfilment; fired when at or before ``as_of``.  Pending: each ticket's first instant after
    ``as_of`` among its running targets' due times and its levels' firing times.  Tested against the
    rules applied ticket by ticket (tests/workers/test_sla_evaluator.py)."""
    targets = evaluated.targets
    owners = pc.take(evaluated.tickets.column("ticket_id"), targets.column("row"))
    owner_ids = np.array(owners.to_pylist(), dtype=object)
    owner_rows = np.asarray(targets.column("row").to_numpy(), dtype=np.int64)
    state = targets.column("state")
    due, has_due = micros(targets.column("due_at"))
    # Each ticket's first instant to come (``_NONE_TO_COME``: none): a running target breaches at
    # its due time; the levels still to come are added below.
    next_instant = np.full(evaluated.tickets.num_rows, _NONE_TO_COME, dtype=np.int64)
    running = _mask(pc.equal(state, TargetStatus.ACTIVE.value)) & has_due & ~_mask(targets.column("breached"))
    np.minimum.at(next_instant, owner_rows[running], due[running])

    breached = _mask(pc.and_(targets.column("breached"), pc.is_valid(targets.column("breached_at"))))
    events = [
        _events(
            EventType.SLA_BREACHED,
            targets,
            owners,
            breached,
            "breached",
            targets.column("breached_at").filter(breached),
            pc.cast(targets.column("target_minutes").filter(breached), pa.string()),
            None,
        )
    ]
    fired: list[FiredLevel] = []
    completed, has_completed = micros(targets.column("completed_at"))
    moment = to_us(as_of)
    scheduled = has_due & ~_mask(pc.equal(state, TargetStatus.ACHIEVED.value))
    policy_ids = targets.column("policy_id")
    for policy_id in pc.unique(policy_ids.filter(scheduled)).to_pylist():
        of_policy = scheduled & _mask(pc.equal(policy_ids, policy_id))
        for level in policies[policy_id].escalations:
            fires = due + level.offset_minutes * _US_PER_MINUTE
            # A level falling after a late fulfilment never fires.
            comes = of_policy & ~(has_completed & (fires > completed))
            now_due = comes & (fires <= moment)
            to_come = comes & ~now_due
            np.minimum.at(next_instant, owner_rows[to_come], fires[to_come])
            if not now_due.any():
                continue
            count = int(now_due.sum())
            events.append(
                _events(
                    EventType.ESCALATED,
                    targets,
                    owners,
                    now_due,
                    f"level{level.level}",
                    pa.array(fires[now_due], pa.int64()).cast(_US),
                    pa.array([str(level.level)] * count, pa.string()),
                    ",".join(level.actions),
                )
            )
            fired.extend(
                FiredLevel(owner, level.level, kind, level.actions)
                for owner, kind in zip(
                    owner_ids[now_due].tolist(),
                    targets.column("type").filter(now_due).to_pylist(),
                    strict=True,
                )
            )
    rows = np.flatnonzero(next_instant != _NONE_TO_COME)
    ticket_ids = evaluated.tickets.column("ticket_id").take(pa.array(rows, pa.int64())).to_pylist()
    pending = dict(zip(ticket_ids, next_instant[rows].tolist(), strict=True))
    return Findings(pa.concat_tables(events), pending, fired)


_NONE_TO_COME = np.iinfo(np.int64).max


def _mask(values: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _events(
    kind: EventType,
    targets: pa.Table,
    owners: pa.ChunkedArray | pa.Array,
    chosen: npt.NDArray[np.bool_],
    suffix: str,
    moments: pa.ChunkedArray | pa.Array,
    to_values: pa.ChunkedArray | pa.Array,
    from_value: str | None,
) -> pa.Table:
    """One event of ``kind`` per chosen target (``ingest.events.stamped_events``'s columns), with the
    id ``sla:<ticket>:<target type>:<instance>:<suffix>``: the same however often it is found, so
    the log keeps it once."""
    mask = pa.array(chosen)
    ticket_ids = owners.filter(mask)
    target_types = targets.column("type").filter(mask)
    instances = pc.cast(targets.column("instance").filter(mask), pa.string())
    count = len(ticket_ids)
    return pa.table(
        {
            "event_id": pc.binary_join_element_wise("sla", ticket_ids, target_types, instances, suffix, ":"),
            "ticket_id": ticket_ids,
            "occurred_at": moments,
            "type": pa.array([kind.value] * count, pa.string()),
            "actor_type": pa.array([ActorType.SYSTEM.value] * count, pa.string()),
            "field": target_types,
            "to_value": to_values,
            "from_value": pa.array([from_value] * count, pa.string()),
        }
    )


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
        findings_per_commit: int = FINDINGS_PER_COMMIT,
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
        self._findings_per_commit = findings_per_commit

    def run_once(self, now: datetime | None = None) -> RunReport:
        """Evaluate every workspace once and wait until the findings are committed."""
        moment = now or datetime.now(UTC)
        workspaces = tickets = recorded = 0
        for workspace in self._workspaces():
            # Arrival times are stamped by this clock whatever ``now`` says (tests move ``now``).
            began = datetime.now(UTC)
            # Asked before the pass reads anything: writes received before it are all committed.
            settled = self._ingest.settled_before() or began - self._arrival_margin
            context = self._context(workspace)
            setup = SlaSetup.of(context)
            where = conditions(context)
            where.between("created_at", moment - self._lookback, moment)
            digest = setup_digest(setup)
            previous = self._previous.get(workspace.id)
            if previous is None and self._passes is not None:
                previous = self._passes.load(workspace.id)
            waiting: dict[str, int] = {}  # pending tickets whose instant is still to come
            if previous is not None and previous.setup == digest:
                since = previous.settled or previous.began - self._arrival_margin
                now_us = to_us(moment)
                waiting = {t: instant for t, instant in previous.pending.items() if instant > now_us}
                come = sorted(t for t in previous.pending if t not in waiting)
                where.listed_or_received_since(come, since)
            evaluated = evaluate_targets(context, where, as_of=moment, setup=setup, in_order=False)
            found = findings(evaluated, setup.policies_by_id(), moment)
            # A waiting ticket looked at again (received since) is pending as found now, or not.
            if waiting:
                for ticket in evaluated.tickets.column("ticket_id").to_pylist():
                    waiting.pop(ticket, None)
            # One part at a time, each committed before the next is handed over.
            for start in range(0, found.events.num_rows, self._findings_per_commit):
                part = found.events.slice(start, self._findings_per_commit)
                self._ingest.ingest_event_columns(workspace.id, part, source=SOURCE).committed.result()
            if self._on_escalations is not None and found.fired:
                self._on_escalations(workspace.id, found.fired)
            finished = Pass(digest, began, {**waiting, **found.pending}, settled)
            self._previous[workspace.id] = finished
            if self._passes is not None:
                self._passes.save(workspace.id, finished)
            workspaces += 1
            tickets += evaluated.tickets.num_rows
            recorded += found.events.num_rows
        return RunReport(workspaces, tickets, recorded)
