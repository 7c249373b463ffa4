"""Randomized ticket postings for equivalence tests: nulls, re-posts, late older snapshots,
mixed-case labels, critical = urgent, unanswered, unresolved and unrated tickets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

BASE = datetime(2025, 1, 1, tzinfo=UTC)
CATEGORIES = ["billing", "Billing", "TECHNICAL", "technical", "account", " shipping ", None]
PRIORITIES = ["low", "Low", "medium", "high", "HIGH", "urgent", "critical", "Critical", "p5", None]
STATUSES = ["open", "pending", "resolved", "Resolved", "closed", "new", "on_hold", None]
AGENTS = ["A1", "A2", "A3", "A4", None]
CUSTOMERS = ["C1", "C2", "C3"]


def _stamp(rng: random.Random, moment: datetime) -> str | int:
    """The same instant in one of the spellings clients send."""
    choice = rng.randrange(5)
    if choice == 0:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if choice == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if choice == 2:
        return moment.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    if choice == 3:
        return int(moment.timestamp())
    return int(moment.timestamp() * 1000)


def ticket_row(rng: random.Random, ticket_id: str, created: datetime | None = None) -> dict[str, Any]:
    created = created or BASE + timedelta(
        seconds=rng.randrange(365 * 86400), milliseconds=rng.choice([0, 0, 250])
    )
    row: dict[str, Any] = {
        "ticket_id": ticket_id,
        "customer_id": rng.choice(CUSTOMERS),
        "agent_id": rng.choice(AGENTS),
        "category": rng.choice(CATEGORIES),
        "priority": rng.choice(PRIORITIES),
        "status": rng.choice(STATUSES),
        "created_at": _stamp(rng, created),
        "tags": rng.sample(["a", "b", "c"], rng.randrange(3)),
        "channel": rng.choice(["email", "chat", None]),
    }
    if rng.random() < 0.8:
        row["first_response_at"] = _stamp(rng, created + timedelta(seconds=rng.randrange(1, 20000)))
    else:
        row["first_response_at"] = None
    if rng.random() < 0.6:
        row["resolved_at"] = _stamp(rng, created + timedelta(seconds=rng.randrange(1, 400000)))
    if rng.random() < 0.5:
        row["satisfaction_score"] = rng.randint(1, 5)
    if rng.random() < 0.7:
        row["updated_at"] = _stamp(rng, created + timedelta(seconds=rng.randrange(500000)))
    return row


def postings(seed: int, tickets: int) -> list[dict[str, Any]]:
    """Rows in arrival order; about a third of the tickets are posted again, some with an older
    updated_at (which must lose), some with none (which wins by arrival)."""
    rng = random.Random(seed)
    created = [BASE + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(tickets)]
    rows = [ticket_row(rng, f"T{i:05d}", created[i]) for i in range(tickets)]
    for _ in range(tickets // 3):
        index = rng.randrange(tickets)
        rows.insert(rng.randrange(len(rows) + 1), ticket_row(rng, f"T{index:05d}", created[index]))
    return rows
