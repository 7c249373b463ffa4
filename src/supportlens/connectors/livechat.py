"""LiveChat (Agent Chat Web API v3.5 and Configuration API v3.5) as canonical tickets and events.  The
API's shapes, paging and limits are those of /work/shared/reference/livechat_v35.md; where it is
unsure, so is this module, and it says so.

Every method is a POST of a JSON body to ``/v3.5/agent/action/<action>`` or
``/v3.5/configuration/action/<action>``.  Auth: a personal access token as HTTP Basic
``<account_id>:<token>`` (credentials ``account_id`` and ``token``), or an OAuth ``access_token``
sent as ``Bearer``.  Tokens of the ``fra`` region (prefix ``fra-``, or ``fra:`` as the docs' samples
write it) need ``X-Region: fra``; the option ``region`` forces a region.

**One ticket per archived chat.**  ``list_archives`` lists one entry per thread ("1 chat per 1
thread": a LiveChat chat is a customer's whole history, each new conversation a new thread of it)
and LiveChat's own reports count each thread as a chat, so each entry is a ticket, id
``<chat id>:<thread id>``: created when the thread started, resolved (status ``closed``) when it
ended; ``open`` while it is active.  It ended at its last archiving system message
(``manual_archived_*``, ``archived_customer_disconnected``, ``system_archived``,
``customer_banned``, ``routing.archived_*``), else at its last event other than a rating.

**Events** from the thread, in time order (ids ``livechat:<thread id>:<event id>[:<what>]``):

* ``message``, ``file`` and ``rich_message`` events: by the customer a ``customer_message``; by a
  human agent a ``reply`` (actor ``agent``); by a bot a ``reply`` with actor ``bot``, which
  METRICS.md never counts as a human reply or a first response.  Events visible to agents only
  (``visibility: agents``) are ``internal_note``.  Forms and custom events carry no analytics.
* Assignment: ``chat_transferred`` (to ``%targets%``), ``routing.assigned_*`` (to
  ``%agent_added%``), ``agent_added`` / ``agent_joined`` while no human handles the chat, and the
  first message of a human agent while none is assigned (LiveChat's routing assigns the first
  agent without a system message) give ``assigned``; ``routing.unassigned_*`` and a transfer to a
  group give ``assigned`` to nobody (back in the queue).  System messages name people, not ids
  (``text_vars``): names are looked up among the chat's users; a transfer target that is no user
  is a group.
* **Bots are not agents**: a bot never becomes the assignee.  When a human takes over a chat a bot
  was handling, or a bot transfers it, the handoff is recorded as ``field_changed`` with field
  ``bot_handoff``, ``from`` the bot's id and ``to`` the human agent's id (or the group's name).
  Bots are the users ``list_bots`` returns, and agent-type users whose id is 32 hex digits (the
  reference: bots appear in chats as agent-type users with such ids; human agents' ids are emails),
  so that bots are told apart even without the ``agents-bot--all:ro`` scope.
* The end of the thread: ``status_changed`` to ``closed``, by whoever archived it.
* **Ratings**: ``properties.rating.score`` is 1 (thumbs up, "rated good") or 0 (thumbs down,
  "rated bad"), not a 1-5 scale.  Our convention maps good to 5 and bad to 1 on METRICS.md's CSAT
  scale, so a good rating counts as satisfied (4 or 5) and a bad one does not.  The ``rated`` event
  is at the last ``rating.chat_rated`` system message (else when the thread ended); its id carries
  that message and the score, so a changed rating is a newer event and wins.  A canceled rating
  cannot be taken back once synced (a ``rated`` event needs a score).

Each entry also gives a ``support_tickets`` row: customer, assignee, group (the first of the
thread's ``access.group_ids``), status, channel ``chat``, tags, resolution and score, versioned by
the thread's last event.  A thread the plan no longer shows (``restricted_access``: no events, e.g.
older than 60 days on the starter plan) gives only that row, without an assignee or a resolution
time.  An entry that cannot be read (a missing id or time) is kept in quarantine with the reason;
the others are synced.

**Paging and the cursor**: the first request sends ``filters.from`` / ``filters.to`` (RFC 3339 with
microseconds), ``sort_order: asc`` and ``limit``; the next ones send only ``page_id``, as documented.
``to`` is the run's start.  The cursor is the start of the last thread read, or of the earliest
thread still active (its end is still to come; threads active for more than 7 days no longer hold
it), whichever is earlier; each sync starts
``lookback_minutes`` (default 1,440: a day) before it, to see ratings and tags given after a chat
ended.  The docs do not say which time ``from`` / ``to`` filter on, nor what ``asc`` sorts by: we
take both as the thread's start (``created_at``), as the list is one entry per thread.

**Rate limits**: LiveChat publishes none (its docs describe the ``too_many_requests`` error
without numbers; the "180 requests a minute" some clients assume is unverified).  We send at most
60 requests a minute, and wait out 429 answers: ``Retry-After`` when present (not documented),
else an exponential backoff from 2 s.  Errors are read from LiveChat's body
``{"error": {"type", "message"}}``.

Options (all optional): ``lookback_minutes``, ``limit`` (entries per page, 1..100, default 100),
``region`` (``dal`` or ``fra``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import orjson

from supportlens.connectors.base import Connection, SourceAgent, SourcePage
from supportlens.connectors.engine import ConnectorKind
from supportlens.connectors.http import RateBudget, SourceClient, SourceError
from supportlens.connectors.options import paging
from supportlens.ingest.tickets import Rejection
from supportlens.json_values import record_text

__all__ = [
    "LIVECHAT",
    "ArchiveRecords",
    "LiveChatConnector",
    "LiveChatOptions",
    "archive_records",
    "readable",
]

log = logging.getLogger(__name__)

KIND = "livechat"
# No published numbers: well under the unverified 180 a minute (reference, "Errors and rate limits").
BUDGET: Final = RateBudget(requests=60, per_seconds=60.0)
LIST_ARCHIVES: Final = "/v3.5/agent/action/list_archives"
LIST_AGENTS: Final = "/v3.5/configuration/action/list_agents"
LIST_BOTS: Final = "/v3.5/configuration/action/list_bots"
MAX_LIMIT = 100
# An active thread holds the cursor back (its end is still to come) for at most this long: chats
# left open for days (LiveChat's messaging mode) must not make every sync read everything since.
HOLD: Final = timedelta(days=7)
# Thumbs up / down (rating.score 1 / 0) on METRICS.md's 1-5 CSAT scale: our convention.
RATING_SCORES: Final[Mapping[int, int]] = {1: 5, 0: 1}
OPEN, CLOSED, CHANNEL, HANDOFF = "open", "closed", "chat", "bot_handoff"
_CONTENT = frozenset({"message", "file", "rich_message"})
_ARCHIVED = frozenset(
    {"manual_archived_agent", "manual_archived_customer", "archived_customer_disconnected", "system_archived",
     "customer_banned"}
)  # fmt: skip
_ROUTING_ARCHIVED = "routing.archived_"
_ARCHIVED_BY_CUSTOMER = frozenset({"manual_archived_customer", "archived_customer_disconnected"})
_BOT_ID = re.compile(r"[0-9a-f]{32}")
_REGIONS = frozenset({"dal", "fra"})
# Errors whose cause is a missing scope or grant.
_REFUSED = frozenset({"authorization", "missing_access"})


@dataclass(frozen=True, slots=True)
class LiveChatOptions:
    lookback: timedelta = timedelta(days=1)
    limit: int = MAX_LIMIT

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> LiveChatOptions:
        """The connection's options; ValueError naming the option at fault."""
        lookback, limit = paging(options, lookback_minutes=1_440, max_per_page=MAX_LIMIT, page_option="limit")
        if options.get("region", "dal") not in _REGIONS:
            raise ValueError("option region: expected dal or fra")
        return cls(lookback, limit)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """The filter format the docs ask for: ``YYYY-MM-DDTHH:MM:SS.ssssss+HH:MM``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def is_bot(user: Mapping[str, Any], bots: frozenset[str]) -> bool:
    user_id = str(user.get("id"))
    return user_id in bots or (user.get("type") == "agent" and _BOT_ID.fullmatch(user_id) is not None)


# ---------------------------------------------------------------------------------------------
# Records: what one archive entry (a chat with one thread) becomes.
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _People:
    """The chat's users by id, what kind each is, and agents' and bots' ids by display name (system
    messages name people)."""

    kinds: dict[str, str]  # id -> customer / agent / bot
    by_name: dict[str, str]
    customer: str | None

    @classmethod
    def of(cls, chat: Mapping[str, Any], bots: frozenset[str]) -> _People:
        kinds: dict[str, str] = {}
        by_name: dict[str, str] = {}
        customer = None
        for user in chat.get("users") or []:
            user_id = str(user["id"])
            if user.get("type") == "customer":
                kinds[user_id] = "customer"
                customer = customer or user_id
                continue
            kinds[user_id] = "bot" if is_bot(user, bots) else "agent"
            if user.get("name"):
                by_name.setdefault(str(user["name"]), user_id)
        return cls(kinds, by_name, customer)

    def kind(self, user_id: str, bots: frozenset[str]) -> str:
        """An author's kind; one no longer among the chat's users by the shape of its id."""
        found = self.kinds.get(user_id)
        if found is not None:
            return found
        if user_id in bots or _BOT_ID.fullmatch(user_id):
            return "bot"
        return "agent" if "@" in user_id else "customer"

    def named(self, name: object) -> str | None:
        return self.by_name.get(name) if isinstance(name, str) else None


@dataclass(slots=True)
class _Walk:
    """Who handles the thread while its events are read, and the events that makes."""

    ticket_id: str
    thread_id: str
    people: _People
    bots: frozenset[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    assignee: str | None = None  # a human agent
    bot: str | None = None  # the bot handling the chat, while no human does

    def event(self, source_id: str, at: str, kind: str, actor: str | None, **values: Any) -> None:
        actor_type = None if actor is None else self.people.kind(actor, self.bots)
        self.events.append(
            {
                "event_id": f"livechat:{self.thread_id}:{source_id}",
                "ticket_id": self.ticket_id,
                "at": at,
                "type": kind,
                "actor_type": actor_type or "system",
                "actor_id": actor,
                **values,
            }
        )

    def take_over(self, target: str | None, source_id: str, at: str, actor: str | None, *, note: str) -> None:
        """``target`` (a user id; None: a queue, ``note`` naming it) handles the chat from ``at``."""
        if target is not None and self.people.kind(target, self.bots) == "bot":
            self._assign(None, source_id, at, actor)  # bots are never assignees
            self.bot = target
            return
        self._assign(target, source_id, at, actor)
        if self.bot is not None:
            handoff = {"field": HANDOFF, "from": self.bot, "to": target if target is not None else note}
            self.event(f"{source_id}:handoff", at, "field_changed", actor, **handoff)
            self.bot = None

    def _assign(self, agent: str | None, source_id: str, at: str, actor: str | None) -> None:
        if agent != self.assignee:
            changed = {"from": self.assignee, "to": agent, "agent_id": agent}
            self.event(f"{source_id}:assigned", at, "assigned", actor, **changed)
            self.assignee = agent

    def content(self, event: Mapping[str, Any], source_id: str, at: str) -> None:
        author = str(event.get("author_id"))
        kind = self.people.kind(author, self.bots)
        if event.get("visibility") == "agents":
            self.event(source_id, at, "internal_note", author)
        elif kind == "customer":
            self.event(source_id, at, "customer_message", author)
        elif kind == "bot":
            if self.assignee is None:
                self.bot = self.bot or author
            self.event(source_id, at, "reply", author)
        else:
            if self.assignee is None:  # routing assigned this agent (no system message says so)
                self.take_over(author, source_id, at, None, note=author)
            self.event(source_id, at, "reply", author)

    def system(self, event: Mapping[str, Any], source_id: str, at: str) -> None:
        kind = str(event.get("system_message_type"))
        names = event.get("text_vars") or {}
        if kind == "chat_transferred":
            initiator = self.people.named(names.get("initiator"))
            target = names.get("targets")
            self.take_over(self.people.named(target), source_id, at, initiator, note=str(target))
        elif kind.startswith("routing.assigned_"):
            agent = self.people.named(names.get("agent_added"))
            if agent is not None:
                self.take_over(agent, source_id, at, None, note=agent)
        elif kind in ("agent_added", "agent_joined") and self.assignee is None:
            agent = self.people.named(names.get("agent"))
            if agent is not None:
                initiator = self.people.named(names.get("initiator")) or agent
                self.take_over(agent, source_id, at, initiator, note=agent)
        elif kind.startswith("routing.unassigned_") and self.assignee is not None:
            self.take_over(None, source_id, at, None, note="queue")


def _archived(event: Mapping[str, Any]) -> bool:
    kind = str(event.get("system_message_type"))
    return event.get("type") == "system_message" and (kind in _ARCHIVED or kind.startswith(_ROUTING_ARCHIVED))


def _rating_message(event: Mapping[str, Any]) -> bool:
    return str(event.get("system_message_type")).startswith("rating.")


def _ended(thread: Mapping[str, Any], events: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The event that ended an inactive thread: its last archiving system message, else its last
    event other than a rating (ratings may come after the end)."""
    if thread.get("active", False):
        return None
    archived = [e for e in events if _archived(e)]
    if archived:
        return archived[-1]
    others = [e for e in events if not _rating_message(e)]
    return others[-1] if others else None


