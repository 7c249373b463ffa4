"""Freshdesk (API v2) as canonical tickets and events.  The API's shapes, paging and limits are those
of /work/shared/reference/freshdesk_v2.md; where it is unsure, so is this module, and it says so.

Auth: HTTP Basic with the API key and the password ``X`` (credential ``api_key``).

**Tickets**: ``GET /api/v2/tickets?updated_since=T&order_by=updated_at&order_type=asc&include=stats``,
``per_page`` at most 100.  ``updated_since`` is always sent: without it Freshdesk returns only the
tickets created in the last 30 days.  After each page the window moves forward: the next request
asks again from the page's last ``updated_at``, less one second (Freshdesk times have whole seconds,
and whether ``updated_since`` is inclusive is not documented: re-reading the last second is
harmless, the records are idempotent).  ``Link: rel="next"`` is followed only while moving the
window would not advance it (more than a page of tickets updated within one second).  Two reasons
not to walk the page numbers of one window: a list sorted by a time that changes under us shifts
whenever a ticket read earlier is updated during the sync, and every shift skips a ticket for good;
and Freshdesk may refuse pages beyond the 300th.  A window that still needs a page past that cap
(tens of thousands of tickets updated in one second) fails the run with a message saying so.

Each ticket gives a ``support_tickets`` row (its current state: numeric status and priority codes
mapped to names, ``source`` to a channel, ``stats.first_responded_at`` as first response, and
``stats.resolved_at``, else ``stats.closed_at``, as resolution) and a ``created`` event (the
requester's, except on phone and outbound-email tickets, which agents create).

**Conversations** (option ``conversations``, default on): ``GET /api/v2/tickets/{id}/conversations``
(Link paging) for every ticket read.  ``private: true`` is an ``internal_note``; ``incoming: true``
(from the requester) a ``customer_message``; anything else is a ``reply``, by an agent when its
``user_id`` is one of the account's agents (``GET /api/v2/agents``), else by the system (an
automation's message, never a human reply).  Event ids are ``freshdesk:note:<id>``, as the
activities export's parser names its notes: conversations are taken to be the notes the export
numbers (the reference does not say), so a note read both ways is one event.

**Status history**: with the activities export (below) it comes from the export.  Without it, from
what ``stats`` tells: ``open`` at creation (Freshdesk's default for a new ticket), ``reopened_at``
(open), ``resolved_at``, ``closed_at`` and the current status at ``status_updated_at``.  Each is
an event whose id is derived from its ticket, time and status, so syncs accumulate the changes they
see; a status held between two syncs (e.g. a short pending spell) is not seen.  Whether Freshdesk
moves ``resolved_at`` on every resolution is not documented (taken as the latest one).

With neither conversations nor the export, tickets carry no events: snapshot-only tickets, whose
first response and resolution METRICS.md reads from their timestamps.

**Ticket activities export** (option ``activities_export``, default off; needs an admin key and the
scheduled export enabled): ``GET /api/v2/export/ticket_activities?created_at=YYYY-MM-DD`` for each
day (UTC dates) since the last one read, then the file at the signed URL it gives, fetched without
our credentials (it is another host).  404 means none for that day (a past day) or not ready yet
(today: the next sync asks again).  The file is read by the seed 003 importer's parser
(``ingest/freshdesk.py``); a ``user`` who is not one of the account's agents (a deleted agent
too) counts as the ticket's customer, and group names are translated to the ids the tickets API gives (``GET
/api/v2/groups``) so that both sources name a group alike.

Options (all optional): ``status_map`` / ``priority_map`` (code → name, over the documented 2 open,
3 pending, 4 resolved, 5 closed and 1 low .. 4 urgent; custom statuses, ids 6 and up, are
``status_<id>`` unless mapped), ``category_field`` (``type``, the default, or a custom field such
as ``cf_category``), ``conversations``, ``activities_export``, ``lookback_minutes`` (default 10:
each sync starts that much before where the last one ended, for late updates), ``per_page`` (of
the tickets list).

The cursor is JSON: ``{"tickets": <next window start>, "activities": <next export day>}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import httpx
import orjson

from supportlens.connectors.base import Connection, SourceAgent, SourcePage
from supportlens.connectors.engine import ConnectorKind
from supportlens.connectors.http import RateBudget, SourceClient, SourceError, next_link
from supportlens.connectors.options import flag, paging
from supportlens.ingest.freshdesk import (
    PRIORITY_NAMES,
    SOURCE_CHANNELS,
    FreshdeskFormatError,
    events_to_rows,
    parse_export,
)
from supportlens.ingest.service import FRESHDESK_QUARANTINE

__all__ = ["FRESHDESK", "FreshdeskConnector", "FreshdeskOptions"]

log = logging.getLogger(__name__)

KIND = "freshdesk"
# Growth, the smallest paid plan, allows 200 calls a minute per account (Pro 400, Enterprise 700);
# each include costs 2 more credits (a tickets page: 3) and other integrations share the limit.
BUDGET: Final = RateBudget(requests=150, per_seconds=60.0)
STATUS_NAMES: Final[Mapping[int, str]] = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
OPEN, RESOLVED, CLOSED = 2, 4, 5
# Sources whose tickets an agent creates (a logged call, an outbound e-mail), as the demo desk does.
AGENT_CREATED_SOURCES: Final = frozenset({3, 10})
MAX_PER_PAGE = 100
_TICKETS = "/api/v2/tickets"
_EXPORT = "/api/v2/export/ticket_activities"
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class FreshdeskOptions:
    status_map: Mapping[int, str]
    priority_map: Mapping[int, str]
    category_field: str = "type"
    conversations: bool = True
    activities_export: bool = False
    lookback: timedelta = timedelta(minutes=10)
    per_page: int = MAX_PER_PAGE

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> FreshdeskOptions:
        """The connection's options; ValueError naming the option at fault."""
        lookback, per_page = paging(options, lookback_minutes=10, max_per_page=MAX_PER_PAGE)
        category = options.get("category_field", "type")
        if not isinstance(category, str) or not category:
            raise ValueError("option category_field: expected a field name")
        return cls(
            status_map={**STATUS_NAMES, **_code_map(options, "status_map")},
            priority_map={**PRIORITY_NAMES, **_code_map(options, "priority_map")},
            category_field=category,
            conversations=flag(options, "conversations", default=True),
            activities_export=flag(options, "activities_export", default=False),
            lookback=lookback,
            per_page=per_page,
        )

    def status(self, code: object) -> str | None:
        return None if code is None else self.status_map.get(_code(code, "status"), f"status_{code}")

    def priority(self, code: object) -> str | None:
        return None if code is None else self.priority_map.get(_code(code, "priority"), f"priority_{code}")


