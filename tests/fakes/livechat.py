"""A LiveChat account behind a local Agent Chat Web API v3.5 + Configuration API v3.5 server, as
/work/shared/reference/livechat_v35.md describes it: every method a ``POST`` of JSON; a personal
access token as HTTP Basic ``<account_id>:<token>`` or an OAuth token as ``Bearer`` (a ``fra-``
token needs ``X-Region: fra``, else ``misdirected_request``); ``list_archives`` with one entry per
thread, ``filters.from`` / ``filters.to`` in RFC 3339 with microseconds, ``sort_order`` (default
desc), ``limit`` (default 10, 1..100) on the first request only and then ``page_id`` alone (with
anything else: a ``validation`` error); ``found_chats``, ``next_page_id`` only while there is a next
page, ``previous_page_id`` after the first; bots as agent-type users with 32-hex ids; thread
ratings as ``properties.rating.score`` 0 / 1; threads past the plan's history as
``restricted_access`` without events; ``list_agents`` and ``list_bots`` as bare arrays; errors as
``{"error": {"type", "message"}}``; a configurable request limit answered with 429
``too_many_requests`` (the docs publish no numbers and no ``Retry-After``: sent only if set).

The account is simulated here: customers start chats (some come back: a chat's later threads), a
human agent answers, or a bot first, which hands over to a human (a transfer to an agent or a group,
or a human simply writing) or handles the chat alone; agents transfer chats, leave internal notes;
chats are archived by the agent, the customer leaving or inactivity, or unanswered for lack of
agents; customers rate some of them good or bad (and change or cancel their rating).  Each thread
is kept as the list of actions that happened (:class:`Action`); both the API's JSON and the ground
truth (:meth:`LiveChatAccount.truth`) are derived from those actions, independently of SupportLens.

Injected faults: scripted answers by request number (429 bursts, 5xx, delays past the client's
timeout), an outage after some pages of archives (a crash between two pages), entries repeated on
later pages, entries missing a field, and a hook after each page that may change the account while
the sync runs.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import string
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import PageKey, SentPages, page_key

ACCOUNT_ID = "5f0c1c2e-0b1a-4c5e-9d7e-1a2b3c4d5e6f"
PAT = "dal:pat-0123456789abcdef"
OAUTH_FRA = "fra-oauth-fedcba9876543210"
GROUPS = {0: "General", 1: "Billing", 2: "Technical support"}
AGENTS = {f"{first.lower()}.{last.lower()}@acme.example": f"{first} {last}" for first, last in (
    ("Sarah", "Johnson"), ("Tom", "Becker"), ("Ana", "Lopez"), ("Kenji", "Sato"), ("Maria", "Rossi"),
    ("Omar", "Haddad"), ("Lena", "Novak"), ("Piotr", "Wozniak"))}  # fmt: skip
BOTS = {"2c1b8da190222160e8f9e077af4c625b": "ChatBot", "7f3e0c9a1b2d4e5f60718293a4b5c6d7": "Order Bot"}
# A bot list_bots does not show (another owner's, or a token without the bots scope).
UNLISTED_BOT = ("9a8b7c6d5e4f30211203f4e5d6c7b8a9", "Legacy Bot")
TAGS = ("billing", "bug", "feedback", "refund", "sales", "spam")
RESTRICTED = "You can't access threads older than 60 days on starter plan"
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})")
_FILTERS = frozenset({"from", "to"})  # the filters this fake implements (others are refused)


def iso(ms: int) -> str:
    """LiveChat's event times: UTC with microseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _code(rng: random.Random, size: int = 10) -> str:
    return "".join(rng.choices(string.ascii_uppercase + string.digits, k=size))


@dataclass(frozen=True)
class Action:
    """One thing that happened in a thread.  ``kind``: ``form`` (prechat), ``customer``, ``file``
    (the customer's), ``agent`` (a public message), ``note`` (agents only), ``bot``,
    ``transfer`` (``who`` transfers to the user ``target``, or to the group named ``target``),
    ``reassign`` (routing: to ``target`` from ``who``), ``close`` (``who``: the agent, the
    customer, or None: inactivity, or ``target`` "offline": no agent answered),
    ``rate`` (``target``: "good" / "bad"), ``cancel_rating``."""

    at: int  # epoch ms
    kind: str
    who: str | None = None
    target: str | None = None


