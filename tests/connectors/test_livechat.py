"""The LiveChat connector against a fake LiveChat account (tests/fakes/livechat.py) through the sync
engine, on real stores: after a sync our tickets and metrics equal the account's ground truth,
thread for thread (bots never counted as agents, bot-to-human handoffs recorded, good / bad ratings
as CSAT); paging follows the docs (filters on the first request, ``page_id`` alone after); 429
bursts, 5xx, timeouts, duplicates, late ratings, threads still active and a crash between two pages
change nothing of that.  Rate limits are kept on a fake clock shared by the client and the fake
server, so nothing really waits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pyarrow.compute as pc
import pytest

from supportlens.connectors.base import Connection
from supportlens.connectors.http import SourceClient, SourceError
from supportlens.connectors.livechat import (
    LIVECHAT,
    ArchiveRecords,
    LiveChatConnector,
    archive_records,
    readable,
    rfc3339,
)
from supportlens.domain.metrics import minutes
from supportlens.ingest.tickets import Rejection
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS
from tests.connectors.harness import SyncTarget, serving, without_retries
from tests.fakes.livechat import (
    ACCOUNT_ID,
    AGENTS,
    BOTS,
    OAUTH_FRA,
    PAT,
    UNLISTED_BOT,
    Action,
    Fault,
    LiveChatAccount,
    ThreadTruth,
    build_account,
)

# Whole hours, an hour back: changes made "after the sync" (after END) are still in the past.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
END_MS = int(END.timestamp() * 1000)


@dataclass
class Desk(SyncTarget):
    """A fake account served on 127.0.0.1, and a sync engine that reads it on the fake clock."""

    account: LiveChatAccount

    def connect(
        self, name: str = "livechat", credentials: dict[str, str] | None = None, **options: Any
    ) -> str:
        return self.connection_of(
            "livechat", name, credentials or {"account_id": ACCOUNT_ID, "token": PAT}, options
        )

    def time_metrics(self) -> dict[str, dict[str, Any]]:
        as_of = (END + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
        return self.by_ticket("ticket_time_metrics", {"as_of": as_of})

    def handoffs(self) -> dict[str, int]:
        tickets = list(self.account.truth())
        events = self.runtime.engine.events_of(self.workspace.id, tickets)
        handoff = events.filter(pc.equal(events.column("field"), "bot_handoff"))
        counted: dict[str, int] = {}
        for ticket in handoff.column("ticket_id").to_pylist():
            counted[ticket] = counted.get(ticket, 0) + 1
        return counted

    def archive_requests(self) -> list[dict[str, Any]]:
        return [body for action, body in self.account.requests if action == "list_archives"]


def _text(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    base = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{base}.{ms % 1000:03d}" if ms % 1000 else base


def _minutes(start: int, end: int | None) -> float | None:
    return None if end is None else minutes(end - start)


@pytest.fixture
def desk(runtime: Runtime, request: pytest.FixtureRequest) -> Iterator[Desk]:
    size = getattr(request, "param", 2_000)
    account = build_account(size, seed=7, end=END, days=60)
    with serving(runtime, LIVECHAT, account, Desk, timeout_seconds=0.5) as target:
        yield target


def assert_matches_truth(desk: Desk) -> None:
    """Every thread of the account is a ticket with the values and metrics its ground truth gives
    (but the threads served broken, which are in quarantine)."""
    truth = {k: v for k, v in desk.account.truth().items() if k.split(":")[1] not in desk.account.broken}
    details = desk.details()
    assert set(details) == set(truth)
    metrics = desk.time_metrics()
    handoffs = desk.handoffs()
    for ticket_id, expected in truth.items():
        row, timed = details[ticket_id], metrics[ticket_id]
        assert (row["status"], row["agent_id"], row["customer_id"], row["satisfaction_score"]) == (
            expected.status,
            expected.agent_id,
            expected.customer_id,
            expected.score,
        ), ticket_id
        assert (row["channel"], timed["group_id"], tuple(row["tags"])) == (
            "chat",
            expected.group_id,
            expected.tags,
        )
        assert row["created_at"] == _text(expected.created_at)
        assert row["first_response_at"] == _text(expected.first_response_at), ticket_id
        assert row["resolved_at"] == _text(expected.resolved_at), ticket_id
        assert timed["first_response_minutes"] == _minutes(expected.created_at, expected.first_response_at)
        assert timed["full_resolution_minutes"] == _minutes(expected.created_at, expected.resolved_at)
        assert timed["agent_replies"] == expected.agent_replies, ticket_id
        assert handoffs.get(ticket_id, 0) == expected.handoffs, ticket_id
    assert_csat(desk, truth)


def assert_csat(desk: Desk, truth: dict[str, ThreadTruth]) -> None:
    """Good ratings are satisfied (5), bad ones are not (1); unrated threads are left out."""
    scores = [t.score for t in truth.values() if t.score is not None]
    (row,) = desk.runtime.run_pipe("csat", desk.workspace, {"group_by": "none"}).rows
    assert row["ratings"] == len(scores)
    assert row["csat_pct"] == round(100 * scores.count(5) / len(scores), 2)


def test_a_sync_equals_the_accounts_ground_truth(desk: Desk) -> None:
    account = desk.account
    truth = account.truth()
    assert sum(t.handoffs for t in truth.values()) > 100
    assert sum(t.bot_replies for t in truth.values()) > 500
    assert {t.status for t in truth.values()} == {"open", "closed"}  # some threads are still active

    connection = desk.connect()
    run = desk.sync(connection)

    assert run.status == "succeeded", run.errors
    assert run.pages == -(-len(account.threads) // 100)
    assert run.fetched == len(account.threads)
    assert run.throttled == 0
    assert account.throttled == 0
    # A request retried (a timeout on a loaded machine) repeats its body right after itself.
    asked = desk.archive_requests()
    distinct = without_retries(asked)
    assert len(asked) - len(distinct) <= run.retries
    first, *following = distinct
    assert set(first) == {"filters", "sort_order", "limit"}
    assert (first["sort_order"], first["limit"], set(first["filters"])) == ("asc", 100, {"from", "to"})
    assert len(following) == run.pages - 1
    assert all(set(body) == {"page_id"} for body in following)
    assert [action for action, _ in account.requests[:2]] == ["list_agents", "list_bots"]
    assert_matches_truth(desk)

    # Bots are remembered apart from people (the alias suggestions leave them out).
    seen = {(p.id, p.is_bot) for p in desk.runtime.aliases.seen(desk.workspace.id)}
    assert {(bot, True) for bot in (*BOTS, UNLISTED_BOT[0])} <= seen
    assert {(agent, False) for agent in AGENTS} <= seen

    # The next sync starts a day (the look-back) before the earliest thread still active, and
    # changes nothing.
    active = min(t.created_at for t in account.threads.values() if t.active)
    events = desk.events()
    asked = len(desk.archive_requests())
    again = desk.sync(connection)
    assert again.status == "succeeded", again.errors
    since = desk.archive_requests()[asked]["filters"]["from"]
    assert since == rfc3339(datetime.fromtimestamp(active / 1000, UTC) - timedelta(days=1))
    assert again.fetched < 200
    assert desk.events() == events
    assert_matches_truth(desk)
    desk.assert_retention_covers_the_sync(connection)


def test_threads_that_end_or_are_rated_after_a_sync(desk: Desk) -> None:
    account = desk.account
    connection = desk.connect()
    assert desk.sync(connection).status == "succeeded"
    active = [t for t in account.threads.values() if t.active]
    finished = active[0]
    agent = account.truth()[finished.ticket_id].agent_id or next(iter(AGENTS))
    account.act(finished.id, Action(END_MS + 60_000, "agent", agent), Action(END_MS + 120_000, "close", agent),
                Action(END_MS + 180_000, "rate", None, "bad"))  # fmt: skip
    closed = sorted((t for t in account.threads.values() if not t.active), key=lambda t: t.created_at)
    late = closed[-3]  # rated well after it ended, changed its mind, then rated again
    account.act(
        late.id, Action(END_MS + 240_000, "rate", None, "good"), Action(END_MS + 250_000, "rate", None, "bad")
    )
    account.act(closed[-4].id, Action(END_MS + 260_000, "rate", None, "good"))

    run = desk.sync(connection)

    assert run.status == "succeeded", run.errors
    assert_matches_truth(desk)
    details = desk.details()
    assert details[finished.ticket_id]["status"] == "closed"
    assert details[finished.ticket_id]["agent_id"] == agent
    assert details[late.ticket_id]["satisfaction_score"] == 1


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_only_recently_started_active_threads_hold_the_cursor(desk: Desk) -> None:
    """A thread left active for weeks (messaging mode) must not make every sync read everything."""
    account = desk.account
    forgotten = sorted(account.threads.values(), key=lambda t: t.created_at)[10]
    forgotten.actions[:] = [a for a in forgotten.actions if a.kind not in ("close", "rate", "cancel_rating")]
    assert forgotten.active
    connection = desk.connect()
    assert desk.sync(connection).status == "succeeded"
    starts = [t.created_at for t in account.threads.values()]
    recent = [
        t.created_at for t in account.threads.values() if t.active and t.created_at > END_MS - 6 * 86_400_000
    ]
    held = min([max(starts), *recent])
    cursor = orjson.loads(desk.runtime.connections.cursor(connection) or "{}")["from"]
    assert cursor == rfc3339(datetime.fromtimestamp(held / 1000, UTC))
    assert_matches_truth(desk)


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_a_crash_between_pages_resumes_without_loss_or_duplicates(desk: Desk) -> None:
    connection = desk.connect()
    kept = orjson.loads(desk.crash_between_pages(connection, after_pages=6, committed_pages=6))["from"]
    asked = len(desk.archive_requests())
    resumed = desk.sync(connection)
    assert resumed.status == "succeeded", resumed.errors
    since = datetime.fromisoformat(kept) - timedelta(days=1)
    assert desk.archive_requests()[asked]["filters"]["from"] == rfc3339(since)
    assert_matches_truth(desk)

    desk.assert_a_clean_sync_writes_as_many(TICKET_EVENTS, desk.connect)


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_429_bursts_5xx_timeouts_duplicates_and_changes_during_the_sync(desk: Desk) -> None:
    account = desk.account
    account.faults = {
        3: Fault(429, "too_many_requests"),
        4: Fault(429, "too_many_requests"),
        5: Fault(429, "too_many_requests"),
        9: Fault(500, "internal"),
        10: Fault(502, "internal"),
        14: Fault(delay=1.0),  # past the client's 0.5 s timeout
    }
    account.duplicate_entries = True
    ordered = sorted(account.threads.values(), key=lambda t: t.created_at)
    read_early = next(t for t in ordered[:50] if t.rating is None and not t.active)

    def change(pages: int) -> None:
        if pages == 4:  # a thread read on the first page is rated: the next sync's look-back misses it
            account.act(read_early.id, Action(END_MS + 60_000, "rate", None, "good"))

    account.after_page = change
    connection = desk.connect()
    run = desk.sync(connection)

    assert run.status == "succeeded", run.errors
    assert run.throttled == 3
    # 500, 502 and the scripted timeout, each retried (a loaded machine may time out once more).
    assert run.retries >= 3
    assert {": 500", ": 502"} <= {error[-5:] for error in run.errors}
    # No Retry-After (LiveChat documents none): exponential backoff from 2 s.
    assert desk.clock.slept[:3] == [2.0, 4.0, 8.0]
    assert any("Timeout" in error for error in run.errors)
    truth = account.truth()
    details = desk.details()
    assert details[read_early.ticket_id]["satisfaction_score"] is None
    assert truth[read_early.ticket_id].score == 5
    # A full sync reads it again.
    assert desk.sync(connection, full=True).status == "succeeded"
    assert_matches_truth(desk)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_a_request_limit_under_the_budget_is_waited_out(desk: Desk) -> None:
    account = desk.account
    account.requests_per_minute = 5  # far under our budget: LiveChat publishes no numbers
    account.retry_after = 20
    run = desk.sync(desk.connect(limit=20))
    assert run.status == "succeeded", run.errors
    assert account.throttled > 0
    assert run.throttled == account.throttled
    assert 20.0 in desk.clock.slept
    assert_matches_truth(desk)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [100], indirect=True)
def test_oauth_tokens_of_the_fra_region_and_refusals(desk: Desk) -> None:
    fra = desk.sync(desk.connect("oauth", {"access_token": OAUTH_FRA}))
    assert fra.status == "succeeded", fra.errors
    assert_matches_truth(desk)

    misdirected = desk.sync(desk.connect("forced dal", {"access_token": OAUTH_FRA}, region="dal"))
    assert misdirected.status == "failed"
    assert "misdirected_request" in misdirected.errors[-1]
    assert "'fra'" in misdirected.errors[-1]

    wrong = desk.sync(desk.connect("wrong", {"account_id": ACCOUNT_ID, "token": "dal:not-the-token-42"}))
    assert wrong.status == "failed"
    assert "401 authentication: Invalid access token" in wrong.errors[-1]
    assert "not-the-token-42" not in " ".join(wrong.errors)

    bad = desk.sync(desk.connect("bad options", limit=500))
    assert bad.status == "failed"
    assert "limit" in bad.errors[-1]


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_without_the_bots_scope_bots_are_told_by_their_ids(desk: Desk) -> None:
    desk.account.bots_scope = False
    run = desk.sync(desk.connect())
    assert run.status == "succeeded", run.errors
    assert_matches_truth(desk)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_threads_past_the_plans_history_are_snapshots_only(desk: Desk) -> None:
    desk.account.history_days = 30
    restricted = [
        t for t in desk.account.threads.values() if desk.account.entry(t)["thread"].get("restricted_access")
    ]
    assert 50 < len(restricted) < len(desk.account.threads)
    run = desk.sync(desk.connect())
    assert run.status == "succeeded", run.errors
    assert_matches_truth(desk)
    events = desk.runtime.engine.events_of(desk.workspace.id, [t.ticket_id for t in restricted])
    assert events.num_rows == 0


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_an_unreadable_entry_is_quarantined_and_the_others_synced(desk: Desk) -> None:
    broken = sorted(desk.account.threads.values(), key=lambda t: t.created_at)[150]
    desk.account.broken.add(broken.id)
    run = desk.sync(desk.connect())
    assert run.status == "succeeded", run.errors
    assert run.quarantined == 1
    assert run.fetched == len(desk.account.threads)
    assert_matches_truth(desk)
    assert broken.ticket_id not in desk.details()


def test_the_fake_pages_as_documented(desk: Desk) -> None:
    """page_id alone after the first request; the documented filter format; limits."""
    auth = (ACCOUNT_ID, PAT)
    path = "/v3.5/agent/action/list_archives"
    with httpx.Client(base_url=desk.url, auth=auth) as client:
        first = client.post(
            path, json={"filters": {"from": rfc3339(END - timedelta(days=2))}, "limit": 5}
        ).json()
        assert len(first["chats"]) == 5
        assert "previous_page_id" not in first
        dates = [chat["thread"]["created_at"] for chat in first["chats"]]
        assert dates == sorted(dates, reverse=True)  # desc by default
        mixed = client.post(path, json={"page_id": first["next_page_id"], "limit": 5})
        assert (mixed.status_code, mixed.json()["error"]["type"]) == (400, "validation")
        second = client.post(path, json={"page_id": first["next_page_id"]}).json()
        assert len(second["chats"]) == 5
        assert second["previous_page_id"]
        assert second["chats"][0]["thread"]["created_at"] <= dates[-1]
        malformed = client.post(path, json={"filters": {"from": "2026-01-01T00:00:00Z"}})
        assert (malformed.status_code, malformed.json()["error"]["type"]) == (400, "validation")
        too_many = client.post(path, json={"limit": 101})
        assert too_many.status_code == 400
        refused = client.post(path, json={}, auth=(ACCOUNT_ID, "dal:wrong"))
        assert refused.json() == {"error": {"type": "authentication", "message": "Invalid access token"}}
        assert client.post("/v3.5/configuration/action/list_bots", json={}).json() == []


# Pure mapping, on the docs' own sample and hand-written threads.

_CUSTOMER = "b7eff798-f8df-4364-8059-649c35c9ed0c"
_BOT = "2c1b8da190222160e8f9e077af4c625b"


def _chat(events: list[dict[str, Any]], *, active: bool = False, properties: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": "PJ0MRSHTDG",
        "users": [
            {"id": _CUSTOMER, "type": "customer", "name": "Thomas Anderson"},
            {"id": "smith@example.com", "name": "Agent Smith", "type": "agent"},
            {"id": "jones@example.com", "name": "Agent Jones", "type": "agent"},
            {"id": _BOT, "name": "ChatBot", "type": "agent"},
        ],
        "thread": {
            "id": "K600PKZON8",
            "active": active,
            "created_at": "2020-05-28T11:44:58.829000Z",
            "events": [{"visibility": "all", **e} for e in events],
            "properties": properties or {},
            "access": {"group_ids": [2]},
            "tags": ["billing"],
        },
    }


def _message(number: int, author: str, second: int, **extra: Any) -> dict[str, Any]:
    at = f"2020-05-28T11:{45 + second // 60:02d}:{second % 60:02d}.000000Z"
    return {
        "id": f"QBT14H0Y3Y_{number}",
        "created_at": at,
        "type": "message",
        "text": "x",
        "author_id": author,
        **extra,
    }


def _system(number: int, second: int, kind: str, **text_vars: str) -> dict[str, Any]:
    at = f"2020-05-28T11:{45 + second // 60:02d}:{second % 60:02d}.000000Z"
    return {"id": f"QBT14H0Y3Y_{number}", "created_at": at, "type": "system_message", "system_message_type": kind,
            "text": kind, "text_vars": text_vars}  # fmt: skip


def _kinds(events: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(e["type"], e["actor_type"], e.get("to")) for e in events]


def test_messages_transfers_and_the_end_of_a_thread() -> None:
    chat = _chat(
        [
            {
                "id": "QBT14H0Y3Y_0",
                "created_at": "2020-05-28T11:44:59.000000Z",
                "type": "filled_form",
                "author_id": _CUSTOMER,
                "form_id": "1002",
                "form_type": "prechat",
                "fields": [],
            },
            _message(1, _CUSTOMER, 0),
            _message(2, "smith@example.com", 10),
            _message(3, "smith@example.com", 20, visibility="agents"),
            _system(4, 30, "chat_transferred", initiator="Agent Smith", targets="Agent Jones"),
            _message(5, "jones@example.com", 40),
            _system(6, 50, "routing.unassigned_signed_out", agent="Agent Jones"),
            _system(7, 60, "manual_archived_customer", customer="Thomas Anderson"),
        ]
    )
    records = archive_records(chat, frozenset())
    assert _kinds(records.events) == [
        ("created", "customer", None),
        ("customer_message", "customer", None),
        ("assigned", "system", "smith@example.com"),  # routing's first assignment: no system message
        ("reply", "agent", None),
        ("internal_note", "agent", None),
        ("assigned", "agent", "jones@example.com"),
        ("reply", "agent", None),
        ("assigned", "system", None),
        ("status_changed", "customer", "closed"),
    ]
    assert records.events[0]["event_id"] == "livechat:K600PKZON8:created"
    assert records.events[5]["event_id"] == "livechat:K600PKZON8:QBT14H0Y3Y_4:assigned"
    ticket = records.ticket
    assert (ticket["ticket_id"], ticket["status"], ticket["agent_id"], ticket["group_id"]) == (
        "PJ0MRSHTDG:K600PKZON8",
        "closed",
        None,
        "2",
    )
    assert ticket["resolved_at"] == ticket["updated_at"] == "2020-05-28T11:46:00.000000Z"


def test_bots_are_not_agents_and_their_handoff_is_recorded() -> None:
    chat = _chat(
        [
            _message(1, _CUSTOMER, 0),
            _message(2, _BOT, 2),
            _system(3, 5, "chat_transferred", initiator="ChatBot", targets="Billing"),
            _message(4, "smith@example.com", 30),
            _system(5, 40, "routing.archived_inactive", duration="30"),
            _system(6, 50, "rating.chat_rated", customer="Thomas Anderson", score="good"),
            _system(7, 55, "rating.chat_rated", customer="Thomas Anderson", score="bad"),
        ],
        properties={"rating": {"score": 0, "comment": "slow"}},
    )
    records = archive_records(chat, frozenset())  # the bot told by its id alone
    assert _kinds(records.events) == [
        ("created", "customer", None),
        ("customer_message", "customer", None),
        ("reply", "bot", None),  # never a human reply
        ("field_changed", "bot", "Billing"),  # handed to a group's queue
        ("assigned", "system", "smith@example.com"),
        ("reply", "agent", None),
        ("status_changed", "system", "closed"),
        ("rated", "customer", None),
    ]
    handoff = records.events[3]
    assert (handoff["field"], handoff["from"], handoff["actor_id"]) == ("bot_handoff", _BOT, _BOT)
    rated = records.events[-1]
    assert (rated["score"], rated["at"], rated["event_id"]) == (
        1,  # thumbs down is 1 on the 1-5 scale, by our convention
        "2020-05-28T11:45:55.000000Z",
        "livechat:K600PKZON8:rated:QBT14H0Y3Y_7:1",
    )
    assert records.ticket["resolved_at"] == "2020-05-28T11:45:40.000000Z"  # ratings come after the end
    assert records.ticket["satisfaction_score"] == 1


def test_a_human_taking_over_from_a_bot_and_an_active_thread() -> None:
    chat = _chat(
        [_message(1, _CUSTOMER, 0), _message(2, _BOT, 2), _message(3, "jones@example.com", 9)],
        active=True,
        properties={"rating": {"score": 1}},
    )
    records = archive_records(chat, frozenset({_BOT}))
    assert _kinds(records.events)[3:] == [
        ("assigned", "system", "jones@example.com"),
        ("field_changed", "system", "jones@example.com"),
        ("reply", "agent", None),
        ("rated", "customer", None),
    ]
    assert records.events[-1]["score"] == 5
    assert (records.ticket["status"], records.ticket["resolved_at"], records.active) == ("open", None, True)


def test_an_entry_without_its_times_is_a_rejection() -> None:
    chat = _chat([_message(1, _CUSTOMER, 0)])
    del chat["thread"]["created_at"]
    assert readable(chat, frozenset()) == Rejection("created_at", "list_archives entry: missing")
    chat = _chat([{"id": "QBT14H0Y3Y_1", "type": "message", "author_id": _CUSTOMER}])
    assert readable(chat, frozenset()) == Rejection("created_at", "list_archives entry: missing")
    assert isinstance(readable(_chat([_message(1, _CUSTOMER, 0)]), frozenset()), ArchiveRecords)


def test_a_connection_without_credentials_is_refused() -> None:
    connection = Connection("c", "w", "livechat", "http://127.0.0.1:9", {"account_id": ACCOUNT_ID})
    with SourceClient(connection.base_url) as client, pytest.raises(SourceError, match="access_token"):
        LiveChatConnector(connection, client)
