"""The SLA evaluator records each breach and each escalation level once, across repeated runs and
restarts, on both engines; its bookkeeping never changes a ticket's state or durations."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.common import PipeContext, conditions
from supportlens.analytics.scope import Conditions
from supportlens.analytics.sla_state import SlaSetup, evaluate_targets, evaluate_tickets
from supportlens.auth.repository import Workspace
from supportlens.configuration.sla import SlaPolicyDefinition
from supportlens.domain.events import ActorType, EventType
from supportlens.domain.sla import Conditions as PolicyConditions
from supportlens.domain.sla import PolicySet, TargetStatus
from supportlens.domain.sla_snapshots import to_us
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS
from supportlens.workers.sla_evaluator import SOURCE, FiredLevel, SlaEvaluator, findings
from tests.analytics.test_sla_states import Writes, _ingest, snapshots, write, writes
from tests.analytics.test_time_metrics_pipe import grouped_batches, load_grouped
from tests.conftest import make_settings
from tests.domain.test_sla import sla_policies
from tests.domain.test_timeline import History, at

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
POLICY = {
    "name": "Standard",
    "default": True,
    "targets": {
        "default": [
            {"type": "first_response", "minutes": 30},
            {"type": "resolution", "minutes": 600},
        ]
    },
    "escalations": [
        {"level": 1, "offset_minutes": -10, "actions": ["notify"]},
        {"level": 2, "offset_minutes": 0, "actions": ["notify", "reassign"]},
        {"level": 3, "offset_minutes": 60, "actions": ["raise_priority"]},
    ],
}


def _event(n: int, minutes: int, kind: str, **fields: Any) -> dict[str, Any]:
    at = (T0 + timedelta(minutes=minutes)).isoformat()
    return {"event_id": f"e{n}", "ticket_id": "T1", "at": at, "type": kind, **fields}


def _bookkeeping(runtime: Runtime, workspace_id: str) -> list[tuple[str, str]]:
    rows = runtime.engine.events_of(workspace_id, ["T1"])  # history only: no bookkeeping
    assert set(rows.column("type").to_pylist()) <= {"created", "reply", "status_changed"}
    log = runtime.engine.fetch_arrow(
        "SELECT event_id, type, source FROM ticket_events", {}, timeout=30
    ).to_pylist()
    return sorted((row["event_id"], row["type"]) for row in log if row["source"] == SOURCE)


def test_breaches_and_escalations_are_recorded_once(engine_name: str, tmp_path: Path) -> None:
    settings = make_settings(engine_name, tmp_path)
    runtime = Runtime.open(settings)
    workspace = runtime.metadata.create_workspace("w")
    runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
    history = [
        _event(0, 0, "created", actor_type="customer", status="open", priority="high"),
        _event(1, 45, "reply", actor_type="agent"),  # 15 minutes late
    ]
    runtime.ingest.ingest(workspace.id, "ticket_events", [RawRow(e, "") for e in history]).committed.result()
    before = runtime.run_pipe(
        "ticket_time_metrics", workspace, {"as_of": (T0 + timedelta(hours=5)).isoformat()}
    ).rows

    # One finding per commit: the parts add up to what one commit would hold.
    evaluator = SlaEvaluator(
        runtime.ingest,
        runtime.metadata.workspaces,
        runtime.pipe_context,
        lookback_days=settings.sla_lookback_days,
        passes=runtime.sla_passes,
        findings_per_commit=1,
    )
    report = evaluator.run_once(now=T0 + timedelta(minutes=50))
    assert (report.tickets, report.events) == (1, 3)
    first = _bookkeeping(runtime, workspace.id)
    assert first == sorted(
        [
            ("sla:T1:first_response:0:breached", "sla_breached"),
            ("sla:T1:first_response:0:level1", "escalated"),  # 20 min in
            ("sla:T1:first_response:0:level2", "escalated"),  # at 30 min: the breach
        ]
    )
    # Level 3 (due + 60 min) would fall after the late answer: never fires.  Resolution: 600 min.
    evaluator.run_once(now=T0 + timedelta(minutes=50))
    assert _bookkeeping(runtime, workspace.id) == first
    runtime.close()

    restarted = Runtime.open(settings)
    try:
        later = restarted.sla_evaluator()
        later.run_once(now=T0 + timedelta(hours=11))  # resolution (600 min) breached meanwhile
        found = _bookkeeping(restarted, workspace.id)
        assert found == sorted(
            [
                *first,
                ("sla:T1:resolution:0:breached", "sla_breached"),
                ("sla:T1:resolution:0:level1", "escalated"),
                ("sla:T1:resolution:0:level2", "escalated"),
                ("sla:T1:resolution:0:level3", "escalated"),
            ]
        )
        later.run_once(now=T0 + timedelta(hours=12))
        assert _bookkeeping(restarted, workspace.id) == found
        breach = (
            restarted.engine.fetch_arrow(
                "SELECT occurred_at FROM ticket_events WHERE event_id = 'sla:T1:first_response:0:breached'",
                {},
                timeout=30,
            )
            .column("occurred_at")[0]
            .as_py()
        )
        assert breach.replace(tzinfo=UTC) == T0 + timedelta(minutes=30)  # when it breached
        after = restarted.run_pipe(
            "ticket_time_metrics", workspace, {"as_of": (T0 + timedelta(hours=5)).isoformat()}
        ).rows
        assert after == before  # bookkeeping is not history
        assert restarted.engine.count(TICKET_EVENTS, workspace.id) == len(history) + len(found)
    finally:
        restarted.close()


def test_a_level_fires_at_its_instant_not_a_microsecond_before(engine_name: str, tmp_path: Path) -> None:
    """Each escalation level fires at ``due_at + offset`` itself (at or before the evaluation
    time), by the arrays and by the per-ticket rules alike.  Random evaluation times seldom land
    on such an instant, so the randomized test below would miss a "<" written for "<=".  A
    microsecond before: an active target's due time does not move with the evaluation time's
    fraction of a millisecond (the clocks count whole ones)."""
    runtime = Runtime.open(make_settings(engine_name, tmp_path))
    try:
        workspace = runtime.metadata.create_workspace("w")
        runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
        created = _event(0, 0, "created", actor_type="customer", status="open", priority="high")
        runtime.ingest.ingest(workspace.id, "ticket_events", [RawRow(created, "")]).committed.result()
        context = runtime.pipe_context(workspace)
        setup = SlaSetup.of(context)
        just_before = timedelta(microseconds=1)
        # First response (30 min): level 1 at 20 min, level 2 (the breach) at 30, level 3 at 90.
        expected = {
            T0 + timedelta(minutes=20) - just_before: [],
            T0 + timedelta(minutes=20): [1],
            T0 + timedelta(minutes=30) - just_before: [1],
            T0 + timedelta(minutes=30): [1, 2],
            T0 + timedelta(minutes=90) - just_before: [1, 2],
            T0 + timedelta(minutes=90): [1, 2, 3],
        }
        for as_of, levels in expected.items():
            where = conditions(context)
            found = findings(
                evaluate_targets(context, where, as_of=as_of, setup=setup, in_order=False),
                setup.policies_by_id(),
                as_of,
            )
            fired = sorted(level.level for level in found.fired if level.target_type == "first_response")
            assert fired == levels, as_of
            _, _, reference = _reference(context, where, setup, as_of)
            assert sorted(map(_fired_key, found.fired)) == sorted(map(_fired_key, reference)), as_of
    finally:
        runtime.close()


def test_later_passes_look_only_at_pending_and_new_tickets(engine_name: str, tmp_path: Path) -> None:
    """After a full first pass, a pass evaluates the tickets whose next breach or level has come,
    and new arrivals; a full pass afterwards finds nothing they missed.  New policies make the next
    pass full again."""
    runtime = Runtime.open(make_settings(engine_name, tmp_path))
    try:
        workspace = runtime.metadata.create_workspace("w")
        runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))

        def post(ticket_id: str, *events: dict[str, Any]) -> None:
            rows = [
                RawRow({**e, "ticket_id": ticket_id, "event_id": f"{ticket_id}{e['event_id']}"}, "")
                for e in events
            ]
            runtime.ingest.ingest(workspace.id, "ticket_events", rows).committed.result()

        created = _event(0, 0, "created", actor_type="customer", status="open")
        post(
            "DONE",
            created,
            _event(1, 10, "reply", actor_type="agent"),
            _event(2, 20, "status_changed", to="solved"),
        )
        post("OPEN", created)  # never answered: its targets keep running
        evaluator = _evaluator(runtime, kept=False)
        assert evaluator.run_once(now=T0 + timedelta(minutes=50)).tickets == 2
        # OPEN's first instant to come is its first response's level 3, at 90 minutes.
        assert evaluator.run_once(now=T0 + timedelta(minutes=89)).tickets == 0
        assert evaluator.run_once(now=T0 + timedelta(minutes=90)).tickets == 1
        assert evaluator.run_once(now=T0 + timedelta(hours=11)).tickets == 1  # its resolution's
        post("NEW", _event(0, 600, "created", actor_type="customer", status="open"))
        # OPEN has nothing left to come: its resolution's last level fired at 11 hours.
        assert evaluator.run_once(now=T0 + timedelta(hours=12)).tickets == 1  # NEW
        recorded = _all_bookkeeping(runtime)
        assert {"sla:OPEN:resolution:0:breached", "sla:NEW:first_response:0:breached"} <= recorded

        full = runtime.sla_evaluator()
        assert full.run_once(now=T0 + timedelta(hours=12)).tickets == 3
        assert _all_bookkeeping(runtime) == recorded  # nothing was missed

        runtime.configuration.create_policy(
            workspace.id, SlaPolicyDefinition.model_validate({**POLICY, "name": "Other", "default": False})
        )
        assert evaluator.run_once(now=T0 + timedelta(hours=12)).tickets == 3  # a new setup: full
    finally:
        runtime.close()


def test_a_pending_ticket_that_was_solved_meanwhile_is_pending_no_longer(
    engine_name: str, tmp_path: Path
) -> None:
    """A pending ticket received again is pending as its new evaluation says, not by what an
    earlier pass left: answered late and solved, it has nothing more to come."""
    runtime = Runtime.open(make_settings(engine_name, tmp_path))
    try:
        workspace = _with_policy(runtime)

        def post(*events: dict[str, Any]) -> None:
            rows = [RawRow(event, "") for event in events]
            runtime.ingest.ingest(workspace.id, "ticket_events", rows).committed.result()

        post(_event(0, 0, "created", actor_type="customer", status="open"))
        evaluator = _evaluator(runtime, kept=False)
        assert evaluator.run_once(now=T0 + timedelta(minutes=50)).tickets == 1  # level 3 at 90 min
        post(_event(1, 55, "reply", actor_type="agent"), _event(2, 56, "status_changed", to="solved"))
        assert evaluator.run_once(now=T0 + timedelta(minutes=60)).tickets == 1  # received since
        assert evaluator.run_once(now=T0 + timedelta(hours=11)).tickets == 0
    finally:
        runtime.close()


def _all_bookkeeping(runtime: Runtime) -> set[str]:
    log = runtime.engine.fetch_arrow("SELECT event_id, source FROM ticket_events", {}, timeout=30).to_pylist()
    return {row["event_id"] for row in log if row["source"] == SOURCE}


def test_a_restart_goes_on_incrementally(engine_name: str, tmp_path: Path) -> None:
    """What a pass leaves is kept beside the store: after a restart the next pass is incremental
    (the setup digest is the same in a new process), without it the pass is full."""
    settings = make_settings(engine_name, tmp_path)

    runtime = Runtime.open(settings)
    try:
        workspace = _with_policy(runtime)
        done = _answered_and_solved()
        rows = [RawRow({**e, "ticket_id": "DONE", "event_id": f"DONE{e['event_id']}"}, "") for e in done]
        rows.append(RawRow({**done[0], "ticket_id": "OPEN", "event_id": "OPEN0"}, ""))
        runtime.ingest.ingest(workspace.id, "ticket_events", rows).committed.result()
        assert _evaluator(runtime, kept=True).run_once(now=T0 + timedelta(minutes=50)).tickets == 2
    finally:
        runtime.close()

    restarted = Runtime.open(settings)
    try:
        assert _evaluator(restarted, kept=True).run_once(now=T0 + timedelta(hours=11)).tickets == 1
        assert _evaluator(restarted, kept=False).run_once(now=T0 + timedelta(hours=11)).tickets == 2
    finally:
        restarted.close()


def test_a_write_on_its_way_while_a_pass_reads_is_looked_at_by_the_next(tmp_path: Path) -> None:
    """On a store this process writes alone (a DuckDB file), "received since the previous pass" is
    exact without any margin: a write still queued while a pass reads is looked at by the next
    pass, however long it waited to be committed."""
    runtime = Runtime.open(make_settings("duckdb", tmp_path))
    try:
        workspace = _with_policy(runtime)
        done = _answered_and_solved()
        rows = [RawRow({**e, "event_id": f"DONE{e['event_id']}"}, "") for e in done]
        runtime.ingest.ingest(workspace.id, "ticket_events", rows).committed.result()
        evaluator = _evaluator(runtime, kept=False)  # no margin
        assert evaluator.run_once(now=T0 + timedelta(minutes=50)).tickets == 1

        # The writer held by a restatement whose progress waits: the next write stays queued.
        holding, release = threading.Event(), threading.Event()

        def hold(_: int) -> None:
            holding.set()
            assert release.wait(30)

        restated = runtime.writer.restate(workspace.id, progress=hold)
        assert holding.wait(30)
        late_event = {**done[0], "ticket_id": "LATE", "event_id": "LATE0"}
        late = runtime.ingest.ingest(workspace.id, "ticket_events", [RawRow(late_event, "")])
        assert evaluator.run_once(now=T0 + timedelta(hours=1)).tickets == 0  # LATE is not stored yet
        release.set()
        restated.result(timeout=30)
        late.committed.result(timeout=30)

        assert evaluator.run_once(now=T0 + timedelta(hours=2)).tickets == 1  # LATE
        assert "sla:LATE:first_response:0:breached" in _all_bookkeeping(runtime)
    finally:
        runtime.close()


def test_where_other_processes_may_write_a_margin_stands_in_for_what_is_on_its_way(
    engine_name: str, tmp_path: Path
) -> None:
    """Only a store written by this process alone lets the ingest service vouch for every write
    received before an instant; for a ClickHouse server the evaluator falls back on its margin."""
    runtime = Runtime.open(make_settings(engine_name, tmp_path))
    try:
        before = datetime.now(UTC)
        settled = runtime.ingest.settled_before()
        if engine_name == "duckdb":
            assert settled is not None
            assert before - timedelta(milliseconds=1) <= settled <= datetime.now(UTC)
        else:
            assert settled is None
    finally:
        runtime.close()


def _with_policy(runtime: Runtime) -> Workspace:
    """A new workspace whose default SLA policy is ``POLICY``."""
    workspace = runtime.metadata.create_workspace("w")
    runtime.configuration.create_policy(workspace.id, SlaPolicyDefinition.model_validate(POLICY))
    return workspace


def _answered_and_solved() -> list[dict[str, Any]]:
    """T1 opened, answered after 10 minutes and solved after 20."""
    return [
        _event(0, 0, "created", actor_type="customer", status="open"),
        _event(1, 10, "reply", actor_type="agent"),
        _event(2, 20, "status_changed", to="solved"),
    ]


def _evaluator(runtime: Runtime, *, kept: bool) -> SlaEvaluator:
    """An evaluator for which every arrival before a pass is old news (no margin), keeping its
    passes in the runtime's store or only in memory."""
    return SlaEvaluator(
        runtime.ingest,
        runtime.metadata.workspaces,
        runtime.pipe_context,
        lookback_days=30,
        arrival_margin=timedelta(0),
        passes=runtime.sla_passes if kept else None,
    )


