"""The demo desk: tickets in every stage through the real ticket service, deterministic per seed,
and visible to analytics."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from supportlens.demo.desk import AGENTS, fill_desk
from supportlens.runtime import Runtime
from supportlens.tickets.repository import TicketQuery
from tests.conftest import make_settings


def _desk(directory: Path, seed: int) -> tuple[list[tuple[str, str, str, int]], int]:
    runtime = Runtime.open(make_settings("duckdb", directory, sla_evaluator_interval_seconds=0))
    try:
        workspace = runtime.metadata.create_workspace("demo")
        fill_desk(runtime.tickets, workspace.id, count=10, seed=seed)
        records, total = runtime.tickets.search(workspace.id, TicketQuery(limit=100, descending=False))
        resolved: int = runtime.run_pipe("ticket_metrics", workspace, {}).rows[0]["resolved_tickets"]
        assert total == 10
        assert {a.id for a in runtime.tickets.repository.agents(workspace.id)} == {a.id for a in AGENTS}
        return [(r.title, r.status, r.assigned_to or "", r.escalation_level) for r in records], resolved
    finally:
        runtime.close()


def test_the_desk_has_every_stage_and_is_the_same_for_a_seed(tmp_path: Path) -> None:
    first, resolved = _desk(tmp_path / "a", seed=7)
    again, _ = _desk(tmp_path / "b", seed=7)
    assert first == again
    statuses = Counter(status for _, status, _, _ in first)
    assert statuses == {"open": 4, "pending": 4, "resolved": 2}
    assert sum(1 for *_, level in first if level == 1) == 2
    assert resolved == 2  # the pipes count what the service did
