"""Deleted tickets (a ``deleted`` event: the ticket API's soft delete, Zendesk's and Freshdesk's
deletions) leave the current state, so no pipe counts them, on both engines; their events stay in
the activity log; a later event or a newer snapshot (a helpdesk restoring the ticket) brings it back;
a restatement removes deleted tickets a store still holds."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from supportlens.auth.repository import Workspace
from supportlens.ingest.service import RawRow
from supportlens.ingest.state import deleted_tickets
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS, TICKET_SNAPSHOTS, TICKETS


def _post(runtime: Runtime, workspace: Workspace, rows: list[dict[str, Any]], datasource: str) -> None:
    result = runtime.ingest.ingest(workspace.id, datasource, [RawRow(r, str(r)) for r in rows])
    result.committed.result()
    assert result.quarantined_rows == 0


def _event(ticket: str, kind: str, at: str, **more: Any) -> dict[str, Any]:
    return {"event_id": f"{ticket}-{kind}-{at}", "ticket_id": ticket, "at": at, "type": kind, **more}


def _listed(runtime: Runtime, workspace: Workspace) -> set[str]:
    rows = runtime.run_pipe("ticket_details", workspace, {"created_after": "2026-01-01", "limit": "100"}).rows
    return {row["ticket_id"] for row in rows}


def _total(runtime: Runtime, workspace: Workspace) -> int:
    return int(
        runtime.run_pipe("ticket_metrics", workspace, {"created_after": "2026-01-01"}).rows[0][
            "total_tickets"
        ]
    )


def test_a_deleted_ticket_leaves_every_pipe_and_comes_back_when_restored(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("acme")
    created = [
        _event(t, "created", "2026-03-02T10:00:00Z", actor_type="customer", status="open") for t in ("A", "B")
    ]
    _post(runtime, workspace, created, "ticket_events")
    _post(
        runtime,
        workspace,
        [
            {
                "ticket_id": "S",
                "status": "open",
                "created_at": "2026-03-02 09:00:00",
                "updated_at": "2026-03-02 09:00:00",
            }
        ],
        "support_tickets",
    )
    assert _listed(runtime, workspace) == {"A", "B", "S"}
    _post(runtime, workspace, [_event("A", "deleted", "2026-03-03T10:00:00Z")], "ticket_events")
    assert _listed(runtime, workspace) == {"B", "S"}
    assert _total(runtime, workspace) == 2
    # The log keeps the ticket's history, deletion included.
    logged = runtime.engine.events_of(workspace.id, ["A"]).column("type").to_pylist()
    assert sorted(logged) == ["created", "deleted"]
    # An older snapshot arriving late does not bring it back; a newer one (restored) does.
    stale = {
        "ticket_id": "A",
        "status": "open",
        "created_at": "2026-03-02 10:00:00",
        "updated_at": "2026-03-02 12:00:00",
    }
    _post(runtime, workspace, [stale], "support_tickets")
    assert _listed(runtime, workspace) == {"B", "S"}
    restored = {**stale, "status": "pending", "updated_at": "2026-03-04 08:00:00"}
    _post(runtime, workspace, [restored], "support_tickets")
    assert _listed(runtime, workspace) == {"A", "B", "S"}
    details = runtime.run_pipe("ticket_details", workspace, {"ticket_id": "A", "created_after": "2026-01-01"})
    assert details.rows[0]["status"] == "pending"
    # Deleted again, by a later event: gone again; a snapshot-only ticket is deleted by an event too.
    _post(
        runtime,
        workspace,
        [_event("A", "deleted", "2026-03-05T10:00:00Z"), _event("S", "deleted", "2026-03-05T10:00:00Z")],
        "ticket_events",
    )
    assert _listed(runtime, workspace) == {"B"}
    assert runtime.engine.count(TICKETS, workspace.id) == 1
    assert runtime.engine.count(TICKET_SNAPSHOTS, workspace.id) == 3  # logs keep everything
    assert runtime.engine.count(TICKET_EVENTS, workspace.id) == 5


def test_a_restatement_removes_deleted_tickets_the_store_still_holds(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("acme")
    events = [
        _event("A", "created", "2026-03-02T10:00:00Z", actor_type="customer"),
        _event("A", "deleted", "2026-03-03T10:00:00Z"),
        _event("B", "created", "2026-03-02T10:00:00Z", actor_type="customer"),
    ]
    _post(runtime, workspace, events, "ticket_events")
    assert _listed(runtime, workspace) == {"B"}
    # A store written before deletions were applied holds A's row: a restatement removes it.
    row = runtime.engine.fetch_arrow(
        f"SELECT * FROM {runtime.engine.dialect.table(TICKETS)} WHERE ticket_id = 'B'", {}, timeout=30
    )
    resurrected = row.set_column(
        row.schema.get_field_index("ticket_id"), "ticket_id", pa.array(["A"], pa.string())
    )
    runtime.engine.write(_only_derived(resurrected.select(TICKETS.column_names).cast(TICKETS.arrow_schema())))
    assert _listed(runtime, workspace) == {"A", "B"}
    assert runtime.writer.restate(workspace.id).result() == 2
    assert _listed(runtime, workspace) == {"B"}


def _only_derived(rows: pa.Table) -> Any:
    from supportlens.store.base import WriteBatch
    from supportlens.store.schema import QUARANTINE

    return WriteBatch(
        snapshots=TICKET_SNAPSHOTS.arrow_schema().empty_table(),
        events=TICKET_EVENTS.arrow_schema().empty_table(),
        derived=rows,
        quarantine=QUARANTINE.arrow_schema().empty_table(),
    )


def _log(rows: list[tuple[str, str, str]]) -> pa.Table:
    ticket, kind, at = zip(*rows, strict=True)
    return pa.table(
        {
            "ticket_id": pa.array(ticket, pa.string()),
            "type": pa.array(kind, pa.string()),
            "occurred_at": pa.array([pa.scalar(a).cast(pa.timestamp("ms", tz="UTC")).as_py() for a in at]),
        }
    )


def _versions(rows: list[tuple[str, str]]) -> pa.Table:
    if not rows:
        return pa.table(
            {"ticket_id": pa.array([], pa.string()), "version_at": pa.array([], pa.timestamp("ms", tz="UTC"))}
        )
    ticket, at = zip(*rows, strict=True)
    return pa.table(
        {
            "ticket_id": pa.array(ticket, pa.string()),
            "version_at": pa.array([pa.scalar(a).cast(pa.timestamp("ms", tz="UTC")).as_py() for a in at]),
        }
    )


def test_the_deletion_rule() -> None:
    log = _log(
        [
            ("gone", "created", "2026-03-01T00:00:00Z"),
            ("gone", "deleted", "2026-03-02T00:00:00Z"),
            ("later-event", "deleted", "2026-03-02T00:00:00Z"),
            ("later-event", "commented", "2026-03-03T00:00:00Z"),
            ("newer-snapshot", "deleted", "2026-03-02T00:00:00Z"),
            ("same-instant", "deleted", "2026-03-02T00:00:00Z"),
            ("same-instant", "status_changed", "2026-03-02T00:00:00Z"),
            ("older-snapshot", "deleted", "2026-03-02T00:00:00Z"),
            ("never", "created", "2026-03-01T00:00:00Z"),
        ]
    )
    versions = _versions(
        [("newer-snapshot", "2026-03-02T00:00:01Z"), ("older-snapshot", "2026-03-01T00:00:00Z")]
    )
    assert deleted_tickets(log, versions) == ["gone", "older-snapshot", "same-instant"]
    assert deleted_tickets(_log([("x", "created", "2026-03-01T00:00:00Z")]), _versions([])) == []
