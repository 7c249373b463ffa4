"""What a change to a ticket record means for its history and for the activity log (pure, no I/O).

Every command of the ticket management API ends here: the record before and after, plus what was
said (a reply, a note), become history entries, each carrying the canonical ticket event
(METRICS.md activity log) that analytics reads, in the form the Events API accepts (validated by
ingest/events.py like any other source).  Entries for fields the activity log has no column for
(severity, description, metadata, ...) stay in the history only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from supportlens.domain.events import EventType
from supportlens.ingest.timestamps import format_timestamp
from supportlens.tickets.records import HistoryEntry, TicketRecord, to_ms

# Record fields that are ticket attributes of the activity log, by their name there.
_LOGGED_FIELDS = {
    "status": "status",
    "priority": "priority",
    "assigned_to": "agent_id",
    "group_id": "group_id",
    "category": "category",
    "channel": "channel",
    "customer_id": "customer_id",
    "title": "subject",
}
# Record fields whose changes are listed in the history (besides the logged ones).
_HISTORY_FIELDS = (
    "description",
    "severity",
    "subcategory",
    "service_affected",
    "contact",
    "location",
    "metadata",
    "custom_fields",
    "estimated_resolution",
    "tags",
)
_CHANGE_TYPE = {
    "status": EventType.STATUS_CHANGED,
    "priority": EventType.PRIORITY_CHANGED,
    "assigned_to": EventType.ASSIGNED,
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: ``type`` agent, customer, system (rules, the SLA engine) or bot."""

    type: str
    id: str | None = None
    name: str | None = None


class EntryMaker:
    """History entries of one command: one instant, ids that sort in the order they were made (the
    activity log orders events of one instant by id)."""

    def __init__(self, ticket_id: str, at: datetime, actor: Actor) -> None:
        self.ticket_id = ticket_id
        self.at = at
        self.actor = actor
        self.entries: list[HistoryEntry] = []
        self._stem = f"tm{to_ms(at):013d}{secrets.token_hex(4)}"

    def add(
        self,
        kind: str,
        details: dict[str, Any],
        event: dict[str, Any] | None = None,
        *,
        actor: Actor | None = None,
    ) -> HistoryEntry:
        who = actor or self.actor
        event_id = f"{self._stem}{len(self.entries):03d}"
        if event is not None:
            event = {
                "event_id": event_id,
                "ticket_id": self.ticket_id,
                "at": format_timestamp(self.at),
                "actor_type": who.type,
                "actor_id": who.id,
                **event,
            }
        entry = HistoryEntry(event_id, self.ticket_id, self.at, kind, who.type, who.id, details, event)
        self.entries.append(entry)
        return entry


def _value(value: Any) -> Any:
    """A field value as history and the activity log show it."""
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def creation(maker: EntryMaker, record: TicketRecord) -> None:
    """The ``created`` event carries the ticket's initial attributes.  Its actor is the customer
    who asks (METRICS.md: an agent's first message on a ticket the agent created is the request,
    not a reply); who entered it through the API is in the details."""
    attributes = {name: getattr(record, field) for field, name in _LOGGED_FIELDS.items()}
    via = {"type": maker.actor.type, "id": maker.actor.id}
    maker.add(
        "created",
        {"number": record.number, "title": record.title, "status": record.status, "entered_by": via},
        {"type": EventType.CREATED.value, **attributes, "tags": list(record.tags)},
        actor=Actor("customer", record.customer_id),
    )


def field_changes(maker: EntryMaker, before: TicketRecord, after: TicketRecord) -> None:
    """One entry per changed field, in a fixed order; logged fields carry their event."""
    for field, attribute in _LOGGED_FIELDS.items():
        old, new = getattr(before, field), getattr(after, field)
        if old == new:
            continue
        details = {"field": field, "from": _value(old), "to": _value(new)}
        kind = _CHANGE_TYPE.get(field, EventType.FIELD_CHANGED)
        event: dict[str, Any] = {"type": kind.value, "from": old, "to": new, attribute: new}
        if kind is EventType.FIELD_CHANGED:
            event["field"] = attribute
        maker.add(kind.value, details, event)
    for field in _HISTORY_FIELDS:
        old, new = getattr(before, field), getattr(after, field)
        if old != new:
            maker.add("field_changed", {"field": field, "from": _value(old), "to": _value(new)})


def message(maker: EntryMaker, kind: EventType, details: dict[str, Any], actor: Actor) -> None:
    """A reply, customer message or internal note."""
    maker.add(kind.value, details, {"type": kind.value}, actor=actor)


def customer_plan(maker: EntryMaker, plan: str) -> None:
    """The customer's plan at creation, which SLA policies may match on (domain/sla.py)."""
    maker.add(
        "field_changed",
        {"field": "customer_plan", "to": plan},
        {"type": EventType.FIELD_CHANGED.value, "field": "customer_plan", "to": plan},
        actor=Actor("system"),
    )
