"""SLA evaluations kept between pipe runs (analytics/sla_memo.py), on both engines: every answer of
the SLA pipes equals the answer of a run without kept evaluations, before and after a new event, a
policy change, a later and an earlier as_of; settled and running tickets are kept, and a kept ticket
is not read again."""

from __future__ import annotations

from typing import Any

from supportlens.analytics.sla_memo import KeptEvaluations, TargetStates
from supportlens.auth.repository import Workspace
from supportlens.configuration.sla import SlaPolicyDefinition
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime

PIPES = (
    ("ticket_sla", {}),
    ("sla_attainment", {"group_by": "priority"}),
    ("sla_at_risk", {}),
)


def _post(runtime: Runtime, workspace: Workspace, rows: list[dict[str, Any]]) -> None:
    result = runtime.ingest.ingest(workspace.id, "ticket_events", [RawRow(r, str(r)) for r in rows])
    result.committed.result()
    assert result.quarantined_rows == 0


def _event(ticket: str, number: int, at: str, kind: str, **more: Any) -> dict[str, Any]:
    return {"event_id": f"{ticket}-{number}", "ticket_id": ticket, "at": at, "type": kind, **more}


def _answers(runtime: Runtime, workspace: Workspace, **extra: str) -> list[list[dict[str, Any]]]:
    base = {"start_date": "2026-01-01", "end_date": "2026-12-31", "as_of": "2026-03-10T00:00:00Z", **extra}
    return [list(runtime.run_pipe(name, workspace, {**base, **query}).rows) for name, query in PIPES]


def _fresh(runtime: Runtime, workspace: Workspace, **extra: str) -> list[list[dict[str, Any]]]:
    kept = runtime.sla_memo, runtime.sla_states
    runtime.sla_memo, runtime.sla_states = KeptEvaluations(), TargetStates()
    try:
        return _answers(runtime, workspace, **extra)
    finally:
        runtime.sla_memo, runtime.sla_states = kept


def test_kept_targets_give_the_answers_of_a_fresh_evaluation(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("acme")
    _post(
        runtime,
        workspace,
        [
            # Settled: answered and solved.
            _event("DONE", 1, "2026-03-02T10:00:00Z", "created", actor_type="customer", priority="high"),
            _event("DONE", 2, "2026-03-02T10:30:00Z", "reply", actor_type="agent", actor_id="A1"),
            _event("DONE", 3, "2026-03-02T12:00:00Z", "status_changed", to="solved"),
            # Running: never answered.
            _event("OPEN", 1, "2026-03-02T10:00:00Z", "created", actor_type="customer", priority="low"),
        ],
    )
    first = _answers(runtime, workspace)
    assert first == _fresh(runtime, workspace)
    entries = runtime.sla_memo._entries
    assert {key for _, key in entries} == {"DONE", "OPEN"}  # settled and running tickets are kept
    # Kept evaluations are used, not made again: a kept one emptied shows in the next answer.
    seq, setup, running = entries[(workspace.id, "OPEN")]
    entries[(workspace.id, "OPEN")] = (seq, setup, running._replace(targets=()))
    assert _answers(runtime, workspace, as_of="2026-03-11T00:00:00Z")[0] == [
        row for row in first[0] if row["ticket_id"] != "OPEN"
    ]
    entries[(workspace.id, "OPEN")] = (seq, setup, running)
    assert _answers(runtime, workspace) == first
    # Later and earlier times than the kept one (after the last events): the running ticket's
    # clock advanced, as evaluating it then gives.
    for moment in ("2026-03-02T10:10:00Z", "2026-03-02T12:30:00Z", "2026-03-04T09:00:00.123456Z"):
        assert _answers(runtime, workspace, as_of=moment) == _fresh(runtime, workspace, as_of=moment), moment
    # A new event on the settled ticket: it is evaluated again.
    _post(
        runtime,
        workspace,
        [
            _event("DONE", 4, "2026-03-03T09:00:00Z", "status_changed", to="open"),
            _event("DONE", 5, "2026-03-03T09:05:00Z", "customer_message", actor_type="customer"),
        ],
    )
    reopened = _answers(runtime, workspace)
    assert reopened == _fresh(runtime, workspace)
    assert reopened != first
    # Another policy: every kept value is stale.
    runtime.configuration.create_policy(
        workspace.id,
        SlaPolicyDefinition.model_validate(
            {
                "name": "Strict",
                "default": True,
                "targets": {"default": [{"type": "resolution", "minutes": 5}]},
            }
        ),
    )
    assert _answers(runtime, workspace) == _fresh(runtime, workspace)
    # An evaluation time before a kept ticket's last event never uses what was kept.
    early = {"as_of": "2026-03-02T11:00:00Z"}
    assert _answers(runtime, workspace, **early) == _fresh(runtime, workspace, **early)
