"""A HubSpot account behind a local CRM v3 server, as /work/shared/reference/hubspot_crm_v3.md
describes it: ``Authorization: Bearer``; every property value a string or null (datetimes as ISO
strings with milliseconds, durations as millisecond numbers in strings, enumerations upper-case,
ids strings); ticket search (``POST /crm/v3/objects/tickets/search``) with filter groups (ORed) of
filters (ANDed), one honoured sort (object or plain-string form), ``limit`` clamped at 200,
numeric-offset ``after``, ``total``, ``paging`` absent on the last page, the documented default
properties, archived tickets never found; owners (``id`` strings, ``userId`` ints, active or
``archived=true`` only, 100 a page at most); ticket pipelines with ``metadata.ticketState``.

Limits, as the reference gives them (the limits are attributes, so tests can make them bite):

* a search serves at most ``search_cap`` results (HubSpot: 10,000); asking for ``after`` at or past
  it answers 400 ``VALIDATION_ERROR`` (HubSpot's exact message is not documented: a plausible one);
* filters: at most 5 groups of at most 6 filters, 18 in all (the current docs' figures); a body of
  at most 3,000 characters;
* search: ``search_per_second`` (5) requests a second, 429 ``SECONDLY`` past it, without the
  ``X-HubSpot-RateLimit-*`` headers (search answers never carry them); every request:
  ``per_ten_seconds`` (100, the Free/Starter figure) per rolling 10 s, 429 ``TEN_SECONDLY_ROLLING``;
  ``daily`` (250,000), 429 ``DAILY``.  No ``Retry-After`` (not guaranteed by HubSpot).

The ground truth (:meth:`HubSpotAccount.truth`) is what each ticket is, computed here from the
fake's own model (stage → status name as docs/connectors/hubspot.md states it), not by SupportLens.

Injected faults: scripted answers by request number (429 of any policy, 5xx, delays past the
client's timeout), an outage after some search pages (a crash between two pages), stale copies of
tickets sent before on later pages, calculated properties null in search answers, malformed values,
and a hook after each search page that may update tickets while the sync runs.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import Fault as ServedFault
from tests.fakes.server import SentPages, page_key

TOKEN = "pat-na1-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
OPEN, CLOSED = "OPEN", "CLOSED"
# (pipeline id, label, [(stage id, label, ticketState)]): HubSpot's default pipeline and two custom
# ones, whose stage ids are large numbers (custom ids vary by portal).
PIPELINES: list[tuple[str, str, list[tuple[str, str, str]]]] = [
    ("0", "Support Pipeline", [("1", "New", OPEN), ("2", "Waiting on contact", OPEN),
                               ("3", "Waiting on us", OPEN), ("4", "Closed", CLOSED)]),
    ("7781234", "Escalations", [("7781235", "Triage", OPEN), ("7781236", "With engineering", OPEN),
                                ("7781237", "Done", CLOSED), ("7781238", "Resolved", CLOSED)]),
    ("9901001", "Internal IT", [("9901002", "Open", OPEN), ("9901003", "Closed", CLOSED)]),
]  # fmt: skip
# What each stage is called in SupportLens (docs/connectors/hubspot.md): its label, except a CLOSED
# stage whose label is not a resolved status name, which is "closed".
EXPECTED_STATUS = {
    "1": "new",
    "2": "waiting on contact",
    "3": "waiting on us",
    "4": "closed",
    "7781235": "triage",
    "7781236": "with engineering",
    "7781237": "closed",  # "Done"
    "7781238": "resolved",
    "9901002": "open",
    "9901003": "closed",
}
CLOSED_STAGES = frozenset(s for _, _, stages in PIPELINES for s, _, state in stages if state == CLOSED)
PRIORITIES = ["LOW", "MEDIUM", "HIGH", "URGENT", ""]  # empty: no priority
CATEGORIES = ["PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY", None]
SOURCES = ["EMAIL", "CHAT", "PHONE", "FORM"]
DATETIMES = frozenset({"createdate", "hs_lastmodifieddate", "closed_date", "first_agent_reply_date"})
NUMBERS = frozenset({"hs_object_id", "time_to_first_agent_reply", "time_to_close"})
SEARCH_DEFAULTS = ("content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority",
                   "subject", "createdate", "hs_lastmodifieddate", "hs_object_id")  # fmt: skip
ALWAYS = ("hs_object_id", "createdate", "hs_lastmodifieddate")
SEARCH_PATH = "/crm/v3/objects/tickets/search"
_OWNER_BASE = 41_629_779
_USER_BASE = 9_586_504


def iso(milliseconds: int | None) -> str | None:
    if milliseconds is None:
        return None
    moment = datetime.fromtimestamp(milliseconds / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"


def _ms(value: str) -> int:
    """Filter values: epoch milliseconds or ISO strings."""
    if value.lstrip("-").isdigit():
        return int(value)
    return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class FakeTicket:
    id: int
    created: int  # epoch ms
    modified: int
    pipeline: str
    stage: str
    priority: str
    category: str | None
    owner: str | None
    source: str
    first_reply: int | None  # the first agent e-mail reply
    closed: int | None  # the last close (kept when reopened, like hs_last_closed_date)
    hidden: frozenset[str] = frozenset()  # calculated properties search answers with null
    archived: bool = False
    garbled: dict[str, str] = field(default_factory=dict)  # values sent malformed (a fault)

    def properties(self) -> dict[str, str | None]:
        values: dict[str, str | None] = {
            "hs_object_id": str(self.id),
            "subject": f"Ticket {self.id}: {(self.category or 'question').lower().replace('_', ' ')}",
            "content": f"Hello, about ticket {self.id}",
            "hs_pipeline": self.pipeline,
            "hs_pipeline_stage": self.stage,
            "hs_ticket_priority": self.priority,
            "hs_ticket_category": self.category,
            "hubspot_owner_id": self.owner,
            "source_type": self.source,
            "createdate": iso(self.created),
            "hs_lastmodifieddate": iso(self.modified),
            "closed_date": iso(self.closed),
            "first_agent_reply_date": iso(self.first_reply),
            "time_to_first_agent_reply": None
            if self.first_reply is None
            else str(self.first_reply - self.created),
            "time_to_close": None if self.closed is None else str(self.closed - self.created),
        }
        for name in self.hidden:
            values[name] = None
        return {**values, **self.garbled}

    def record(self, properties: Iterable[str]) -> dict[str, Any]:
        values = self.properties()
        return {
            "id": str(self.id),
            "properties": {name: values.get(name) for name in properties},
            "createdAt": iso(self.created),
            "updatedAt": iso(self.modified),
            "archived": False,
        }


@dataclass(frozen=True)
class TicketTruth:
    status: str
    priority: str | None
    agent_id: str | None
    category: str | None
    channel: str
    created_at: int  # ms
    first_response_at: int | None
    resolved_at: int | None
    pipeline: str


@dataclass(frozen=True)
class Owner:
    id: str
    user_id: int
    first_name: str
    last_name: str
    email: str
    archived: bool = False

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": "2019-12-25T13:01:35.228Z",
            "updatedAt": "2023-08-22T13:40:26.790Z",
            "archived": self.archived,
            "teams": [{"id": "368389", "name": "Support Team", "primary": True}],
        }


@dataclass
class Fault(ServedFault):
    """What the server answers instead, for one request; a 429 names the limit it hit."""

    policy: str = "SECONDLY"


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class HubSpotAccount:
    tickets: dict[int, FakeTicket]
    owners: list[Owner]
    pipelines: list[tuple[str, str, list[tuple[str, str, str]]]] = field(
        default_factory=lambda: [(p, label, list(stages)) for p, label, stages in PIPELINES]
    )
    expected_status: dict[str, str] = field(default_factory=lambda: dict(EXPECTED_STATUS))
    search_cap: int = 10_000
    search_per_second: int = 5
    per_ten_seconds: int = 100
    daily: int = 250_000
    clock: Callable[[], float] = time.monotonic  # for the rate limits (tests: their fake clock)
    faults: dict[int, Fault] = field(default_factory=dict)  # by request number (1-based)
    pages: SentPages = field(default_factory=SentPages)  # search pages, and the outage after some
    stale_copies: bool = False  # each search page starts with a ticket as an earlier page sent it
    after_search_page: Callable[[int], None] | None = None  # called with the page count
    # What happened (for assertions):
    requests: list[tuple[str, str, dict[str, str], Any]] = field(
        default_factory=list
    )  # method, path, query, body
    throttled: dict[str, int] = field(default_factory=dict)  # 429s by policy (not scripted faults)
    _searches: deque[float] = field(default_factory=deque)
    _all: deque[float] = field(default_factory=deque)
    _day: int = 0
    _sent: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the ground truth --------------------------------------------------------------------------

    def truth(self, pipelines: Iterable[str] | None = None) -> dict[str, TicketTruth]:
        counted = None if pipelines is None else set(pipelines)
        return {
            str(t.id): TicketTruth(
                status=self.expected_status[t.stage],
                priority=t.priority.lower() or None,
                agent_id=t.owner,
                category=None if t.category is None else t.category.lower(),
                channel=t.source.lower(),
                created_at=t.created,
                first_response_at=t.first_reply,
                resolved_at=t.closed,
                pipeline=t.pipeline,
            )
            for t in self.tickets.values()
            if not t.archived and (counted is None or t.pipeline in counted)
        }

    # -- changes while a sync runs ---------------------------------------------------------------

    def touch(self, ticket_ids: Iterable[int], at: int) -> None:
        """A bulk edit at ``at``: every ticket shares one ``hs_lastmodifieddate`` millisecond."""
        for ticket_id in ticket_ids:
            self.tickets[ticket_id].modified = at

    def reply_and_close(self, ticket_id: int, at: int) -> None:
        ticket = self.tickets[ticket_id]
        if ticket.first_reply is None:
            ticket.first_reply = at
        ticket.stage = next(s for p, _, stages in self.pipelines if p == ticket.pipeline
                            for s, _, state in stages if state == CLOSED)  # fmt: skip
        ticket.closed = at + 60_000
        ticket.modified = at + 60_000

    def move(self, ticket_id: int, stage: str, at: int) -> None:
        self.tickets[ticket_id].stage = stage
        self.tickets[ticket_id].modified = at

    def add_stage(self, pipeline_id: str, stage: tuple[str, str, str], status: str) -> None:
        """A new stage (id, label, ticketState), and the status SupportLens should call it."""
        self.expected_status[stage[0]] = status
        for pipeline, _, stages in self.pipelines:
            if pipeline == pipeline_id:
                stages.append(stage)

    # -- the server --------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(SEARCH_PATH, self._search, methods=["POST"]),
                Route("/crm/v3/owners", self._owners),
                Route("/crm/v3/owners/", self._owners),
                Route("/crm/v3/pipelines/tickets", self._pipelines),
            ]
        )

    def search_bodies(self) -> list[dict[str, Any]]:
        return [body for method, path, _, body in self.requests if path == SEARCH_PATH]

    @staticmethod
    def _error(status: int, category: str, message: str, headers: dict[str, str] | None = None) -> Response:
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }
        return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")

    @staticmethod
    def _limited(policy: str, headers: dict[str, str] | None = None) -> Response:
        messages = {
            "SECONDLY": "You have reached your secondly limit.",
            "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
            "DAILY": "You have reached your daily limit.",
        }
        body = {"status": "error", "message": messages[policy], "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()), "policyName": policy, "requestId": str(uuid.uuid4())}  # fmt: skip
        return Response(orjson.dumps(body), 429, headers=headers, media_type="application/json")

    def _rate_headers(self, used: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily - self._day)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.per_ten_seconds),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.per_ten_seconds - used)),
        }

    async def _guard(self, request: Request, *, search: bool) -> Response | dict[str, str]:
        """Auth, scripted faults and the rate limits: an answer refusing the request, or the
        rate-limit headers for the answer (none for search)."""
        raw = await request.body()
        body = orjson.loads(raw) if search and raw else None
        key = await page_key(request)
        with self._lock:
            self.requests.append((request.method, request.url.path, dict(request.query_params), body))
            number = len(self.requests)
            fault = self.faults.get(number)
            down = self.pages.refuses(key)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        elif fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            if fault.status == 429:
                return self._limited(fault.policy, headers)
            return self._error(fault.status, "INTERNAL_ERROR", "injected", headers)
        if down:
            return self._error(503, "SERVICE_UNAVAILABLE", "Service unavailable")
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            )
        with self._lock:
            now = self.clock()
            for sent, window in ((self._all, 10.0), (self._searches, 1.0)):
                while sent and now - sent[0] >= window:
                    sent.popleft()
            if self._day >= self.daily:
                return self._count_throttle("DAILY")
            if len(self._all) >= self.per_ten_seconds:
                return self._count_throttle("TEN_SECONDLY_ROLLING", self._rate_headers(len(self._all)))
            if search and len(self._searches) >= self.search_per_second:
                return self._count_throttle("SECONDLY")
            self._all.append(now)
            self._day += 1
            if search:
                self._searches.append(now)
                return {}
            return self._rate_headers(len(self._all))

    @property
    def used_today(self) -> int:
        return self._day

    def _count_throttle(self, policy: str, headers: dict[str, str] | None = None) -> Response:
        self.throttled[policy] = self.throttled.get(policy, 0) + 1
        return self._limited(policy, headers)

    @staticmethod
    def _json(body: Any, headers: dict[str, str]) -> Response:
        return Response(orjson.dumps(body), 200, headers=headers, media_type="application/json")

    async def _pipelines(self, request: Request) -> Response:
        guarded = await self._guard(request, search=False)
        if isinstance(guarded, Response):
            return guarded
        stamp = {"createdAt": "2019-10-30T03:30:17.883Z", "updatedAt": "2019-12-07T16:50:06.678Z"}
        results = [
            {"id": pipeline, "label": label, "displayOrder": order, "archived": False, **stamp,
             "stages": [{"id": stage, "label": name, "displayOrder": k, "archived": False,
                         "metadata": {"ticketState": state}, **stamp}
                        for k, (stage, name, state) in enumerate(stages)]}
            for order, (pipeline, label, stages) in enumerate(self.pipelines)
        ]  # fmt: skip
        return self._json({"results": results}, guarded)

    async def _owners(self, request: Request) -> Response:
        guarded = await self._guard(request, search=False)
        if isinstance(guarded, Response):
            return guarded
        query = request.query_params
        archived = query.get("archived", "false").lower() == "true"
        limit = min(100, int(query.get("limit", "100")))
        owners = [o for o in self.owners if o.archived == archived]
        start = int(query.get("after", "0"))
        chunk = owners[start : start + limit]
        body: dict[str, Any] = {"results": [o.json() for o in chunk]}
        if start + limit < len(owners):
            after = str(start + limit)
            body["paging"] = {
                "next": {"after": after, "link": f"{request.url.path}?after={after}&limit={limit}"}
            }
        return self._json(body, guarded)

    async def _search(self, request: Request) -> Response:
        guarded = await self._guard(request, search=True)
        if isinstance(guarded, Response):
            return guarded
        raw = await request.body()
        try:
            answer = self._answer_search(raw)
        except BadRequest as bad:
            return self._error(400, "VALIDATION_ERROR", bad.message)
        key = await page_key(request)
        with self._lock:
            if self.stale_copies and self._sent and answer["results"]:  # ahead of the page's own
                answer["results"].insert(0, self._sent[len(self._sent) // 2])
            self._sent.extend(answer["results"][:3])
            page = self.pages.sent(key)
        response = self._json(answer, guarded)
        if page is not None and self.after_search_page is not None:
            self.after_search_page(page)
        return response

    def _answer_search(self, raw: bytes) -> dict[str, Any]:
        if len(raw) > 3_000:
            raise BadRequest("The request body exceeds the maximum of 3000 characters.")
        body = orjson.loads(raw)
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
            raise BadRequest("Too many filter groups or filters: at most 5 groups of 6 filters.")
        if sum(len(g.get("filters") or []) for g in groups) > 18:
            raise BadRequest("Too many filters: at most 18 in all.")
        limit = min(200, int(body.get("limit", 10)))
        after = int(body.get("after") or 0)
        if after >= self.search_cap:
            raise BadRequest(f"Paging is limited to {self.search_cap} results; 'after' was {after}.")
        matching = [
            t for t in self.tickets.values()
            if not t.archived and (not groups or any(_matches(t, g.get("filters") or []) for g in groups))
        ]  # fmt: skip
        _sort(matching, body.get("sorts") or [])
        chunk = matching[after : min(after + limit, self.search_cap)]
        properties = body.get("properties") or list(SEARCH_DEFAULTS)
        names = list(dict.fromkeys([*properties, *ALWAYS]))
        answer: dict[str, Any] = {"total": len(matching), "results": [t.record(names) for t in chunk]}
        if after + limit < len(matching):
            answer["paging"] = {"next": {"after": str(after + limit), "link": f"?after={after + limit}"}}
        return answer


def _value(ticket: FakeTicket, name: str) -> Any:
    value = ticket.properties().get(name)
    if value is None:
        return None
    if name in DATETIMES:
        return _ms(value)
    if name in NUMBERS:
        return int(value)
    return value


def _operand(name: str, value: Any) -> Any:
    text = str(value)
    if name in DATETIMES:
        return _ms(text)
    if name in NUMBERS:
        return int(text)
    return text


def _matches(ticket: FakeTicket, filters: list[dict[str, Any]]) -> bool:
    """Whether the ticket passes every filter of a group."""
    return all(_passes(ticket, condition) for condition in filters)


def _passes(ticket: FakeTicket, condition: dict[str, Any]) -> bool:
    name: str = condition["propertyName"]
    operator: str = condition["operator"]
    have = _value(ticket, name)
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return (have is not None) == (operator == "HAS_PROPERTY")
    if operator in ("IN", "NOT_IN"):
        wanted = {_operand(name, v) for v in condition.get("values") or []}
        return (have in wanted) == (operator == "IN")
    if have is None:
        return operator in ("NEQ", "NOT_CONTAINS_TOKEN")
    want = _operand(name, condition.get("value"))
    match operator:
        case "EQ":
            return bool(have == want)
        case "NEQ":
            return bool(have != want)
        case "LT":
            return bool(have < want)
        case "LTE":
            return bool(have <= want)
        case "GT":
            return bool(have > want)
        case "GTE":
            return bool(have >= want)
        case "BETWEEN":
            return bool(want <= have <= _operand(name, condition.get("highValue")))
        case "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN":
            found = str(want).lower() in str(have).lower().split()
            return found == (operator == "CONTAINS_TOKEN")
    raise BadRequest(f"Unknown filter operator {operator!r}.")


def _sort(tickets: list[FakeTicket], sorts: list[Any]) -> None:
    """The first sort only (HubSpot honours one); ties in an order of HubSpot's own (here: the
    newest id first, so that nothing may rely on ties coming by id)."""
    if not sorts:
        tickets.sort(key=lambda t: t.id)
        return
    first = sorts[0]
    name, descending = (first, False) if isinstance(first, str) else (
        first["propertyName"], first.get("direction", "ASCENDING") == "DESCENDING")  # fmt: skip
    tickets.sort(key=lambda t: -t.id)
    present = [t for t in tickets if _value(t, name) is not None]
    missing = [t for t in tickets if _value(t, name) is None]
    present.sort(key=lambda t: _value(t, name), reverse=descending)
    tickets[:] = present + missing


def _later(rng: random.Random, start: int, low: int, high: int, stop: int) -> int:
    """A moment ``low`` to ``high`` ms after ``start``, never after ``stop``."""
    span = stop - start
    return start + rng.randint(min(low, span), min(high, span))


def build_account(size: int, *, seed: int, end: datetime, days: int) -> HubSpotAccount:
    """``size`` tickets created in the ``days`` days before ``end``, last modified by ``end``, over
    the three pipelines (a few archived), owned by 12 owners (2 of them archived) or nobody."""
    rng = random.Random(seed)
    stop = int(end.timestamp() * 1000)
    first = stop - days * 86_400_000
    owners = [
        Owner(str(_OWNER_BASE + 17 * k), _USER_BASE + k, f"Agent{k}", f"Surname{k}",
              f"agent{k}@acme.example.com", archived=k >= 10)
        for k in range(12)
    ]  # fmt: skip
    tickets: dict[int, FakeTicket] = {}
    for n in range(size):
        ticket_id = 1_000 + n * 3
        created = rng.randint(first, stop - 3_600_000)
        pipeline, _, stages = rng.choices(PIPELINES, weights=[70, 20, 10])[0]
        stage, _, state = rng.choice(stages)
        source = rng.choice(SOURCES)
        replied = state == CLOSED or rng.random() < 0.6
        # Chat replies are not e-mail replies: HubSpot's first agent reply fields stay empty.
        first_reply = _later(rng, created, 30_000, 86_400_000, stop) if replied and source != "CHAT" else None
        closed = _later(rng, created, 3_600_000, 5 * 86_400_000, stop) if state == CLOSED else None
        if closed is None and rng.random() < 0.08:  # reopened: the last close stays
            closed = _later(rng, created, 600_000, 86_400_000, stop)
        if first_reply is not None and closed is not None and first_reply > closed:
            first_reply, closed = closed, first_reply
        moments = [m for m in (created, first_reply, closed) if m is not None]
        modified = min(stop, max(moments) + rng.randint(0, 3_600_000))
        hidden = rng.choice([frozenset(), frozenset(), frozenset(), frozenset({"first_agent_reply_date"}),
                             frozenset({"time_to_first_agent_reply"}), frozenset({"closed_date"}),
                             frozenset({"time_to_close"})])  # fmt: skip
        tickets[ticket_id] = FakeTicket(
            id=ticket_id,
            created=created,
            modified=max(modified, created),
            pipeline=pipeline,
            stage=stage,
            priority=rng.choice(PRIORITIES),
            category=rng.choice(CATEGORIES),
            owner=rng.choice([*[o.id for o in owners], None]),
            source=source,
            first_reply=first_reply,
            closed=closed,
            hidden=hidden,
            archived=rng.random() < 0.01,
        )
    return HubSpotAccount(tickets, owners)
