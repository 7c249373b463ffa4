"""Zendesk Support as canonical tickets and events.  The API's shapes, paging and limits are those of
/work/shared/reference/zendesk_support.md; where it is unsure, so is this module, and it says so.

Auth: HTTP Basic ``{email}/token:{api_token}`` (credentials ``email`` and ``token``), or an OAuth
``oauth_token`` sent as ``Bearer``.  The incremental exports need an admin.

**Agents**: ``GET /api/v2/users?role[]=agent&role[]=admin`` (cursor paging, ``page[size]=100``),
once per run.  Users with those roles are agents; every other author or updater is a customer
(end-user), except Zendesk's system user ``-1`` (triggers, automations), which is the system.
Zendesk's Users API marks no user as a bot.

**Tickets**: the cursor-based incremental export, ``GET /api/v2/incremental/tickets/cursor``, with
``start_time`` on the first request (the start of the rolling window) and ``cursor`` on every later
one, ``include=metric_sets`` and ``per_page`` (at most 1000).  Each page's ``after_cursor`` is kept;
the export is read until ``end_of_stream``, and the cursor stays valid for the next sync, which
resumes from it: the export itself returns every ticket updated since, so no look-back is needed.
Its ``after_url`` is not followed: the documented one carries only ``cursor``, and whether
``per_page`` and ``include`` persist without being sent again is not documented, so each request
sends them.  Each ticket gives a ``support_tickets`` row; ``resolved_at`` is the metric set's
``solved_at`` while the ticket is solved or closed.  A ticket whose status is ``deleted`` gives no
row but a ``deleted`` event (a row with status ``deleted`` would count as open work).

**Events**: the time-based ticket event export, ``GET /api/v2/incremental/ticket_events`` with
``start_time`` and ``include=comment_events``; the next ``start_time`` is the page's ``end_time``
until ``end_of_stream``.  Each ticket event is one audit (one update by one updater) and its
``child_events``:

* ``Create`` children (one per field set on a new ticket) together give one ``created`` event, by
  the audit's updater (an agent's creation makes its first public comment the request, not a
  reply, as Zendesk's first reply time also counts it).
* ``Change`` children: ``status`` → ``status_changed``, ``priority`` → ``priority_changed``,
  ``assignee_id`` → ``assigned``, ``group_id`` / ``requester_id`` / ``type`` (when it is the
  category) → ``field_changed``.  Tags, notifications and other children are not ticket history
  here (the ticket row carries the current tags).
* ``Comment`` children: not public → ``internal_note``; public by an agent → ``reply``; public by
  a customer → ``customer_message``; public by the system → ``reply`` with actor ``system``, which
  METRICS.md never counts as a human reply.
* ``SatisfactionRating`` children with score good or bad → ``rated`` (see CSAT below).

Event ids are Zendesk's own: ``zendesk:<child event id>``, and ``zendesk:audit:<audit id>`` for a
creation.  The reference calls the shape of ``Create`` / ``Change`` children a best guess (the field
named as a key, ``{"status": "pending", "previous_value": "open"}``); the Ticket Audits API names it
in ``field_name`` / ``value``; both are read.

A page may end inside a second: the next one starts at that second again (``end_time``) and reads
its events twice, which changes nothing.  The reference says a page exceeds ``per_page`` when
timestamps tie, so a page whose ``end_time`` is the very second it started from holds every event of
that second, and the next one starts a second later (otherwise the same page would come back
forever).  Each sync starts ``lookback_minutes`` (default 10) before where the last one ended.

**Statuses** keep Zendesk's names (new, open, pending, hold, solved, closed), which the default
status categories know (``hold`` is ``on_hold``); ``status_map`` renames them.  Priorities: low,
normal (stored as ``medium``), high, urgent; ``priority_map`` renames them.  ``category_field``:
``type`` (the default: question, incident, problem, task) or the id of a custom ticket field, whose
value is the category (then only the ticket rows carry it: custom field changes in the event export
are not documented).

**CSAT**: ``satisfaction_rating.score`` is ``good`` or ``bad`` when the requester answered
(``offered`` and ``unoffered`` are no rating).  On METRICS.md's 1-5 scale good is 5 and bad is 1, so
that ``csat_pct`` (ratings of 4 or 5 over all ratings) equals Zendesk's satisfaction score (good
over good plus bad).

**Rate limit**: incremental exports allow 10 requests a minute per account (30 with the High Volume
add-on).  A run's every request counts against a budget of 9 a minute (the few user requests too):
one under the limit, for other integrations and clock skew.

**Ticket metrics as a cross-check** (:meth:`ZendeskConnector.ticket_metrics`,
:func:`metric_disagreements`): Zendesk's own calendar minutes for first reply, first resolution and
full resolution, compared with ``ticket_time_metrics``.  Known systematic differences are named on
each disagreement (see ``KNOWN_DIFFERENCES``).

The cursor is JSON: ``{"tickets": <after_cursor>, "events": <next start_time>}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from supportlens.connectors.base import Connection, SourceAgent, SourcePage
from supportlens.connectors.engine import ConnectorKind
from supportlens.connectors.http import RateBudget, SourceClient, SourceError
from supportlens.connectors.options import is_whole, paging
from supportlens.domain.statuses import RESOLVED_CATEGORIES

__all__ = [
    "ZENDESK",
    "MetricDisagreement",
    "ZendeskConnector",
    "ZendeskOptions",
    "audit_events",
    "metric_disagreements",
    "ticket_row",
]

KIND = "zendesk"
BUDGET: Final = RateBudget(requests=9, per_seconds=60.0)
MAX_PER_PAGE = 1000
LIST_PAGE_SIZE = 100  # users and ticket metrics: cursor pages of at most 100
SYSTEM_USER: Final = -1
AGENT_ROLES: Final = ("agent", "admin")
RESOLVED_STATUSES: Final = frozenset({"solved", "closed"})
DELETED_STATUS: Final = "deleted"
SATISFACTION_SCORES: Final[Mapping[str, int]] = {"good": 5, "bad": 1}
_TICKETS = "/api/v2/incremental/tickets/cursor"
_EVENTS = "/api/v2/incremental/ticket_events"
_USERS = "/api/v2/users"
_METRICS = "/api/v2/ticket_metrics"
# Fields of Create / Change children holding an id -> the event attribute they set.
_ID_FIELDS: Final[Mapping[str, str]] = {
    "assignee_id": "agent_id",
    "group_id": "group_id",
    "requester_id": "customer_id",
}
# Fields of Create / Change children that are ticket history, in the reference's shape.
_TRACKED_FIELDS: Final = ("status", "priority", "type", *_ID_FIELDS)


@dataclass(frozen=True, slots=True)
class ZendeskOptions:
    status_map: Mapping[str, str]
    priority_map: Mapping[str, str]
    category_field: str = "type"
    lookback: timedelta = timedelta(minutes=10)
    per_page: int = MAX_PER_PAGE

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> ZendeskOptions:
        """The connection's options; ValueError naming the option at fault."""
        lookback, per_page = paging(options, lookback_minutes=10, max_per_page=MAX_PER_PAGE)
        category = options.get("category_field", "type")
        if is_whole(category):
            category = str(category)
        if not isinstance(category, str) or not (category == "type" or category.isdigit()):
            raise ValueError("option category_field: expected 'type' or a custom ticket field id")
        return cls(
            status_map=_name_map(options, "status_map"),
            priority_map=_name_map(options, "priority_map"),
            category_field=category,
            lookback=lookback,
            per_page=per_page,
        )

    def status(self, name: object) -> str | None:
        return None if name is None else self.status_map.get(str(name), str(name))

    def priority(self, name: object) -> str | None:
        return None if name is None else self.priority_map.get(str(name), str(name))

    @property
    def category_is_type(self) -> bool:
        return self.category_field == "type"


