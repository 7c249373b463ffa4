"""Stored tickets follow the workspace's status names, on both engines: a posted snapshot is
resolved when its status name is mapped to a resolved category, and when the names change the
writer restates every stored ticket (event-fed ones from their events, snapshot-only ones from
their stored row); restating again changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from supportlens import cli as cli_module
from supportlens.auth.repository import Workspace
from supportlens.cli import app
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from supportlens.store.base import ParamType
from supportlens.store.schema import FACT_COLUMNS, TICKETS
from tests.conftest import make_settings, store_url

T0 = datetime(2024, 3, 8, 9, 0, tzinfo=UTC)
WINDOW = {"start_date": "2024-01-01", "end_date": "2024-12-31"}
SHIPPED = {"Shipped": StatusCategory.SOLVED}


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _snapshot(ticket_id: str, status: str, *, resolved_after: int | None = 120) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ticket_id": ticket_id,
        "agent_id": "A1",
        "priority": "high",
        "status": status,
        "created_at": _at(0),
        "first_response_at": _at(10),
    }
    if resolved_after is not None:
        row["resolved_at"] = _at(resolved_after)
    return row


# E1 is known through its events only: opened, answered after 30 minutes, "Shipped" after 90.
EVENTS = [
    {"event_id": "e1", "ticket_id": "E1", "at": _at(0), "type": "created", "actor_type": "customer"}
    | {"status": "open", "priority": "high", "agent_id": "A1"},
    {"event_id": "e2", "ticket_id": "E1", "at": _at(30), "type": "reply", "actor_type": "agent"}
    | {"actor_id": "A1"},
    {"event_id": "e3", "ticket_id": "E1", "at": _at(90), "type": "status_changed", "to": "Shipped"},
]
# Snapshot-only tickets: S1 in the custom status, S2 in a default resolved one, S3 in an unknown one.
SNAPSHOTS = [_snapshot("S1", "Shipped"), _snapshot("S2", "resolved"), _snapshot("S3", "Mystery")]


def _post(runtime: Runtime, workspace: Workspace, datasource: str, rows: list[dict[str, Any]]) -> None:
    result = runtime.ingest.ingest(workspace.id, datasource, [RawRow(r, str(r)) for r in rows])
    assert result.quarantined_rows == 0
    result.committed.result()


def _load(runtime: Runtime, workspace: Workspace) -> None:
    _post(runtime, workspace, "ticket_events", EVENTS)
    _post(runtime, workspace, "support_tickets", SNAPSHOTS)


def stored(runtime: Runtime, workspace_id: str) -> dict[str, dict[str, Any]]:
    """The workspace's rows of the current-state table, by ticket id."""
    dialect = runtime.engine.dialect
    sql = (
        f"SELECT {', '.join(TICKETS.column_names)} FROM {dialect.table(TICKETS)} "
        f"WHERE workspace_id = {dialect.param('ws', ParamType.STRING)}"
    )
    rows = runtime.engine.fetch_arrow(sql, {"ws": workspace_id}, timeout=30).to_pylist()
    return {row["ticket_id"]: row for row in rows}