def _code_map(options: Mapping[str, Any], name: str) -> dict[int, str]:
    value = options.get(name, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"option {name}: expected an object of code -> name")
    mapped: dict[int, str] = {}
    for code, label in value.items():
        if not str(code).isdigit() or not isinstance(label, str) or not label.strip():
            raise ValueError(f"option {name}: {code!r} -> {label!r} is not a numeric code -> name")
        mapped[int(code)] = label
    return mapped


def _code(value: object, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise SourceError(f"Freshdesk sent {field} {value!r}, not a numeric code")


def _id(value: object) -> str | None:
    return None if value is None else str(value)


def _channel(source: object) -> str | None:
    if source is None:
        return None
    code = _code(source, "source")
    return SOURCE_CHANNELS.get(code, f"source_{code}")  # the list of sources is open-ended


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Records: what one ticket or conversation becomes.
# ---------------------------------------------------------------------------------------------


def ticket_row(ticket: Mapping[str, Any], options: FreshdeskOptions) -> dict[str, Any]:
    """The ``support_tickets`` row of a ticket read with ``include=stats``."""
    stats = ticket.get("stats") or {}
    custom = ticket.get("custom_fields") or {}
    field = options.category_field
    return {
        "ticket_id": str(ticket["id"]),
        "customer_id": _id(ticket.get("requester_id")),
        "agent_id": _id(ticket.get("responder_id")),
        "group_id": _id(ticket.get("group_id")),
        "category": ticket.get(field) if field in ticket else custom.get(field),
        "priority": options.priority(ticket.get("priority")),
        "status": options.status(ticket.get("status")),
        "created_at": ticket.get("created_at"),
        "updated_at": ticket.get("updated_at"),
        "first_response_at": stats.get("first_responded_at"),
        "resolved_at": stats.get("resolved_at") or stats.get("closed_at"),
        "tags": ticket.get("tags") or [],
        "channel": _channel(ticket.get("source")),
        "subject": ticket.get("subject"),
    }


def ticket_events(ticket: Mapping[str, Any], options: FreshdeskOptions) -> list[dict[str, Any]]:
    """The ``created`` event, and without the activities export the status changes ``stats`` shows."""
    ticket_id = str(ticket["id"])
    requester = _id(ticket.get("requester_id"))
    by_agent = ticket.get("source") in AGENT_CREATED_SOURCES
    events: list[dict[str, Any]] = [
        {
            "event_id": f"freshdesk:{ticket_id}:created",
            "ticket_id": ticket_id,
            "at": ticket["created_at"],
            "type": "created",
            "actor_type": "agent" if by_agent else "customer",
            "actor_id": None if by_agent else requester,
            "customer_id": requester,
            "channel": _channel(ticket.get("source")),
            "status": None if options.activities_export else options.status(OPEN),
        }
    ]
    if options.activities_export:
        return events
    stats = ticket.get("stats") or {}
    changes = (
        (stats.get("reopened_at"), OPEN),
        (stats.get("resolved_at"), RESOLVED),
        (stats.get("closed_at"), CLOSED),
        (stats.get("status_updated_at"), ticket.get("status")),
    )
    for at, code in changes:
        if at is None or code is None:
            continue
        status = options.status(code)
        events.append(
            {
                "event_id": f"freshdesk:{ticket_id}:status:{_iso(_time(at))}:{code}",
                "ticket_id": ticket_id,
                "at": at,
                "type": "status_changed",
                "to": status,
                "status": status,
            }
        )
    return events


def conversation_event(conversation: Mapping[str, Any], agents: frozenset[str]) -> dict[str, Any]:
    """One conversation (a reply or a note) as an event."""
    user = _id(conversation.get("user_id"))
    if conversation.get("private"):
        kind, actor = "internal_note", "agent" if user in agents else "system"
    elif conversation.get("incoming"):
        kind, actor = "customer_message", "customer"
    else:
        kind, actor = "reply", "agent" if user in agents else "system"
    return {
        "event_id": f"freshdesk:note:{conversation['id']}",
        "ticket_id": str(conversation["ticket_id"]),
        "at": conversation["created_at"],
        "type": kind,
        "actor_type": actor,
        "actor_id": user,
    }


def _export_customers(document: Any, agents: frozenset[str]) -> dict[str, frozenset[str]]:
    """Per ticket, the users acting on it in an export who are not agents: its customers (the
    parser counts any other user as an agent)."""
    found: dict[str, set[str]] = {}
    activities = document.get("activities_data") if isinstance(document, dict) else None
    for activity in activities if isinstance(activities, list) else []:
        if not isinstance(activity, dict) or activity.get("performer_type") != "user":
            continue
        performer, ticket = _id(activity.get("performer_id")), _id(activity.get("ticket_id"))
        if performer is not None and ticket is not None and performer not in agents:
            found.setdefault(ticket, set()).add(performer)
    return {ticket: frozenset(people) for ticket, people in found.items()}


def _with_group_ids(row: dict[str, Any], group_ids: Mapping[str, str]) -> dict[str, Any]:
    """An export event with group names as the tickets API's group ids (unknown names kept)."""
    if "group_id" in row:
        row["group_id"] = group_ids.get(str(row["group_id"]), row["group_id"])
    if row.get("field") == "group_id" and "to" in row:
        row["to"] = group_ids.get(str(row["to"]), row["to"])
    return row


# ---------------------------------------------------------------------------------------------
# The connector: reading the API page by page.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cursor:
    tickets: datetime | None = None  # where the next ticket window starts
    activities: date | None = None  # the next export day to read

    def dump(self) -> str:
        return orjson.dumps(
            {
                "tickets": None if self.tickets is None else _iso(self.tickets),
                "activities": None if self.activities is None else self.activities.isoformat(),
            }
        ).decode()

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if text is None:
            return cls()
        value = orjson.loads(text)
        tickets, activities = value.get("tickets"), value.get("activities")
        return cls(
            None if tickets is None else _time(tickets),
            None if activities is None else date.fromisoformat(activities),
        )


class FreshdeskConnector:
    kind = KIND

    def __init__(self, connection: Connection, client: SourceClient) -> None:
        if not connection.credentials.get("api_key"):
            raise SourceError("a Freshdesk connection needs the credential 'api_key'")
        try:
            self._options = FreshdeskOptions.parse(connection.options)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        self._client = client

    def pages(self, cursor: str | None, *, start: datetime) -> Iterator[SourcePage]:
        resumed = _Cursor.load(cursor)
        people = self._agents()
        agents = frozenset(agent.id for agent in people)
        since = start if resumed.tickets is None else resumed.tickets - self._options.lookback
        position = resumed
        for page, after in self._ticket_pages(since, resumed, agents):
            page.agents, people = people, []  # the first page carries the account's agents
            position = after
            yield page
        if self._options.activities_export:
            day = start.astimezone(UTC).date() if position.activities is None else position.activities
            yield from self._export_pages(day, position, agents)

    def _all(self, path: str, params: Mapping[str, str | int]) -> Iterator[Any]:
        """Every item of a Link-paged list."""
        response = self._client.request("GET", path, params=params)
        while True:
            yield from _checked(response)
            following = next_link(response)
            if following is None:
                return
            response = self._client.request("GET", following)

    def _agents(self) -> list[SourceAgent]:
        return [
            SourceAgent(
                str(agent["id"]),
                (agent.get("contact") or {}).get("name"),
                (agent.get("contact") or {}).get("email"),
            )
            for agent in self._all("/api/v2/agents", {"per_page": MAX_PER_PAGE})
        ]

    def _ticket_pages(
        self, since: datetime, position: _Cursor, agents: frozenset[str]
    ) -> Iterator[tuple[SourcePage, _Cursor]]:
        """Each page with the cursor after it."""
        window = since
        response = self._tickets(window)
        while True:
            tickets = _checked(response)
            if not tickets:
                return
            last = max(_time(ticket["updated_at"]) for ticket in tickets)
            following = next_link(response)
            # The next window: from the last second this page reached (see the module docstring).
            moved = max(window, last - _SECOND)
            position = replace(position, tickets=moved)
            yield self._ticket_page(tickets, position, agents), position
            if following is None:
                return
            if moved > window:
                window = moved
                response = self._tickets(window)
            else:  # a whole page within one second: only the next page number goes on
                response = self._client.request("GET", following)
                if _beyond_page_cap(response):
                    raise SourceError(
                        f"Freshdesk refuses the next page of tickets updated at {_iso(window)}: more "
                        "tickets were updated within one second than its page cap lets a list reach"
                    )

    def _tickets(self, since: datetime) -> httpx.Response:
        params = {
            "updated_since": _iso(since),
            "order_by": "updated_at",
            "order_type": "asc",
            "include": "stats",
            "per_page": self._options.per_page,
        }
        return self._client.request("GET", _TICKETS, params=params)

    def _ticket_page(
        self, tickets: list[dict[str, Any]], position: _Cursor, agents: frozenset[str]
    ) -> SourcePage:
        page = SourcePage(fetched=len(tickets), cursor=position.dump())
        logged = self._options.conversations or self._options.activities_export
        for ticket in tickets:
            page.tickets.append(ticket_row(ticket, self._options))
            if logged:  # else snapshot-only tickets: METRICS.md reads their timestamps
                page.events.extend(ticket_events(ticket, self._options))
            if self._options.conversations:
                conversations = self._conversations(ticket["id"])
                page.events.extend(conversation_event(c, agents) for c in conversations)
                page.fetched += len(conversations)
        return page

    def _conversations(self, ticket_id: object) -> list[dict[str, Any]]:
        path = f"{_TICKETS}/{ticket_id}/conversations"
        try:
            return list(self._all(path, {"per_page": MAX_PER_PAGE}))
        except _Gone:  # deleted since the list was read
            return []

    def _export_pages(self, day: date, position: _Cursor, agents: frozenset[str]) -> Iterator[SourcePage]:
        today = datetime.now(UTC).date()
        group_ids: dict[str, str] | None = None  # read with the first file
        skipped = False
        while day <= today:
            response = self._client.request("GET", _EXPORT, params={"created_at": day.isoformat()})
            if response.status_code == 404 and day == today:
                break  # not ready yet: the next sync asks again
            position = replace(position, activities=day + timedelta(days=1))
            if response.status_code == 404:  # no export that day
                skipped, day = True, day + timedelta(days=1)
                continue
            if response.status_code in (401, 403):
                raise SourceError(
                    f"GET {_EXPORT}: {response.status_code}: the ticket activity export needs an "
                    "admin's API key and the scheduled export enabled in Freshdesk"
                )
            if group_ids is None:
                groups = self._all("/api/v2/groups", {"per_page": MAX_PER_PAGE})
                group_ids = {str(group["name"]): str(group["id"]) for group in groups}
            yield self._export_page(_export_url(_checked(response)), day, position, agents, group_ids)
            skipped, day = False, day + timedelta(days=1)
        if skipped:  # keep the days found empty, so that they are not asked again
            yield SourcePage(cursor=position.dump())

    def _export_page(
        self, url: str, day: date, position: _Cursor, agents: frozenset[str], group_ids: Mapping[str, str]
    ) -> SourcePage:
        # A signed URL on another host: our credentials must not go there.
        response = self._client.request("GET", url, auth=None)
        if response.status_code >= 400:
            raise SourceError(f"the activities export of {day}: its file answered {response.status_code}")
        data = response.content
        try:
            export = parse_export(data, requesters=_export_customers(orjson.loads(data), agents))
        except (orjson.JSONDecodeError, FreshdeskFormatError) as exc:
            raise SourceError(f"the activities export of {day} is not readable: {exc}") from None
        if export.rejected:
            log.warning(
                "activities export of %s: %d activities could not be read (first: %s: %s)",
                day,
                len(export.rejected),
                export.rejected[0].rejection.column,
                export.rejected[0].rejection.message,
            )
        rows = [_with_group_ids(row, group_ids) for row in events_to_rows(export.events)]
        fetched = export.imported + export.ignored + len(export.rejected)
        return SourcePage(
            events=rows,
            rejected=[(item.raw, item.rejection) for item in export.rejected],
            quarantine_as=FRESHDESK_QUARANTINE,
            fetched=fetched,
            cursor=position.dump(),
        )


class _Gone(SourceError):
    """404: the resource no longer exists."""


def _checked(response: httpx.Response) -> Any:
    """The JSON body of a successful answer; SourceError (never with credentials) otherwise."""
    if response.status_code == 404:
        raise _Gone(f"{response.request.method} {response.request.url.path}: 404")
    if response.status_code >= 400:
        raise SourceError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} "
            f"{response.text[:300]}"
        )
    return response.json()


def _beyond_page_cap(response: httpx.Response) -> bool:
    """Freshdesk's ``Validation failed`` answer for a page past its cap (reference: airbyte #3858)."""
    if response.status_code != 400:
        return False
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    return any(isinstance(e, dict) and e.get("field") == "page" for e in errors)


def _export_url(body: Any) -> str:
    """The file's URL in ``{"export": [{"url": ...}]}``, as Singer's tap reads it; also
    ``{"export": {"url": ...}}`` and a top-level ``url`` / ``link``, as Airbyte accepts."""
    export = body.get("export") if isinstance(body, dict) else None
    candidates = [export[0] if isinstance(export, list) and export else export, body]
    for candidate in candidates:
        if isinstance(candidate, dict):
            for key in ("url", "link"):
                if isinstance(candidate.get(key), str):
                    return str(candidate[key])
    raise SourceError(f"GET {_EXPORT}: no file URL in the answer")


def _client_options(connection: Connection) -> dict[str, Any]:
    """Basic auth, the API key with the password ``X`` (the connector refuses a missing key)."""
    return {"auth": (connection.credentials.get("api_key", ""), "X")}


FRESHDESK: Final = ConnectorKind(KIND, FreshdeskConnector, BUDGET, _client_options)
