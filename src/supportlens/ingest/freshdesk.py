"""Freshdesk ticket-activities export (the scheduled daily JSON file) → canonical ticket events.

Pure: bytes in, dataclasses out.  Every activity of ``activities_data`` is accounted for: it yields
events (``imported``), carries nothing analytics uses (``ignored``), or is rejected with the field
at fault (``rejected``), so ``len(activities_data) == imported + ignored + len(rejected)``.

Mapping rules:

* ``performed_at`` (``DD-MM-YYYY HH:MM:SS +ZZZZ``, day first) → aware UTC ``at``.  The metadata
  ``start_at`` / ``end_at`` use the same format.  ``ticket_id`` and ``performer_id`` (ints or
  strings) → strings.
* Performer: ``performer_type`` ``"user"`` is a person: the *customer* when ``performer_id`` is a
  requester of the ticket, else an *agent*.  A ticket's requesters are the ``requester`` /
  ``requester_id`` values seen for it in any activity of the export (a first pass collects them),
  plus those passed in ``requesters`` (from earlier daily files: chain ``result.requesters``).
  With no known requester a user counts as an agent, so a customer note in a file that never names
  the requester reads as an agent note.  Any other ``performer_type`` (``"system"``,
  ``"automation"``...) → ``system``.  Every event carries the performer as actor.
* ``note {id, type}`` → one event, id ``freshdesk:note:{id}``, ``to`` = the note kind's name.  By
  the customer: ``customer_message`` (any type).  By an agent: 0 Reply, 4 Public note, 5 Phone note
  → ``reply``; 3 Private note → ``internal_note``; 1 Forward, 2 Reply to forward, 6 Broadcast note
  → ``internal_note`` too (they go to third parties or other tickets, not to the requester).  By
  the system: 0/4/5 → ``reply`` with actor ``system`` (an auto-reply: never a human reply), others
  ``internal_note``.  Any other type is rejected.
* ``new_ticket: true`` → ``created``, carrying the initial ``status``, ``priority``, ``source``
  (channel), ``agent_id``, ``group`` / ``group_id``, ``requester`` / ``requester_id`` (customer)
  and ``category`` of the same activity instead of separate change events.  A ticket created
  before the export's window simply has no ``created`` event in this file.
* Properties, one event per key (a full property set yields an event for every key, changed or
  not: consumers take the latest value, so an unchanged one changes nothing):
  ``status`` (the name, normalized: custom names kept) → ``status_changed``;
  ``priority`` 1-4 (or its name) → low / medium / high / urgent ``priority_changed``;
  ``source`` → ``field_changed`` ``channel`` (1 email, 2 portal, 3 phone, 4 forum, 5 twitter,
  6 facebook, 7 chat, 8 mobihelp, 9 feedback_widget, 10 outbound_email, 11 ecommerce, 12 bot,
  other codes ``source_{n}``: the list is open-ended);
  ``agent_id`` → ``assigned`` (null: unassigned, ``to`` null);
  ``group`` / ``group_id`` → ``field_changed`` ``group_id``;
  ``requester`` / ``requester_id`` → ``field_changed`` ``customer_id``;
  ``category`` → ``field_changed`` ``category``;
  ``added_tags`` / ``removed_tags`` → ``field_changed`` ``tags`` with the added tags as JSON text
  in ``to`` or the removed ones in ``from`` (the export has no full tag set, so ``tags`` stays
  null); ``deleted: true`` → ``deleted``.
  Any other key (custom fields such as ``issue_type``, ``deleted: false``, ``spam: true``) →
  ``field_changed`` with ``field`` = the key and ``to`` = the value as text (booleans
  ``true``/``false``, objects and arrays as compact JSON).
* Ignored (no analytics meaning): ``send_email``, ``added_watcher``, ``removed_watcher``,
  ``automation`` (the rule's name; its changes come as their own keys), ``thank_you_note``,
  ``spam: false``, ``new_ticket: false``.  An activity made only of these is counted as ignored.
* An activity is all or nothing: one bad key rejects it whole.

Event ids are deterministic, so importing the same or overlapping exports again gives the same ids:
``freshdesk:note:{note_id}`` for notes (Freshdesk note ids are unique per account), and
``freshdesk:{ticket_id}:{epoch ms}:{key}:{hash}`` for everything else, where ``hash`` is 64 bits of
BLAKE2b over (ticket id, epoch ms, key, performer type, performer id, raw value).  The hash covers
every part, so two activities differing in anything (two status changes in the same second by
different people or to different values, a ``:`` inside a ticket id or key) never share an id; the
readable prefix is for people.  Conversely such an event is a function of these parts, so two
events share an id only when they are equal (the same change exported twice, or two full property
sets repeating an unchanged value in the same second): re-importing never loses information.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import orjson

from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.models import normalize_label, normalize_priority
from supportlens.ingest.tickets import MAX_ID_LENGTH, MAX_TEXT_LENGTH, Rejection
from supportlens.ingest.timestamps import TimestampError, to_utc

__all__ = [
    "FreshdeskExport",
    "FreshdeskFormatError",
    "RejectedActivity",
    "events_to_rows",
    "parse_export",
    "parse_freshdesk_timestamp",
]

PRIORITY_NAMES: Final[Mapping[int, str]] = {1: "low", 2: "medium", 3: "high", 4: "urgent"}
_PRIORITY_LEVELS: Final = frozenset(PRIORITY_NAMES.values())
SOURCE_CHANNELS: Final[Mapping[int, str]] = {
    1: "email",
    2: "portal",
    3: "phone",
    4: "forum",
    5: "twitter",
    6: "facebook",
    7: "chat",
    8: "mobihelp",
    9: "feedback_widget",
    10: "outbound_email",
    11: "ecommerce",
    12: "bot",
}
NOTE_KINDS: Final[Mapping[int, str]] = {
    0: "reply",
    1: "forward",
    2: "reply_to_forward",
    3: "private_note",
    4: "public_note",
    5: "phone_note",
    6: "broadcast_note",
}
_TO_REQUESTER_NOTES: Final = frozenset({0, 4, 5})
_IGNORED_KEYS: Final = frozenset(
    {"send_email", "added_watcher", "removed_watcher", "automation", "thank_you_note"}
)
_REQUESTER_KEYS: Final = ("requester", "requester_id")
# Keys a ``new_ticket`` activity folds into its ``created`` event, and the attribute each sets.
_CREATED_ATTRIBUTES: Final[Mapping[str, str]] = {
    "status": "status",
    "priority": "priority",
    "source": "channel",
    "agent_id": "agent_id",
    "group": "group_id",
    "group_id": "group_id",
    "requester": "customer_id",
    "requester_id": "customer_id",
    "category": "category",
}
_TIMESTAMP_FORMAT: Final = "%d-%m-%Y %H:%M:%S %z"
_MIN: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX: Final = datetime(2200, 1, 1, tzinfo=UTC)


class FreshdeskFormatError(ValueError):
    """The file as a whole is not a Freshdesk activities export; the message says why."""


@dataclass(frozen=True, slots=True)
class RejectedActivity:
    """One activity that could not be read: its index in ``activities_data``, the activity as
    compact JSON (for the quarantine) and why."""

    index: int
    raw: str
    rejection: Rejection


@dataclass(frozen=True, slots=True)
class FreshdeskExport:
    """One export file, read.  ``activities_count`` is what the metadata declares (``None`` when
    absent); ``requesters`` maps each ticket id to its known requesters, including the ones passed
    in, for the next day's file."""

    start_at: datetime | None
    end_at: datetime | None
    activities_count: int | None
    events: list[TicketEvent]
    imported: int  # activities that yielded events
    ignored: int  # activities with nothing analytics uses
    rejected: list[RejectedActivity]
    requesters: Mapping[str, frozenset[str]]


