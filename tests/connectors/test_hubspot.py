"""The HubSpot connector against a fake HubSpot account (tests/fakes/hubspot.py) through the sync
engine, on real stores: after a sync our tickets and metrics equal the account's ground truth,
ticket for ticket; the search cap (made small in the fake so that it bites), bulk updates within one
millisecond, the search rate limit, 429 of every policy, 5xx, timeouts, stale copies, updates
during the sync, a stage added during the sync and a crash between two pages change nothing of
that.  Rate limits are kept on a fake clock shared by the client and the fake server, so nothing
really waits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import httpx
import orjson
import pytest

from supportlens.connectors.base import Connection
from supportlens.connectors.http import SourceClient, SourceError
from supportlens.connectors.hubspot import (
    HUBSPOT,
    HubSpotConnector,
    HubSpotOptions,
    Stage,
    cross_check,
    hubspot_retry_after,
    owner_agent,
    ticket_row,
)
from supportlens.domain.metrics import minutes
from supportlens.ingest.tickets import Invalid
from supportlens.runtime import Runtime
from supportlens.store.schema import TICKETS
from tests.connectors.harness import SyncTarget, serving, without_retries
from tests.fakes.hubspot import (
    SEARCH_PATH,
    TOKEN,
    Fault,
    HubSpotAccount,
    TicketTruth,
    build_account,
)

# Whole hours, an hour back: updates made "during the sync" (after END) are still in the past.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
END_MS = int(END.timestamp() * 1000)
COUNTED = ["0", "Escalations"]  # an id and a label; "Internal IT" does not count
COUNTED_IDS = ("0", "7781234")
RESOLVED = ("closed", "resolved")  # the resolved names among the fake's expected statuses
CAP = 1_000  # the fake's search cap, 10,000 at HubSpot: small enough to bite with a few thousand tickets


@dataclass
class Portal(SyncTarget):
    """A fake account served on 127.0.0.1, and a sync engine that reads it on the fake clock."""

    account: HubSpotAccount

    def connect(self, name: str = "hubspot", *, token: str = TOKEN, **options: Any) -> str:
        return self.connection_of("hubspot", name, {"token": token}, {"pipelines": COUNTED, **options})

    def time_metrics(self) -> dict[str, dict[str, Any]]:
        return self.by_ticket("ticket_time_metrics", {"as_of": _day_time(END_MS + 86_400_000)})

    def summary(self) -> dict[str, Any]:
        query = {"start_date": "2000-01-01 00:00:00", "end_date": "2100-01-01 00:00:00"}
        return dict(self.runtime.run_pipe("ticket_metrics", self.workspace, query).rows[0])


def _day_time(milliseconds: int) -> str:
    return datetime.fromtimestamp(milliseconds / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(milliseconds: int | None) -> str:
    """As the pipes print a time (to the second); empty for none."""
    return "" if milliseconds is None else _day_time(milliseconds)


def _minutes(start: int, end: int | None) -> float | None:
    return None if end is None else minutes(end - start)


@pytest.fixture
def portal(runtime: Runtime, request: pytest.FixtureRequest) -> Iterator[Portal]:
    size = getattr(request, "param", 2_500)
    account = build_account(size, seed=5, end=END, days=90)
    account.search_cap = CAP
    with serving(runtime, HUBSPOT, account, Portal, timeout_seconds=0.5) as target:
        yield target


def assert_matches_truth(portal: Portal, *, unread: frozenset[str] = frozenset()) -> None:
    """Every ticket of the counted pipelines (but the ``unread`` ones), with the values and metrics
    its ground truth gives, and the summary metrics over them."""
    truth = {k: v for k, v in portal.account.truth(COUNTED_IDS).items() if k not in unread}
    details = portal.details()
    assert set(details) == set(truth)
    metrics = portal.time_metrics()
    for ticket_id, expected in truth.items():
        row, timed = details[ticket_id], metrics[ticket_id]
        assert (row["status"], row["priority"], row["agent_id"], row["category"], row["channel"]) == (
            expected.status,
            expected.priority,
            expected.agent_id,
            expected.category,
            expected.channel,
        ), ticket_id
        assert row["created_at"][:19] == _text(expected.created_at)
        assert (row["first_response_at"] or "")[:19] == _text(expected.first_response_at), ticket_id
        assert (row["resolved_at"] or "")[:19] == _text(expected.resolved_at), ticket_id
        assert timed["first_response_minutes"] == _minutes(expected.created_at, expected.first_response_at)
        # METRICS.md: full resolution is null while unresolved (a reopened ticket keeps its closed_date).
        resolved = expected.resolved_at if expected.status in RESOLVED else None
        assert timed["full_resolution_minutes"] == _minutes(expected.created_at, resolved), ticket_id
    assert_summary(portal.summary(), list(truth.values()))


def assert_summary(row: dict[str, Any], truth: list[TicketTruth]) -> None:
    responses = sorted(t.first_response_at - t.created_at for t in truth if t.first_response_at is not None)
    resolutions = sorted(t.resolved_at - t.created_at for t in truth if t.resolved_at is not None)
    assert row["total_tickets"] == len(truth)
    assert row["resolved_tickets"] == sum(t.status in RESOLVED for t in truth)
    assert row["avg_first_response_time_minutes"] == minutes(Fraction(sum(responses), len(responses)))
    assert row["avg_resolution_time_minutes"] == minutes(Fraction(sum(resolutions), len(resolutions)))
    assert row["median_first_response_time_minutes"] == minutes(_median(responses))
    assert row["median_resolution_time_minutes"] == minutes(_median(resolutions))


def _median(ordered: list[int]) -> Fraction:
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Fraction(ordered[middle])
    return Fraction(ordered[middle - 1] + ordered[middle], 2)


def _filters(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (group,) = body["filterGroups"]
    return {f"{f['propertyName']} {f['operator']}": f for f in group["filters"]}


def test_a_sync_equals_the_accounts_ground_truth(portal: Portal) -> None:
    account = portal.account
    counted = [t for t in account.tickets.values() if t.pipeline in COUNTED_IDS and not t.archived]
    bulk = sorted(t.id for t in counted)[: CAP + 200]
    account.touch(bulk, END_MS - 1_800_000)  # one bulk edit: more tickets in one millisecond than the cap
    assert len(counted) > 2 * CAP

    connection = portal.connect()
    run = portal.sync(connection)

    assert run.status == "succeeded", run.errors
    assert (run.throttled, account.throttled) == (0, {})  # the client's budget stays under 5 a second
    bodies = account.search_bodies()
    assert all(body["after"] == "0" and body["limit"] == 200 for body in bodies)  # re-windowed every page
    by_time = [
        b for b in bodies if b["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    ]
    by_id = [b for b in bodies if b["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]]
    assert len(by_time) + len(by_id) == len(bodies)
    assert len(by_id) >= (CAP + 200) // 200  # the bulk edit's millisecond, read by id
    assert all(_filters(b)["hs_lastmodifieddate LTE"]["value"] == str(END_MS - 1_800_000) for b in by_id)
    assert all(_filters(b)["hs_pipeline IN"]["values"] == list(COUNTED_IDS) for b in bodies)
    assert run.fetched >= len(counted)
    assert_matches_truth(portal)

    # Owners are the agents, by owner id (not userId), with names and emails, archived ones too.
    seen = {agent.id: agent for agent in portal.runtime.aliases.seen(portal.workspace.id)}
    assert set(seen) == {owner.id for owner in account.owners}
    archived = next(owner for owner in account.owners if owner.archived)
    assert (seen[archived.id].name, seen[archived.id].email) == (
        f"{archived.first_name} {archived.last_name}",
        archived.email,
    )

    # The next sync reads only what changed since (less the look-back) and changes nothing.
    tickets = portal.runtime.engine.count(TICKETS, portal.workspace.id)
    asked = len(bodies)
    again = portal.sync(connection)
    assert again.status == "succeeded", again.errors
    # One search.
    assert len(without_retries(account.search_bodies()[asked:])) == 1
    last = max(t.modified for t in counted)
    since = _filters(account.search_bodies()[-1])["hs_lastmodifieddate GTE"]["value"]
    assert int(since) == last - 600_000
    assert again.fetched < 50
    assert portal.runtime.engine.count(TICKETS, portal.workspace.id) == tickets
    assert_matches_truth(portal)
    portal.assert_retention_covers_the_sync(connection)


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_the_fake_serves_what_the_reference_says(portal: Portal) -> None:
    """What the connector is tested against: the cap answers 400, values are strings, search
    answers carry no rate-limit headers, owners' ids are strings and userIds ints."""
    portal.account.search_per_second = 100  # this client keeps no budget
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=portal.url, headers=headers) as client:
        body: dict[str, Any] = {"limit": 500, "sorts": ["hs_lastmodifieddate"], "after": "0"}
        first = client.post(SEARCH_PATH, json=body)
        assert first.status_code == 200
        answer = first.json()
        assert answer["total"] > CAP
        assert len(answer["results"]) == 200  # limit clamped
        assert not any(name.lower().startswith("x-hubspot-ratelimit") for name in first.headers)
        record = answer["results"][0]
        assert set(record["properties"]) == {"content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_category",
                                             "hs_ticket_priority", "subject", "createdate",
                                             "hs_lastmodifieddate", "hs_object_id"}  # fmt: skip
        assert all(v is None or isinstance(v, str) for v in record["properties"].values())
        assert record["properties"]["createdate"].endswith("Z")
        # Paging on, as a naive client would: the cap answers 400.
        after = answer["paging"]["next"]["after"]
        while True:
            page = client.post(SEARCH_PATH, json={**body, "after": after})
            if page.status_code != 200:
                break
            after = page.json()["paging"]["next"]["after"]
        assert (page.status_code, page.json()["category"], int(after)) == (400, "VALIDATION_ERROR", CAP)
        timed = client.post(SEARCH_PATH, json={"properties": ["time_to_close"], "filterGroups": [
            {"filters": [{"propertyName": "time_to_close", "operator": "HAS_PROPERTY"}]}]})  # fmt: skip
        assert all(r["properties"]["time_to_close"].isdigit() for r in timed.json()["results"])
        too_many = {
            "filterGroups": [{"filters": [{"propertyName": "subject", "operator": "HAS_PROPERTY"}] * 7}]
        }
        assert client.post(SEARCH_PATH, json=too_many).status_code == 400

        owners = client.get("/crm/v3/owners", params={"limit": 5})
        assert owners.headers["X-HubSpot-RateLimit-Max"] == "100"
        owner = owners.json()["results"][0]
        assert isinstance(owner["id"], str)
        assert isinstance(owner["userId"], int)
        assert int(owner["id"]) != owner["userId"]
        assert owners.json()["paging"]["next"]["after"] == "5"
        archived = client.get("/crm/v3/owners", params={"archived": "true"}).json()
        assert archived["results"]
        assert all(o["archived"] for o in archived["results"])
        assert "paging" not in archived
        pipelines = client.get("/crm/v3/pipelines/tickets").json()["results"]
        assert {s["metadata"]["ticketState"] for p in pipelines for s in p["stages"]} == {"OPEN", "CLOSED"}
        assert client.get("/crm/v3/owners", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_a_crash_between_pages_resumes_without_loss_or_duplicates(portal: Portal) -> None:
    account = portal.account
    connection = portal.connect()
    kept = orjson.loads(portal.crash_between_pages(connection, after_pages=4, committed_pages=4))["modified"]
    asked = len(account.search_bodies())
    resumed = portal.sync(connection)
    assert resumed.status == "succeeded", resumed.errors
    since = int(_filters(account.search_bodies()[asked])["hs_lastmodifieddate GTE"]["value"])
    assert since == int(datetime.fromisoformat(kept).timestamp() * 1000) - 600_000
    assert_matches_truth(portal)

    portal.assert_a_clean_sync_writes_as_many(TICKETS, portal.connect)


@pytest.mark.parametrize("engine_name", ["duckdb"])
def test_429s_5xx_timeouts_stale_copies_and_updates_during_the_sync(portal: Portal) -> None:
    account = portal.account
    account.faults = {
        4: Fault(429, policy="SECONDLY"),
        5: Fault(429, policy="SECONDLY"),
        7: Fault(429, policy="TEN_SECONDLY_ROLLING"),
        9: Fault(429, policy="SECONDLY", retry_after=7),
        11: Fault(500),
        12: Fault(502),
        14: Fault(delay=1.0),  # past the client's 0.5 s timeout
    }
    account.stale_copies = True
    counted = sorted(
        (t for t in account.tickets.values() if t.pipeline in COUNTED_IDS and not t.archived),
        key=lambda t: (t.modified, t.id),
    )
    read_early = counted[5].id
    still_open = [t.id for t in counted if t.closed is None and t.pipeline == "0"]
    read_late = still_open[-1]

    def update(pages: int) -> None:
        if pages == 3:  # one already read, one not yet: both move to the end of the list
            account.reply_and_close(read_early, END_MS + 600_000)
            account.reply_and_close(read_late, END_MS + 660_000)
            account.touch([t.id for t in counted[300:360]], END_MS + 720_000)

    account.after_search_page = update

    run = portal.sync(portal.connect())

    assert run.status == "succeeded", run.errors
    assert (run.throttled, account.throttled) == (4, {})  # the scripted ones; never over the limits
    # 500, 502 and the scripted timeout, each retried (a loaded machine may time out once more).
    assert run.retries >= 3
    assert {": 500", ": 502"} <= {error[-5:] for error in run.errors}
    # No Retry-After: HubSpot's policies say how long (1 s secondly, 10 s ten-secondly); 7 s when sent.
    for wait in (1.0, 10.0, 7.0):
        assert wait in portal.clock.slept
    assert any("Timeout" in error for error in run.errors)
    assert_matches_truth(portal)
    assert portal.details()[str(read_early)]["status"] == "closed"
    assert portal.details()[str(read_late)]["status"] == "closed"


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("portal", [600], indirect=True)
def test_a_stricter_search_limit_is_waited_out(portal: Portal) -> None:
    portal.account.search_per_second = 2  # below the client's budget of 4 a second
    run = portal.sync(portal.connect(per_page=50))
    assert run.status == "succeeded", run.errors
    throttled = portal.account.throttled
    assert set(throttled) == {"SECONDLY"}
    assert run.throttled == throttled["SECONDLY"] > 0
    assert_matches_truth(portal)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("portal", [300], indirect=True)
def test_a_stage_added_during_the_sync_is_read(portal: Portal) -> None:
    account = portal.account
    waiting = sorted((t for t in account.tickets.values() if t.pipeline == "0" and not t.archived),
                     key=lambda t: t.modified)[-1]  # fmt: skip

    def update(pages: int) -> None:
        if pages == 1:
            account.add_stage("0", ("88000001", "Waiting on billing", "OPEN"), "waiting on billing")
            account.move(waiting.id, "88000001", END_MS + 60_000)

    account.after_search_page = update
    run = portal.sync(portal.connect(per_page=100))
    assert run.status == "succeeded", run.errors
    assert portal.details()[str(waiting.id)]["status"] == "waiting on billing"
    assert sum(path == "/crm/v3/pipelines/tickets" for _, path, _, _ in account.requests) == 2
    assert_matches_truth(portal)


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("portal", [50], indirect=True)
def test_refusals_and_the_daily_limit_fail_the_run_saying_why(portal: Portal) -> None:
    wrong = portal.sync(portal.connect("wrong token", token="pat-na1-not-the-token-42"))
    assert wrong.status == "failed"
    assert "401" in wrong.errors[-1]
    assert "not-the-token-42" not in " ".join(wrong.errors)

    unknown = portal.sync(portal.connect("unknown pipeline", pipelines=["Sales"]))
    assert unknown.status == "failed"
    assert "'Sales'" in unknown.errors[-1]
    assert "7781234 (Escalations)" in unknown.errors[-1]

    bad = portal.sync(portal.connect("bad options", per_page=500))
    assert bad.status == "failed"
    assert "per_page" in bad.errors[-1]

    portal.account.daily = portal.account.used_today + 2  # the pipelines and the active owners
    daily = portal.sync(portal.connect("daily"))
    assert daily.status == "failed"
    assert "daily API limit" in daily.errors[-1]
    assert daily.throttled == 1  # not retried: waiting seconds will not lift it


@pytest.mark.parametrize("engine_name", ["duckdb"])
@pytest.mark.parametrize("portal", [300], indirect=True)
def test_a_malformed_ticket_is_quarantined_and_the_rest_imported(portal: Portal) -> None:
    account = portal.account
    broken = next(t for t in account.tickets.values() if t.pipeline == "0" and not t.archived)
    broken.garbled = {"time_to_close": "soon"}
    run = portal.sync(portal.connect())
    assert run.status == "succeeded", run.errors
    assert run.quarantined == 1
    kept = portal.only_quarantined()
    assert (kept["datasource"], kept["column_name"]) == ("connector_records", "time_to_close")
    assert orjson.loads(kept["raw"])["id"] == str(broken.id)
    assert_matches_truth(portal, unread=frozenset({str(broken.id)}))


# Pure mapping.

STAGES = {
    "1": Stage("1", "0", "New", closed=False),
    "4": Stage("4", "0", "Closed", closed=True),
    "70": Stage("70", "7", "Done", closed=True),
    "71": Stage("71", "7", "Resolved", closed=False),  # an odd portal: the ticket state wins
}


def _record(**properties: str | None) -> dict[str, Any]:
    base = {"createdate": "2026-01-01T00:00:00.000Z", "hs_lastmodifieddate": "2026-01-03T00:00:00.000Z"}
    return {"id": "512", "properties": {**base, **properties}}


def test_stages_map_to_statuses_by_their_ticket_state() -> None:
    options = HubSpotOptions.parse({"status_map": {"1": "Untriaged"}})
    assert [options.status(stage, STAGES) for stage in ("1", "4", "70", "71", "99", None)] == [
        "Untriaged",
        "closed",
        "closed",
        "open",
        "stage_99",
        None,
    ]
    assert HubSpotOptions.parse({}).status("1", STAGES) == "new"


def test_priorities_map_with_overrides_and_empty_is_none() -> None:
    options = HubSpotOptions.parse({"priority_map": {"P1": "urgent"}})
    assert [options.priority(v) for v in ("LOW", "MEDIUM", "HIGH", "URGENT", "P1", "P9", "", None)] == [
        "low",
        "medium",
        "high",
        "urgent",
        "urgent",
        "P9",
        None,
        None,
    ]


def test_durations_in_milliseconds_fill_and_cross_check_the_dates() -> None:
    options = HubSpotOptions.parse({})
    derived = _record(time_to_first_agent_reply="2368877", time_to_close="90000000.0", hs_pipeline_stage="4")
    row = ticket_row(derived, STAGES, options)
    assert row["first_response_at"] == "2026-01-01T00:39:28.877Z"
    assert row["resolved_at"] == "2026-01-02T01:00:00.000Z"
    assert row["status"] == "closed"
    assert cross_check(derived) == []

    stated = _record(first_agent_reply_date="2026-01-01T02:00:00.000Z", time_to_first_agent_reply="60000")
    assert ticket_row(stated, STAGES, options)["first_response_at"] == "2026-01-01T02:00:00.000Z"
    assert cross_check(stated) == ["first_agent_reply_date disagrees with time_to_first_agent_reply"]

    early = _record(closed_date="2025-12-31T23:00:00.000Z")
    assert ticket_row(early, STAGES, options)["resolved_at"] is None  # never a negative resolution
    assert cross_check(early) == ["closed_date before createdate"]

    bare = ticket_row(_record(hs_ticket_priority="", hubspot_owner_id="41629779"), STAGES, options)
    assert (bare["priority"], bare["agent_id"], bare["first_response_at"], bare["resolved_at"]) == (
        None,
        "41629779",
        None,
        None,
    )
    with pytest.raises(Invalid) as garbled:
        ticket_row(_record(time_to_close="soon"), STAGES, options)
    assert garbled.value.rejection.column == "time_to_close"


def test_owners_are_agents_by_owner_id() -> None:
    owner = {"id": "41629779", "userId": 9586504, "firstName": "HubSpot", "lastName": "Test Owner",
             "email": "email@hubspot.com"}  # fmt: skip
    agent = owner_agent(owner)
    assert (agent.id, agent.name, agent.email, agent.is_bot) == (
        "41629779",
        "HubSpot Test Owner",
        "email@hubspot.com",
        False,
    )


def test_429_policies_set_the_wait() -> None:
    def answer(body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(429, json=body, headers=headers)

    assert hubspot_retry_after(answer({"policyName": "SECONDLY"})) == 1.0
    assert hubspot_retry_after(answer({"policyName": "TEN_SECONDLY_ROLLING"})) == 10.0
    assert hubspot_retry_after(answer({"message": "You have reached your secondly limit."})) == 1.0
    assert hubspot_retry_after(answer({"policyName": "SECONDLY"}, {"Retry-After": "3"})) == 3.0
    assert hubspot_retry_after(answer({"policyName": "SOMETHING_ELSE"})) is None  # the client's backoff
    with pytest.raises(SourceError, match="daily"):
        hubspot_retry_after(answer({"policyName": "DAILY"}))


def test_options_are_checked() -> None:
    for options, name in (
        ({"pipelines": "0"}, "pipelines"),
        ({"per_page": 0}, "per_page"),
        ({"lookback_minutes": -1}, "lookback_minutes"),
        ({"status_map": {"1": ""}}, "status_map"),
        ({"category_property": ""}, "category_property"),
    ):
        with pytest.raises(ValueError, match=name):
            HubSpotOptions.parse(options)
    connection = Connection("c", "w", "hubspot", "http://127.0.0.1:9", {})
    with SourceClient(connection.base_url) as client, pytest.raises(SourceError, match="token"):
        HubSpotConnector(connection, client)
