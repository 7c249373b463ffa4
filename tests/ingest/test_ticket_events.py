"""The ``ticket_events`` datasource on both engines: idempotent on event_id, quarantined like
support_tickets, and tickets known only through events (or through events and snapshots) show
up in the seed endpoints once, with the reference's first response and resolution times."""

from __future__ import annotations

import dataclasses
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.quarantine import quarantined_rows
from supportlens.auth.repository import Workspace
from supportlens.domain.events import TicketEvent
from supportlens.domain.statuses import DEFAULT_STATUS_MAP
from supportlens.domain.timeline import ticket_time_metrics
from supportlens.ingest.events import events_table, stamped_events
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS, TICKETS
from tests.domain.test_timeline import History, histories

T0 = datetime(2024, 3, 8, 9, 0, tzinfo=UTC)
_NAMES = itertools.count()
WINDOW = {"start_date": "2024-01-01", "end_date": "2024-12-31"}


def _row(event: TicketEvent) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": event.event_id,
        "ticket_id": event.ticket_id,
        "at": event.at.isoformat(),
        "type": event.type.value,
    }
    if event.actor_type is not None:
        row["actor_type"] = event.actor_type.value
    if event.status is not None:
        row["to" if event.type.value == "status_changed" else "status"] = event.status
    return row


def _post(
    runtime: Runtime, workspace: Workspace, rows: list[dict[str, Any]], datasource: str = "ticket_events"
) -> tuple[int, int]:
    result = runtime.ingest.ingest(workspace.id, datasource, [RawRow(r, str(r)) for r in rows])
    result.committed.result()
    return result.successful_rows, result.quarantined_rows


def _details(runtime: Runtime, workspace: Workspace) -> dict[str, dict[str, Any]]:
    rows = runtime.run_pipe("ticket_details", workspace, {"limit": "10000"}).rows
    return {row["ticket_id"]: row for row in rows}