def derived(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {t: (r["is_resolved"], r["resolved_at"], r["resolution_ms"]) for t, r in rows.items()}


def resolved_count(runtime: Runtime, workspace: Workspace) -> int:
    return int(runtime.run_pipe("ticket_metrics", workspace, WINDOW).rows[0]["resolved_tickets"])


MINUTE = 60_000
RESOLVED_AT_120 = T0 + timedelta(minutes=120)
# Before "Shipped" is given a category it is unknown, so not resolved.  A snapshot keeps the
# resolved_at its client sent whatever the status; an event-fed ticket has one only while resolved.
BEFORE = {
    "E1": (False, None, None),
    "S1": (False, RESOLVED_AT_120, 120 * MINUTE),
    "S2": (True, RESOLVED_AT_120, 120 * MINUTE),
    "S3": (False, RESOLVED_AT_120, 120 * MINUTE),
}
AFTER = {
    **BEFORE,
    "E1": (True, T0 + timedelta(minutes=90), 90 * MINUTE),
    "S1": (True, RESOLVED_AT_120, 120 * MINUTE),
}


@pytest.mark.parametrize("bulk", [False, True], ids=["per-row", "bulk"])
def test_snapshot_in_a_custom_resolved_status_is_resolved(runtime: Runtime, bulk: bool) -> None:
    workspace = runtime.metadata.create_workspace("w")
    runtime.configuration.set_status_names(workspace.id, SHIPPED)
    if bulk:  # NDJSON goes through the vectorized validator
        body = b"\n".join(orjson.dumps(row) for row in SNAPSHOTS)
        result = runtime.ingest.ingest_payload(workspace.id, "support_tickets", body)
        assert result.quarantined_rows == 0
        result.committed.result()
    else:
        _post(runtime, workspace, "support_tickets", SNAPSHOTS)
    rows = stored(runtime, workspace.id)
    assert {t: r["is_resolved"] for t, r in rows.items()} == {"S1": True, "S2": True, "S3": False}
    assert rows["S1"]["status"] == "shipped"

    assert resolved_count(runtime, workspace) == 2
    (agent,) = runtime.run_pipe("agent_performance", workspace, WINDOW).rows
    assert (agent["tickets_handled"], agent["resolved_tickets"]) == (3, 2)
    trends = runtime.run_pipe("time_trends", workspace, WINDOW | {"time_interval": "month"}).rows
    assert sum(row["resolved_tickets"] for row in trends) == 2
    (sla,) = runtime.run_pipe("sla_performance", workspace, WINDOW).rows
    assert sla["met_resolution_sla"] == 3  # 120 minutes, within high's 240: as the client sent them


def test_other_workspaces_keep_their_own_names(runtime: Runtime) -> None:
    mine = runtime.metadata.create_workspace("mine")
    other = runtime.metadata.create_workspace("other")
    runtime.configuration.set_status_names(mine.id, SHIPPED)
    runtime.configuration.set_status_names(other.id, {"Resolved": StatusCategory.OPEN})
    # Queued back to back, so the writer usually commits both workspaces' rows in one group.
    first = runtime.ingest.ingest(mine.id, "support_tickets", [RawRow(r, str(r)) for r in SNAPSHOTS])
    second = runtime.ingest.ingest(other.id, "support_tickets", [RawRow(r, str(r)) for r in SNAPSHOTS])
    first.committed.result()
    second.committed.result()
    assert {t: r["is_resolved"] for t, r in stored(runtime, mine.id).items()} == {
        "S1": True,
        "S2": True,
        "S3": False,
    }
    assert not any(r["is_resolved"] for r in stored(runtime, other.id).values())


def test_changing_status_names_restates_stored_tickets(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("w")
    _load(runtime, workspace)
    before = stored(runtime, workspace.id)
    assert derived(before) == BEFORE
    assert resolved_count(runtime, workspace) == 1

    assert runtime.set_status_names(workspace.id, {" shipped ": StatusCategory.SOLVED}).result() == 4
    after = stored(runtime, workspace.id)
    assert derived(after) == AFTER
    assert resolved_count(runtime, workspace) == 3
    details = {r["ticket_id"]: r for r in runtime.run_pipe("ticket_details", workspace, WINDOW).rows}
    assert details["E1"]["resolution_time_minutes"] == 90
    # Nothing but the derived columns moved (and the time facts, which follow the names too).
    moved = ("is_resolved", "resolved_at", "resolution_ms", *(c.name for c in FACT_COLUMNS))
    untouched = [c for c in TICKETS.column_names if c not in moved]
    for ticket_id, row in after.items():
        assert {c: row[c] for c in untouched} == {c: before[ticket_id][c] for c in untouched}

    # Restating again, page by page this time, changes nothing.
    pages: list[int] = []
    assert runtime.writer.restate(workspace.id, page_tickets=1, progress=pages.append).result() == 4
    assert pages == [1, 2, 3, 4]
    assert stored(runtime, workspace.id) == after
    # The same names again: nothing to restate.
    assert runtime.set_status_names(workspace.id, {"Shipped": StatusCategory.SOLVED}).result() == 0
    assert stored(runtime, workspace.id) == after

    # Back to the defaults: back to the rows first stored.
    assert runtime.set_status_names(workspace.id, {}).result() == 4
    assert stored(runtime, workspace.id) == before
    assert resolved_count(runtime, workspace) == 1


def test_restating_keeps_writes_in_order(runtime: Runtime) -> None:
    """Batches queued behind a restatement are committed between its pages, and a snapshot that
    arrives meanwhile is derived with the new names."""
    workspace = runtime.metadata.create_workspace("w")
    _load(runtime, workspace)
    runtime.configuration.set_status_names(workspace.id, SHIPPED)
    restated = runtime.writer.restate(workspace.id, page_tickets=1)
    late = runtime.ingest.ingest(
        workspace.id, "support_tickets", [RawRow(r, str(r)) for r in [_snapshot("S4", "Shipped")]]
    )
    late.committed.result()
    assert restated.result() >= 4
    rows = stored(runtime, workspace.id)
    assert derived(rows) == AFTER | {"S4": (True, RESOLVED_AT_120, 120 * MINUTE)}


@pytest.fixture
def cli(engine_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SUPPORTLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SUPPORTLENS_STORE", store_url(engine_name, tmp_path))
    monkeypatch.setattr(cli_module.console, "width", 200)
    return CliRunner()


def test_cli_statuses_set_restates_stored_tickets(cli: CliRunner, engine_name: str, tmp_path: Path) -> None:
    settings = make_settings(engine_name, tmp_path)
    runtime = Runtime.open(settings)
    try:
        workspace = runtime.metadata.create_workspace("acme")
        _load(runtime, workspace)
        before = stored(runtime, workspace.id)
    finally:
        runtime.close()

    result = cli.invoke(app, ["statuses", "set", "-w", "acme", "Shipped=solved"])
    assert result.exit_code == 0, result.output
    assert "4 stored tickets restated" in result.stdout
    again = cli.invoke(app, ["statuses", "set", "-w", "acme", "Shipped=solved"])
    assert again.exit_code == 0, again.output
    assert "restated" not in again.stdout  # the same names: nothing to do

    runtime = Runtime.open(settings)
    try:
        after = stored(runtime, workspace.id)
        assert derived(after) == AFTER
        assert resolved_count(runtime, workspace) == 3
        assert runtime.writer.restate(workspace.id).result() == 4
        assert stored(runtime, workspace.id) == after
    finally:
        runtime.close()
    assert derived(before) == BEFORE

    refused = cli.invoke(app, ["statuses", "set", "-w", "acme", "Parked=pending", "parked=open"])
    assert refused.exit_code == 1
    assert "twice" in refused.stderr


def test_cli_rebuild_restates_every_workspace(cli: CliRunner, engine_name: str, tmp_path: Path) -> None:
    """Names changed behind the writer's back (straight in the configuration) are applied by
    ``supportlens rebuild``, for one workspace or all of them."""
    settings = make_settings(engine_name, tmp_path)
    runtime = Runtime.open(settings)
    try:
        workspaces = [runtime.metadata.create_workspace(name) for name in ("acme", "globex")]
        for workspace in workspaces:
            _load(runtime, workspace)
            runtime.configuration.set_status_names(workspace.id, SHIPPED)
            assert derived(stored(runtime, workspace.id)) == BEFORE
    finally:
        runtime.close()

    one = cli.invoke(app, ["rebuild", "--workspace", "acme"])
    assert one.exit_code == 0, one.output
    assert "4 tickets of 'acme' rebuilt" in one.stdout
    assert "SLA pipes of 'acme' prepared" in one.stdout
    every = cli.invoke(app, ["rebuild"])
    assert every.exit_code == 0, every.output
    assert "4 tickets of 'globex' rebuilt" in every.stdout
    unknown = cli.invoke(app, ["rebuild", "--workspace", "nope"])
    assert unknown.exit_code == 1

    runtime = Runtime.open(settings)
    try:
        for workspace in workspaces:
            assert derived(stored(runtime, workspace.id)) == AFTER
    finally:
        runtime.close()
