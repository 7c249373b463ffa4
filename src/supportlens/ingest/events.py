"""Validation of ``ticket_events`` rows (METRICS.md canonical ticket event): raw JSON value in,
``TicketEvent`` or rejection out.  Same conventions as ``tickets.py``: every rejection names the
column at fault."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from supportlens.domain.events import CHANGED_ATTRIBUTE, TICKET_ATTRIBUTES, ActorType, EventType, TicketEvent
from supportlens.domain.models import SATISFACTION_MAX, SATISFACTION_MIN, normalize_label, normalize_priority
from supportlens.ingest.tickets import (
    Invalid,
    Rejection,
    identifier,
    label,
    optional_text,
    tag_list,
    timestamp,
)
from supportlens.store.schema import TICKET_EVENTS

_TYPES = ", ".join(t.value for t in EventType)
_ACTORS = ", ".join(a.value for a in ActorType)
_LABELS = frozenset({"category", "status", "channel"})


def _choice(
    row: dict[str, Any], column: str, allowed: type[EventType] | type[ActorType], *, required: bool
) -> Any:
    value = row.get(column)
    if value is None:
        if required:
            raise Invalid(column, "is required")
        return None
    folded = normalize_label(value) if isinstance(value, str) else None
    try:
        return allowed(folded or "")
    except ValueError:
        names = _TYPES if allowed is EventType else _ACTORS
        raise Invalid(column, f"must be one of {names}; got {value!r}") from None


def _value_text(row: dict[str, Any], column: str) -> str | None:
    """``from`` / ``to``: any JSON value, kept as text (objects and lists as compact JSON)."""
    value = row.get(column)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _attribute(name: str, value: str | None) -> str | None:
    if name == "priority":
        return normalize_priority(value)
    if name in _LABELS:
        return normalize_label(value)
    if value is None:
        return None
    return value.strip() or None


def validate_event(value: Any) -> TicketEvent | Rejection:
    if not isinstance(value, dict):
        return Rejection("", f"expected a JSON object, got {type(value).__name__}")
    try:
        kind: EventType = _choice(value, "type", EventType, required=True)
        attributes: dict[str, str | None] = {}
        for name in TICKET_ATTRIBUTES:
            if name in ("customer_id", "agent_id", "group_id"):
                attributes[name] = identifier(value, name)
            elif name == "subject":
                attributes[name] = optional_text(value, name)
            elif name == "priority":
                attributes[name] = normalize_priority(optional_text(value, name))
            else:
                attributes[name] = label(value, name)
        field = optional_text(value, "field")
        to_value = _value_text(value, "to")
        changed = field if kind is EventType.FIELD_CHANGED else CHANGED_ATTRIBUTE.get(kind)
        if kind is EventType.FIELD_CHANGED and not field:
            raise Invalid("field", "is required for field_changed events")
        needs_value = kind in (EventType.STATUS_CHANGED, EventType.PRIORITY_CHANGED)
        if needs_value and to_value is None and changed is not None and attributes.get(changed) is None:
            raise Invalid("to", f"is required for {kind.value} events (the new {changed})")
        if changed in TICKET_ATTRIBUTES and to_value is not None:
            attributes[changed] = _attribute(changed, to_value)
        score = _score(value, required=kind is EventType.RATED)
        tags = tag_list(value, "tags")
        return TicketEvent(
            event_id=_required_id(value, "event_id"),
            ticket_id=_required_id(value, "ticket_id"),
            at=_required_time(value, "at"),
            type=kind,
            actor_type=_choice(value, "actor_type", ActorType, required=False),
            actor_id=identifier(value, "actor_id"),
            field=field,
            from_value=_value_text(value, "from"),
            to_value=to_value,
            score=score,
            tags=tuple(tags) if tags else None,
            **attributes,
        )
    except Invalid as exc:
        return exc.rejection


def _required_id(row: dict[str, Any], column: str) -> str:
    found = identifier(row, column, required=True)
    assert found is not None
    return found


def _required_time(row: dict[str, Any], column: str) -> datetime:
    found = timestamp(row, column, required=True)
    assert found is not None
    return found


def _score(row: dict[str, Any], *, required: bool) -> int | None:
    value = row.get("score")
    if value is None:
        if required:
            raise Invalid("score", "is required for rated events")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("score", f"expected a whole number, got {type(value).__name__}")
    if not SATISFACTION_MIN <= value <= SATISFACTION_MAX:
        raise Invalid("score", f"must be between {SATISFACTION_MIN} and {SATISFACTION_MAX}")
    return value


def events_table(
    workspace_id: str,
    accepted: list[tuple[int, TicketEvent]],
    first_sequence: int,
    received_at: datetime,
    source: str,
) -> pa.Table:
    """Accepted events stamped for the activity log (TICKET_EVENTS schema), in arrival order."""
    accepted = sorted(accepted, key=lambda item: item[0])
    events = [event for _, event in accepted]
    columns: dict[str, list[Any]] = {"tags": [list(event.tags) if event.tags else [] for event in events]}
    for name in _EVENT_FIELDS:
        # One comprehension per column (enum members are str: Arrow stores their values).
        attribute = "at" if name == "occurred_at" else name
        columns[name] = [getattr(event, attribute) for event in events]
    schema = pa.schema([_EVENTS_SCHEMA.field(name) for name in columns])
    fields = pa.Table.from_pydict(columns, schema=schema)
    # A request's rows are numbered by position, rejected ones included (they are quarantined).
    sequences = [first_sequence + position for position, _ in accepted]
    return stamped_events(workspace_id, fields, sequences, received_at, source)


# What an event says, as opposed to how it was received (the stamp).
_STAMP = ("workspace_id", "seq", "received_at", "source")
_EVENTS_SCHEMA = TICKET_EVENTS.arrow_schema()
_EVENT_FIELDS = tuple(name for name in TICKET_EVENTS.column_names if name not in (*_STAMP, "tags"))


def stamped_events(
    workspace_id: str, events: pa.Table, sequences: Sequence[int], received_at: datetime, source: str
) -> pa.Table:
    """``events`` (some of TICKET_EVENTS' event columns, the others null; in arrival order) stamped
    for the activity log, with their arrival numbers ``sequences``."""
    count = events.num_rows
    stamp = {
        "workspace_id": pa.array([workspace_id] * count, pa.string()),
        "seq": pa.array(sequences, pa.uint64()),
        "received_at": pa.array([received_at] * count, _EVENTS_SCHEMA.field("received_at").type),
        "source": pa.array([source] * count, pa.string()),
    }
    columns = []
    for schema_field in _EVENTS_SCHEMA:
        name = schema_field.name
        if name in stamp:
            column = stamp[name]
        elif name in events.column_names:
            column = events.column(name)
        elif name == "tags":
            column = pa.array([[]] * count, schema_field.type)
        else:
            column = pa.nulls(count, schema_field.type)
        # The log keeps instants to the millisecond: finer ones are truncated, as from Python values.
        columns.append(column.cast(schema_field.type, safe=not pa.types.is_timestamp(schema_field.type)))
    return pa.Table.from_arrays(columns, schema=_EVENTS_SCHEMA)