class _Invalid(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(column, message)


def parse_freshdesk_timestamp(value: object) -> datetime:
    """``DD-MM-YYYY HH:MM:SS +ZZZZ`` (``+05:30`` also accepted) → aware UTC datetime."""
    if not isinstance(value, str):
        raise TimestampError(f"expected a 'DD-MM-YYYY HH:MM:SS +ZZZZ' string, got {type(value).__name__}")
    parsed: datetime | None = None
    if len(value) == 25 and value[2] == "-" and value[5] == "-" and value[10] == " " and value[19] == " ":
        # The usual spelling, rearranged for the C ISO parser (much faster than strptime).
        try:
            parsed = datetime.fromisoformat(
                f"{value[6:10]}-{value[3:5]}-{value[:2]}T{value[11:19]}{value[20:]}"
            )
        except ValueError:
            parsed = None
    if parsed is None:
        try:
            parsed = datetime.strptime(value.strip(), _TIMESTAMP_FORMAT)
        except ValueError:
            raise TimestampError(f"{value!r} is not a 'DD-MM-YYYY HH:MM:SS +ZZZZ' timestamp") from None
    parsed = to_utc(parsed)
    if not _MIN <= parsed < _MAX:
        raise TimestampError(f"{value!r} is outside 1970-01-01 .. 2200-01-01")
    return parsed


def _identifier(value: object, column: str) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Invalid(column, f"expected a string or integer id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise _Invalid(column, "must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise _Invalid(column, f"longer than {MAX_ID_LENGTH} characters")
    return text


def _optional_identifier(value: object, column: str) -> str | None:
    return None if value is None else _identifier(value, column)


def _label(value: object, column: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(column, f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_LENGTH:
        raise _Invalid(column, f"longer than {MAX_TEXT_LENGTH} characters")
    label = normalize_label(value)
    if label is None:
        raise _Invalid(column, "must not be empty")
    return label


def _code(value: object) -> int | None:
    """An integer code given as a JSON number or a string of digits; ``None`` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return None


def _priority(value: object, column: str) -> str:
    code = _code(value)
    name = PRIORITY_NAMES.get(code) if code is not None else normalize_priority(_label(value, column))
    if name is None or name not in _PRIORITY_LEVELS:
        raise _Invalid(column, f"{value!r} is not a priority (1 low, 2 medium, 3 high, 4 urgent)")
    return name


def _channel(value: object, column: str) -> str:
    code = _code(value)
    if code is None:
        return _label(value, column)
    if code < 1:
        raise _Invalid(column, f"{value!r} is not a source code")
    return SOURCE_CHANNELS.get(code, f"source_{code}")


def _text(value: object, column: str) -> str | None:
    """Any JSON value as text: strings as they are, booleans ``true``/``false``, the rest JSON."""
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) > MAX_TEXT_LENGTH:
        raise _Invalid(column, f"longer than {MAX_TEXT_LENGTH} characters")
    return text


class _Change(NamedTuple):
    """What one property key means: the event type, the ``field`` of a ``field_changed``, the new
    value and the ticket attribute it sets (``None`` when it sets none)."""

    type: EventType
    field: str | None
    to_value: str | None
    attribute: str | None
    from_value: str | None = None


def _custom(key: str, value: object) -> _Change:
    if len(key) > MAX_ID_LENGTH:
        raise _Invalid("activity", f"has a field name longer than {MAX_ID_LENGTH} characters")
    return _Change(EventType.FIELD_CHANGED, key, _text(value, f"activity.{key}"), None)


def _status_change(value: object, column: str) -> _Change:
    return _Change(EventType.STATUS_CHANGED, None, _label(value, column), "status")


def _priority_change(value: object, column: str) -> _Change:
    return _Change(EventType.PRIORITY_CHANGED, None, _priority(value, column), "priority")


def _source_change(value: object, column: str) -> _Change:
    return _Change(EventType.FIELD_CHANGED, "channel", _channel(value, column), "channel")


def _agent_change(value: object, column: str) -> _Change:
    return _Change(EventType.ASSIGNED, None, _optional_identifier(value, column), "agent_id")


def _group_change(value: object, column: str) -> _Change:
    return _Change(EventType.FIELD_CHANGED, "group_id", _optional_identifier(value, column), "group_id")


def _requester_change(value: object, column: str) -> _Change:
    return _Change(EventType.FIELD_CHANGED, "customer_id", _optional_identifier(value, column), "customer_id")


def _category_change(value: object, column: str) -> _Change:
    category = None if value is None else _label(value, column)
    return _Change(EventType.FIELD_CHANGED, "category", category, "category")


def _added_tags(value: object, column: str) -> _Change:
    return _Change(EventType.FIELD_CHANGED, "tags", _text(value, column), None)


def _removed_tags(value: object, column: str) -> _Change:
    return _Change(EventType.FIELD_CHANGED, "tags", None, None, from_value=_text(value, column))


def _deleted(value: object, column: str) -> _Change:
    return _Change(EventType.DELETED, None, None, None) if value is True else _custom("deleted", value)


def _spam(value: object, column: str) -> _Change | None:
    return None if value is False else _custom("spam", value)


def _ignored(value: object, column: str) -> None:
    return None


# What each known property key means (the rest are custom fields).
_CHANGES: Final[Mapping[str, Callable[[object, str], _Change | None]]] = {
    "status": _status_change,
    "priority": _priority_change,
    "source": _source_change,
    "agent_id": _agent_change,
    "group": _group_change,
    "group_id": _group_change,
    "requester": _requester_change,
    "requester_id": _requester_change,
    "category": _category_change,
    "added_tags": _added_tags,
    "removed_tags": _removed_tags,
    "deleted": _deleted,
    "spam": _spam,
    **dict.fromkeys(_IGNORED_KEYS, _ignored),
}


def _change(key: str, value: object) -> _Change | None:
    """The change one property key makes, or ``None`` when it carries no analytics meaning."""
    known = _CHANGES.get(key)
    return _custom(key, value) if known is None else known(value, f"activity.{key}")


def _event_id(ticket_id: str, ms: int, key: str, performer: tuple[object, str | None], value: object) -> str:
    material = orjson.dumps(
        [ticket_id, ms, key, performer[0], performer[1], value], option=orjson.OPT_SORT_KEYS
    )
    return f"freshdesk:{ticket_id}:{ms}:{key}:{hashlib.blake2b(material, digest_size=8).hexdigest()}"


class _Reader:
    """One activity at a time, with the requesters known for the whole export."""

    def __init__(self, requesters: Mapping[str, frozenset[str]]) -> None:
        self.requesters = requesters

    def read(self, activity: object) -> list[TicketEvent]:
        if not isinstance(activity, dict):
            raise _Invalid("", f"expected a JSON object, got {type(activity).__name__}")
        raw_at = activity.get("performed_at")
        if raw_at is None:
            raise _Invalid("performed_at", "is required")
        try:
            at = parse_freshdesk_timestamp(raw_at)
        except TimestampError as exc:
            raise _Invalid("performed_at", str(exc)) from None
        if activity.get("ticket_id") is None:
            raise _Invalid("ticket_id", "is required")
        ticket_id = _identifier(activity["ticket_id"], "ticket_id")
        performer_type = activity.get("performer_type")
        if performer_type is None:
            raise _Invalid("performer_type", "is required")
        if not isinstance(performer_type, str):
            raise _Invalid("performer_type", f"expected a string, got {type(performer_type).__name__}")
        performer_id = _optional_identifier(activity.get("performer_id"), "performer_id")
        if performer_type.strip().lower() == "user":
            if performer_id is None:
                raise _Invalid("performer_id", "is required when performer_type is 'user'")
            is_customer = performer_id in self.requesters.get(ticket_id, ())
            actor = ActorType.CUSTOMER if is_customer else ActorType.AGENT
        else:
            actor = ActorType.SYSTEM
        body = activity.get("activity")
        if not isinstance(body, dict):
            got = "nothing" if body is None else type(body).__name__
            raise _Invalid("activity", f"expected a JSON object, got {got}")

        ms = int(at.timestamp()) * 1000
        performer = (performer_type, performer_id)
        created = body.get("new_ticket")
        if created is not None and not isinstance(created, bool):
            raise _Invalid("activity.new_ticket", f"expected a boolean, got {type(created).__name__}")
        initial: dict[str, str | None] = {}
        events: list[TicketEvent] = []
        for key, value in body.items():
            if key == "new_ticket":
                continue
            if key == "note":
                events.append(self._note(value, ticket_id, at, actor, performer_id))
                continue
            change = _change(key, value)
            if change is None:
                continue
            if created and key in _CREATED_ATTRIBUTES:
                initial[_CREATED_ATTRIBUTES[key]] = change.to_value
                continue
            attribute = change.attribute
            events.append(
                _event(
                    _event_id(ticket_id, ms, key, performer, value),
                    ticket_id,
                    at,
                    change.type,
                    actor,
                    performer_id,
                    {attribute: change.to_value} if attribute else {},
                    field=change.field,
                    from_value=change.from_value,
                    to_value=change.to_value,
                )
            )
        if created:
            # The initial attributes are part of the creation: two different creations at one
            # instant must not share an id.
            event_id = _event_id(ticket_id, ms, "new_ticket", performer, sorted(initial.items()))
            events.insert(0, _event(event_id, ticket_id, at, EventType.CREATED, actor, performer_id, initial))
        return events

    @staticmethod
    def _note(
        value: object, ticket_id: str, at: datetime, actor: ActorType, performer_id: str | None
    ) -> TicketEvent:
        if not isinstance(value, dict):
            raise _Invalid("activity.note", f"expected a JSON object, got {type(value).__name__}")
        if value.get("id") is None:
            raise _Invalid("activity.note.id", "is required")
        note_id = _identifier(value["id"], "activity.note.id")
        note_type = value.get("type")
        kind = NOTE_KINDS.get(note_type) if type(note_type) is int else None
        if kind is None:
            raise _Invalid("activity.note.type", f"{note_type!r} is not a note type (0-6)")
        if actor is ActorType.CUSTOMER:
            event_type = EventType.CUSTOMER_MESSAGE
        elif note_type in _TO_REQUESTER_NOTES:
            event_type = EventType.REPLY
        else:
            event_type = EventType.INTERNAL_NOTE
        return _event(
            f"freshdesk:note:{note_id}", ticket_id, at, event_type, actor, performer_id, {}, to_value=kind
        )


def _event(
    event_id: str,
    ticket_id: str,
    at: datetime,
    event_type: EventType,
    actor: ActorType,
    actor_id: str | None,
    attributes: Mapping[str, str | None],
    *,
    field: str | None = None,
    from_value: str | None = None,
    to_value: str | None = None,
) -> TicketEvent:
    return TicketEvent(
        event_id=event_id,
        ticket_id=ticket_id,
        at=at,
        type=event_type,
        actor_type=actor,
        actor_id=actor_id,
        field=field,
        from_value=from_value,
        to_value=to_value,
        customer_id=attributes.get("customer_id"),
        agent_id=attributes.get("agent_id"),
        group_id=attributes.get("group_id"),
        category=attributes.get("category"),
        priority=attributes.get("priority"),
        status=attributes.get("status"),
        channel=attributes.get("channel"),
    )


def _metadata_timestamp(metadata: Mapping[str, Any], key: str) -> datetime | None:
    value = metadata.get(key)
    if value is None:
        return None
    try:
        return parse_freshdesk_timestamp(value)
    except TimestampError as exc:
        raise FreshdeskFormatError(f"metadata.{key}: {exc}") from None


def _requesters(activities: list[Any], known: Mapping[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """First pass: every requester named for each ticket anywhere in the export."""
    found: dict[str, set[str]] = {}
    for activity in activities:
        if not isinstance(activity, dict) or not isinstance(body := activity.get("activity"), dict):
            continue
        for key in _REQUESTER_KEYS:
            if body.get(key) is None:
                continue
            try:
                ticket_id = _identifier(activity.get("ticket_id"), "ticket_id")
                requester = _identifier(body[key], key)
            except _Invalid:
                continue
            found.setdefault(ticket_id, set()).add(requester)
    merged = dict(known)
    for ticket_id, people in found.items():
        merged[ticket_id] = merged.get(ticket_id, frozenset()) | people
    return merged


def parse_export(data: bytes, *, requesters: Mapping[str, frozenset[str]] | None = None) -> FreshdeskExport:
    """Read one export file.  ``requesters`` (ticket id → requester ids, e.g. the previous file's
    ``result.requesters``) tells customers from agents on tickets whose requester this file never
    names.  Raises :class:`FreshdeskFormatError` when the file as a whole is unusable."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FreshdeskFormatError(f"not a JSON document: {exc}") from None
    if not isinstance(document, dict):
        raise FreshdeskFormatError(f"expected a JSON object, got {type(document).__name__}")
    activities = document.get("activities_data")
    if not isinstance(activities, list):
        got = "nothing" if activities is None else type(activities).__name__
        raise FreshdeskFormatError(f"'activities_data' must be an array of activities, got {got}")
    metadata = document.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise FreshdeskFormatError(f"'metadata' must be an object, got {type(metadata).__name__}")
    count = metadata.get("activities_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise FreshdeskFormatError(f"metadata.activities_count must be a non-negative integer, got {count!r}")

    known = _requesters(activities, requesters or {})
    reader = _Reader(known)
    events: list[TicketEvent] = []
    rejected: list[RejectedActivity] = []
    imported = ignored = 0
    for index, activity in enumerate(activities):
        try:
            produced = reader.read(activity)
        except _Invalid as invalid:
            rejected.append(RejectedActivity(index, orjson.dumps(activity).decode(), invalid.rejection))
            continue
        if produced:
            events.extend(produced)
            imported += 1
        else:
            ignored += 1
    return FreshdeskExport(
        start_at=_metadata_timestamp(metadata, "start_at"),
        end_at=_metadata_timestamp(metadata, "end_at"),
        activities_count=count,
        events=events,
        imported=imported,
        ignored=ignored,
        rejected=rejected,
        requesters=known,
    )


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def events_to_rows(events: Iterable[TicketEvent]) -> list[dict[str, object]]:
    """Events as ``ticket_events`` Events API JSON objects (``None`` values left out)."""
    rows: list[dict[str, object]] = []
    for event in events:
        row: dict[str, object] = {
            "event_id": event.event_id,
            "ticket_id": event.ticket_id,
            "at": _iso_ms(event.at),
            "type": event.type.value,
            "actor_type": None if event.actor_type is None else event.actor_type.value,
            "actor_id": event.actor_id,
            "field": event.field,
            "from": event.from_value,
            "to": event.to_value,
            "score": event.score,
            "customer_id": event.customer_id,
            "agent_id": event.agent_id,
            "group_id": event.group_id,
            "category": event.category,
            "priority": event.priority,
            "status": event.status,
            "channel": event.channel,
            "subject": event.subject,
            "tags": None if event.tags is None else list(event.tags),
        }
        rows.append({key: value for key, value in row.items() if value is not None})
    return rows
