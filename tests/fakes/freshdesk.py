"""A Freshdesk account behind a local API v2 server, as /work/shared/reference/freshdesk_v2.md
describes it: HTTP Basic ``key:X``; bare JSON arrays; ``Link: <...>; rel="next"`` paging with
``per_page`` clamped at 100; without ``updated_since`` only the tickets created in the last 30 days;
a page cap (300, configurable) answered with Freshdesk's ``Validation failed`` body; numeric status,
priority and source codes; ``include=stats`` (each include costs 2 more credits); per-minute credit
limits with ``X-RateLimit-*`` headers on every answer and 429 + ``Retry-After`` past them; the ticket
activities export as ``{"export": [{"url": ...}]}`` pointing at a signed file URL.

The account is a desk simulated by ``supportlens.demo.activities`` (the same simulation writes its
activities export files), so tickets, conversations, ``stats`` and the export agree with each
other, and :meth:`FreshdeskAccount.truth` gives each ticket's metrics computed here, from the
simulation, by METRICS.md's definitions (independently of SupportLens's code).

Injected faults: scripted answers by request number (429 bursts, 5xx, delays past the client's
timeout), an outage after some pages of tickets (a crash between two pages), duplicated records on
later pages, and a hook after each tickets page that may update tickets while the sync runs.
"""

from __future__ import annotations

import asyncio
import base64
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supportlens.demo.activities import (
    ADDED_TAGS,
    CATEGORIES,
    GROUPS,
    ISSUE_TYPES,
    NEW_TICKET,
    NOTE,
    PRODUCTS,
    STATUS,
    STATUS_NAMES,
    TAGS,
    generate_activity_columns,
    generate_exports,
)
from supportlens.json_values import record_text
from tests.fakes.server import Fault, SentPages, page_key

API_KEY = "fd-key-0123456789abcdef"
GROUP_BASE = 5_000_000
# STATUS_NAMES index -> Freshdesk status id: the four built-in ones, then custom statuses (>= 6).
STATUS_CODES = {"Open": 2, "Pending": 3, "Resolved": 4, "Closed": 5, "Waiting for Customer": 6,
                "Waiting for Third Party": 7}  # fmt: skip
CUSTOM_STATUSES = {"6": "Waiting for Customer", "7": "Waiting for Third Party"}
PRIORITY_NAMES = {1: "low", 2: "medium", 3: "high", 4: "urgent"}
_RESOLVED = frozenset({"Resolved", "Closed"})
_PUBLIC_NOTES = frozenset({0, 4, 5})  # reply, public note, phone note
_AGENT_BASE = 149_000
_DEFAULT_WINDOW = timedelta(days=30)
_INCLUDES = frozenset({"stats", "requester", "description"})
_ORDERS = frozenset({"created_at", "due_by", "updated_at", "status"})


