"""Canonical records shared by every source, store engine and metric.

Everything here is plain data: no I/O, no engine detail.  Timestamps are timezone-aware UTC
``datetime`` values with millisecond precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# "Resolved" in every endpoint means one of these statuses: the default names of the solved and
# closed categories (METRICS.md, status categories; domain/statuses.py).
RESOLVED_STATUSES: frozenset[str] = frozenset({"resolved", "solved", "closed"})

# Priorities in the order endpoints list them; anything else follows alphabetically.
PRIORITY_ORDER: tuple[str, ...] = ("urgent", "high", "medium", "low")

# Spellings folded into one priority: ``critical`` and ``urgent`` are the same level, above high.
PRIORITY_ALIASES: dict[str, str] = {"critical": "urgent", "normal": "medium"}

# The fields of seed 000's support_tickets event, in the order of its example.
SEED_SNAPSHOT_FIELDS: tuple[str, ...] = (
    "ticket_id",
    "customer_id",
    "agent_id",
    "category",
    "priority",
    "status",
    "created_at",
    "first_response_at",
    "resolved_at",
    "satisfaction_score",
    "tags",
    "updated_at",
    "channel",
    "subject",
)
# Every field a support_tickets event may carry (and every table that lists them): the seed's, plus
# the team (group) that owns the ticket, which picks its business calendar.
SNAPSHOT_FIELDS: tuple[str, ...] = (*SEED_SNAPSHOT_FIELDS, "group_id")

SATISFACTION_MIN = 1
SATISFACTION_MAX = 5


@dataclass(frozen=True, slots=True)
class TicketSnapshot:
    """The state of one ticket at a moment, as posted to ``support_tickets``."""

    ticket_id: str
    created_at: datetime
    customer_id: str | None = None
    agent_id: str | None = None
    category: str | None = None
    priority: str | None = None
    status: str | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    satisfaction_score: int | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    updated_at: datetime | None = None
    channel: str | None = None
    subject: str | None = None
    group_id: str | None = None

    @property
    def is_resolved(self) -> bool:
        return self.status in RESOLVED_STATUSES


def normalize_label(value: str | None) -> str | None:
    """Case-insensitive labels (category, status, channel): trimmed and lower-cased; blank is null."""
    if value is None:
        return None
    folded = value.strip().lower()
    return folded or None


def normalize_priority(value: str | None) -> str | None:
    """``High`` = ``high``; ``critical`` = ``urgent``."""
    folded = normalize_label(value)
    if folded is None:
        return None
    return PRIORITY_ALIASES.get(folded, folded)


def priority_rank(priority: str | None) -> tuple[int, str]:
    """Sort key: urgent, high, medium, low, then other priorities by name, then no priority."""
    if priority is None:
        return (len(PRIORITY_ORDER) + 1, "")
    if priority in PRIORITY_ORDER:
        return (PRIORITY_ORDER.index(priority), "")
    return (len(PRIORITY_ORDER), priority)