def _name_map(options: Mapping[str, Any], name: str) -> dict[str, str]:
    value = options.get(name, {})
    if not isinstance(value, Mapping) or not all(
        isinstance(label, str) and label.strip() for label in value.values()
    ):
        raise ValueError(f"option {name}: expected an object of Zendesk name -> name")
    return {str(key): label for key, label in value.items()}


def _id(value: object) -> str | None:
    return None if value is None else str(value)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Records: what one ticket or one audit becomes.
# ---------------------------------------------------------------------------------------------


def satisfaction_score(ticket: Mapping[str, Any]) -> int | None:
    rating = ticket.get("satisfaction_rating")
    score = rating.get("score") if isinstance(rating, Mapping) else None
    return SATISFACTION_SCORES.get(score) if isinstance(score, str) else None


def _category(ticket: Mapping[str, Any], options: ZendeskOptions) -> Any:
    if options.category_is_type:
        return ticket.get("type")
    for field in ticket.get("custom_fields") or []:
        if isinstance(field, Mapping) and str(field.get("id")) == options.category_field:
            return field.get("value")
    return None


def ticket_row(
    ticket: Mapping[str, Any], metric_set: Mapping[str, Any] | None, options: ZendeskOptions
) -> dict[str, Any]:
    """The ``support_tickets`` row of a ticket of the incremental export (not a deleted one)."""
    solved = ticket.get("status") in RESOLVED_STATUSES
    return {
        "ticket_id": str(ticket["id"]),
        "customer_id": _id(ticket.get("requester_id")),
        "agent_id": _id(ticket.get("assignee_id")),
        "group_id": _id(ticket.get("group_id")),
        "category": _category(ticket, options),
        "priority": options.priority(ticket.get("priority")),
        "status": options.status(ticket.get("status")),
        "created_at": ticket.get("created_at"),
        "updated_at": ticket.get("updated_at"),
        "resolved_at": (metric_set or {}).get("solved_at") if solved else None,
        "satisfaction_score": satisfaction_score(ticket),
        "tags": ticket.get("tags") or [],
        "channel": (ticket.get("via") or {}).get("channel"),
        "subject": ticket.get("subject"),
    }


