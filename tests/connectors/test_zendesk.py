"""The Zendesk connector against a fake Zendesk account (tests/fakes/zendesk.py) through the sync
engine, on real stores: after a sync our tickets and metrics equal the account's ground truth,
ticket for ticket; the kept ``after_cursor`` resumes the next sync; the incremental exports' 10
requests a minute are never exceeded; 429 bursts, 5xx, timeouts, duplicates, updates during the
sync, a crash between two pages and deleted tickets change nothing of that; Zendesk's own ticket
metrics agree with ours except where a known difference says why.  Rate limits are kept on a fake
clock shared by the client and the fake server, so nothing really waits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from supportlens.connectors.base import Connection
from supportlens.connectors.http import SourceClient, SourceError
from supportlens.connectors.zendesk import (
    BUDGET,
    REOPENED_UNRESOLVED,
    ZENDESK,
    ZendeskConnector,
    ZendeskOptions,
    audit_events,
    metric_disagreements,
    ticket_row,
)
from supportlens.domain.metrics import minutes
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKET_EVENTS
from tests.connectors.harness import SyncTarget, serving, without_retries
from tests.fakes.zendesk import (
    API_TOKEN,
    CATEGORY_FIELD,
    EMAIL,
    Fault,
    TicketTruth,
    ZendeskAccount,
    build_account,
)

# Whole hours, an hour back: updates made "during the sync" (after END) are still in the past, and
# older than the last minute the exports leave out.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
OPTIONS = {"category_field": CATEGORY_FIELD, "per_page": 200}
_TICKETS = "/api/v2/incremental/tickets/cursor"
_EVENTS = "/api/v2/incremental/ticket_events"


@dataclass
class Desk(SyncTarget):
    """A fake account served on 127.0.0.1, and a sync engine that reads it on the fake clock."""

    account: ZendeskAccount

    def connect(self, name: str = "zendesk", **options: Any) -> str:
        credentials = {"email": EMAIL, "token": options.pop("token", API_TOKEN)}
        return self.connection_of("zendesk", name, credentials, {**OPTIONS, **options})

    def time_metrics(self, as_of: int) -> dict[str, dict[str, Any]]:
        return self.by_ticket("ticket_time_metrics", {"as_of": _text(as_of)})

    def asked(self, path: str) -> list[dict[str, str]]:
        return [query for asked, query in self.account.requests if asked == path]

    def cursor(self, connection_id: str) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.runtime.connections.cursor(connection_id) or "{}")
        return value


def _text(seconds: int | None) -> str:
    """A time as the pipes write it ("" for none)."""
    return "" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _minutes(start: int, end: int | None) -> float | None:
    return None if end is None else minutes((end - start) * 1000)


# A desk parameter: the default size, ending at the latest hour whose account holds a ticket
# reopened and not solved again (the generator makes few: at some hours of the day, none).
REOPENED_UNSOLVED = "reopened-unsolved"


@pytest.fixture
def desk(runtime: Runtime, request: pytest.FixtureRequest) -> Iterator[Desk]:
    size = getattr(request, "param", 2_000)
    if size == REOPENED_UNSOLVED:
        account = _account_with_reopened_unsolved(2_000)
    else:
        account = build_account(size, seed=7, end=END, days=60)
    with serving(runtime, ZENDESK, account, Desk, timeout_seconds=2.0) as target:
        yield target


def _account_with_reopened_unsolved(size: int) -> ZendeskAccount:
    for hours in range(48):
        account = build_account(size, seed=7, end=END - timedelta(hours=hours), days=60)
        if any(t.reopens > 0 and t.resolved_at is None for t in account.truth().values()):
            return account
    raise AssertionError("no account of the last 48 hours holds a reopened, unsolved ticket")


def assert_matches_truth(desk: Desk) -> None:
    """Every ticket of the account and no other (deleted ones leave), with the values and metrics its ground
    truth gives, time in each status included."""
    truth = desk.account.truth()
    details = desk.details()
    assert set(truth) == set(details)  # deleted tickets leave the analytics
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
        assert (row["channel"], row["satisfaction_score"]) == (expected.channel, expected.satisfaction)
        assert timed["group_id"] == expected.group_id
        assert row["created_at"].startswith(_text(expected.created_at))
        assert (row["first_response_at"] or "")[:19] == _text(expected.first_response_at), ticket_id
        assert (row["resolved_at"] or "")[:19] == _text(expected.resolved_at), ticket_id
        assert timed["first_response_minutes"] == _minutes(expected.created_at, expected.first_response_at)
        assert timed["full_resolution_minutes"] == _minutes(expected.created_at, expected.resolved_at)
        assert timed["agent_replies"] == expected.agent_replies, ticket_id
        assert_history(timed, expected, as_of)


def assert_history(row: dict[str, Any], expected: TicketTruth, as_of: int) -> None:
    seconds = expected.seconds_in_status(as_of)
    spent = {status: minutes(held * 1000) for status, held in seconds.items()}
    # Zendesk's names fall into the default categories: hold is on hold, pending is agent wait.
    assert row["on_hold_minutes"] == minutes(seconds.get("hold", 0) * 1000)
    assert row["agent_wait_minutes"] == minutes(seconds.get("pending", 0) * 1000)
    assert {s: m for s, m in orjson.loads(row["minutes_in_status"]).items() if m} == {
        s: m for s, m in spent.items() if m
    }, row["ticket_id"]
    assert row["reopens"] == expected.reopens
    assert row["first_resolution_minutes"] == _minutes(expected.created_at, expected.first_resolved_at)


def test_a_sync_equals_the_accounts_ground_truth(desk: Desk) -> None:
    account = desk.account
    statuses = {t.fields()["status"] for t in account.tickets.values()}
    assert {"new", "open", "pending", "hold", "solved", "closed"} <= statuses
    connection = desk.connect()
    run = desk.sync(connection)

    assert run.status == "succeeded", run.errors
    ticket_pages, event_pages = without_retries(desk.asked(_TICKETS)), without_retries(desk.asked(_EVENTS))
    assert len(ticket_pages) == 10  # 2,000 tickets, 200 a page
    assert len(event_pages) > 50
    assert run.pages == len(ticket_pages) + len(event_pages)
    # Under the 10 a minute of the incremental exports: never throttled, the budget waited instead.
    assert (run.throttled, account.throttled) == (0, 0)
    assert sum(desk.clock.slept) >= 60 * (len(ticket_pages) + len(event_pages)) / 10 - 60
    # start_time first, then the cursor; metric sets and comment events always asked for.
    start = int((datetime.now(UTC) - timedelta(days=365)).timestamp())
    assert abs(int(ticket_pages[0]["start_time"]) - start) < 600
    assert all("cursor" in q and "start_time" not in q for q in ticket_pages[1:])
    assert all(q["include"] == "metric_sets" and q["per_page"] == "200" for q in ticket_pages)
    assert all(q["include"] == "comment_events" for q in event_pages)
    assert_matches_truth(desk)
    kept = desk.cursor(connection)
    assert kept["events"] == max(t.audits[-1].at for t in account.tickets.values())  # the last end_time
    # The agents (users with role agent or admin) are remembered for alias suggestions.
    seen = desk.runtime.aliases.seen(desk.workspace.id)
    assert {agent.id for agent in seen} == {str(a) for a in account.agents}

    # The next sync resumes from the kept after_cursor: nothing changed, nothing added.
    events = desk.events()
    asked = len(account.requests)
    again = desk.sync(connection)
    assert again.status == "succeeded", again.errors
    resumed = without_retries([q for p, q in account.requests[asked:] if p == _TICKETS])
    assert resumed == [{"cursor": kept["tickets"], "per_page": "200", "include": "metric_sets"}]
    assert again.fetched < 50
    assert desk.events() == events
    assert_matches_truth(desk)
    desk.assert_retention_covers_the_sync(connection)


def test_late_updates_and_deletions_arrive_with_the_next_sync(desk: Desk) -> None:
    account = desk.account
    connection = desk.connect()
    assert desk.sync(connection).status == "succeeded"
    base = int(END.timestamp())
    unsolved = [t.id for t in account.tickets.values() if t.fields()["status"] in ("new", "open", "pending")]
    account.reply_and_solve(unsolved[0], base + 600)
    account.delete(unsolved[1], base + 900)
    kept = desk.cursor(connection)

    run = desk.sync(connection)

    assert run.status == "succeeded", run.errors
    assert desk.asked(_TICKETS)[-1]["cursor"] == kept["tickets"]
    assert desk.cursor(connection)["tickets"] != kept["tickets"]  # past the updated tickets
    lookback = kept["events"] - 600
    assert [q for q in desk.asked(_EVENTS) if q["start_time"] == str(lookback)]
    assert_matches_truth(desk)
    assert desk.details()[str(unsolved[0])]["status"] == "solved"
    gone = str(unsolved[1])
    assert gone not in account.truth()
    logged = desk.runtime.engine.events_of(desk.workspace.id, [gone])
    assert logged.column("type").to_pylist().count("deleted") == 1


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_a_crash_between_pages_resumes_without_loss_or_duplicates(desk: Desk) -> None:
    account = desk.account
    connection = desk.connect()
    # A page the client gave up on and asked again is one page, not two: the 503s come after the
    # 14th page all the same (a loaded CI machine's timeout once made the outage come early).
    account.faults = {3: Fault(delay=2.5)}
    # The 10 ticket pages, then 4 of events.
    kept = orjson.loads(desk.crash_between_pages(connection, after_pages=14, committed_pages=14))
    timed_out = account.requests[2]
    assert timed_out[0] == _TICKETS
    assert account.requests[3] == timed_out  # asked again
    assert kept["tickets"] is not None
    assert kept["events"] is not None
    asked = len(account.requests)
    resumed = desk.sync(connection)
    assert resumed.status == "succeeded", resumed.errors
    again = [q for p, q in account.requests[asked:] if p == _EVENTS]
    assert again[0]["start_time"] == str(kept["events"] - 600)
    assert_matches_truth(desk)

    desk.assert_a_clean_sync_writes_as_many(TICKET_EVENTS, desk.connect)


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_429_bursts_5xx_timeouts_duplicates_and_updates_during_the_sync(desk: Desk) -> None:
    account = desk.account
    account.faults = {
        2: Fault(429, retry_after=13),
        3: Fault(429, retry_after=13),
        4: Fault(429, retry_after=13),
        12: Fault(500),
        13: Fault(502),
        30: Fault(delay=2.5),  # past the client's 2 s timeout
        60: Fault(429, retry_after=29),
    }
    account.duplicate_tickets = True
    ordered = sorted(account.tickets.values(), key=lambda t: (t.updated_at, t.id))
    read_early = ordered[10].id
    still_open = [t.id for t in ordered if t.fields()["status"] in ("new", "open", "pending")]
    read_late = still_open[-1]
    base = int(END.timestamp())

    def update(pages: int) -> None:
        if pages == 4:  # one ticket already read, one not yet: both move to the end of the export
            account.reply_and_solve(read_early, base + 600)
            account.reply_and_solve(read_late, base + 660)
            account.bulk_tag([t.id for t in ordered[200:700]], base + 720)  # 500 events in one second

    account.after_export_page = update

    run = desk.sync(desk.connect())

    assert run.status == "succeeded", run.errors
    assert (run.throttled, account.throttled) == (4, 0)  # the scripted ones; never over the limit
    # 500, 502 and the scripted timeout, each retried (a loaded machine may time out once more).
    assert run.retries >= 3
    assert {": 500", ": 502"} <= {error[-5:] for error in run.errors}
    assert desk.clock.slept[:3] == [13.0, 13.0, 13.0]  # Retry-After
    assert [e for e in run.errors if e.endswith(": 429")] == [f"GET {_TICKETS}: 429"] * 3 + [
        f"GET {_EVENTS}: 429"
    ]
    assert any("Timeout" in error for error in run.errors)
    assert_matches_truth(desk)
    assert desk.details()[str(read_early)]["status"] == "solved"
    assert desk.details()[str(read_late)]["status"] == "solved"


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_a_second_with_more_events_than_a_page_is_read_whole(desk: Desk) -> None:
    account = desk.account
    at = int(END.timestamp()) + 120
    account.bulk_tag(list(account.tickets), at)  # 300 audits in one second, pages of 50
    unsolved = next(
        t.id for t in account.tickets.values() if t.fields()["status"] not in ("solved", "closed")
    )
    account.reply_and_solve(unsolved, at + 60)
    connection = desk.connect(per_page=50)
    run = desk.sync(connection)
    assert run.status == "succeeded", run.errors
    starts = [int(q["start_time"]) for q in desk.asked(_EVENTS)]
    # The page from that second held all of it (its end_time is where it started): the next one
    # starts a second later instead of asking for the same page again.
    assert starts.count(at) == 1
    assert starts[starts.index(at) + 1] == at + 1
    assert desk.cursor(connection)["events"] == at + 60
    assert_matches_truth(desk)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [300], indirect=True)
def test_a_lower_rate_limit_is_waited_out(desk: Desk) -> None:
    desk.account.incremental_per_minute = 4  # another integration uses the rest
    run = desk.sync(desk.connect(per_page=100))
    assert run.status == "succeeded", run.errors
    assert desk.account.throttled > 0
    assert run.throttled == desk.account.throttled
    assert_matches_truth(desk)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("desk", [50], indirect=True)
def test_refusals_fail_the_run_without_the_token(desk: Desk) -> None:
    wrong = desk.sync(desk.connect("wrong token", token="not-the-token-42"))
    assert wrong.status == "failed"
    assert "401" in wrong.errors[-1]
    assert "not-the-token-42" not in " ".join(wrong.errors)

    bad = desk.sync(desk.connect("bad options", per_page=5000))
    assert bad.status == "failed"
    assert "per_page" in bad.errors[-1]


@pytest.mark.parametrize("desk", [REOPENED_UNSOLVED], indirect=True)
def test_zendesk_metrics_agree_with_ours_but_for_known_differences(desk: Desk) -> None:
    assert desk.sync(desk.connect()).status == "succeeded"
    connection = desk.runtime.connections.open(desk.workspace.id, desk.connect("reader"))
    options = ZENDESK.client_options(connection)
    with SourceClient(
        desk.url, budget=BUDGET, sleep=desk.clock.sleep, clock=desk.clock.time, **options
    ) as client:
        theirs = list(ZendeskConnector(connection, client).ticket_metrics())
    assert len(theirs) == len(desk.account.tickets)
    assert len(without_retries(desk.asked("/api/v2/ticket_metrics"))) == 20  # pages of 100
    ours = desk.time_metrics(int(END.timestamp()) + 86_400)

    found = metric_disagreements(theirs, ours)

    assert found  # reopened tickets not solved again
    assert all(d.known_difference == REOPENED_UNRESOLVED for d in found)
    assert all(d.metric == "full_resolution_minutes" and d.our_minutes is None for d in found)
    truth = desk.account.truth()
    assert all(truth[d.ticket_id].reopens > 0 and truth[d.ticket_id].resolved_at is None for d in found)
    # A disagreement nothing explains is listed with both values.
    tampered = [dict(theirs[0], reply_time_in_minutes={"calendar": 99_999, "business": 99_999})]
    [odd] = metric_disagreements(tampered, ours)
    ticket = str(theirs[0]["ticket_id"])
    assert (odd.ticket_id, odd.metric, odd.zendesk_minutes, odd.known_difference) == (
        ticket,
        "first_response_minutes",
        99_999,
        None,
    )
    assert odd.our_minutes == ours[ticket]["first_response_minutes"]


# Pure mapping.

_OPTIONS = ZendeskOptions.parse({})


def test_ticket_fields_statuses_priorities_and_csat_convention() -> None:
    ticket = {"id": 35436, "type": "incident", "priority": "normal", "status": "hold", "requester_id": 20978392,
              "assignee_id": 235323, "group_id": 98738, "tags": ["enterprise"], "via": {"channel": "web"},
              "custom_fields": [{"id": 27642, "value": "billing"}], "created_at": "2009-07-20T22:55:29Z",
              "updated_at": "2011-05-05T10:38:52Z", "subject": "Help",
              "satisfaction_rating": {"id": 1234, "score": "good", "comment": "Great support!"}}  # fmt: skip
    row = ticket_row(ticket, {"solved_at": "2011-05-01T00:00:00Z"}, _OPTIONS)
    assert (row["status"], row["priority"], row["category"], row["channel"]) == (
        "hold",
        "normal",
        "incident",
        "web",
    )
    assert (row["customer_id"], row["agent_id"], row["group_id"]) == ("20978392", "235323", "98738")
    assert row["resolved_at"] is None  # solved_at counts only while the ticket is solved or closed
    assert row["satisfaction_score"] == 5
    solved = ticket_row({**ticket, "status": "closed", "satisfaction_rating": {"score": "bad"}}, {"solved_at": "x"},
                        ZendeskOptions.parse({"category_field": "27642", "status_map": {"closed": "archived"}}))  # fmt: skip
    assert (solved["status"], solved["resolved_at"], solved["category"]) == ("archived", "x", "billing")
    assert solved["satisfaction_score"] == 1
    for unanswered in ("offered", "unoffered"):
        assert (
            ticket_row({**ticket, "satisfaction_rating": {"score": unanswered}}, None, _OPTIONS)[
                "satisfaction_score"
            ]
            is None
        )
    with pytest.raises(ValueError, match="category_field"):
        ZendeskOptions.parse({"category_field": "cf_category"})
    with pytest.raises(ValueError, match="status_map"):
        ZendeskOptions.parse({"status_map": {"hold": ""}})


def test_audits_become_events_with_zendesk_ids() -> None:
    agents = frozenset({"7"})
    comment = {"via": {"channel": "api"}, "type": "Comment", "event_type": "Comment", "public": True}
    creation = {"id": 500, "ticket_id": 9, "timestamp": 1_700_000_000, "updater_id": 3, "via": "Mail",
                "child_events": [{"id": 501, "status": "new", "event_type": "Create"},
                                 {"id": 502, "field_name": "priority", "value": "high", "event_type": "Create"},
                                 {"id": 503, "requester_id": 3, "event_type": "Create"},
                                 {"id": 504, "author_id": 3, **comment},
                                 {"id": 505, "subject": "x", "recipients": [3], "event_type": "Notification"}]}  # fmt: skip
    [created, request] = audit_events(creation, agents, _OPTIONS)
    assert created == {"event_id": "zendesk:audit:500", "ticket_id": "9", "at": "2023-11-14T22:13:20Z",
                       "actor_type": "customer", "actor_id": "3", "type": "created", "status": "new",
                       "priority": "high", "customer_id": "3"}  # fmt: skip
    assert (request["event_id"], request["type"], request["actor_type"]) == (
        "zendesk:504",
        "customer_message",
        "customer",
    )

    update = {"id": 600, "ticket_id": 9, "created_at": "2023-11-15T08:00:00Z", "updater_id": 7,
              "child_events": [{"id": 601, "author_id": 7, **comment},
                               {"id": 602, "author_id": 7, **comment, "public": False},
                               {"id": 603, "status": "pending", "previous_value": "open", "event_type": "Change"},
                               {"id": 604, "assignee_id": 7, "previous_value": None, "event_type": "Change"},
                               {"id": 605, "group_id": 12, "previous_value": 11, "event_type": "Change"},
                               {"id": 606, "tags": ["a"], "previous_value": [], "event_type": "Change"},
                               {"id": 607, "author_id": -1, **comment},
                               {"id": 608, "score": "bad", "event_type": "SatisfactionRating"}]}  # fmt: skip
    events = audit_events(update, agents, _OPTIONS)
    assert [(e["event_id"], e["type"], e["actor_type"]) for e in events] == [
        ("zendesk:601", "reply", "agent"),
        ("zendesk:602", "internal_note", "agent"),
        ("zendesk:603", "status_changed", "agent"),
        ("zendesk:604", "assigned", "agent"),
        ("zendesk:605", "field_changed", "agent"),
        ("zendesk:607", "reply", "system"),  # an automation's comment: never a human reply
        ("zendesk:608", "rated", "agent"),
    ]
    assert (events[2]["to"], events[2]["from"], events[3]["to"]) == ("pending", "open", "7")
    assert (events[4]["field"], events[4]["to"], events[6]["score"]) == ("group_id", "12", 1)


def test_connection_needs_credentials_and_valid_options() -> None:
    def connection(credentials: dict[str, str], **options: Any) -> Connection:
        return Connection("c", "w", "zendesk", "http://127.0.0.1:9", credentials, options=options)

    with SourceClient("http://127.0.0.1:9") as client:
        with pytest.raises(SourceError, match="'email' and 'token'"):
            ZendeskConnector(connection({"email": EMAIL}), client)
        with pytest.raises(SourceError, match="lookback_minutes"):
            ZendeskConnector(connection({"oauth_token": "t0ken"}, lookback_minutes=-1), client)
    assert ZENDESK.client_options(connection({"oauth_token": "t0ken"})) == {
        "headers": {"Authorization": "Bearer t0ken"}
    }
    assert ZENDESK.client_options(connection({"email": EMAIL, "token": "tok"})) == {
        "auth": (f"{EMAIL}/token", "tok")
    }
