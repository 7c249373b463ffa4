"""The Freshdesk connector against a fake Freshdesk account (tests/fakes/freshdesk.py) through the
sync engine, on real stores: after a sync our tickets and metrics equal the account's ground truth,
ticket for ticket; the 30-day default window, the page cap, the credit limit, 429 bursts, 5xx,
timeouts, duplicates, updates during the sync and a crash between two pages change nothing of that;
the activities export (read by the seed 003 parser) gives the status history.  Rate limits are
kept on a fake clock shared by the client and the fake server, so nothing really waits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from supportlens.connectors.base import Connection
from supportlens.connectors.freshdesk import (
    FRESHDESK,
    FreshdeskConnector,
    FreshdeskOptions,
    conversation_event,
    ticket_row,
)
from supportlens.connectors.http import SourceClient, SourceError
from supportlens.domain.metrics import minutes
from supportlens.ingest.freshdesk import SOURCE_CHANNELS
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS
from tests.connectors.harness import SyncTarget, serving, without_retries
from tests.fakes.freshdesk import (
    API_KEY,
    CUSTOM_STATUSES,
    Fault,
    FreshdeskAccount,
    TicketTruth,
    build_account,
)

# Whole hours, an hour back: updates made "during the sync" (after END) are still in the past.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
OPTIONS = {"status_map": CUSTOM_STATUSES, "category_field": "cf_category"}


@dataclass
class Desk(SyncTarget):
    """A fake account served on 127.0.0.1, and a sync engine that reads it on the fake clock."""

    account: FreshdeskAccount

    def connect(self, name: str = "freshdesk", **options: Any) -> str:
        credentials = {"api_key": options.pop("api_key", API_KEY)}
        return self.connection_of("freshdesk", name, credentials, {**OPTIONS, **options})

    def time_metrics(self, as_of: int) -> dict[str, dict[str, Any]]:
        return self.by_ticket("ticket_time_metrics", {"as_of": _day_time(as_of)})

    def tickets_requests(self) -> list[dict[str, str]]:
        return [query for path, query in self.account.requests if path == "/api/v2/tickets"]


def _day_time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(seconds: int | None) -> str:
    """As the pipes print a time (to the second); empty for none."""
    return "" if seconds is None else _day_time(seconds)


def _minutes(start: int, end: int | None) -> float | None:
    return None if end is None else minutes((end - start) * 1000)


@pytest.fixture
def desk(runtime: Runtime, request: pytest.FixtureRequest) -> Iterator[Desk]:
    size = getattr(request, "param", 2_000)
    account = build_account(size, seed=11, end=END, days=60)
    with serving(runtime, FRESHDESK, account, Desk, timeout_seconds=2.0) as target:
        yield target


def assert_matches_truth(desk: Desk, *, history: bool, logged: bool = True) -> None:
    """Every ticket of the account, with the values and metrics its ground truth gives."""
    truth = desk.account.truth()
    details = desk.details()
    assert set(details) == set(truth)
    as_of = int(END.timestamp()) + 86_400
    metrics = desk.time_metrics(as_of)
    for ticket_id, expected in truth.items():
        row, timed = details[ticket_id], metrics[ticket_id]
        assert (row["status"], row["priority"], row["agent_id"], row["customer_id"], row["category"]) == (
            expected.status,
            expected.priority,
            expected.agent_id,
            expected.customer_id,
            expected.category,
        ), ticket_id
        assert row["channel"] == SOURCE_CHANNELS[expected.channel_code]
        assert timed["group_id"] == expected.group_id
        assert row["created_at"][:19] == _text(expected.created_at)
        assert (row["first_response_at"] or "")[:19] == _text(expected.first_response_at)
        # A snapshot keeps a reopened ticket's resolved_at (docs/decisions.md); the log does not.
        resolved_at = expected.resolved_at if logged else expected.last_resolved_at
        assert (row["resolved_at"] or "")[:19] == _text(resolved_at)
        assert timed["first_response_minutes"] == _minutes(expected.created_at, expected.first_response_at)
        assert timed["full_resolution_minutes"] == _minutes(expected.created_at, expected.resolved_at)
        assert timed["agent_replies"] == (expected.agent_replies if logged else None), ticket_id
        if history:
            assert_history(timed, expected, as_of)


def assert_history(row: dict[str, Any], expected: TicketTruth, as_of: int) -> None:
    spent = {status: minutes(seconds * 1000) for status, seconds in expected.seconds_in_status(as_of).items()}
    assert {s: m for s, m in orjson.loads(row["minutes_in_status"]).items() if m} == {
        s: m for s, m in spent.items() if m
    }, row["ticket_id"]
    assert row["reopens"] == expected.reopens
    assert row["first_resolution_minutes"] == _minutes(expected.created_at, expected.first_resolved_at)


def test_a_sync_equals_the_accounts_ground_truth(desk: Desk) -> None:
    account = desk.account
    account.page_cap = 3  # far fewer pages than the 2,000 tickets take: the window moves instead
    chatty = min(account.tickets)
    account.exchange(chatty, int(END.timestamp()) - 3_600 * 30, 130)  # conversations over 2 pages
    old = [
        t
        for t in account.tickets.values()
        if t.created_at < (datetime.now(UTC) - timedelta(days=30)).timestamp()
    ]
    assert len(old) > 500  # Freshdesk's default window would hide them

    connection = desk.connect()
    run = desk.sync(connection)

    assert run.status == "succeeded", run.errors
    assert run.pages > 20
    assert run.throttled == 0  # the client's budget stays under the account's 200 credits a minute
    assert account.throttled == 0
    queries = desk.tickets_requests()
    assert all(
        (q.get("order_by"), q.get("order_type"), q.get("include")) == ("updated_at", "asc", "stats")
        and "updated_since" in q
        and int(q.get("page", "1")) <= account.page_cap
        for q in queries
    )
    conversation_pages = [q for p, q in account.requests if p == f"/api/v2/tickets/{chatty}/conversations"]
    assert [q.get("page", "1") for q in conversation_pages] == ["1", "2"]
    assert_matches_truth(desk, history=False)
    assert desk.details()[str(chatty)]["subject"].startswith(f"Ticket {chatty}:")

    # The next sync reads only what changed since (less the look-back) and changes nothing.
    events = desk.runtime.engine.count(TICKET_EVENTS, desk.workspace.id)
    before = len(queries)
    again = desk.sync(connection)
    assert again.status == "succeeded"
    assert len(without_retries(desk.tickets_requests()[before:])) == 1
    assert again.fetched < 100
    assert desk.runtime.engine.count(TICKET_EVENTS, desk.workspace.id) == events
    assert_matches_truth(desk, history=False)
    desk.assert_retention_covers_the_sync(connection)


def test_the_default_window_of_the_fake_is_30_days(desk: Desk) -> None:
    """What makes the connector always send updated_since: without it, old tickets are not listed."""
    auth = (API_KEY, "X")
    listed: list[dict[str, Any]] = []
    with httpx.Client(base_url=desk.url, auth=auth) as client:
        answer = client.get("/api/v2/tickets", params={"per_page": 100})
        while True:
            listed.extend(answer.json())
            if "next" not in answer.links:
                break
            answer = client.get(answer.links["next"]["url"])
        horizon = datetime.now(UTC) - timedelta(days=30)
        assert listed
        assert all(datetime.fromisoformat(t["created_at"]) >= horizon for t in listed)
        assert len(listed) < len(desk.account.tickets)
        assert answer.headers["X-RateLimit-Used-CurrentRequest"] == "1"
        stats = client.get(
            "/api/v2/tickets", params={"include": "stats,requester", "updated_since": "2000-01-01T00:00:00Z"}
        )
        assert stats.headers["X-RateLimit-Used-CurrentRequest"] == "5"
        assert {"stats", "requester"} <= set(stats.json()[0])
        assert client.get("/api/v2/tickets", auth=("wrong", "X")).status_code == 401


@pytest.mark.parametrize("desk", [1_000], indirect=True)
def test_the_activities_export_gives_the_status_history(desk: Desk) -> None:
    connection = desk.connect(activities_export=True)
    run = desk.sync(connection)
    assert run.status == "succeeded", run.errors
    assert_matches_truth(desk, history=True)
    # The signed file URL is another host's: our credentials never go there.
    assert len(desk.account.file_requests) == len(desk.account.exports)
    assert all("authorization" not in headers for headers in desk.account.file_requests)
    cursor = orjson.loads(desk.runtime.connections.cursor(connection) or "{}")
    today = datetime.now(UTC).date()
    ready = today + timedelta(days=1) if today in desk.account.exports else today
    assert cursor["activities"] == ready.isoformat()
    # Read again: the same event ids, nothing added.
    events = desk.runtime.engine.count(TICKET_EVENTS, desk.workspace.id)
    assert desk.sync(connection, full=True).status == "succeeded"
    assert desk.runtime.engine.count(TICKET_EVENTS, desk.workspace.id) == events
    assert_matches_truth(desk, history=True)


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_a_crash_between_pages_resumes_without_loss_or_duplicates(desk: Desk) -> None:
    connection = desk.connect()
    # The 6th page's conversations were never read: not committed.
    kept = orjson.loads(desk.crash_between_pages(connection, after_pages=6, committed_pages=5))["tickets"]
    asked = len(desk.tickets_requests())
    resumed = desk.sync(connection)
    assert resumed.status == "succeeded", resumed.errors
    lookback = datetime.fromisoformat(kept) - timedelta(minutes=10)
    assert desk.tickets_requests()[asked]["updated_since"] == lookback.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_matches_truth(desk, history=False)

    desk.assert_a_clean_sync_writes_as_many(TICKET_EVENTS, desk.connect)


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_429_bursts_5xx_timeouts_duplicates_and_updates_during_the_sync(desk: Desk) -> None:
    account = desk.account
    account.faults = {
        3: Fault(429, retry_after=13),
        4: Fault(429, retry_after=13),
        5: Fault(429, retry_after=13),
        40: Fault(500),
        41: Fault(502),
        300: Fault(delay=2.5),  # past the client's 2 s timeout
        900: Fault(429, retry_after=29),
    }
    account.duplicate_tickets = True
    account.duplicate_conversations = True
    ordered = sorted(account.tickets.values(), key=lambda t: (t.updated_at, t.id))
    read_early = ordered[10].id
    still_open = [t.id for t in ordered if t.state.status not in ("Resolved", "Closed")]
    read_late = still_open[-1]
    base = int(END.timestamp())

    def update(pages: int) -> None:
        if pages == 4:  # one already read, one not yet: both move to the end of the list
            account.exchange(read_early, base + 600, 2)
            account.reply_and_resolve(read_late, base + 660)
            account.bulk_update([t.id for t in ordered[200:260]], base + 720)

    account.after_tickets_page = update
    account.exchange(ordered[5].id, base - 7_200, 120)  # a conversations list of 2 pages, duplicated

    run = desk.sync(desk.connect())

    assert run.status == "succeeded", run.errors
    assert (run.throttled, account.throttled) == (4, 0)  # the scripted ones; never over the credits
    # 500, 502 and the scripted timeout, each retried (a loaded machine may time out once more).
    assert run.retries >= 3
    assert {": 500", ": 502"} <= {error[-5:] for error in run.errors}
    assert desk.clock.slept[:5] == [13.0, 13.0, 13.0, 1.0, 2.0]  # Retry-After, then backoff
    assert 29.0 in desk.clock.slept
    assert any("Timeout" in error for error in run.errors)
    assert_matches_truth(desk, history=False)
    assert desk.details()[str(read_late)]["status"] == "resolved"


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_a_credit_limit_under_the_budget_is_waited_out(desk: Desk) -> None:
    desk.account.credits_per_minute = 50  # a trial account
    run = desk.sync(desk.connect(conversations=False, per_page=10))
    assert run.status == "succeeded", run.errors
    assert desk.account.throttled > 0
    assert run.throttled == desk.account.throttled
    assert_matches_truth(desk, history=False, logged=False)  # snapshot-only tickets


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_the_page_cap_within_one_second(desk: Desk) -> None:
    """More than a page of tickets updated in one second: Link paging goes on within the cap, and
    a second that needs a page past the cap fails the run saying why."""
    account = desk.account
    account.page_cap = 2
    bulk = [t.id for t in sorted(account.tickets.values(), key=lambda t: t.id)[:150]]
    account.bulk_update(bulk, int(END.timestamp()) + 60)
    connection = desk.connect(per_page=100)
    run = desk.sync(connection)
    assert run.status == "succeeded", run.errors
    assert {q.get("page") for q in desk.tickets_requests()} == {None, "2"}
    assert_matches_truth(desk, history=False)

    account.page_cap = 1  # the same second now needs a page Freshdesk refuses
    account.bulk_update(bulk, int(END.timestamp()) + 120)
    failed = desk.sync(connection)
    assert failed.status == "failed"
    assert "page cap" in failed.errors[-1]


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [50], indirect=True)
def test_refusals_fail_the_run_without_the_key(desk: Desk) -> None:
    wrong = desk.sync(desk.connect("wrong key", api_key="not-the-key-42"))
    assert wrong.status == "failed"
    assert "401" in wrong.errors[-1]
    assert "not-the-key-42" not in " ".join(wrong.errors)

    desk.account.export_enabled = False
    refused = desk.sync(desk.connect("export off", activities_export=True))
    assert refused.status == "failed"
    assert "admin" in refused.errors[-1]

    bad = desk.sync(desk.connect("bad options", per_page=500))
    assert bad.status == "failed"
    assert "per_page" in bad.errors[-1]


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [50], indirect=True)
def test_an_export_not_ready_today_is_asked_again(desk: Desk) -> None:
    today = datetime.now(UTC).date()
    desk.account.exports.pop(today, None)
    connection = desk.connect(activities_export=True)
    assert desk.sync(connection).status == "succeeded"
    cursor = orjson.loads(desk.runtime.connections.cursor(connection) or "{}")
    assert cursor["activities"] == today.isoformat()
    asked = len(desk.account.requests)
    assert desk.sync(connection).status == "succeeded"
    exports = [q for p, q in desk.account.requests[asked:] if p == "/api/v2/export/ticket_activities"]
    assert exports == [{"created_at": today.isoformat()}]


# Pure mapping.


def test_codes_map_as_documented_with_overrides() -> None:
    options = FreshdeskOptions.parse(
        {"status_map": {"6": "Waiting on Customer"}, "priority_map": {"4": "critical"}}
    )
    ticket = {"id": 9, "status": 6, "priority": 4, "source": 15, "created_at": "2026-01-01T00:00:00Z",
              "type": "Question", "stats": {"closed_at": "2026-01-02T00:00:00Z"}}  # fmt: skip
    row = ticket_row(ticket, options)
    assert (row["status"], row["priority"], row["channel"], row["category"]) == (
        "Waiting on Customer",
        "critical",
        "source_15",  # Web Chat on a live tenant: the list of sources is open-ended
        "Question",
    )
    assert row["resolved_at"] == "2026-01-02T00:00:00Z"
    defaults = FreshdeskOptions.parse({})
    assert [defaults.status(code) for code in (2, 3, 4, 5, 8)] == [
        "open",
        "pending",
        "resolved",
        "closed",
        "status_8",
    ]
    assert [defaults.priority(code) for code in (1, 2, 3, 4)] == ["low", "medium", "high", "urgent"]
    with pytest.raises(ValueError, match="status_map"):
        FreshdeskOptions.parse({"status_map": {"open": "x"}})


def test_conversations_become_replies_customer_messages_and_notes() -> None:
    agents = frozenset({"7"})
    base = {"ticket_id": 3, "created_at": "2026-01-01T00:00:00Z"}
    kinds = [
        conversation_event({**base, "id": 1, "incoming": False, "private": False, "user_id": 7}, agents),
        conversation_event({**base, "id": 2, "incoming": True, "private": False, "user_id": 99}, agents),
        conversation_event({**base, "id": 3, "incoming": False, "private": True, "user_id": 7}, agents),
        conversation_event({**base, "id": 4, "incoming": False, "private": False, "user_id": None}, agents),
    ]
    assert [(e["event_id"], e["type"], e["actor_type"]) for e in kinds] == [
        ("freshdesk:note:1", "reply", "agent"),
        ("freshdesk:note:2", "customer_message", "customer"),
        ("freshdesk:note:3", "internal_note", "agent"),
        ("freshdesk:note:4", "reply", "system"),  # an automation's message is never a human reply
    ]


def test_a_connection_without_a_key_is_refused() -> None:
    connection = Connection("c", "w", "freshdesk", "http://127.0.0.1:9", {})
    with SourceClient(connection.base_url) as client, pytest.raises(SourceError, match="api_key"):
        FreshdeskConnector(connection, client)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [50], indirect=True)
def test_an_unreadable_activity_is_reported_and_the_rest_imported(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    day = max(desk.account.exports)
    export = orjson.loads(desk.account.exports[day])
    export["activities_data"].append(
        {
            "performed_at": "yesterday",
            "ticket_id": 1,
            "performer_type": "user",
            "performer_id": 5,
            "activity": {},
        }
    )
    desk.account.exports[day] = orjson.dumps(export)
    run = desk.sync(desk.connect(activities_export=True))
    assert run.status == "succeeded", run.errors
    assert f"activities export of {day}: 1 activities could not be read (first: performed_at" in caplog.text
    assert run.quarantined == 1
    kept = desk.only_quarantined()
    assert (kept["datasource"], kept["column_name"]) == ("freshdesk_activities", "performed_at")
    assert '"yesterday"' in kept["raw"]
    assert_matches_truth(desk, history=True)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [50], indirect=True)
def test_a_number_past_64_bits_is_quarantined_and_the_sync_goes_on(desk: Desk) -> None:
    """A helpdesk may send any JSON number (a numeric custom field used as the category); one that
    no store can hold is refused with its reason and its raw record kept, not a failed sync."""
    odd = min(desk.account.tickets)
    desk.account.tickets[odd].category = 2**70  # type: ignore[assignment]
    run = desk.sync(desk.connect())
    assert run.status == "succeeded", run.errors
    assert run.quarantined == 1
    kept = desk.only_quarantined()
    assert (kept["datasource"], kept["column_name"]) == ("support_tickets", "category")
    assert kept["error"] == "expected a string, got int"
    assert orjson.loads(kept["raw"].replace(str(2**70), "0"))["ticket_id"] == str(odd)
    assert f'"category":{2**70},' in kept["raw"]
    # Every ticket is there: the others, and this one from its conversations.
    assert set(desk.details()) == {str(ticket_id) for ticket_id in desk.account.tickets}