# --- the pass's findings, column by column, against the rules ticket by ticket ---------------------


@st.composite
def _policy_sets(draw: st.DrawFn) -> PolicySet:
    urgent = dataclasses.replace(
        draw(sla_policies("vip")), conditions=PolicyConditions(priority=frozenset({"HIGH"}))
    )
    return PolicySet((urgent,), draw(sla_policies("std")))


Finding = tuple[str, str, datetime, str, str, str, str, str | None]  # as _row gives them


def _row(
    event_id: str, ticket_id: str, at: datetime, kind: EventType, target: str, to: str, actions: str | None
) -> Finding:
    return (event_id, ticket_id, at, kind.value, ActorType.SYSTEM.value, target, to, actions)


def _reference(
    context: PipeContext, where: Conditions, setup: SlaSetup, as_of: datetime
) -> tuple[list[Finding], dict[str, int], list[FiredLevel]]:
    """The findings by ``domain.sla``'s per-ticket evaluation: its breached targets and fired levels
    (``TicketSla.escalations``), and the tickets with a breach (a running target's due time) or a
    level still to come, each with the first of those instants."""
    events: list[Finding] = []
    pending: dict[str, int] = {}
    fired: list[FiredLevel] = []
    for ticket in evaluate_tickets(context, where, as_of=as_of, setup=setup):
        sla = ticket.sla
        for target in sla.targets:
            if target.breached and target.breached_at is not None:
                prefix = f"sla:{sla.ticket_id}:{target.type}:{target.instance}"
                events.append(
                    _row(
                        f"{prefix}:breached",
                        sla.ticket_id,
                        target.breached_at,
                        EventType.SLA_BREACHED,
                        target.type.value,
                        str(target.target_minutes),
                        None,
                    )
                )
        for level in sla.escalations:
            if not level.fired:
                continue
            prefix = f"sla:{sla.ticket_id}:{level.target_type}:{level.instance}"
            events.append(
                _row(
                    f"{prefix}:level{level.level}",
                    sla.ticket_id,
                    level.fires_at,
                    EventType.ESCALATED,
                    level.target_type.value,
                    str(level.level),
                    ",".join(level.actions),
                )
            )
            fired.append(FiredLevel(sla.ticket_id, level.level, level.target_type.value, level.actions))
        to_come = [
            target.due_at
            for target in sla.targets
            if target.state is TargetStatus.ACTIVE and not target.breached and target.due_at is not None
        ]
        to_come.extend(level.fires_at for level in sla.escalations if not level.fired)
        if to_come:
            pending[sla.ticket_id] = to_us(min(to_come))
    return sorted(events), pending, fired


