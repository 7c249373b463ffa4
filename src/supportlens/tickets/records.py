"""What the ticket management API stores about tickets, comments, agents and ticket history: plain
data, no I/O.  Times are aware UTC datetimes with millisecond precision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def now_ms() -> datetime:
    """Now, cut to the millisecond: what the store keeps (and the activity log too)."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds (exact: no float rounding), as the store keeps times."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_ms(value: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=value)


@dataclass(frozen=True, slots=True)
class TicketRecord:
    id: str
    number: str
    workspace_id: str
    title: str
    status: str
    created_at: datetime
    updated_at: datetime
    version: int
    description: str | None = None
    priority: str | None = None
    severity: str | None = None
    category: str | None = None
    subcategory: str | None = None
    customer_id: str | None = None
    assigned_to: str | None = None  # agent id
    group_id: str | None = None  # the team that owns it
    channel: str | None = None
    tags: tuple[str, ...] = ()
    contact: dict[str, Any] | None = None
    service_affected: str | None = None
    location: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    estimated_resolution: datetime | None = None
    escalation_level: int = 0
    escalation_reason: str | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    deleted_at: datetime | None = None
    merged_into: str | None = None

    @property
    def etag(self) -> str:
        return f'"{self.id}.{self.version}"'


@dataclass(frozen=True, slots=True)
class CommentRecord:
    id: str
    ticket_id: str
    content: str
    type: str
    visibility: str  # customer | internal
    author_type: str  # agent | customer | system
    author_id: str | None
    author_name: str | None
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_reply(self) -> bool:
        """A customer-visible comment by an agent is a reply: it drives first response and
        next-reply SLAs.  An internal note never does."""
        return self.author_type == "agent" and self.visibility == "customer"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One thing that happened to a ticket, as its history lists it (and as the outbox delivers
    it to the activity log: ``event`` is the canonical event's JSON, None for entries that are
    not ticket events, e.g. a notification)."""

    event_id: str
    ticket_id: str
    at: datetime
    type: str
    actor_type: str | None
    actor_id: str | None
    details: dict[str, Any]
    event: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    email: str | None = None
    specialization: str | None = None
    teams: tuple[str, ...] = ()
    active: bool = True
