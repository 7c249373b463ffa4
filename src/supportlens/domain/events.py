"""The canonical ticket event (METRICS.md, activity log): one thing that happened to a ticket.

Every event source (the ``ticket_events`` Events API, Freshdesk activity exports, connectors, the
ticket management API) produces these, so every duration is computed by one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventType(StrEnum):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    PRIORITY_CHANGED = "priority_changed"
    ASSIGNED = "assigned"
    REPLY = "reply"  # a message to the customer
    CUSTOMER_MESSAGE = "customer_message"
    INTERNAL_NOTE = "internal_note"
    RATED = "rated"
    ESCALATED = "escalated"
    SLA_BREACHED = "sla_breached"
    FIELD_CHANGED = "field_changed"
    MERGED = "merged"
    DELETED = "deleted"


# What SupportLens records about a ticket (its SLA evaluator's findings), not what happened to it:
# never part of a ticket's history for state, durations or SLA.
BOOKKEEPING: frozenset[EventType] = frozenset({EventType.SLA_BREACHED, EventType.ESCALATED})
HISTORY_FILTER = "type NOT IN (" + ", ".join(f"'{t.value}'" for t in sorted(BOOKKEEPING)) + ")"


class ActorType(StrEnum):
    AGENT = "agent"
    CUSTOMER = "customer"
    BOT = "bot"
    SYSTEM = "system"


# Ticket attributes an event may set, each a column of the activity log.  ``created`` may carry any
# of them (the ticket's initial state); a change event carries the one it sets (``status_changed``
# its ``to`` in ``status``, ``assigned`` in ``agent_id``, ``field_changed`` of a known attribute in
# that attribute), so that the value in force at any moment is the latest non-null one.
TICKET_ATTRIBUTES: tuple[str, ...] = (
    "customer_id",
    "agent_id",
    "group_id",
    "category",
    "priority",
    "status",
    "channel",
    "subject",
)

# The attribute each change type sets.
CHANGED_ATTRIBUTE: dict[EventType, str] = {
    EventType.STATUS_CHANGED: "status",
    EventType.PRIORITY_CHANGED: "priority",
    EventType.ASSIGNED: "agent_id",
}


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """``at`` is timezone-aware UTC.  ``from_value`` is informative only: the state before an
    event follows from the events before it, so a source that sends only new values (or full
    property sets, where most "changes" change nothing) is read correctly."""

    event_id: str
    ticket_id: str
    at: datetime
    type: EventType
    actor_type: ActorType | None = None
    actor_id: str | None = None
    field: str | None = None  # field_changed: the field's name
    from_value: str | None = None
    to_value: str | None = None
    score: int | None = None  # rated: the satisfaction score
    customer_id: str | None = None
    agent_id: str | None = None
    group_id: str | None = None
    category: str | None = None
    priority: str | None = None
    status: str | None = None
    channel: str | None = None
    subject: str | None = None
    tags: tuple[str, ...] | None = None

    def attribute(self, name: str) -> str | None:
        value: str | None = getattr(self, name)
        return value

    @property
    def is_agent_reply(self) -> bool:
        """A reply by a human agent.  A reply with no actor type counts: a message to the customer
        is from the support side by definition; bots and system auto-replies never count."""
        return self.type is EventType.REPLY and self.actor_type in (ActorType.AGENT, None)
