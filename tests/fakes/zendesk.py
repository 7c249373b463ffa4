"""A Zendesk Support account behind a local server, as /work/shared/reference/zendesk_support.md
describes it: HTTP Basic ``{email}/token:{token}``; the cursor-based incremental ticket export
(``start_time`` on the first request, ``cursor`` after it; ``after_cursor`` / ``after_url`` /
``before_*`` / ``end_of_stream``; ``per_page`` up to 1000; ``include=metric_sets``; deleted tickets
with status ``deleted``; nothing changed in the last minute); the time-based ticket event export
(``end_time`` / ``next_page`` / ``count`` / ``end_of_stream``, pages that grow past ``per_page`` when
timestamps tie, comments as ``Comment`` children only with ``include=comment_events``); users and
ticket metrics with cursor pagination (``page[size]`` up to 100, ``meta.has_more`` /
``meta.after_cursor``); 10 requests a minute on incremental exports and 700 on the rest, past which
429 ``text/plain`` ``Number of allowed API requests per minute exceeded`` with ``Retry-After``.

Not captured by the reference, so a design choice of this fake: a missing or too recent
``start_time`` is a 400, the 401 body, and whole minutes of the metrics rounded down.

The account is the desk simulated by ``supportlens.demo.activities`` told as Zendesk tells it: each
user's update of a ticket at one moment is one audit (``Create`` children for a new ticket's fields
and its first comment, ``Change`` children, ``Comment`` children, ``Notification`` children for the
acknowledgement e-mails); Freshdesk's statuses become Zendesk's (both waiting-on-customer statuses
``pending``, waiting on a third party ``hold``, resolved ``solved``); a new ticket is ``new`` until
it is assigned.  Solved tickets get a satisfaction rating, some good, some bad, some only offered.
:meth:`ZendeskAccount.truth` gives each ticket's values and metrics by METRICS.md's definitions and
:meth:`ZendeskAccount.metric_set` its metrics by Zendesk's rules, both computed here from the
audits (independently of SupportLens's code).

Injected faults: scripted answers by request number (429 bursts, 5xx, delays past the client's
timeout), an outage after some export pages (a crash between two pages), tickets repeated on later
pages, and a hook after each export page that may update tickets while the sync runs.
"""

from __future__ import annotations

import asyncio
import base64
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from supportlens.demo.activities import (
    ADDED_TAGS,
    AGENT,
    CATEGORIES,
    GROUP,
    ISSUE_TYPE,
    ISSUE_TYPES,
    NEW_TICKET,
    NOTE,
    PRIORITY,
    PRODUCTS,
    SEND_EMAIL,
    STATUS,
    STATUS_NAMES,
    SYSTEM,
    TAGS,
    generate_activity_columns,
)
from tests.fakes.server import Fault, SentPages, page_key

EMAIL = "admin@acme.example.com"
API_TOKEN = "zd-token-0123456789abcdef"
SYSTEM_USER = -1
CATEGORY_FIELD = 360_001
PRODUCT_FIELD = 360_002
GROUP_BASE = 360_000_100
STATUS_OF = {"Open": "open", "Pending": "pending", "Waiting for Customer": "pending",
             "Waiting for Third Party": "hold", "Resolved": "solved", "Closed": "closed"}  # fmt: skip
PRIORITY_OF = {1: "low", 2: "normal", 3: "high", 4: "urgent"}
TYPE_OF = {"Question": "question", "Incident": "incident", "Problem": "problem", "Feature Request": "task"}
CHANNEL_OF = {1: "email", 2: "web", 3: "voice", 7: "chat", 9: "web_widget", 10: "email", 12: "api"}
_VIA = {"email": "Mail", "web": "Web form", "voice": "Voice", "chat": "Chat", "web_widget": "Web Widget",
        "api": "Web service"}  # fmt: skip