def _fired_key(level: FiredLevel) -> tuple[str, int, str, tuple[str, ...]]:
    return (level.ticket_id, level.level, level.target_type, level.actions)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grouped_batches(),
    st.lists(snapshots(), max_size=6),
    _policy_sets(),
    st.lists(st.tuples(st.integers(-30, 2000), writes()), min_size=1, max_size=3),
)
def test_a_pass_finds_what_the_rules_give_ticket_by_ticket(
    runtime: Runtime,
    batch: list[tuple[History, str | None]],
    first_snapshots: list[dict[str, Any]],
    policies: PolicySet,
    passes: list[tuple[int, Writes]],
) -> None:
    """Snapshot-only tickets and tickets with a log (evaluated anew, or kept from an earlier pass
    and advanced), under random policies with escalation levels before and after the due time,
    calendar and business-hours targets, at evaluation times in any order with writes between."""
    workspace, _, _ = load_grouped(runtime, batch)
    if first_snapshots:
        _ingest(runtime, workspace, "support_tickets", first_snapshots)
    for number, (minute, written) in enumerate(passes):
        context = dataclasses.replace(runtime.pipe_context(workspace), sla_policies=lambda: policies)
        setup = SlaSetup.of(context)
        as_of = at(minute)
        where = conditions(context)
        where.between("created_at", at(-100), at(3000))
        found = findings(
            evaluate_targets(context, where, as_of=as_of, setup=setup, in_order=False),
            setup.policies_by_id(),
            as_of,
        )
        events, pending, fired = _reference(context, where, setup, as_of)
        assert sorted(tuple(row.values()) for row in found.events.to_pylist()) == events, number
        assert found.pending == pending, number
        assert sorted(map(_fired_key, found.fired)) == sorted(map(_fired_key, fired)), number
        write(runtime, workspace, written, f"p{number}")