def deleted_event(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket the export shows as ``deleted``: when it was (its last update)."""
    return {
        "event_id": f"zendesk:{ticket['id']}:deleted",
        "ticket_id": str(ticket["id"]),
        "at": ticket["updated_at"],
        "type": "deleted",
        "actor_type": "system",
    }


def _actor(user: object, agents: frozenset[str]) -> tuple[str, str | None]:
    if user is None or user == SYSTEM_USER:
        return "system", None
    return ("agent" if str(user) in agents else "customer"), str(user)


def _field_change(child: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """(field, new value, previous value) of a Create / Change child, in either shape."""
    if "field_name" in child:
        return str(child["field_name"]), child.get("value"), child.get("previous_value")
    for field in _TRACKED_FIELDS:
        if field in child:
            return field, child[field], child.get("previous_value")
    return None


def _attribute(field: str, options: ZendeskOptions) -> str | None:
    """The ticket attribute a Create / Change child of ``field`` sets (None: none we keep)."""
    if field == "type":
        return "category" if options.category_is_type else None
    return field if field in ("status", "priority") else _ID_FIELDS.get(field)


def _value(attribute: str, value: Any, options: ZendeskOptions) -> Any:
    if attribute == "status":
        return options.status(value)
    if attribute == "priority":
        return options.priority(value)
    return value if attribute == "category" else _id(value)


# The event type of a change of each attribute (others: field_changed).
_CHANGE_TYPES: Final[Mapping[str, str]] = {
    "status": "status_changed",
    "priority": "priority_changed",
    "agent_id": "assigned",
}


def _change(field: str, value: Any, previous: Any, options: ZendeskOptions) -> dict[str, Any] | None:
    """The event fields of a Change child (None: not ticket history, or nothing to record)."""
    attribute = _attribute(field, options)
    if attribute is None or (value is None and attribute in ("status", "priority")):
        return None
    kind = _CHANGE_TYPES.get(attribute, "field_changed")
    change = {
        "type": kind,
        "to": _value(attribute, value, options),
        "from": _value(attribute, previous, options),
    }
    return change if kind != "field_changed" else {**change, "field": attribute}


def _comment_type(comment: Mapping[str, Any], actor_type: str) -> str:
    if not comment.get("public"):
        return "internal_note"
    return "customer_message" if actor_type == "customer" else "reply"


def audit_events(
    audit: Mapping[str, Any], agents: frozenset[str], options: ZendeskOptions
) -> list[dict[str, Any]]:
    """The events of one ticket event (an audit) of the ticket event export."""
    ticket_id = str(audit["ticket_id"])
    at = audit.get("created_at") or _iso(int(audit["timestamp"]))
    actor_type, actor_id = _actor(audit.get("updater_id"), agents)
    base = {"ticket_id": ticket_id, "at": at, "actor_type": actor_type, "actor_id": actor_id}
    created: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    for child in audit.get("child_events") or []:
        if not isinstance(child, Mapping):
            continue
        kind = child.get("event_type") or child.get("type")
        event_id = f"zendesk:{child.get('id')}"
        if kind == "Comment":
            author_type, author_id = _actor(child.get("author_id"), agents)
            events.append(
                {
                    "event_id": event_id,
                    "ticket_id": ticket_id,
                    "at": child.get("created_at") or at,
                    "type": _comment_type(child, author_type),
                    "actor_type": author_type,
                    "actor_id": author_id,
                }
            )
        elif kind == "SatisfactionRating" and child.get("score") in SATISFACTION_SCORES:
            score = SATISFACTION_SCORES[child["score"]]
            events.append({**base, "event_id": event_id, "type": "rated", "score": score})
        elif kind in ("Create", "Change") and (change := _field_change(child)) is not None:
            field, value, previous = change
            if kind == "Create":
                created = created or {**base, "event_id": f"zendesk:audit:{audit['id']}", "type": "created"}
                attribute = _attribute(field, options)
                if attribute is not None:
                    created[attribute] = _value(attribute, value, options)
            elif (fields := _change(field, value, previous, options)) is not None:
                events.append({**base, "event_id": event_id, **fields})
    return events if created is None else [created, *events]


# ---------------------------------------------------------------------------------------------
# The connector: reading the exports page by page.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cursor:
    tickets: str | None = None  # the ticket export's after_cursor
    events: int | None = None  # the event export's next start_time (epoch seconds)

    def dump(self) -> str:
        return orjson.dumps({"tickets": self.tickets, "events": self.events}).decode()

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if text is None:
            return cls()
        value = orjson.loads(text)
        return cls(value.get("tickets"), value.get("events"))


class ZendeskConnector:
    kind = KIND

    def __init__(self, connection: Connection, client: SourceClient) -> None:
        credentials = connection.credentials
        if not credentials.get("oauth_token") and not (credentials.get("email") and credentials.get("token")):
            raise SourceError(
                "a Zendesk connection needs the credentials 'email' and 'token' (or 'oauth_token')"
            )
        try:
            self._options = ZendeskOptions.parse(connection.options)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        self._client = client

    def pages(self, cursor: str | None, *, start: datetime) -> Iterator[SourcePage]:
        position = _Cursor.load(cursor)
        people: list[SourceAgent] = list(self._agents())
        agents = frozenset(agent.id for agent in people)
        for page, after in self._ticket_pages(position, start):
            page.agents, people = people, []  # the first page carries the account's agents
            position = after
            yield page
        if position.events is None:
            since = int(start.timestamp())
        else:
            since = position.events - int(self._options.lookback.total_seconds())
        yield from self._event_pages(since, position, agents)

    def _cursor_list(self, path: str, key: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paged list (``meta.has_more`` / ``meta.after_cursor``)."""
        query = {**params, "page[size]": LIST_PAGE_SIZE}
        while True:
            body = self._client.get_json(path, params=query)
            yield from body.get(key) or []
            meta = body.get("meta") or {}
            if not meta.get("has_more"):
                return
            if not meta.get("after_cursor"):
                raise SourceError(f"GET {path}: has_more without an after_cursor")
            query = {**query, "page[after]": meta["after_cursor"]}

    def _agents(self) -> Iterator[SourceAgent]:
        for user in self._cursor_list(_USERS, "users", {"role[]": list(AGENT_ROLES)}):
            yield SourceAgent(str(user["id"]), user.get("name"), user.get("email"))

    def ticket_metrics(self) -> Iterator[dict[str, Any]]:
        """Zendesk's ticket metrics, every ticket's (archived tickets are not listed)."""
        return self._cursor_list(_METRICS, "ticket_metrics", {})

    def _ticket_pages(self, position: _Cursor, start: datetime) -> Iterator[tuple[SourcePage, _Cursor]]:
        """Each page of the ticket export with the cursor after it."""
        fixed = {"per_page": self._options.per_page, "include": "metric_sets"}
        if position.tickets is None:
            params: dict[str, Any] = {**fixed, "start_time": int(start.timestamp())}
        else:
            params = {**fixed, "cursor": position.tickets}
        while True:
            body = self._client.get_json(_TICKETS, params=params)
            tickets = body.get("tickets") or []
            after = body.get("after_cursor")
            done = bool(body.get("end_of_stream"))
            if after is None and not done:
                raise SourceError(f"GET {_TICKETS}: neither an after_cursor nor the end of the stream")
            position = replace(position, tickets=after or position.tickets)
            yield self._ticket_page(tickets, body.get("metric_sets") or [], position), position
            if done:
                return
            params = {**fixed, "cursor": after}

    def _ticket_page(
        self, tickets: list[dict[str, Any]], metric_sets: list[dict[str, Any]], position: _Cursor
    ) -> SourcePage:
        metrics = {metric.get("ticket_id"): metric for metric in metric_sets}
        page = SourcePage(fetched=len(tickets), cursor=position.dump())
        for ticket in tickets:
            if ticket.get("status") == DELETED_STATUS:
                page.events.append(deleted_event(ticket))
            else:
                page.tickets.append(ticket_row(ticket, metrics.get(ticket["id"]), self._options))
        return page

    def _event_pages(self, since: int, position: _Cursor, agents: frozenset[str]) -> Iterator[SourcePage]:
        params = {"include": "comment_events", "per_page": self._options.per_page}
        while True:
            body = self._client.get_json(_EVENTS, params={**params, "start_time": since})
            audits = body.get("ticket_events") or []
            end_time, done = body.get("end_time"), bool(body.get("end_of_stream"))
            if not is_whole(end_time):
                raise SourceError(f"GET {_EVENTS}: no end_time in the answer")
            # A page that ends in the second it started from held that whole second (see above).
            following = end_time if end_time > since or done else since + 1
            position = replace(position, events=following)
            page = SourcePage(fetched=len(audits), cursor=position.dump())
            for audit in audits:
                page.events.extend(audit_events(audit, agents, self._options))
            yield page
            if done:
                return
            since = following


# ---------------------------------------------------------------------------------------------
# Ticket metrics: Zendesk's durations against ours.
# ---------------------------------------------------------------------------------------------

# Zendesk's metric (calendar minutes) -> the ``ticket_time_metrics`` column it is compared with.
CROSS_CHECKED: Final[Mapping[str, str]] = {
    "reply_time_in_minutes": "first_response_minutes",
    "first_resolution_time_in_minutes": "first_resolution_minutes",
    "full_resolution_time_in_minutes": "full_resolution_minutes",
}
REOPENED_UNRESOLVED: Final = (
    "reopened and unresolved: Zendesk keeps the full resolution time of the last solve, "
    "METRICS.md has none until the ticket is resolved again"
)
KNOWN_DIFFERENCES: Final = (REOPENED_UNRESOLVED,)


@dataclass(frozen=True, slots=True)
class MetricDisagreement:
    ticket_id: str
    metric: str  # the ticket_time_metrics column
    zendesk_minutes: int | None
    our_minutes: float | None
    known_difference: str | None  # one of KNOWN_DIFFERENCES, or None: unexplained


def _calendar(metric: Mapping[str, Any], name: str) -> int | None:
    value = metric.get(name)
    minutes = value.get("calendar") if isinstance(value, Mapping) else None
    return minutes if is_whole(minutes) else None


def metric_disagreements(
    zendesk: Iterable[Mapping[str, Any]], ours: Mapping[str, Mapping[str, Any]]
) -> list[MetricDisagreement]:
    """Where Zendesk's ticket metrics and ``ticket_time_metrics`` rows (by ticket id) differ, for the
    tickets both know: one has a value the other has not, or they are a minute or more apart
    (Zendesk's minutes are whole, its rounding is not documented; ours have two decimals)."""
    found: list[MetricDisagreement] = []
    for metric in zendesk:
        row = ours.get(str(metric.get("ticket_id")))
        if row is None:
            continue
        for name, column in CROSS_CHECKED.items():
            theirs, mine = _calendar(metric, name), row.get(column)
            if theirs is None and mine is None:
                continue
            if theirs is not None and mine is not None and abs(theirs - mine) < 1:
                continue
            found.append(
                MetricDisagreement(
                    str(metric["ticket_id"]), column, theirs, mine, _known(column, theirs, mine, row)
                )
            )
    return found


def _known(column: str, theirs: int | None, mine: float | None, row: Mapping[str, Any]) -> str | None:
    resolved = row.get("status_category") in {category.value for category in RESOLVED_CATEGORIES}
    reopened = (row.get("reopens") or 0) > 0 and not resolved
    if column == "full_resolution_minutes" and theirs is not None and mine is None and reopened:
        return REOPENED_UNRESOLVED
    return None


def _client_options(connection: Connection) -> dict[str, Any]:
    """Basic ``{email}/token:{token}``, or ``Bearer`` with an OAuth token (the connector refuses
    a connection with neither)."""
    credentials = connection.credentials
    if credentials.get("oauth_token"):
        return {"headers": {"Authorization": f"Bearer {credentials['oauth_token']}"}}
    return {"auth": (f"{credentials.get('email', '')}/token", credentials.get("token", ""))}


ZENDESK: Final = ConnectorKind(KIND, ZendeskConnector, BUDGET, _client_options)
