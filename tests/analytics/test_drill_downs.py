"""The drill-downs of ticket_details on tickets with activity logs, snapshot-only tickets and
tickets fed by both, on both engines: against the pure reference, and against the pipe whose bar
or cell is clicked (a backlog bucket, an arrivals cell, a time-in-status category lists exactly
as many tickets as the pipe counts there)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from supportlens.auth.repository import Workspace
from supportlens.domain import reference
from supportlens.domain.events import TicketEvent
from supportlens.domain.models import TicketSnapshot
from supportlens.domain.statuses import StatusCategory
from supportlens.ingest.events import validate_event
from supportlens.ingest.service import RawRow
from supportlens.ingest.timestamps import parse_timestamp
from supportlens.runtime import Runtime
from tests.conftest import ENGINES, make_settings
from tests.randomized import BASE, ticket_row

SEED = 20260517
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"]
STATUSES = ["new", "open", "pending", "on_hold", "solved", "resolved", "closed", "waiting for customer"]
SPAN_DAYS = 40  # tickets are created over these days after BASE
CATEGORIES = [c.value for c in StatusCategory]
AGE_BUCKETS = [
    ("age_under_1d", 0, 1),
    ("age_1_3d", 1, 3),
    ("age_3_7d", 3, 7),
    ("age_7_30d", 7, 30),
    ("age_over_30d", 30, None),
]


def _at(moment: datetime) -> str:
    return moment.isoformat()


def _query_time(moment: datetime) -> str:
    """An instant as a query date, to the millisecond (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _history(rng: random.Random, ticket_id: str, created: datetime) -> list[dict[str, Any]]:
    """A ticket's events: created, then status changes (reopens, repeats, one before creation now
    and then), replies and customer messages, out of time order."""
    rows: list[dict[str, Any]] = [
        {
            "event_id": f"{ticket_id}-0",
            "ticket_id": ticket_id,
            "at": _at(created),
            "type": "created",
            "status": rng.choice([None, "new", "open"]),
            "priority": rng.choice(["low", "high", None]),
            "category": rng.choice(["billing", "technical", None]),
            "agent_id": rng.choice(["A1", "A2", None]),
        }
    ]
    moment = created
    for n in range(1, rng.randint(0, 8) + 1):
        moment += timedelta(minutes=rng.randrange(-180, 5 * 1440))
        kind = rng.choice(["status_changed", "status_changed", "status_changed", "reply", "customer_message"])
        row: dict[str, Any] = {"event_id": f"{ticket_id}-{n}", "ticket_id": ticket_id, "at": _at(moment)}
        row["type"] = kind
        if kind == "status_changed":
            row["to"] = rng.choice(STATUSES)
        else:
            row["actor_type"] = "agent" if kind == "reply" else "customer"
        rows.append(row)
    rng.shuffle(rows)
    return rows


@dataclass
class Loaded:
    runtime: Runtime
    workspace: Workspace
    tickets: list[TicketSnapshot]  # the current state, as the store derived it
    events: dict[str, list[TicketEvent]]
    last_event: datetime


def _current_state(runtime: Runtime, workspace: Workspace) -> list[TicketSnapshot]:
    rows = runtime.run_pipe("ticket_details", workspace, {"limit": "10000"}).rows

    def instant(value: object) -> datetime | None:
        return None if value is None else parse_timestamp(value)

    return [
        TicketSnapshot(
            ticket_id=row["ticket_id"],
            created_at=parse_timestamp(row["created_at"]),
            customer_id=row["customer_id"],
            agent_id=row["agent_id"],
            category=row["category"],
            priority=row["priority"],
            status=row["status"],
            first_response_at=instant(row["first_response_at"]),
            resolved_at=instant(row["resolved_at"]),
            satisfaction_score=row["satisfaction_score"],
            tags=tuple(row["tags"]),
            updated_at=instant(row["updated_at"]),
            channel=row["channel"],
            subject=row["subject"],
        )
        for row in rows
    ]


@pytest.fixture(scope="module", params=ENGINES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """300 tickets with a log (a tenth also posted as snapshots, some created earlier there) and
    200 snapshot-only ones, all created over 40 days."""
    runtime = Runtime.open(make_settings(str(request.param), tmp_path_factory.mktemp(str(request.param))))
    workspace = runtime.metadata.create_workspace("drill")
    rng = random.Random(SEED)

    def created() -> datetime:
        return BASE + timedelta(seconds=rng.randrange(SPAN_DAYS * 86_400))

    event_rows: list[dict[str, Any]] = []
    snapshot_rows: list[dict[str, Any]] = []
    for index in range(300):
        ticket_id, born = f"E{index:04d}", created()
        event_rows += _history(rng, ticket_id, born)
        if rng.random() < 0.1:
            snapshot_rows.append(ticket_row(rng, ticket_id, born - timedelta(hours=rng.choice([0, 5, 50]))))
    snapshot_rows += [ticket_row(rng, f"S{index:04d}", created()) for index in range(200)]
    for datasource, rows in (("support_tickets", snapshot_rows), ("ticket_events", event_rows)):
        result = runtime.ingest.ingest(workspace.id, datasource, [RawRow(r, "") for r in rows])
        result.committed.result()
        assert result.quarantined_rows == 0
    events: dict[str, list[TicketEvent]] = {}
    for row in event_rows:
        event = validate_event(row)
        assert isinstance(event, TicketEvent)
        events.setdefault(event.ticket_id, []).append(event)
    last_event = max(e.at for found in events.values() for e in found)
    try:
        yield Loaded(runtime, workspace, _current_state(runtime, workspace), events, last_event)
    finally:
        runtime.close()


def _run(loaded: Loaded, pipe: str, query: dict[str, str]) -> Any:
    return loaded.runtime.run_pipe(pipe, loaded.workspace, query)


def _listed(loaded: Loaded, query: dict[str, str]) -> int:
    """How many tickets ticket_details lists for ``query``."""
    result = _run(loaded, "ticket_details", {**query, "limit": "1"})
    assert result.rows_before_limit is not None
    return result.rows_before_limit


def _as_of(rng: random.Random, loaded: Loaded) -> datetime:
    """Inside the histories (the log read up to then) or after them all (the stored facts)."""
    if rng.random() < 0.5:
        return BASE + timedelta(days=rng.uniform(5, SPAN_DAYS + 10), milliseconds=rng.randrange(1000))
    return loaded.last_event + timedelta(days=rng.uniform(0, 30))


def _filters(rng: random.Random) -> dict[str, str]:
    chosen = {
        "category": rng.choice(["billing", "technical", None, None]),
        "priority": rng.choice(["low", "high", None, None]),
        "agent_id": rng.choice(["A1", None, None]),
    }
    return {name: value for name, value in chosen.items() if value is not None}


def _window(rng: random.Random, days: float) -> tuple[datetime, datetime]:
    start = BASE + timedelta(days=rng.uniform(-3, SPAN_DAYS), seconds=rng.randrange(86_400))
    return start, start + timedelta(days=rng.uniform(0, days))


def test_drill_downs_match_the_reference(loaded: Loaded) -> None:
    rng = random.Random(f"{SEED}-reference")
    non_empty = 0
    for attempt in range(80):
        filters = _filters(rng)
        as_of = _as_of(rng, loaded)
        query: dict[str, str] = {**filters, "as_of": _query_time(as_of)}
        arguments: dict[str, Any] = {
            "ticket_id": None,
            "customer_id": None,
            "status": None,
            **dict.fromkeys(("category", "priority", "agent_id")),
            **filters,
            "created_after": None,
            "created_before": None,
            "limit": rng.choice([5, 100, 10_000]),
            "offset": rng.choice([0, 0, 3]),
            "histories": reference.Histories(loaded.events, as_of),
        }
        query["limit"], query["offset"] = str(arguments["limit"]), str(arguments["offset"])
        if rng.random() < 0.6:
            moment = BASE + timedelta(days=rng.uniform(-2, SPAN_DAYS + 15), milliseconds=rng.randrange(10**8))
            query["open_at"] = _query_time(moment)
            arguments["open_at"] = parse_timestamp(query["open_at"])  # to the millisecond
            if rng.random() < 0.6:
                _, youngest, oldest = rng.choice(AGE_BUCKETS)
                query["age_min_days"], arguments["age_min_days"] = str(youngest), youngest
                if oldest is not None:
                    query["age_max_days"], arguments["age_max_days"] = str(oldest), oldest
        if rng.random() < 0.4:
            arguments["in_status_category"] = query["in_status_category"] = rng.choice(CATEGORIES)
        if rng.random() < 0.3:
            arguments["tz"] = query["timezone"] = rng.choice(ZONES)
            arguments["created_weekday"] = rng.randint(1, 7)
            query["created_weekday"] = str(arguments["created_weekday"])
        result = _run(loaded, "ticket_details", query)
        expected_rows, expected_total = reference.ticket_details(loaded.tickets, **arguments)
        assert result.rows_before_limit == expected_total, (attempt, query)
        assert result.rows == expected_rows, (attempt, query)
        non_empty += bool(expected_total)
    assert non_empty >= 40


def _day_end(day: date, zone: str) -> datetime:
    """The last instant (millisecond) of a local day: where the backlog counts."""
    return datetime.combine(day + timedelta(days=1), time(), ZoneInfo(zone)) - timedelta(milliseconds=1)


def test_a_backlog_bucket_lists_the_tickets_it_counts(loaded: Loaded) -> None:
    rng = random.Random(f"{SEED}-backlog")
    checked = 0
    for _ in range(4):
        start, end = _window(rng, 8)
        zone = rng.choice(ZONES)
        query = {**_filters(rng), "timezone": zone}
        if rng.random() < 0.75:  # else now; the backlog reads the log up to the window's end anyway
            query["as_of"] = _query_time(_as_of(rng, loaded))
        window = {"start_date": _query_time(start), "end_date": _query_time(end)}
        for row in _run(loaded, "backlog", {**query, **window}).rows:
            drill = {**query, "open_at": _query_time(_day_end(date.fromisoformat(row["day"]), zone))}
            assert _listed(loaded, drill) == row["open_tickets"], (row, drill)
            for bucket, youngest, oldest in AGE_BUCKETS:
                ages = {"age_min_days": str(youngest)}
                if oldest is not None:
                    ages["age_max_days"] = str(oldest)
                assert _listed(loaded, {**drill, **ages}) == row[bucket], (row, bucket, drill)
            checked += bool(row["open_tickets"])
    assert checked >= 10


def test_a_heatmap_cell_lists_the_tickets_it_counts(loaded: Loaded) -> None:
    rng = random.Random(f"{SEED}-arrivals")
    for _ in range(3):
        start, end = _window(rng, 30)
        query = {**_filters(rng), "timezone": rng.choice(ZONES)}
        cells = _run(
            loaded, "arrivals", {**query, "start_date": _query_time(start), "end_date": _query_time(end)}
        )
        drill = {**query, "created_after": _query_time(start), "created_before": _query_time(end)}
        counted = [cell for cell in cells.rows if cell["tickets"]]
        assert counted
        for cell in [*counted, *rng.sample([c for c in cells.rows if not c["tickets"]], 5)]:
            chosen = {"created_weekday": str(cell["weekday"]), "created_hour": str(cell["hour"])}
            assert _listed(loaded, {**drill, **chosen}) == cell["tickets"], (cell, query)
        weekday = rng.randint(1, 7)
        on_weekday = sum(cell["tickets"] for cell in cells.rows if cell["weekday"] == weekday)
        assert _listed(loaded, {**drill, "created_weekday": str(weekday)}) == on_weekday
        hour = rng.randrange(24)
        in_hour = sum(cell["tickets"] for cell in cells.rows if cell["hour"] == hour)
        assert _listed(loaded, {**drill, "created_hour": str(hour)}) == in_hour


def test_a_time_in_status_bar_lists_the_tickets_it_counts(loaded: Loaded) -> None:
    rng = random.Random(f"{SEED}-status")
    for _ in range(6):
        start, end = _window(rng, 30)
        as_of = _as_of(rng, loaded)
        query = {**_filters(rng), "as_of": _query_time(as_of)}
        window = {"start_date": _query_time(start), "end_date": _query_time(end)}
        business = {"business_hours": rng.choice(["true", "false"])}
        answer = _run(loaded, "time_in_status", {**query, **window, **business, "group_by": "category"})
        counted = {row["status_category"]: row["tickets"] for row in answer.rows}
        assert counted
        drill = {**query, "created_after": window["start_date"], "created_before": window["end_date"]}
        for category in CATEGORIES:
            listed = _listed(loaded, {**drill, "in_status_category": category})
            assert listed == counted.get(category, 0), (category, query)


def test_open_at_and_ages_at_their_limits(loaded: Loaded) -> None:
    """Open means created at or before the instant and not resolved at it; an age limit belongs
    to the older bucket; a plain date is its last millisecond, the backlog's day end."""
    runtime = loaded.runtime  # one chDB store per process: a workspace of its own in it
    workspace = runtime.metadata.create_workspace("limits")
    snapshots = [
        {"ticket_id": "A", "created_at": "2024-03-01 00:00:00", "status": "open"},
        {
            "ticket_id": "B",
            "created_at": "2024-03-01 12:00:00",
            "status": "resolved",
            "resolved_at": "2024-03-02 00:00:00",
        },
        {"ticket_id": "D", "created_at": "2024-03-02 00:00:00", "status": "open"},
    ]
    events = [
        {"event_id": "C0", "ticket_id": "C", "at": "2024-03-01T06:00:00Z", "type": "created"},
        {
            "event_id": "C1",
            "ticket_id": "C",
            "at": "2024-03-02T00:00:00Z",
            "type": "status_changed",
            "to": "solved",
        },
    ]
    for datasource, rows in (("support_tickets", snapshots), ("ticket_events", events)):
        runtime.ingest.ingest(workspace.id, datasource, [RawRow(r, "") for r in rows]).committed.result()

    def listed(**query: str) -> list[str]:
        rows = runtime.run_pipe("ticket_details", workspace, {**query, "as_of": "2024-03-05"}).rows
        return sorted(row["ticket_id"] for row in rows)

    midnight = "2024-03-02 00:00:00"
    assert listed(open_at=midnight) == ["A", "D"]
    assert listed(open_at=midnight, age_max_days="1") == ["D"]
    assert listed(open_at=midnight, age_min_days="1", age_max_days="3") == ["A"]
    assert listed(open_at="2024-03-01") == ["A", "B", "C"]
    assert listed(open_at="2024-03-01 23:59:59.999", age_max_days="1") == ["A", "B", "C"]
    backlog = runtime.run_pipe(
        "backlog", workspace, {"start_date": "2024-03-01", "end_date": "2024-03-01", "as_of": "2024-03-05"}
    ).rows
    assert [(row["open_tickets"], row["age_under_1d"]) for row in backlog] == [(3, 3)]