def test_event_only_ticket_appears_in_the_seed_endpoints(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("w")
    at = lambda minutes: (T0 + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    rows = [
        {
            "event_id": "1",
            "ticket_id": "T1",
            "at": at(0),
            "type": "created",
            "actor_type": "customer",
            "status": "Open",
            "priority": "High",
            "category": "Billing",
            "customer_id": "C1",
        },
        {"event_id": "2", "ticket_id": "T1", "at": at(5), "type": "reply", "actor_type": "bot"},
        {
            "event_id": "3",
            "ticket_id": "T1",
            "at": at(30),
            "type": "reply",
            "actor_type": "agent",
            "actor_id": "A1",
        },
        {"event_id": "4", "ticket_id": "T1", "at": at(45), "type": "assigned", "to": "A1"},
        {
            "event_id": "5",
            "ticket_id": "T1",
            "at": at(90),
            "type": "status_changed",
            "from": "open",
            "to": "Resolved",
        },
        {"event_id": "6", "ticket_id": "T1", "at": at(95), "type": "rated", "score": 5},
    ]
    assert _post(runtime, workspace, rows) == (6, 0)
    assert _post(runtime, workspace, rows) == (6, 0)  # accepted again, but changes nothing
    assert runtime.engine.count(TICKET_EVENTS, workspace.id) == 6
    assert runtime.engine.count(TICKETS, workspace.id) == 1
    ticket = _details(runtime, workspace)["T1"]
    assert ticket["status"] == "resolved"
    assert ticket["priority"] == "high"
    assert ticket["category"] == "billing"
    assert ticket["agent_id"] == "A1"
    assert ticket["customer_id"] == "C1"
    assert ticket["satisfaction_score"] == 5
    assert ticket["response_time_minutes"] == 30
    assert ticket["resolution_time_minutes"] == 90
    metrics = runtime.run_pipe("ticket_metrics", workspace, WINDOW).rows[0]
    assert (metrics["total_tickets"], metrics["resolved_tickets"]) == (1, 1)


def test_snapshot_and_events_of_one_ticket_count_once(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("w")
    snapshot = {
        "ticket_id": "T1",
        "created_at": "2024-03-08 09:00:00",
        "status": "open",
        "priority": "low",
        "updated_at": "2024-03-08 09:10:00",
        "customer_id": "C9",
        "first_response_at": "2024-03-08 09:20:00",
    }
    assert _post(runtime, workspace, [snapshot], "support_tickets") == (1, 0)
    events = [
        {
            "event_id": "e1",
            "ticket_id": "T1",
            "at": "2024-03-08T09:15:00Z",
            "type": "reply",
            "actor_type": "agent",
        },
        {
            "event_id": "e2",
            "ticket_id": "T1",
            "at": "2024-03-08T11:00:00Z",
            "type": "status_changed",
            "to": "closed",
        },
    ]
    assert _post(runtime, workspace, events) == (2, 0)
    ticket = _details(runtime, workspace)["T1"]
    assert ticket["status"] == "closed"  # the event is newer than the snapshot
    assert ticket["priority"] == "low"  # only the snapshot says
    assert ticket["customer_id"] == "C9"
    assert ticket["response_time_minutes"] == 15  # the earliest known response
    assert ticket["resolution_time_minutes"] == 120
    # A newer snapshot wins over older events; an older one changes nothing.
    newer = {**snapshot, "status": "open", "updated_at": "2024-03-08 12:00:00"}
    older = {**snapshot, "status": "pending", "updated_at": "2024-03-08 09:05:00"}
    _post(runtime, workspace, [newer, older], "support_tickets")
    ticket = _details(runtime, workspace)["T1"]
    assert ticket["status"] == "open"
    assert ticket["resolution_time_minutes"] is None
    assert runtime.engine.count(TICKETS, workspace.id) == 1
    totals = runtime.run_pipe("ticket_metrics", workspace, WINDOW).rows[0]
    assert totals["total_tickets"] == 1


def test_bad_events_are_quarantined_with_their_reason(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("w")
    rows: list[Any] = [
        {"event_id": "1", "ticket_id": "T1", "at": "2024-03-08T09:00:00Z", "type": "created"},
        {"ticket_id": "T1", "at": "2024-03-08T09:00:00Z", "type": "created"},
        {"event_id": "2", "ticket_id": "T1", "at": "yesterday", "type": "created"},
        {"event_id": "3", "ticket_id": "T1", "at": "2024-03-08T09:00:00Z", "type": "exploded"},
        {"event_id": "4", "ticket_id": "T1", "at": "2024-03-08T09:00:00Z", "type": "rated", "score": 9},
        {"event_id": "5", "ticket_id": "T1", "at": "2024-03-08T09:00:00Z", "type": "status_changed"},
        {
            "event_id": "6",
            "ticket_id": "T1",
            "at": "2024-03-08T09:00:00Z",
            "type": "reply",
            "actor_type": "robot",
        },
        ["not", "an", "object"],
    ]
    assert _post(runtime, workspace, rows) == (1, 7)
    kept = quarantined_rows(runtime.pipe_context(workspace), "ticket_events", limit=100, offset=0).rows
    assert sorted(row["column_name"] for row in kept) == sorted(
        ["event_id", "at", "type", "score", "to", "actor_type", ""]
    )
    assert all(row["raw"] for row in kept)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(histories(), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_random_histories_in_random_batches_match_the_reference(
    runtime: Runtime, batch: list[History], shuffle: random.Random
) -> None:
    workspace = runtime.metadata.create_workspace(f"w{next(_NAMES)}")
    tickets: dict[str, list[TicketEvent]] = {}
    rows: list[dict[str, Any]] = []
    for index, history in enumerate(batch):
        ticket_id = f"T{index}"
        events = [
            TicketEvent(
                **{
                    **{n: getattr(e, n) for n in TicketEvent.__slots__},
                    "ticket_id": ticket_id,
                    "event_id": f"{ticket_id}-{e.event_id}",
                }
            )  # type: ignore[arg-type]
            for e in history.events
        ]
        tickets[ticket_id] = events
        rows.extend(_row(e) for e in events)
    # Arrival order across requests keeps each ticket's own order (ties resolve by arrival).
    cut = sorted(shuffle.sample(range(len(rows) + 1), k=min(3, len(rows) + 1)))
    for start, end in zip([0, *cut], [*cut, len(rows)], strict=True):
        if start < end:
            _post(runtime, workspace, rows[start:end])
    found = _details(runtime, workspace)
    for ticket_id, events in tickets.items():
        expected = ticket_time_metrics(
            events, as_of=datetime(2100, 1, 1, tzinfo=UTC), statuses=DEFAULT_STATUS_MAP
        )
        row = found[ticket_id]
        assert row["status"] == expected.status
        response = (
            None if expected.first_response_ms is None else round(expected.first_response_ms / 60000, 2)
        )
        resolution = (
            None if expected.full_resolution_ms is None else round(expected.full_resolution_ms / 60000, 2)
        )
        assert row["response_time_minutes"] == response
        assert row["resolution_time_minutes"] == resolution


@settings(max_examples=40, deadline=None)
@given(histories())
def test_events_as_columns_are_stamped_as_events_as_objects(history: History) -> None:
    """``stamped_events`` (events SupportLens makes, as columns) stores what ``events_table`` stores
    of the same events as objects: microseconds truncated alike, absent fields null."""
    events = [dataclasses.replace(e, at=e.at + timedelta(microseconds=999)) for e in history.events]
    received = T0 + timedelta(days=1, microseconds=1)
    # Positions with gaps, as when rows of the request between them were rejected.
    positions = [3 * n + 1 for n in range(len(events))]
    as_objects = events_table("w", list(zip(positions, events, strict=True)), 7, received, "sla_evaluator")
    columns = pa.table(
        {
            "event_id": [e.event_id for e in events],
            "ticket_id": [e.ticket_id for e in events],
            "occurred_at": pa.array([e.at for e in events], pa.timestamp("us", tz="UTC")),
            "type": [e.type.value for e in events],
            "actor_type": [None if e.actor_type is None else e.actor_type.value for e in events],
            "status": [e.status for e in events],
        }
    )
    as_columns = stamped_events("w", columns, [7 + p for p in positions], received, "sla_evaluator")
    expected = as_objects.to_pylist()
    for row, event in zip(expected, events, strict=True):
        # The objects carry every field; the columns only those above.
        for name in ("actor_id", "field", "from_value", "to_value", "score", "customer_id", "agent_id"):
            row[name] = None
        for name in ("group_id", "category", "priority", "channel", "subject"):
            row[name] = None
        row["tags"] = []
        assert row["occurred_at"] == event.at.replace(microsecond=event.at.microsecond // 1000 * 1000)
    assert as_objects.column("seq").to_pylist() == [7 + p for p in positions]
    assert as_columns.schema == as_objects.schema
    assert as_columns.to_pylist() == expected