def iso(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reopened(statuses: list[tuple[int, str]]) -> list[int]:
    """When the ticket left a resolved status for an unresolved one."""
    return [b[0] for a, b in pairwise(statuses) if a[1] in _RESOLVED and b[1] not in _RESOLVED]


def _resolutions(statuses: list[tuple[int, str]]) -> list[int]:
    """When the ticket entered a resolved status from an unresolved one."""
    before = [None, *(status for _, status in statuses)]
    return [
        at
        for (at, status), prior in zip(statuses, before, strict=False)
        if status in _RESOLVED and prior not in _RESOLVED
    ]


@dataclass
class Activity:
    """One simulated action on a ticket and the ticket's properties right after it."""

    at: int  # epoch seconds
    performer: int | None  # None: the system
    kind: int  # index into KINDS
    note_id: int
    note_type: int
    tag: int
    status: str
    priority: int
    agent: int | None
    group: int
    issue_type: str


@dataclass
class FakeTicket:
    id: int
    source: int
    requester: int
    category: str
    product: str
    activities: list[Activity]

    @property
    def created_at(self) -> int:
        return self.activities[0].at

    @property
    def updated_at(self) -> int:
        return self.activities[-1].at

    @property
    def state(self) -> Activity:
        return self.activities[-1]

    def by_agent(self, activity: Activity) -> bool:
        return activity.performer is not None and activity.performer != self.requester

    @property
    def created_by_agent(self) -> bool:
        return self.by_agent(self.activities[0])

    def statuses(self) -> list[tuple[int, str]]:
        """(time, status) at creation and at each change of status."""
        changes = [(self.created_at, "Open")]
        for activity in self.activities[1:]:
            if activity.kind == STATUS and activity.status != changes[-1][1]:
                changes.append((activity.at, activity.status))
        return changes

    def human_replies(self) -> list[Activity]:
        """Agents' public notes, less the request itself on a ticket an agent created."""
        replies = [
            a for a in self.activities if a.kind == NOTE and a.note_type in _PUBLIC_NOTES and self.by_agent(a)
        ]
        return replies[1:] if self.created_by_agent else replies


@dataclass(frozen=True)
class TicketTruth:
    """A ticket as METRICS.md sees it, computed from the simulation."""

    status: str
    priority: str
    agent_id: str | None
    group_id: str
    customer_id: str
    category: str
    channel_code: int
    created_at: int
    first_response_at: int | None
    resolved_at: int | None  # the last entry into a resolved status, while resolved
    last_resolved_at: int | None  # the last entry into a resolved status, even if reopened since
    first_resolved_at: int | None
    agent_replies: int
    reopens: int
    statuses: tuple[tuple[int, str], ...]

    def seconds_in_status(self, as_of: int) -> dict[str, int]:
        spent: dict[str, int] = {}
        for (at, status), end in zip(self.statuses, [*[s[0] for s in self.statuses[1:]], as_of], strict=True):
            spent[status.lower()] = spent.get(status.lower(), 0) + max(0, min(end, as_of) - at)
        return spent


@dataclass
class FreshdeskAccount:
    tickets: dict[int, FakeTicket]
    agents: dict[int, str]  # id -> name
    exports: dict[date, bytes]  # created_at date -> the export file
    export_enabled: bool = True
    page_cap: int = 300
    credits_per_minute: int = 200
    clock: Callable[[], float] = time.monotonic  # for the rate limit (tests: their fake clock)
    faults: dict[int, Fault] = field(default_factory=dict)  # by request number (1-based)
    pages: SentPages = field(default_factory=SentPages)  # tickets pages, and the outage after some
    duplicate_tickets: bool = False  # each tickets page also repeats a ticket sent before
    duplicate_conversations: bool = False  # each conversations page repeats one sent before
    after_tickets_page: Callable[[int], None] | None = None  # called with the page count
    # What happened (for assertions):
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # path, query
    throttled: int = 0  # 429 answers for credits (not scripted faults)
    file_requests: list[dict[str, str]] = field(default_factory=list)  # headers of export file requests
    _spent: deque[tuple[float, int]] = field(default_factory=deque)
    _sent_tickets: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the account's records, as the API shows them ------------------------------------------

    def ticket_json(self, ticket: FakeTicket, includes: frozenset[str]) -> dict[str, Any]:
        state = ticket.state
        statuses = ticket.statuses()
        body: dict[str, Any] = {
            "id": ticket.id,
            "subject": f"Ticket {ticket.id}: {state.issue_type.lower()} about {ticket.product}",
            "type": state.issue_type,
            "status": STATUS_CODES[state.status],
            "priority": state.priority,
            "source": ticket.source,
            "requester_id": ticket.requester,
            "responder_id": state.agent,
            "group_id": GROUP_BASE + state.group,
            "company_id": None,
            "product_id": None,
            "email_config_id": None,
            "to_emails": None,
            "cc_emails": [],
            "fwd_emails": [],
            "reply_cc_emails": [],
            "fr_escalated": False,
            "is_escalated": False,
            "spam": False,
            "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at),
            "due_by": iso(ticket.created_at + 86_400),
            "fr_due_by": iso(ticket.created_at + 14_400),
            "nr_due_by": None,
            "nr_escalated": False,
            "association_type": None,
            "associated_tickets_count": None,
            "support_email": None,
            "source_additional_info": None,
            "structured_description": None,
            "custom_fields": {"cf_category": ticket.category, "cf_product": ticket.product},
            "tags": sorted({TAGS[a.tag] for a in ticket.activities if a.kind == ADDED_TAGS}),
        }
        if "description" in includes:
            body["description"] = f"<div>{body['subject']}</div>"
            body["description_text"] = body["subject"]
        if "requester" in includes:
            body["requester"] = {"id": ticket.requester, "name": f"Customer {ticket.requester}",
                                 "email": f"customer{ticket.requester}@example.com", "mobile": None, "phone": None}  # fmt: skip
        if "stats" in includes:
            body["stats"] = self._stats(ticket, statuses)
        return body

    @staticmethod
    def _stats(ticket: FakeTicket, statuses: list[tuple[int, str]]) -> dict[str, Any]:
        def last(predicate: Callable[[Activity], bool]) -> int | None:
            return max((a.at for a in ticket.activities if predicate(a)), default=None)

        def entered(names: frozenset[str] | set[str]) -> int | None:
            return max((at for at, status in statuses if status in names), default=None)

        reopened = _reopened(statuses)
        replies = ticket.human_replies()
        current = statuses[-1]
        return {
            "agent_responded_at": iso(last(lambda a: a.kind == NOTE and ticket.by_agent(a))),
            "requester_responded_at": iso(last(lambda a: a.kind == NOTE and a.performer == ticket.requester)),
            "first_responded_at": iso(replies[0].at if replies else None),
            "status_updated_at": iso(current[0]),
            "reopened_at": iso(max(reopened, default=None)),
            "resolved_at": iso(entered({"Resolved"})),
            "closed_at": iso(entered({"Closed"})),
            "pending_since": iso(current[0] if current[1] == "Pending" else None),
        }

    def conversations_json(self, ticket: FakeTicket) -> list[dict[str, Any]]:
        notes = [a for a in ticket.activities if a.kind == NOTE]
        return [
            {
                "id": note.note_id,
                "body": f"<div>Note {note.note_id}</div>",
                "body_text": f"Note {note.note_id}",
                "incoming": note.performer == ticket.requester,
                "private": note.note_type == 3,
                "user_id": note.performer,
                "support_email": None,
                "source": 2 if note.note_type in (3, 4) else 0,  # 0 reply, 2 note
                "category": 2,
                "ticket_id": ticket.id,
                "to_emails": [],
                "from_email": None,
                "cc_emails": [],
                "bcc_emails": [],
                "attachments": [],
                "created_at": iso(note.at),
                "updated_at": iso(note.at),
            }
            for note in notes
        ]

    def truth(self) -> dict[str, TicketTruth]:
        truths: dict[str, TicketTruth] = {}
        for ticket in self.tickets.values():
            statuses = ticket.statuses()
            entries = _resolutions(statuses)
            replies = ticket.human_replies()
            state = ticket.state
            truths[str(ticket.id)] = TicketTruth(
                status=state.status.lower(),
                priority=PRIORITY_NAMES[state.priority],
                agent_id=None if state.agent is None else str(state.agent),
                group_id=str(GROUP_BASE + state.group),
                customer_id=str(ticket.requester),
                category=ticket.category.lower(),
                channel_code=ticket.source,
                created_at=ticket.created_at,
                first_response_at=replies[0].at if replies else None,
                resolved_at=entries[-1] if entries and state.status in _RESOLVED else None,
                last_resolved_at=entries[-1] if entries else None,
                first_resolved_at=entries[0] if entries else None,
                agent_replies=len(replies),
                reopens=len(_reopened(statuses)),
                statuses=tuple(statuses),
            )
        return truths

    # -- changes while a sync runs ---------------------------------------------------------------

    def reply_and_resolve(self, ticket_id: int, at: int) -> None:
        """An agent answers the ticket and resolves it at ``at`` (a late update)."""
        ticket = self.tickets[ticket_id]
        state = ticket.state
        agent = state.agent or _AGENT_BASE + 1
        notes = sum(1 for a in ticket.activities if a.kind == NOTE)
        reply = Activity(at, agent, NOTE, ticket.id * 1000 + notes + 1, 0, -1, state.status, state.priority,
                         agent, state.group, state.issue_type)  # fmt: skip
        resolve = Activity(at + 60, agent, STATUS, 0, -1, -1, "Resolved", state.priority, agent, state.group,
                           state.issue_type)  # fmt: skip
        ticket.activities.extend([reply, resolve])

    def bulk_update(self, ticket_ids: list[int], at: int) -> None:
        """A bulk action at ``at`` tags every ticket: all share one ``updated_at`` second."""
        for ticket_id in ticket_ids:
            state = self.tickets[ticket_id].state
            self.tickets[ticket_id].activities.append(
                Activity(at, None, ADDED_TAGS, 0, -1, 0, state.status, state.priority, state.agent, state.group,
                         state.issue_type)
            )  # fmt: skip

    def exchange(self, ticket_id: int, at: int, messages: int) -> None:
        """The customer and the agent write ``messages`` times in turn from ``at``, a minute apart."""
        ticket = self.tickets[ticket_id]
        state = ticket.state
        agent = state.agent or min(self.agents)
        notes = sum(1 for a in ticket.activities if a.kind == NOTE)
        for k in range(messages):
            writer = ticket.requester if k % 2 == 0 else agent
            ticket.activities.append(
                Activity(at + 60 * k, writer, NOTE, ticket.id * 1000 + notes + k + 1, 0, -1, state.status,
                         state.priority, state.agent, state.group, state.issue_type)
            )  # fmt: skip

    # -- the server ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v2/tickets", self._tickets),
                Route("/api/v2/tickets/{ticket_id:int}/conversations", self._conversations),
                Route("/api/v2/agents", self._agents),
                Route("/api/v2/groups", self._groups),
                Route("/api/v2/export/ticket_activities", self._export),
                Route("/activities-export-production/{day}.json", self._export_file),
            ]
        )

    async def _guard(self, request: Request, credits: int) -> Response | None:
        """Auth, scripted faults and the credit limit; None when the request may be answered."""
        key = await page_key(request)
        with self._lock:
            self.requests.append((request.url.path, dict(request.query_params)))
            number = len(self.requests)
            fault = self.faults.get(number)
            down = self.pages.refuses(key)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        elif fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return JSONResponse({"code": "fault", "message": "injected"}, fault.status, headers=headers)
        if down:
            return JSONResponse({"code": "service_unavailable"}, 503)
        expected = "Basic " + base64.b64encode(f"{API_KEY}:X".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse(
                {
                    "code": "invalid_credentials",
                    "message": "You have to be logged in to perform this action.",
                },
                401,
            )
        with self._lock:
            now = self.clock()
            while self._spent and now - self._spent[0][0] >= 60:
                self._spent.popleft()
            used = sum(c for _, c in self._spent)
            if used + credits > self.credits_per_minute:
                self.throttled += 1
                # Credits free up as the oldest requests leave the one-minute window.
                freed, wait = used + credits - self.credits_per_minute, 0.0
                for at, spent in self._spent:
                    freed -= spent
                    wait = 60 - (now - at)
                    if freed <= 0:
                        break
                # The body is not documented (clients read only the header): a plausible one.
                return JSONResponse(
                    {"code": "too_many_requests", "message": "Rate limit exceeded"},
                    429,
                    headers={"Retry-After": str(max(1, math.ceil(wait))), **self._rate(used, 0)},
                )
            self._spent.append((now, credits))
            request.state.rate = self._rate(used + credits, credits)
        return None

    def _rate(self, used: int, current: int) -> dict[str, str]:
        return {
            "X-RateLimit-Total": str(self.credits_per_minute),
            "X-RateLimit-Remaining": str(max(0, self.credits_per_minute - used)),
            "X-RateLimit-Used-CurrentRequest": str(current),
            "X-Freshdesk-API-Version": "latest=v2; requested=v2",
        }

    def _answer(self, request: Request, body: Any, status: int = 200, link: str | None = None) -> Response:
        headers = dict(request.state.rate)
        if link is not None:
            headers["Link"] = f'<{link}>; rel="next"'
        return Response(record_text(body), status, headers=headers, media_type="application/json")

    @staticmethod
    def _validation(field_name: str, message: str) -> dict[str, Any]:
        return {"description": "Validation failed",
                "errors": [{"field": field_name, "message": message, "code": "invalid_value"}]}  # fmt: skip

    def _paged(self, request: Request, items: list[Any]) -> tuple[list[Any], str | None, int]:
        """One page of ``items`` and the Link of the next; the page number asked."""
        query = request.query_params
        page = int(query.get("page", "1"))
        per_page = min(100, int(query.get("per_page", "30")))
        chunk = items[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(items)
        link = str(request.url.include_query_params(page=page + 1, per_page=per_page)) if more else None
        return chunk, link, page

    async def _tickets(self, request: Request) -> Response:
        query = request.query_params
        includes = frozenset(i for i in query.get("include", "").split(",") if i)
        refused = await self._guard(request, 1 + 2 * len(includes))
        if refused is not None:
            return refused
        if not includes <= _INCLUDES:
            return self._answer(request, self._validation("include", "It should be one of these values: 'requester,stats,description'"), 400)  # fmt: skip
        order_by = query.get("order_by", "created_at")
        if order_by not in _ORDERS:
            return self._answer(request, self._validation("order_by", "It should be one of these values: 'created_at,due_by,updated_at,status'"), 400)  # fmt: skip
        if int(query.get("page", "1")) > self.page_cap:
            return self._answer(request, self._validation("page", f"You cannot access tickets beyond the {self.page_cap}th page. Please provide a smaller page number."), 400)  # fmt: skip
        tickets = list(self.tickets.values())
        if "updated_since" in query:
            since = datetime.fromisoformat(query["updated_since"].replace("Z", "+00:00")).timestamp()
            tickets = [t for t in tickets if t.updated_at >= since]
        else:  # Freshdesk's default: the tickets created in the last 30 days only
            horizon = (datetime.now(UTC) - _DEFAULT_WINDOW).timestamp()
            tickets = [t for t in tickets if t.created_at >= horizon]
        key: Callable[[FakeTicket], Any] = {
            "created_at": lambda t: (t.created_at, t.id),
            "due_by": lambda t: (t.created_at + 86_400, t.id),
            "updated_at": lambda t: (t.updated_at, t.id),
            "status": lambda t: (STATUS_CODES[t.state.status], t.id),
        }[order_by]
        tickets.sort(key=key, reverse=query.get("order_type", "desc") == "desc")
        chunk, link, _ = self._paged(request, tickets)
        body = [self.ticket_json(t, includes) for t in chunk]
        key = await page_key(request)
        with self._lock:
            if self.duplicate_tickets and self._sent_tickets:
                body.append(self._sent_tickets[len(self._sent_tickets) // 2])
            self._sent_tickets.extend(body)
            page = self.pages.sent(key)
        answer = self._answer(request, body, link=link)
        if page is not None and self.after_tickets_page is not None:
            self.after_tickets_page(page)
        return answer

    async def _conversations(self, request: Request) -> Response:
        refused = await self._guard(request, 1)
        if refused is not None:
            return refused
        ticket = self.tickets.get(request.path_params["ticket_id"])
        if ticket is None:
            return self._answer(request, {"code": "access_denied"}, 404)
        items = self.conversations_json(ticket)
        chunk, link, page = self._paged(request, items)
        if self.duplicate_conversations and page > 1:
            chunk = [items[0], *chunk]
        return self._answer(request, chunk, link=link)

    async def _agents(self, request: Request) -> Response:
        refused = await self._guard(request, 1)
        if refused is not None:
            return refused
        agents = [
            {"id": agent_id, "available": True, "occasional": False, "ticket_scope": 1, "created_at": iso(0),
             "updated_at": iso(0), "contact": {"active": True, "email": f"agent{agent_id}@desk.example.com",
             "name": name, "phone": None, "mobile": None, "job_title": None, "language": "en"}}
            for agent_id, name in sorted(self.agents.items())
        ]  # fmt: skip
        chunk, link, _ = self._paged(request, agents)
        return self._answer(request, chunk, link=link)

    async def _groups(self, request: Request) -> Response:
        refused = await self._guard(request, 1)
        if refused is not None:
            return refused
        # Not in the reference beyond its path: id and name as Freshdesk's group objects have them.
        groups = [{"id": GROUP_BASE + i, "name": name, "description": None, "created_at": iso(0), "updated_at": iso(0)}
                  for i, name in enumerate(GROUPS)]  # fmt: skip
        chunk, link, _ = self._paged(request, groups)
        return self._answer(request, chunk, link=link)

    async def _export(self, request: Request) -> Response:
        refused = await self._guard(request, 1)
        if refused is not None:
            return refused
        if not self.export_enabled:
            return self._answer(request, {"code": "access_denied", "message": "You are not authorized to perform this action."}, 403)  # fmt: skip
        day = date.fromisoformat(request.query_params["created_at"])
        if day not in self.exports:
            return self._answer(request, {"code": "not_found"}, 404)
        url = request.url_for("_export_file", day=day.isoformat()).include_query_params(
            **{"X-Amz-Expires": "300", "X-Amz-Signature": f"sig{day:%Y%m%d}"}
        )
        return self._answer(request, {"export": [{"created_at": f"{day}T10:00:00Z", "url": str(url)}]})

    async def _export_file(self, request: Request) -> Response:
        self.file_requests.append(dict(request.headers))
        day = date.fromisoformat(request.path_params["day"])
        if request.query_params.get("X-Amz-Signature") != f"sig{day:%Y%m%d}":
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml")
        return Response(self.exports[day], media_type="application/json")


def build_account(tickets: int, *, seed: int, end: datetime, days: int) -> FreshdeskAccount:
    """An account of ``tickets`` tickets created in the ``days`` days before ``end`` (their
    activities until ``end``), with one activities export per day, each named by the date its
    window ends (the day it was produced)."""
    columns = generate_activity_columns(tickets, seed, end, days)
    rows = {name: column.tolist() for name, column in columns.items()}
    by_ticket: dict[int, FakeTicket] = {}
    agents: set[int] = set()
    for i in range(len(rows["ticket_id"])):
        ticket_id = rows["ticket_id"][i]
        performer = None if rows["performer_type"][i] == 1 else rows["performer_id"][i]
        if rows["kind"][i] == NEW_TICKET:
            by_ticket[ticket_id] = FakeTicket(ticket_id, rows["source"][i], rows["requester_id"][i],
                                              CATEGORIES[rows["category"][i]], PRODUCTS[rows["product"][i]], [])  # fmt: skip
        ticket = by_ticket[ticket_id]
        agent = rows["agent_id"][i] or None
        ticket.activities.append(
            Activity(rows["performed_at"][i], performer, rows["kind"][i], rows["note_id"][i], rows["note_type"][i],
                     rows["tag"][i], STATUS_NAMES[rows["status"][i]], rows["priority"][i], agent, rows["group"][i],
                     ISSUE_TYPES[rows["issue_type"][i]])
        )  # fmt: skip
        if agent is not None:
            agents.add(agent)
        if performer is not None and performer != ticket.requester:
            agents.add(performer)
    stop = end.astimezone(UTC)
    files = generate_exports(tickets, seed=seed, end=end, days=days)
    exports = {
        (stop - timedelta(days=days - 1 - k)).date(): orjson.dumps(export) for k, export in enumerate(files)
    }
    return FreshdeskAccount(by_ticket, {a: f"Agent {a - _AGENT_BASE}" for a in sorted(agents)}, exports)