@dataclass
class FakeThread:
    chat_id: str
    id: str
    customer: str
    group: int
    tags: tuple[str, ...]
    actions: list[Action]
    created_at: int
    previous: str | None = None
    following: str | None = None

    @property
    def ticket_id(self) -> str:
        return f"{self.chat_id}:{self.id}"

    @property
    def active(self) -> bool:
        return not any(a.kind == "close" for a in self.actions)

    @property
    def rating(self) -> str | None:
        """The rating in force: the last one given, unless canceled since."""
        last = None
        for action in self.actions:
            if action.kind == "rate":
                last = action.target
            elif action.kind == "cancel_rating":
                last = None
        return last


@dataclass(frozen=True)
class ThreadTruth:
    """A thread (a ticket) as METRICS.md sees it, computed from its actions."""

    status: str
    agent_id: str | None
    customer_id: str
    group_id: str
    created_at: int
    first_response_at: int | None
    resolved_at: int | None
    score: int | None
    agent_replies: int | None  # None: no activity log to count them in
    bot_replies: int
    handoffs: int
    tags: tuple[str, ...]


@dataclass
class Fault:
    """What the server answers instead, for one request."""

    status: int = 503
    error: str = "service_unavailable"
    delay: float = 0.0  # seconds before answering normally (past the client's timeout: a timeout)


def _is_bot(user_id: str | None) -> bool:
    return user_id in BOTS or user_id == UNLISTED_BOT[0]


def thread_truth(thread: FakeThread, *, restricted: bool = False) -> ThreadTruth:
    """Replays the thread's actions: who handles it (bots never as assignee), replies, the end."""
    assignee: str | None = None
    bot: str | None = None
    handoffs = agent_replies = bot_replies = 0
    first_response: int | None = None
    closed: int | None = None

    def hand_to(target: str | None) -> None:
        nonlocal assignee, bot, handoffs
        if _is_bot(target):
            assignee, bot = None, target
            return
        assignee = target
        if bot is not None:
            handoffs, bot = handoffs + 1, None

    for action in thread.actions:
        if action.kind == "agent":
            if assignee is None:
                hand_to(action.who)
            agent_replies += 1
            first_response = action.at if first_response is None else first_response
        elif action.kind == "bot":
            bot_replies += 1
            bot = bot or (action.who if assignee is None else None)
        elif action.kind == "transfer":
            hand_to(action.target if action.target in AGENTS or _is_bot(action.target) else None)
        elif action.kind == "reassign":
            hand_to(action.target)
        elif action.kind == "close":
            closed = action.at
    rating = thread.rating
    if restricted:  # only what the entry without events shows
        return ThreadTruth(
            "open" if closed is None else "closed", None, thread.customer, str(thread.group),
            thread.created_at, None, None, _SCORES.get(rating or ""), None, 0, 0, thread.tags,
        )  # fmt: skip
    return ThreadTruth(
        status="open" if closed is None else "closed",
        agent_id=assignee,
        customer_id=thread.customer,
        group_id=str(thread.group),
        created_at=thread.created_at,
        first_response_at=first_response,
        resolved_at=closed,
        score=_SCORES.get(rating or ""),
        agent_replies=agent_replies,
        bot_replies=bot_replies,
        handoffs=handoffs,
        tags=thread.tags,
    )


_SCORES = {"good": 5, "bad": 1}  # the connector's documented convention


