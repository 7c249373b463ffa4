"""The writer knows which tickets have a history without asking the store on every commit where it
is the store's only writer (ingest/writer.py ``_Histories``): through events after snapshots,
snapshots after events and deletions, the stored state is always what a rebuild from the logs
gives, on both engines (ClickHouse asks the store each time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKETS
from tests.conftest import make_settings

T0 = datetime(2024, 3, 8, 9, 0, tzinfo=UTC)
STATE = (
    "ticket_id",
    "status",
    "is_resolved",
    "first_response_at",
    "resolved_at",
    "last_event_at",
    "priority",
)


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _state(runtime: Runtime) -> list[dict[str, Any]]:
    tickets = runtime.engine.dialect.table(TICKETS)  # ClickHouse: its newest row per ticket
    sql = f"SELECT {', '.join(STATE)} FROM {tickets} ORDER BY ticket_id"
    return runtime.engine.fetch_arrow(sql, {}, timeout=30).to_pylist()


def test_the_state_kept_through_events_snapshots_and_deletions_is_a_rebuilds(
    engine_name: str, tmp_path: Path
) -> None:
    runtime = Runtime.open(make_settings(engine_name, tmp_path))
    try:
        workspace = runtime.metadata.create_workspace("w")

        def post(datasource: str, *rows: dict[str, Any]) -> None:
            raws = [RawRow(row, "") for row in rows]
            runtime.ingest.ingest(workspace.id, datasource, raws).committed.result()

        def snapshot(ticket_id: str, minutes: int, status: str) -> dict[str, Any]:
            return {
                "ticket_id": ticket_id,
                "created_at": _at(0),
                "updated_at": _at(minutes),
                "status": status,
                "priority": "low",
            }

        def rebuilt() -> list[dict[str, Any]]:
            stored = _state(runtime)
            runtime.writer.restate(workspace.id).result()
            assert _state(runtime) == stored
            return stored

        post("support_tickets", snapshot("A", 1, "open"), snapshot("B", 1, "open"))  # first commit
        # A gains a history after the writer first looked: a later snapshot of A combines with it.
        created = {
            "event_id": "a1",
            "ticket_id": "A",
            "at": _at(0),
            "type": "created",
            "actor_type": "customer",
        }
        reply = {"event_id": "a2", "ticket_id": "A", "at": _at(5), "type": "reply", "actor_type": "agent"}
        post("ticket_events", created | {"status": "open", "priority": "high"}, reply)
        post("support_tickets", snapshot("A", 20, "open"), snapshot("B", 20, "solved"))
        state = {row["ticket_id"]: row for row in rebuilt()}
        assert state["A"]["first_response_at"] is not None  # from A's reply event
        assert state["A"]["last_event_at"] is not None
        assert state["B"]["last_event_at"] is None
        # Bookkeeping events are no history: B stays snapshot-only.
        breach = {
            "event_id": "b1",
            "ticket_id": "B",
            "at": _at(30),
            "type": "sla_breached",
            "actor_type": "system",
        }
        post("ticket_events", breach | {"field": "first_response", "to": "30"})
        post("support_tickets", snapshot("B", 40, "open"))
        assert {row["ticket_id"]: row for row in rebuilt()}["B"]["last_event_at"] is None
        # Deleted with its logs, A comes back as a snapshot-only ticket.
        runtime.ingest.delete_tickets(workspace.id, ["A"]).result()
        post("support_tickets", snapshot("A", 50, "solved"))
        again = {row["ticket_id"]: row for row in rebuilt()}["A"]
        assert again["last_event_at"] is None
        assert again["first_response_at"] is None
        assert again["status"] == "solved"
    finally:
        runtime.close()