def _closer(event: Mapping[str, Any], people: _People) -> str | None:
    """Who archived the thread: the customer, the agent the message names, or nobody (the system,
    also when no archiving message says how it ended)."""
    kind = str(event.get("system_message_type"))
    if kind in _ARCHIVED_BY_CUSTOMER:
        return people.customer
    if kind == "manual_archived_agent":
        return people.named((event.get("text_vars") or {}).get("agent"))
    return None


def _score(thread: Mapping[str, Any]) -> int | None:
    rating = (thread.get("properties") or {}).get("rating") or {}
    value = rating.get("score")
    score = RATING_SCORES.get(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if score is None and value is not None:
        log.warning("LiveChat thread %s: rating score %r is not 0 or 1; left out", thread.get("id"), value)
    return score


def _group(chat: Mapping[str, Any]) -> str | None:
    access = chat["thread"].get("access") or chat.get("access") or {}
    groups = access.get("group_ids") or []
    return str(groups[0]) if groups else None


@dataclass(frozen=True, slots=True)
class ArchiveRecords:
    ticket: dict[str, Any]
    events: list[dict[str, Any]]
    started: datetime
    active: bool


def archive_records(chat: Mapping[str, Any], bots: frozenset[str]) -> ArchiveRecords:
    """The ``support_tickets`` row and the events of one ``list_archives`` entry."""
    thread = chat["thread"]
    thread_id = str(thread["id"])
    ticket_id = f"{chat['id']}:{thread_id}"
    people = _People.of(chat, bots)
    started, active = thread["created_at"], bool(thread.get("active", False))
    row: dict[str, Any] = {
        "ticket_id": ticket_id,
        "customer_id": people.customer,
        "agent_id": None,
        "group_id": _group(chat),
        "status": OPEN if active else CLOSED,
        "channel": CHANNEL,
        "tags": list(thread.get("tags") or []),
        "created_at": started,
        "updated_at": started,
        "resolved_at": None,
        "satisfaction_score": _score(thread),
    }
    if "events" not in thread:  # restricted_access: the plan no longer shows this thread's events
        return ArchiveRecords(row, [], _time(started), active)
    events = sorted(thread["events"], key=lambda e: _time(e["created_at"]))  # stable: ties keep their order
    walk = _Walk(ticket_id, thread_id, people, bots)
    content = [e for e in events if e.get("type") in _CONTENT and e.get("visibility") != "agents"]
    opener = str(content[0].get("author_id")) if content else people.customer
    by_agent = opener is not None and people.kind(opener, bots) == "agent"
    initial = {"customer_id": people.customer, "group_id": row["group_id"], "channel": CHANNEL}
    walk.event("created", started, "created", opener if by_agent else people.customer, status=OPEN, **initial)
    for event in events:
        source_id, at = str(event["id"]), event["created_at"]
        if event.get("type") in _CONTENT:
            walk.content(event, source_id, at)
        elif event.get("type") == "system_message":
            walk.system(event, source_id, at)
    end = _ended(thread, events)
    if not active:
        closed_at = end["created_at"] if end is not None else started
        closer = _closer(end, people) if end is not None else None
        walk.event("closed", closed_at, "status_changed", closer, to=CLOSED, status=CLOSED)
        row["resolved_at"] = closed_at
    score = row["satisfaction_score"]
    if score is not None:
        rated = [e for e in events if e.get("system_message_type") == "rating.chat_rated"]
        at = rated[-1]["created_at"] if rated else row["resolved_at"] or started
        source = str(rated[-1]["id"]) if rated else "properties"
        walk.event(f"rated:{source}:{score}", at, "rated", people.customer, score=score)
    row["agent_id"] = walk.assignee
    row["updated_at"] = max([started, *(e["created_at"] for e in events)], key=_time)
    return ArchiveRecords(row, walk.events, _time(started), active)


def readable(chat: Any, bots: frozenset[str]) -> ArchiveRecords | Rejection:
    """``archive_records``, or why the entry cannot be read (a missing id or time, a wrong type)."""
    try:
        return archive_records(chat, bots)
    except KeyError as missing:
        return Rejection(str(missing.args[0]), "list_archives entry: missing")
    except (TypeError, ValueError, AttributeError) as wrong:
        return Rejection("", f"list_archives entry: {type(wrong).__name__}: {wrong}")


# ---------------------------------------------------------------------------------------------
# The connector: reading the API page by page.
# ---------------------------------------------------------------------------------------------


def _cursor(text: str | None) -> datetime | None:
    return None if text is None else _time(str(orjson.loads(text)["from"]))


def _dump(moment: datetime) -> str:
    return orjson.dumps({"from": rfc3339(moment)}).decode()


class LiveChatConnector:
    kind = KIND

    def __init__(self, connection: Connection, client: SourceClient) -> None:
        credentials = connection.credentials
        personal = credentials.get("account_id") and credentials.get("token")
        if not credentials.get("access_token") and not personal:
            raise SourceError(
                "a LiveChat connection needs the credentials 'account_id' and 'token' (a personal "
                "access token) or 'access_token' (OAuth)"
            )
        try:
            self._options = LiveChatOptions.parse(connection.options)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        self._client = client

    def pages(self, cursor: str | None, *, start: datetime) -> Iterator[SourcePage]:
        resumed = _cursor(cursor)
        since = start if resumed is None else resumed - self._options.lookback
        until = datetime.now(UTC)
        people = self._people()
        bots = frozenset(person.id for person in people if person.is_bot)
        announced = {person.id for person in people}
        body: dict[str, Any] = {
            "filters": {"from": rfc3339(since), "to": rfc3339(until)},
            "sort_order": "asc",
            "limit": self._options.limit,
        }
        earliest_active: datetime | None = None
        while True:
            answer = self._call(LIST_ARCHIVES, body)
            chats = answer.get("chats") or []
            page = SourcePage(fetched=len(chats), agents=people, total=answer.get("found_chats"))
            people = []  # the first page carries the account's agents and bots
            last_start: datetime | None = None
            for chat in chats:
                records = readable(chat, bots)
                if isinstance(records, Rejection):  # kept in quarantine; the other entries go on
                    page.rejected.append((record_text(chat), records))
                    continue
                page.tickets.append(records.ticket)
                page.events.extend(records.events)
                page.agents.extend(_new_people(chat, bots, announced))
                last_start = max(filter(None, (last_start, records.started)))
                if records.active and records.started >= until - HOLD:
                    earliest_active = min(filter(None, (earliest_active, records.started)))
            if last_start is not None:
                page.cursor = _dump(min(filter(None, (earliest_active, last_start))))
            yield page
            following = answer.get("next_page_id")
            if not following:
                return
            body = {"page_id": following}  # alone: with filters, limit or sort_order it is refused

    def _people(self) -> list[SourceAgent]:
        agents = _listed(self._call(LIST_AGENTS, {}), LIST_AGENTS)
        humans = [SourceAgent(str(a["id"]), a.get("name"), str(a["id"])) for a in agents]
        try:
            bots = _listed(self._call(LIST_BOTS, {"all": True}), LIST_BOTS)
        except _Refused as refused:
            log.warning("%s; bots are told by their ids only", refused)
            bots = []
        return [*humans, *(SourceAgent(str(b["id"]), b.get("name"), is_bot=True) for b in bots)]

    def _call(self, path: str, body: Mapping[str, Any]) -> Any:
        """The JSON answer of one method; SourceError from LiveChat's error body otherwise."""
        return _answer(self._client.request("POST", path, json=body), path)


def _new_people(chat: Mapping[str, Any], bots: frozenset[str], announced: set[str]) -> Iterable[SourceAgent]:
    """Agents and bots of the chat not yet announced this run (e.g. agents since removed)."""
    for user in chat.get("users") or []:
        user_id = str(user.get("id"))
        if user.get("type") == "customer" or user_id in announced:
            continue
        announced.add(user_id)
        bot = is_bot(user, bots)
        yield SourceAgent(user_id, user.get("name"), None if bot else user.get("email"), is_bot=bot)


def _listed(answer: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(answer, list):
        raise SourceError(f"POST {path}: expected a list, got {type(answer).__name__}")
    return answer


class _Refused(SourceError):
    """An authorization error: the token lacks a scope or a grant."""


_SCOPES: Final[Mapping[str, str]] = {
    LIST_ARCHIVES: "chats--all:ro or chats--access:ro",
    LIST_AGENTS: "agents--all:ro",
    LIST_BOTS: "agents-bot--all:ro",
}


def _answer(response: httpx.Response, path: str) -> Any:
    if response.status_code < 400:
        return response.json()
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    kind, message = error.get("type", "unknown"), error.get("message", response.text[:200])
    text = f"POST {path}: {response.status_code} {kind}: {message}"
    if kind == "misdirected_request":
        region = (error.get("data") or {}).get("region")
        raise SourceError(f"{text} (the account is in region {region!r}: set the option region)")
    if kind in _REFUSED:
        raise _Refused(f"{text} (the token needs the scope {_SCOPES[path]})")
    raise SourceError(text)


def _client_options(connection: Connection) -> dict[str, Any]:
    """Basic auth with a personal access token, else the OAuth token as Bearer; ``X-Region: fra``
    for the fra region.  Never raises: the connector refuses missing credentials."""
    credentials = connection.credentials
    token = credentials.get("access_token") or credentials.get("token") or ""
    region = connection.options.get("region") or ("fra" if token[:4] in ("fra-", "fra:") else "dal")
    headers = {"X-Region": "fra"} if region == "fra" else {}
    options: dict[str, Any] = {"headers": headers, "backoff_seconds": 2.0, "max_retries": 6}
    if credentials.get("access_token"):
        headers["Authorization"] = f"Bearer {credentials['access_token']}"
    else:
        options["auth"] = (credentials.get("account_id", ""), credentials.get("token", ""))
    return options


LIVECHAT: Final = ConnectorKind(KIND, LiveChatConnector, BUDGET, _client_options)