_RESOLVED = frozenset({"solved", "closed"})
_RATING_DELAY = 1_800  # the requester answers the survey half an hour after the solve
RATE_LIMITED_BODY = "Number of allowed API requests per minute exceeded"


def iso(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _untoken(token: str) -> str:
    return base64.b64decode(token.encode()).decode()


@dataclass
class Audit:
    """One update of a ticket by one updater (``SYSTEM_USER`` for triggers and automations)."""

    id: int
    at: int
    updater: int
    via: str
    children: list[dict[str, Any]]


@dataclass
class FakeTicket:
    id: int
    requester: int
    channel: str
    category: str
    product: str
    audits: list[Audit] = field(default_factory=list)
    rating: str = "unoffered"  # offered, unoffered, good, bad
    deleted_at: int | None = None

    @property
    def created_at(self) -> int:
        return self.audits[0].at

    @property
    def updated_at(self) -> int:
        return max(self.audits[-1].at, self.deleted_at or 0)

    @property
    def creator(self) -> int:
        return self.audits[0].updater

    def add(self, at: int, updater: int, via: str, children: list[dict[str, Any]]) -> Audit:
        """A new audit at ``at``; its children get ids derived from the audit's."""
        audit = Audit(self.id * 1000 + len(self.audits) + 1, at, updater, via, [])
        for number, child in enumerate(children, start=1):
            child = {"id": audit.id * 16 + number, "via": via, "via_reference_id": None, **child}
            if child["event_type"] == "Comment":
                child["audit_id"], child["created_at"] = audit.id, iso(at)
            audit.children.append(child)
        self.audits.append(audit)
        self.audits.sort(key=lambda a: (a.at, a.id))
        return audit

    def fields(self) -> dict[str, Any]:
        """The ticket's fields now: every Create and Change child, in order."""
        found: dict[str, Any] = {}
        for audit in self.audits:
            for child in audit.children:
                if child["event_type"] in ("Create", "Change"):
                    name = next(k for k in child if k not in _CHILD_KEYS)
                    found[name] = child[name]
        return found

    def statuses(self) -> list[tuple[int, str]]:
        return [
            (audit.at, child["status"])
            for audit in self.audits
            for child in audit.children
            if "status" in child and child["event_type"] in ("Create", "Change")
        ]

    def comments(self) -> list[tuple[int, int, bool]]:
        """(time, author, public) of every comment, the ticket's description first."""
        return [
            (audit.at, child["author_id"], child["public"])
            for audit in self.audits
            for child in audit.children
            if child["event_type"] == "Comment"
        ]


_CHILD_KEYS = frozenset({"id", "via", "via_reference_id", "previous_value", "event_type"})


def _create(name: str, value: Any) -> dict[str, Any]:
    return {name: value, "event_type": "Create"}


def _change(name: str, value: Any, previous: Any) -> dict[str, Any]:
    return {name: value, "previous_value": previous, "event_type": "Change"}


def _comment(author: int, public: bool, channel: str, body: str) -> dict[str, Any]:
    return {"via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}}, "type": "Comment",
            "author_id": author, "body": body, "html_body": f'<div class="zd-comment"><p>{body}</p></div>',
            "public": public, "attachments": [], "event_type": "Comment"}  # fmt: skip


def _entries(statuses: list[tuple[int, str]]) -> list[int]:
    """When the ticket became resolved: each change into solved or closed from an unresolved status."""
    before = [None, *(status for _, status in statuses)]
    return [at for (at, status), prior in zip(statuses, before, strict=False)
            if status in _RESOLVED and prior not in _RESOLVED]  # fmt: skip


def _solves(statuses: list[tuple[int, str]]) -> list[int]:
    """Zendesk's resolutions: each change into solved, and a close straight from an unsolved status."""
    before = [None, *(status for _, status in statuses)]
    return [at for (at, status), prior in zip(statuses, before, strict=False)
            if status == "solved" or (status == "closed" and prior not in _RESOLVED)]  # fmt: skip


def _seconds_in(statuses: list[tuple[int, str]], end: int) -> dict[str, int]:
    spent: dict[str, int] = {}
    for (at, status), stop in zip(statuses, [*[s[0] for s in statuses[1:]], end], strict=True):
        spent[status] = spent.get(status, 0) + max(0, min(stop, end) - at)
    return spent


@dataclass(frozen=True)
class TicketTruth:
    """A ticket as METRICS.md sees it, computed from the audits."""

    status: str
    priority: str
    agent_id: str | None
    group_id: str
    customer_id: str
    category: str
    channel: str
    created_at: int
    first_response_at: int | None
    resolved_at: int | None  # the last entry into a resolved status, while resolved
    first_resolved_at: int | None
    agent_replies: int
    reopens: int
    satisfaction: int | None
    statuses: tuple[tuple[int, str], ...]

    def seconds_in_status(self, as_of: int) -> dict[str, int]:
        return _seconds_in(list(self.statuses), as_of)


@dataclass
class ZendeskAccount:
    tickets: dict[int, FakeTicket]
    agents: dict[int, str]  # id -> name
    end_users: frozenset[int]
    incremental_per_minute: int = 10
    account_per_minute: int = 700
    clock: Callable[[], float] = time.monotonic  # for the rate limits (tests: their fake clock)
    faults: dict[int, Fault] = field(default_factory=dict)  # by request number (1-based)
    pages: SentPages = field(default_factory=SentPages)  # export pages, and the outage after some
    duplicate_tickets: bool = False  # each ticket export page also repeats a ticket sent before
    after_export_page: Callable[[int], None] | None = None  # called with the export page count
    # What happened (for assertions):
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # path, query
    throttled: int = 0  # 429 answers for the rate limits (not scripted faults)
    _sent: dict[str, deque[float]] = field(
        default_factory=lambda: {"incremental": deque(), "account": deque()}
    )
    _sent_tickets: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the account's records, as the API shows them ------------------------------------------

    def is_agent(self, user: int) -> bool:
        return user in self.agents

    def ticket_json(self, ticket: FakeTicket) -> dict[str, Any]:
        now = ticket.fields()
        rating: dict[str, Any] = {"score": ticket.rating}
        if ticket.rating in ("good", "bad"):
            rating = {"id": ticket.id * 10, "score": ticket.rating, "comment": f"{ticket.rating} service"}
        subject = f"Ticket {ticket.id}: {now.get('type') or 'request'} about {ticket.product}"
        return {
            "id": ticket.id,
            "url": f"https://acme.zendesk.com/api/v2/tickets/{ticket.id}.json",
            "external_id": None,
            "type": now.get("type"),
            "subject": subject,
            "raw_subject": subject,
            "description": f"Request {ticket.id}",
            "priority": now.get("priority"),
            "status": "deleted" if ticket.deleted_at is not None else now["status"],
            "recipient": "support@acme.example.com",
            "requester_id": ticket.requester,
            "submitter_id": ticket.creator if ticket.creator != SYSTEM_USER else ticket.requester,
            "assignee_id": now.get("assignee_id"),
            "organization_id": None,
            "group_id": now.get("group_id"),
            "collaborator_ids": [],
            "follower_ids": [],
            "problem_id": None,
            "has_incidents": False,
            "due_at": None,
            "tags": now.get("tags") or [],
            "custom_fields": [
                {"id": CATEGORY_FIELD, "value": ticket.category},
                {"id": PRODUCT_FIELD, "value": ticket.product},
            ],
            "satisfaction_rating": rating,
            "sharing_agreement_ids": [],
            "from_messaging_channel": False,
            "via": {"channel": ticket.channel},
            "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at),
            "generated_timestamp": ticket.updated_at,
        }

    def metric_set(self, ticket: FakeTicket) -> dict[str, Any]:
        """Zendesk's ticket metrics: first reply is the first public comment of an agent (the
        second on a ticket an agent created with a public comment); first resolution the first
        solve; full resolution the latest solve, kept when the ticket is reopened; wait times up
        to the latest solve.  Whole minutes, rounded down; business minutes equal calendar ones
        (the account's schedule is 24/7)."""
        created = ticket.created_at
        statuses = ticket.statuses()
        public = [at for at, author, shown in ticket.comments() if shown and self.is_agent(author)]
        if self.is_agent(ticket.creator) and ticket.comments()[0][2]:
            public = public[1:]
        solves = _solves(statuses)
        last_solve = solves[-1] if solves else None
        spent = _seconds_in(statuses, last_solve) if last_solve is not None else None
        assigned = [a.at for a in ticket.audits for c in a.children if "assignee_id" in c]

        def minutes(seconds: int | None) -> dict[str, int | None]:
            value = None if seconds is None else seconds // 60
            return {"calendar": value, "business": value}

        def waited(*names: str) -> dict[str, int | None]:
            return minutes(None if spent is None else sum(spent.get(n, 0) for n in names))

        return {
            "id": 5_000_000 + ticket.id,
            "ticket_id": ticket.id,
            "url": f"https://acme.zendesk.com/api/v2/ticket_metrics/{5_000_000 + ticket.id}.json",
            "created_at": iso(created),
            "updated_at": iso(ticket.updated_at),
            "group_stations": 1
            + sum(
                1
                for a in ticket.audits
                for c in a.children
                if "group_id" in c and c["event_type"] == "Change"
            ),
            "assignee_stations": len(assigned),
            "reopens": sum(1 for a, b in pairwise(statuses) if a[1] in _RESOLVED and b[1] not in _RESOLVED),
            "replies": len(public),
            "assignee_updated_at": iso(max(assigned, default=None)),
            "requester_updated_at": iso(
                max((a.at for a in ticket.audits if a.updater == ticket.requester), default=None)
            ),
            "status_updated_at": iso(statuses[-1][0]),
            "custom_status_updated_at": iso(statuses[-1][0]),
            "initially_assigned_at": iso(min(assigned, default=None)),
            "assigned_at": iso(max(assigned, default=None)),
            "solved_at": iso(last_solve),
            "latest_comment_added_at": iso(ticket.comments()[-1][0]),
            "reply_time_in_minutes": minutes(public[0] - created if public else None),
            "reply_time_in_seconds": {"calendar": None},  # Messaging tickets only
            "first_resolution_time_in_minutes": minutes(solves[0] - created if solves else None),
            "full_resolution_time_in_minutes": minutes(None if last_solve is None else last_solve - created),
            "agent_wait_time_in_minutes": waited("pending"),
            "requester_wait_time_in_minutes": waited("new", "open", "hold"),
            "on_hold_time_in_minutes": waited("hold"),
        }

    def truth(self) -> dict[str, TicketTruth]:
        """Every ticket not deleted, by METRICS.md: human replies are agents' public comments, less
        the first on a ticket an agent created (the request)."""
        truths: dict[str, TicketTruth] = {}
        for ticket in self.tickets.values():
            if ticket.deleted_at is not None:
                continue
            now = ticket.fields()
            statuses = ticket.statuses()
            entries = _entries(statuses)
            replies = [at for at, author, shown in ticket.comments() if shown and self.is_agent(author)]
            if self.is_agent(ticket.creator):
                replies = replies[1:]
            assignee = now.get("assignee_id")
            truths[str(ticket.id)] = TicketTruth(
                status=now["status"],
                priority={"normal": "medium"}.get(now["priority"], now["priority"]),
                agent_id=None if assignee is None else str(assignee),
                group_id=str(now["group_id"]),
                customer_id=str(ticket.requester),
                category=ticket.category.lower(),
                channel=ticket.channel,
                created_at=ticket.created_at,
                first_response_at=replies[0] if replies else None,
                resolved_at=entries[-1] if entries and now["status"] in _RESOLVED else None,
                first_resolved_at=entries[0] if entries else None,
                agent_replies=len(replies),
                reopens=sum(1 for a, b in pairwise(statuses) if a[1] in _RESOLVED and b[1] not in _RESOLVED),
                satisfaction={"good": 5, "bad": 1}.get(ticket.rating),
                statuses=tuple(statuses),
            )
        return truths

    # -- changes while a sync runs ---------------------------------------------------------------

    def reply_and_solve(self, ticket_id: int, at: int) -> None:
        """The assignee answers the ticket and solves it at ``at``, in one update."""
        ticket = self.tickets[ticket_id]
        now = ticket.fields()
        agent = now.get("assignee_id") or min(self.agents)
        children = [
            _comment(agent, True, "web", "Solved, see above"),
            _change("status", "solved", now["status"]),
        ]
        if now.get("assignee_id") is None:
            children.append(_change("assignee_id", agent, None))
        ticket.add(at, agent, "Web form", children)

    def bulk_tag(self, ticket_ids: Iterable[int], at: int) -> None:
        """A trigger tags every ticket at ``at``: all those updates share one second."""
        for ticket_id in ticket_ids:
            ticket = self.tickets[ticket_id]
            tags = ticket.fields().get("tags") or []
            ticket.add(at, SYSTEM_USER, "Rule", [_change("tags", sorted({*tags, "bulk"}), tags)])

    def delete(self, ticket_id: int, at: int) -> None:
        self.tickets[ticket_id].deleted_at = at

    # -- the server ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v2/incremental/tickets/cursor", self._ticket_export),
                Route("/api/v2/incremental/ticket_events", self._event_export),
                Route("/api/v2/users", self._users),
                Route("/api/v2/ticket_metrics", self._ticket_metrics),
            ]
        )

    async def _guard(self, request: Request) -> Response | None:
        """Auth, scripted faults and the rate limits; None when the request may be answered."""
        key = await page_key(request)
        with self._lock:
            self.requests.append((request.url.path, dict(request.query_params)))
            fault = self.faults.get(len(self.requests))
            down = self.pages.refuses(key)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        elif fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return JSONResponse({"error": "fault", "description": "injected"}, fault.status, headers=headers)
        if down:
            return JSONResponse({"error": "ServiceUnavailable"}, 503)
        expected = "Basic " + _token(f"{EMAIL}/token:{API_TOKEN}")
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "Couldn't authenticate you"}, 401)
        incremental = request.url.path.startswith("/api/v2/incremental/")
        bucket = "incremental" if incremental else "account"
        limit = self.incremental_per_minute if incremental else self.account_per_minute
        with self._lock:
            now, sent = self.clock(), self._sent[bucket]
            while sent and now - sent[0] >= 60:
                sent.popleft()
            if len(sent) >= limit:
                self.throttled += 1
                wait = 60 - (now - sent[0])
                headers = {"Retry-After": str(max(1, math.ceil(wait))), "X-Rate-Limit": str(limit),
                           "X-Rate-Limit-Remaining": "0"}  # fmt: skip
                return PlainTextResponse(RATE_LIMITED_BODY, 429, headers=headers)
            sent.append(now)
            request.state.rate = {
                "X-Rate-Limit": str(limit),
                "X-Rate-Limit-Remaining": str(limit - len(sent)),
            }
        return None

    def _answer(self, request: Request, body: Any, status: int = 200) -> Response:
        headers = {**request.state.rate, "Zendesk-Api-Version": "v2"}
        return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")

    def _invalid(self, request: Request, description: str) -> Response:
        return self._answer(request, {"error": "InvalidValue", "description": description}, 400)

    async def _export_page_sent(self, request: Request) -> None:
        key = await page_key(request)
        with self._lock:
            page = self.pages.sent(key)
        if page is not None and self.after_export_page is not None:
            self.after_export_page(page)

    @staticmethod
    def _visible_until() -> int:
        """Data changed in the last minute is never returned."""
        return int(time.time()) - 60

    async def _ticket_export(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        query = request.query_params
        includes = {i for i in query.get("include", "").split(",") if i}
        if "last_audits" in includes:
            return self._invalid(request, "last_audits is not allowed on incremental exports")
        per_page = min(1000, int(query.get("per_page", "1000")))
        if "cursor" in query:
            generated, ticket_id = _untoken(query["cursor"]).split("||")
            position = (int(float(generated)), int(ticket_id.rstrip("|")))
        elif "start_time" in query:
            start = int(query["start_time"])
            if start > self._visible_until():
                return self._invalid(request, "start_time must be at least one minute in the past")
            position = (start, -1)  # every ticket generated at start_time or later
        else:
            return self._invalid(request, "start_time is required")
        ordered = sorted(
            (t for t in self.tickets.values() if t.updated_at <= self._visible_until()),
            key=lambda t: (t.updated_at, t.id),
        )
        after = [t for t in ordered if (t.updated_at, t.id) > position]
        chunk = after[:per_page]
        body = [self.ticket_json(t) for t in chunk]
        with self._lock:
            if self.duplicate_tickets and self._sent_tickets:
                body.append(self._sent_tickets[len(self._sent_tickets) // 2])
            self._sent_tickets.extend(body)

        def cursor(key: tuple[int, int]) -> str:
            return _token(f"{key[0]}.0||{key[1]}|")

        last = (chunk[-1].updated_at, chunk[-1].id) if chunk else position
        after_cursor = cursor(last)
        before_cursor = cursor((chunk[0].updated_at, chunk[0].id)) if chunk else None
        base = str(request.url.remove_query_params(list(query.keys())))
        answer: dict[str, Any] = {
            "after_cursor": after_cursor,
            "after_url": f"{base}?cursor={after_cursor}",
            "before_cursor": before_cursor,
            "before_url": None if before_cursor is None else f"{base}?cursor={before_cursor}",
            "end_of_stream": len(after) <= per_page,
            "tickets": body,
        }
        if "metric_sets" in includes:
            answer["metric_sets"] = [self.metric_set(t) for t in chunk if t.deleted_at is None]
        response = self._answer(request, answer)
        await self._export_page_sent(request)
        return response

    def _audit_json(self, ticket: FakeTicket, audit: Audit, comments: bool) -> dict[str, Any]:
        shown = [c for c in audit.children if comments or c["event_type"] != "Comment"]
        body: dict[str, Any] = {
            "id": audit.id,
            "ticket_id": ticket.id,
            "timestamp": audit.at,
            "created_at": iso(audit.at),
            "updater_id": audit.updater,
            "via": audit.via,
            "system": {
                "client": "Mozilla/5.0",
                "ip_address": "203.0.113.7",
                "location": "Halifax, NS, Canada",
            },
            "event_type": "Audit",
            "merged_ticket_ids": [],
            "child_events": shown,
        }
        if not comments:
            said = [c for c in audit.children if c["event_type"] == "Comment"]
            body["comment_present"] = bool(said)
            body["comment_public"] = any(c["public"] for c in said)
        return body

    async def _event_export(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        query = request.query_params
        if "start_time" not in query:
            return self._invalid(request, "start_time is required")
        start = int(query["start_time"])
        if start > self._visible_until():
            return self._invalid(request, "start_time must be at least one minute in the past")
        per_page = min(1000, int(query.get("per_page", "1000")))
        comments = "comment_events" in query.get("include", "").split(",")
        until = self._visible_until()
        audits = sorted(
            ((a, t) for t in self.tickets.values() for a in t.audits if start <= a.at <= until),
            key=lambda pair: (pair[0].at, pair[0].id),
        )
        chunk = audits[:per_page]
        if chunk:  # a page never ends inside a second: every event of its last second is on it
            chunk = [pair for pair in audits if pair[0].at <= chunk[-1][0].at]
        end_time = chunk[-1][0].at if chunk else start
        answer = {
            "ticket_events": [self._audit_json(t, a, comments) for a, t in chunk],
            "next_page": str(request.url.include_query_params(start_time=end_time)),
            "count": len(chunk),
            "end_time": end_time,
            "end_of_stream": len(chunk) == len(audits),
        }
        response = self._answer(request, answer)
        await self._export_page_sent(request)
        return response

    def _cursor_page(self, request: Request, key: str, items: list[tuple[int, dict[str, Any]]]) -> Response:
        """Cursor pagination of ``items`` (id, object) in id order."""
        query = request.query_params
        size = min(100, int(query.get("page[size]", "100")))
        after = int(_untoken(query["page[after]"])) if "page[after]" in query else None
        rest = [(i, item) for i, item in items if after is None or i > after]
        chunk = rest[:size]
        more = len(rest) > size
        after_cursor = _token(str(chunk[-1][0])) if chunk else None
        following = str(request.url.include_query_params(**{"page[after]": after_cursor})) if more else None
        return self._answer(
            request,
            {
                key: [item for _, item in chunk],
                "meta": {"has_more": more, "after_cursor": after_cursor,
                         "before_cursor": _token(str(chunk[0][0])) if chunk else None},
                "links": {"next": following, "prev": None},
            },
        )  # fmt: skip

    async def _users(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        roles = set(request.query_params.getlist("role[]")) or {"end-user", "agent", "admin"}
        admin = min(self.agents)
        people = [(a, "admin" if a == admin else "agent", name) for a, name in self.agents.items()]
        people += [(u, "end-user", f"Customer {u}") for u in self.end_users]
        users = [
            (user, {"id": user, "url": f"https://acme.zendesk.com/api/v2/users/{user}.json", "name": name,
                    "email": f"user{user}@example.com", "role": role, "active": True, "suspended": False,
                    "created_at": iso(0), "updated_at": iso(0), "time_zone": "UTC"})
            for user, role, name in sorted(people)
            if role in roles
        ]  # fmt: skip
        return self._cursor_page(request, "users", users)

    async def _ticket_metrics(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        metrics = [(t.id, self.metric_set(t)) for t in sorted(self.tickets.values(), key=lambda t: t.id)
                   if t.deleted_at is None]  # fmt: skip
        return self._cursor_page(request, "ticket_metrics", metrics)


def _audit_of(
    ticket: FakeTicket, rows: list[dict[str, Any]], state: dict[str, Any], agents: set[int]
) -> None:
    """One audit: the simulated activities of one performer on one ticket at one moment."""
    first = rows[0]
    system = first["performer_type"] == SYSTEM
    updater = SYSTEM_USER if system else int(first["performer_id"])
    via = _VIA[ticket.channel] if first["kind"] == NEW_TICKET else "Rule" if system else "Web form"
    children: list[dict[str, Any]] = []

    def change(name: str, value: Any) -> None:
        if state.get(name) != value:
            children.append(_change(name, value, state.get(name)))
            state[name] = value

    for row in rows:
        kind = row["kind"]
        if kind == NEW_TICKET:
            agent = int(row["agent_id"]) or None
            state.update(status="open" if agent else "new", priority=PRIORITY_OF[row["priority"]],
                         type=TYPE_OF[ISSUE_TYPES[row["issue_type"]]], group_id=GROUP_BASE + row["group"],
                         assignee_id=agent, requester_id=ticket.requester, tags=[])  # fmt: skip
            children += [_create(name, state[name]) for name in ("status", "priority", "type", "group_id",
                                                                 "requester_id", "assignee_id") if state[name]]  # fmt: skip
            author = ticket.requester if system else updater  # a bot relays the customer's words
            children.append(_comment(author, True, ticket.channel, f"Request {ticket.id}"))
        elif kind == NOTE:
            author = SYSTEM_USER if system else updater
            children.append(_comment(author, row["note_type"] != 3, ticket.channel, f"Note {row['note_id']}"))
        elif kind == STATUS:
            change("status", STATUS_OF[STATUS_NAMES[row["status"]]])
        elif kind == PRIORITY:
            change("priority", PRIORITY_OF[row["priority"]])
        elif kind == AGENT:
            change("assignee_id", int(row["agent_id"]) or None)
            if state["status"] == "new":  # Zendesk opens a new ticket once it is assigned
                change("status", "open")
        elif kind == GROUP:
            change("group_id", GROUP_BASE + row["group"])
        elif kind == ISSUE_TYPE:
            change("type", TYPE_OF[ISSUE_TYPES[row["issue_type"]]])
        elif kind == ADDED_TAGS:
            change("tags", sorted({*state["tags"], TAGS[row["tag"]]}))
        elif kind == SEND_EMAIL:
            children.append({"subject": "Request received", "body": "We got your request.",
                             "recipients": [ticket.requester], "event_type": "Notification"})  # fmt: skip
        if not system and kind != NEW_TICKET and updater != ticket.requester:
            agents.add(updater)
        if row["agent_id"]:
            agents.add(int(row["agent_id"]))
    ticket.add(int(first["performed_at"]), updater, via, children)


def _rate(ticket: FakeTicket, end: int) -> None:
    """A survey after the last solve: good, bad or unanswered by ticket id, answered half an hour
    later if the ticket stays solved that long."""
    statuses = ticket.statuses()
    if statuses[-1][1] not in _RESOLVED:
        return
    solved = _entries(statuses)[-1]
    answer = ("offered", "good", "good", "good", "bad", "unoffered")[ticket.id % 6]
    later = [at for at, _ in statuses if at > solved and at < solved + _RATING_DELAY]
    if answer not in ("good", "bad") or later or solved + _RATING_DELAY >= end:
        ticket.rating = "offered" if answer != "unoffered" else answer
        return
    ticket.rating = answer
    rating = {"score": answer, "assignee_id": ticket.fields().get("assignee_id"), "body": f"{answer} service",
              "event_type": "SatisfactionRating"}  # fmt: skip
    ticket.add(solved + _RATING_DELAY, ticket.requester, "Web form", [rating])


def build_account(tickets: int, *, seed: int, end: datetime, days: int) -> ZendeskAccount:
    """An account of ``tickets`` tickets created in the ``days`` days before ``end``, their
    updates until ``end``."""
    columns = generate_activity_columns(tickets, seed, end, days)
    rows = [
        dict(zip(columns, values, strict=True))
        for values in zip(*(c.tolist() for c in columns.values()), strict=True)
    ]
    by_ticket: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_ticket.setdefault(row["ticket_id"], []).append(row)
    account: dict[int, FakeTicket] = {}
    agents: set[int] = set()
    for ticket_id, activities in by_ticket.items():
        first = activities[0]
        ticket = FakeTicket(ticket_id, first["requester_id"], CHANNEL_OF[first["source"]],
                            CATEGORIES[first["category"]], PRODUCTS[first["product"]])  # fmt: skip
        state: dict[str, Any] = {}
        group: list[dict[str, Any]] = []
        for row in activities:
            if group and (row["performed_at"], row["performer_type"], row["performer_id"]) != (
                group[0]["performed_at"], group[0]["performer_type"], group[0]["performer_id"]):  # fmt: skip
                _audit_of(ticket, group, state, agents)
                group = []
            group.append(row)
        _audit_of(ticket, group, state, agents)
        _rate(ticket, int(end.timestamp()))
        account[ticket_id] = ticket
    requesters = frozenset(t.requester for t in account.values())
    return ZendeskAccount(account, {a: f"Agent {a - 149_000}" for a in sorted(agents)}, requesters)