@dataclass
class LiveChatAccount:
    threads: dict[str, FakeThread]  # by thread id, in creation order
    customers: dict[str, str]  # id -> name
    requests_per_minute: int = 180  # not published by LiveChat: configurable
    retry_after: int | None = None  # a Retry-After header on 429 (not documented: off)
    history_days: int | None = None  # the starter plan's 60 days; None: all history
    bots_scope: bool = True  # whether the token may list bots
    broken: set[str] = field(default_factory=set)  # threads served without their created_at
    clock: Callable[[], float] = time.monotonic  # for the rate limit (tests: their fake clock)
    faults: dict[int, Fault] = field(default_factory=dict)  # by request number (1-based)
    pages: SentPages = field(default_factory=SentPages)  # archive pages, and the outage after some
    duplicate_entries: bool = False  # each page after the first also repeats an entry sent before
    after_page: Callable[[int], None] | None = None  # called with the page count
    # What happened (for assertions):
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # action, body
    throttled: int = 0  # 429 answers for the limit (not scripted faults)
    _sent: deque[float] = field(default_factory=deque)
    _sent_entries: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- ground truth ---------------------------------------------------------------------------

    def truth(self) -> dict[str, ThreadTruth]:
        return {t.ticket_id: thread_truth(t, restricted=self._restricted(t)) for t in self.threads.values()}

    def _restricted(self, thread: FakeThread) -> bool:
        if self.history_days is None:
            return False
        horizon = (datetime.now(UTC) - timedelta(days=self.history_days)).timestamp() * 1000
        return thread.created_at < horizon

    # -- changes while or after a sync runs -----------------------------------------------------

    def act(self, thread_id: str, *actions: Action) -> None:
        self.threads[thread_id].actions.extend(actions)

    # -- the API's JSON -------------------------------------------------------------------------

    def entry(self, thread: FakeThread) -> dict[str, Any]:
        """One ``list_archives`` entry: the chat with this thread."""
        people: dict[str, None] = {}
        for action in thread.actions:
            for user in (action.who, action.target):
                if user is not None and user != thread.customer and (user in AGENTS or _is_bot(user)):
                    people[user] = None
        users = [self._customer_json(thread.customer), *(self._agent_json(p) for p in people)]
        body: dict[str, Any] = {
            "id": thread.id,
            "active": thread.active,
            "created_at": iso(thread.created_at),
            "user_ids": [u["id"] for u in users],
            "properties": self._thread_properties(thread),
            "access": {"group_ids": [thread.group]},
        }
        if thread.tags:
            body["tags"] = list(thread.tags)
        if thread.previous:
            body["previous_thread_id"] = body["previous_accessible_thread_id"] = thread.previous
        if thread.following:
            body["next_thread_id"] = body["next_accessible_thread_id"] = thread.following
        if thread.id in self.broken:
            del body["created_at"]
        if self._restricted(thread):
            body["restricted_access"] = RESTRICTED
        else:
            body["events"] = self._events(thread)
        return {
            "id": thread.chat_id,
            "users": users,
            "thread": body,
            "properties": {"routing": {"continuous": False}},
            "access": {"group_ids": [thread.group]},
            "is_followed": False,
        }

    def _customer_json(self, customer: str) -> dict[str, Any]:
        name = self.customers[customer]
        return {
            "id": customer,
            "type": "customer",
            "name": name,
            "email": f"{name.lower().replace(' ', '.')}@example.com",
            "email_verified": False,
            "last_visit": {
                "geolocation": {"country": "Poland", "country_code": "PL", "timezone": "Europe/Warsaw"}
            },
            "statistics": {"chats_count": 1},
            "present": False,
        }

    @staticmethod
    def _agent_json(user: str) -> dict[str, Any]:
        name = AGENTS.get(user) or BOTS.get(user) or UNLISTED_BOT[1]
        body = {"id": user, "name": name, "type": "agent", "present": True, "visibility": "all",
                "avatar": "https://cdn.livechat-files.com/api/file/avatar.png"}  # fmt: skip
        if user in AGENTS:
            body["email"] = user
        return body

    @staticmethod
    def _thread_properties(thread: FakeThread) -> dict[str, Any]:
        properties: dict[str, Any] = {"routing": {"unreplied": False, "idle": False}}
        rating = thread.rating
        if rating is not None:
            properties["rating"] = {"score": 1 if rating == "good" else 0, "comment": ""}
        return properties

    def _name(self, user: str | None) -> str | None:
        if user is None:
            return None
        return AGENTS.get(user) or BOTS.get(user) or self.customers.get(user) or UNLISTED_BOT[1]

    def _events(self, thread: FakeThread) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        prefix = f"Q{thread.id[1:]}"
        for number, action in enumerate(thread.actions, start=1):
            common = {"id": f"{prefix}_{number}", "created_at": iso(action.at), "visibility": "all"}
            events.append({**common, **self._event(thread, action)})
        return events

    def _event(self, thread: FakeThread, action: Action) -> dict[str, Any]:
        name = self._name
        kind = action.kind
        if kind == "form":
            return {"type": "filled_form", "author_id": action.who, "form_id": "1002", "form_type": "prechat",
                    "fields": [{"type": "email", "id": "10022", "label": "E-mail:", "answer": "c@example.com"}]}  # fmt: skip
        if kind in ("customer", "agent", "bot"):
            return {"type": "message", "text": f"A message at {action.at}", "author_id": action.who}
        if kind == "file":
            return {"type": "file", "author_id": action.who, "name": "screenshot.png", "content_type": "image/png",
                    "url": "https://cdn.livechat-files.com/api/file/screenshot.png", "size": 1234}  # fmt: skip
        if kind == "note":
            return {"type": "message", "visibility": "agents", "text": "internal", "author_id": action.who}
        if kind == "transfer":
            target = (
                name(action.target) if action.target in AGENTS or _is_bot(action.target) else action.target
            )
            return self._system("chat_transferred", initiator=name(action.who), targets=target)
        if kind == "reassign":
            return self._system("routing.assigned_inactive", agent_added=name(action.target),
                                agent_removed=name(action.who), duration="3")  # fmt: skip
        if kind == "close":
            if action.target == "offline":
                return self._system("routing.archived_offline")
            if action.who is None:
                return self._system("routing.archived_inactive", duration="30")
            if action.who == thread.customer:
                return self._system("archived_customer_disconnected", customer=name(action.who))
            return self._system("manual_archived_agent", agent=name(action.who))
        if kind == "rate":
            return self._system("rating.chat_rated", customer=name(thread.customer), score=action.target)
        if kind == "cancel_rating":
            return self._system("rating.chat_rating_canceled", customer=name(thread.customer))
        raise ValueError(kind)

    @staticmethod
    def _system(kind: str, **text_vars: str | None) -> dict[str, Any]:
        return {"type": "system_message", "system_message_type": kind, "text": kind.replace("_", " "),
                "text_vars": {k: v for k, v in text_vars.items() if v is not None}}  # fmt: skip

    # -- the server ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v3.5/agent/action/list_archives", self._list_archives, methods=["POST"]),
                Route("/v3.5/configuration/action/list_agents", self._list_agents, methods=["POST"]),
                Route("/v3.5/configuration/action/list_bots", self._list_bots, methods=["POST"]),
            ]
        )

    @staticmethod
    def error(kind: str, message: str, status: int, data: dict[str, Any] | None = None) -> JSONResponse:
        body: dict[str, Any] = {"type": kind, "message": message}
        if data is not None:
            body["data"] = data
        return JSONResponse({"error": body}, status)

    def _authenticated(self, request: Request) -> Response | None:
        given = request.headers.get("authorization", "")
        basic = "Basic " + base64.b64encode(f"{ACCOUNT_ID}:{PAT}".encode()).decode()
        if given == basic:
            return None
        if given == f"Bearer {OAUTH_FRA}":
            if request.headers.get("x-region") != "fra":
                return self.error("misdirected_request", "Wrong region", 421, {"region": "fra"})
            return None
        return self.error("authentication", "Invalid access token", 401)

    async def _guard(self, request: Request, action: str) -> tuple[dict[str, Any], Response | None]:
        """The request's body, and an answer when it may not be served (faults, auth, the limit)."""
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        key = await page_key(request)
        with self._lock:
            self.requests.append((action, body if isinstance(body, dict) else {}))
            number = len(self.requests)
            fault = self.faults.get(number)
            down = self.pages.refuses(key)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        elif fault is not None:
            return {}, self.error(fault.error, "Injected fault", fault.status)
        if down:
            return {}, self.error("service_unavailable", "Service unavailable", 503)
        refused = self._authenticated(request)
        if refused is not None:
            return {}, refused
        if not isinstance(body, dict):
            return {}, self.error("validation", "Request body must be a JSON object", 400)
        with self._lock:
            now = self.clock()
            while self._sent and now - self._sent[0] >= 60:
                self._sent.popleft()
            if len(self._sent) >= self.requests_per_minute:
                self.throttled += 1
                answer = self.error("too_many_requests", "Too many requests", 429)
                if self.retry_after is not None:
                    answer.headers["Retry-After"] = str(self.retry_after)
                return {}, answer
            self._sent.append(now)
        return body, None

    async def _list_agents(self, request: Request) -> Response:
        _, refused = await self._guard(request, "list_agents")
        if refused is not None:
            return refused
        roles = ("owner", "viceowner", "administrator", "normal")
        agents = [{"id": agent_id, "account_id": str(uuid.UUID(int=i + 1)), "name": name, "role": roles[min(i, 3)],
                   "avatar_path": "cdn.livechatinc.com/avatars/1.png", "job_title": "Support Hero",
                   "login_status": "accepting chats", "max_chats_count": 5}
                  for i, (agent_id, name) in enumerate(AGENTS.items())]  # fmt: skip
        return JSONResponse(agents)

    async def _list_bots(self, request: Request) -> Response:
        body, refused = await self._guard(request, "list_bots")
        if refused is not None:
            return refused
        if not self.bots_scope:
            return self.error("authorization", "Insufficient scopes", 403)
        if not body.get("all", False):  # the requester's own bots: none
            return JSONResponse([])
        bots = [
            {"id": bot_id, "name": name, "avatar": "example.com/avatar.jpg"} for bot_id, name in BOTS.items()
        ]
        return JSONResponse(bots)

    async def _list_archives(self, request: Request) -> Response:
        body, refused = await self._guard(request, "list_archives")
        if refused is not None:
            return refused
        if "page_id" in body:
            mixed = sorted(set(body) & {"filters", "limit", "sort_order"})
            if mixed:
                return self.error("validation", f"page_id cannot be used with {', '.join(mixed)}", 400)
            try:
                state = orjson.loads(base64.b64decode(body["page_id"], validate=True))
            except (ValueError, TypeError):
                return self.error("validation", "Invalid page_id", 400)
        else:
            state, problem = self._first_page(body)
            if problem is not None:
                return self.error("validation", problem, 400)
        return self._page(state, await page_key(request))

    @staticmethod
    def _first_page(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        filters = body.get("filters") or {}
        if not isinstance(filters, dict) or set(filters) - _FILTERS:
            return {}, "Unsupported filters in this fake"
        for name in ("from", "to"):
            if name in filters and not (isinstance(filters[name], str) and _TIME.fullmatch(filters[name])):
                return {}, f"filters.{name}: expected YYYY-MM-DDTHH:MM:SS.ssssss+HH:MM"
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            return {}, "limit: must be between 1 and 100"
        order = body.get("sort_order", "desc")
        if order not in ("asc", "desc"):
            return {}, "sort_order: must be asc or desc"
        start = _ms(filters["from"]) if "from" in filters else None
        end = _ms(filters["to"]) if "to" in filters else None
        return {"from": start, "to": end, "limit": limit, "order": order, "after": None, "page": 1}, None

    def _page(self, state: dict[str, Any], key: PageKey) -> Response:
        with self._lock:
            threads = [
                t
                for t in self.threads.values()
                if (state["from"] is None or t.created_at >= state["from"])
                and (state["to"] is None or t.created_at <= state["to"])
            ]
            descending = state["order"] == "desc"
            threads.sort(key=lambda t: (t.created_at, t.id), reverse=descending)
            after = tuple(state["after"]) if state["after"] else None
            if after is not None:  # keyset: the entries past the last one sent
                threads = [t for t in threads if ((t.created_at, t.id) < after if descending else (t.created_at, t.id) > after)]  # fmt: skip
            chunk = threads[: state["limit"]]
            entries = [self.entry(t) for t in chunk]
            if self.duplicate_entries and self._sent_entries:
                entries.append(self._sent_entries[len(self._sent_entries) // 2])
            self._sent_entries.extend(entries)
            page = self.pages.sent(key)
        answer: dict[str, Any] = {
            "chats": entries,
            "found_chats": len(threads) + (state["page"] - 1) * state["limit"],
        }
        if len(threads) > len(chunk):
            last = chunk[-1]
            following = {**state, "after": [last.created_at, last.id], "page": state["page"] + 1}
            answer["next_page_id"] = base64.b64encode(orjson.dumps(following)).decode()
        if state["page"] > 1:
            answer["previous_page_id"] = base64.b64encode(
                orjson.dumps({**state, "page": state["page"] - 1})
            ).decode()
        response = JSONResponse(answer)
        if page is not None and self.after_page is not None:
            self.after_page(page)
        return response


# -- the simulation ------------------------------------------------------------------------------


class _Desk:
    """Generates threads: one conversation each, its actions in time order, cut at ``end``."""

    def __init__(self, rng: random.Random, end: int) -> None:
        self.rng = rng
        self.end = end

    def wait(self, low: float, high: float) -> int:
        """A log-uniform wait in ms between ``low`` and ``high`` seconds."""
        return int(1000 * low * (high / low) ** self.rng.random())

    def agent(self, other_than: str | None = None) -> str:
        return self.rng.choice([a for a in AGENTS if a != other_than])

    def conversation(self, customer: str, start: int) -> list[Action]:
        rng, actions = self.rng, []
        at = start
        if rng.random() < 0.3:
            actions.append(Action(at, "form", customer))
        at += self.wait(1, 20)
        actions.append(Action(at, "customer", customer))
        scenario = rng.choices(("human", "bot_human", "bot_group", "bot_alone", "unlisted_bot", "unanswered"),
                               (55, 12, 8, 10, 7, 8))[0]  # fmt: skip
        agent: str | None = None
        if scenario.startswith("bot") or scenario == "unlisted_bot":
            bot = UNLISTED_BOT[0] if scenario == "unlisted_bot" else rng.choice(list(BOTS))
            for _ in range(rng.randint(1, 3)):
                at += self.wait(1, 5)
                actions.append(Action(at, "bot", bot))
                at += self.wait(5, 90)
                actions.append(Action(at, "customer", customer))
            if scenario == "bot_human":
                agent = self.agent()
                at += self.wait(1, 10)
                actions.append(Action(at, "transfer", bot, agent))
            elif scenario == "bot_group":
                at += self.wait(1, 10)
                actions.append(Action(at, "transfer", bot, rng.choice(list(GROUPS.values()))))
                agent = self.agent()
            elif scenario == "unlisted_bot":
                agent = self.agent()  # a human takes over by writing, no system message
        elif scenario == "human":
            agent = self.agent()
        if agent is not None:
            at = self.work(actions, customer, agent, at)
        if scenario == "unanswered":
            at += self.wait(60, 900)
            actions.append(Action(at, "close", None, "offline"))
        else:
            at += self.wait(30, 1800)
            closer = rng.choice((agent, customer, None)) if agent else rng.choice((customer, None))
            actions.append(Action(at, "close", closer))
            self.rate(actions, at)
        return [a for a in actions if a.at <= self.end]

    def work(self, actions: list[Action], customer: str, agent: str, at: int) -> int:
        rng = self.rng
        at += self.wait(10, 1800)
        actions.append(Action(at, "agent", agent))
        for _ in range(rng.randint(0, 4)):
            at += self.wait(20, 600)
            actions.append(Action(at, "file" if rng.random() < 0.1 else "customer", customer))
            if rng.random() < 0.1:
                at += self.wait(5, 60)
                actions.append(Action(at, "note", agent))
            roll = rng.random()
            if roll < 0.1:
                other = self.agent(agent)
                at += self.wait(5, 60)
                actions.append(Action(at, "transfer", agent, other))
                agent = other
            elif roll < 0.14:
                other = self.agent(agent)
                at += self.wait(60, 300)
                actions.append(Action(at, "reassign", agent, other))
                agent = other
            at += self.wait(20, 900)
            actions.append(Action(at, "agent", agent))
        return at

    def rate(self, actions: list[Action], closed: int) -> None:
        rng = self.rng
        if rng.random() < 0.45:
            at = closed + self.wait(5, 300)
            actions.append(Action(at, "rate", None, rng.choice(("good", "good", "bad"))))
            roll = rng.random()
            if roll < 0.1:
                actions.append(Action(at + self.wait(5, 120), "rate", None, rng.choice(("good", "bad"))))
            elif roll < 0.15:
                actions.append(Action(at + self.wait(5, 120), "cancel_rating"))


def build_account(chats: int, *, seed: int, end: datetime, days: int) -> LiveChatAccount:
    """An account of ``chats`` chats whose first threads started in the ``days`` days before
    ``end``; some customers came back (later threads of the same chat).  Whatever would happen
    after ``end`` has not happened: recent threads are still active."""
    rng = random.Random(seed)
    stop = int(end.timestamp() * 1000)
    desk = _Desk(rng, stop)
    first = stop - days * 86_400_000
    threads: list[FakeThread] = []
    customers: dict[str, str] = {}
    for number in range(chats):
        customer = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        customers[customer] = f"Customer {number}"
        chat_id = _code(rng)
        # A busy last two hours: some threads are still active at ``end``.
        start = rng.randint(stop - 7_200_000 if number % 100 == 0 else first, stop - 60_000)
        previous: FakeThread | None = None
        for _ in range(rng.choices((1, 2, 3), (75, 20, 5))[0]):
            if start > stop - 60_000:
                break
            thread = FakeThread(
                chat_id, _code(rng), customer, rng.choice(list(GROUPS)),
                tuple(sorted(set(rng.sample(TAGS, rng.randint(1, 2))))) if rng.random() < 0.4 else (),
                desk.conversation(customer, start), start,
            )  # fmt: skip
            if previous is not None:
                previous.following, thread.previous = thread.id, previous.id
            threads.append(thread)
            previous = thread
            start += rng.randint(86_400_000, 10 * 86_400_000)
    threads.sort(key=lambda t: t.created_at)
    return LiveChatAccount({t.id: t for t in threads}, customers)
