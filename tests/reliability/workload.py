"""Deterministic batches for the reliability tests: ticket snapshots (support_tickets) whose ids
say which batch and row they are, updates of earlier tickets, and activity-log events with stable
event ids (ticket_events), so that any stored state can be checked against what was sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

CATEGORIES = ("billing", "technical", "account", "shipping", "bug")
PRIORITIES = ("low", "medium", "high", "urgent")


def base_time() -> datetime:
    """Yesterday, midnight UTC: every generated timestamp lies within the default 365-day window."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def _text(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(slots=True)
class Batch:
    """One request body and what it means once stored."""

    datasource: str
    body: bytes
    tickets: set[str] = field(default_factory=set)  # ticket ids the batch creates
    resolves: set[str] = field(default_factory=set)  # earlier tickets it moves to resolved
    events: set[str] = field(default_factory=set)  # event ids it carries


def _ticket(index: int, row: int, at: datetime, **fields: object) -> bytes:
    """Ticket ``S<index>-<row>`` created at ``at``, with ``fields`` over its open defaults."""
    return orjson.dumps(
        {
            "ticket_id": f"S{index:05d}-{row:05d}",
            "customer_id": f"C{row % 997:04d}",
            "agent_id": f"A{row % 23:03d}",
            "category": CATEGORIES[row % len(CATEGORIES)],
            "priority": PRIORITIES[row % len(PRIORITIES)],
            "status": "open",
            "created_at": _text(at),
            "updated_at": _text(at),
            "tags": ["reliability"],
            **fields,
        }
    )


def ticket_batch(index: int, size: int, base: datetime) -> Batch:
    """``size`` new open tickets ``S<index>-<row>``, plus (from the second batch on) a newer
    resolved version of every other ticket of the batch before."""
    rows: list[bytes] = []
    batch = Batch("support_tickets", b"")
    created = base - timedelta(days=1 + index % 300)
    for row in range(size):
        rows.append(_ticket(index, row, created + timedelta(seconds=row)))
        batch.tickets.add(f"S{index:05d}-{row:05d}")
    if index > 0:
        before = base - timedelta(days=1 + (index - 1) % 300)
        for row in range(0, size, 2):
            at = before + timedelta(seconds=row)
            rows.append(
                _ticket(
                    index - 1,
                    row,
                    at,
                    status="resolved",
                    first_response_at=_text(at + timedelta(minutes=20)),
                    resolved_at=_text(at + timedelta(hours=3)),
                    updated_at=_text(at + timedelta(hours=3)),
                    satisfaction_score=1 + row % 5,
                )
            )
            batch.resolves.add(f"S{index - 1:05d}-{row:05d}")
    batch.body = b"\n".join(rows)
    return batch


def event_batch(index: int, tickets: int, base: datetime) -> Batch:
    """The activity log of ``tickets`` tickets ``E<index>-<row>``: created, an agent reply, resolved
    (three events each, ids ``<ticket>:created`` ...)."""
    rows: list[bytes] = []
    batch = Batch("ticket_events", b"")
    created = base - timedelta(days=1 + index % 300, hours=6)
    for row in range(tickets):
        ticket = f"E{index:05d}-{row:05d}"
        at = created + timedelta(seconds=row)
        events = [
            {
                "event_id": f"{ticket}:created",
                "ticket_id": ticket,
                "at": _text(at),
                "type": "created",
                "actor_type": "customer",
                "status": "open",
                "priority": PRIORITIES[row % len(PRIORITIES)],
                "category": CATEGORIES[row % len(CATEGORIES)],
                "customer_id": f"C{row % 997:04d}",
            },
            {
                "event_id": f"{ticket}:reply",
                "ticket_id": ticket,
                "at": _text(at + timedelta(minutes=30)),
                "type": "reply",
                "actor_type": "agent",
                "actor_id": f"A{row % 23:03d}",
            },
            {
                "event_id": f"{ticket}:resolved",
                "ticket_id": ticket,
                "at": _text(at + timedelta(hours=2)),
                "type": "status_changed",
                "to": "resolved",
            },
        ]
        rows.extend(orjson.dumps(event) for event in events)
        batch.tickets.add(ticket)
        batch.resolves.add(ticket)
        batch.events.update(str(event["event_id"]) for event in events)
    batch.body = b"\n".join(rows)
    return batch
