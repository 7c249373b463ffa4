"""Every pipe, on both engines, against the independent pure-Python reference, on randomized
postings and randomized parameters: the dashboard filters, reporting timezones and business hours
(each ticket's calendar: a group's own, else the workspace default) included."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from supportlens.auth.repository import Workspace
from supportlens.configuration.calendars import CalendarDefinition
from supportlens.domain import reference
from supportlens.domain.calendars import CalendarChoice
from supportlens.domain.models import TicketSnapshot
from supportlens.ingest.service import RawRow
from supportlens.ingest.tickets import validate_ticket
from supportlens.runtime import Runtime
from tests.analytics.test_time_metrics_pipe import GROUP_CALENDARS
from tests.conftest import ENGINES, make_settings
from tests.randomized import BASE, postings

SEED = 20261122
TICKETS = 1500
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin", "Asia/Kathmandu", "Australia/Lord_Howe"]
GROUPS = [None, "east", *GROUP_CALENDARS]  # "east" has no calendar of its own
# The workspace default: split office hours in a DST zone, with a holiday and a half-day one.
OFFICE = CalendarDefinition.model_validate(
    {
        "name": "Office",
        "timezone": "Europe/Berlin",
        "windows": [
            {"weekday": day, "start": start, "end": end}
            for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
            for start, end in (("08:00", "12:00"), ("13:00", "17:30"))
        ],
        "holidays": [
            {"date": "2025-05-01", "name": "Labour Day"},
            {"date": "2025-12-24", "start": "12:00", "end": "24:00", "name": "Christmas Eve"},
        ],
    }
)


class Loaded:
    def __init__(
        self,
        runtime: Runtime,
        workspace: Workspace,
        tickets: list[TicketSnapshot],
        rejected: int,
        calendars: CalendarChoice,
    ):
        self.runtime = runtime
        self.workspace = workspace
        self.tickets = tickets
        self.rejected = rejected
        self.calendars = calendars


@pytest.fixture(scope="module", params=ENGINES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    directory: Path = tmp_path_factory.mktemp(str(request.param))
    runtime = Runtime.open(make_settings(str(request.param), directory))
    workspace = runtime.metadata.create_workspace("equivalence")
    other = runtime.metadata.create_workspace("other")
    rows = postings(SEED, TICKETS)
    groups = random.Random(f"{SEED}-groups")
    for row in rows:
        row["group_id"] = groups.choice(GROUPS)
    for definition in (OFFICE, *GROUP_CALENDARS.values()):
        runtime.configuration.create_calendar(workspace.id, definition)
    accepted: list[tuple[TicketSnapshot, datetime]] = []
    rejected = 0
    rng = random.Random(SEED)
    position = 0
    while position < len(rows):
        size = rng.randint(1, 300)
        chunk = rows[position : position + size]
        position += size
        received = datetime.now(UTC)
        for row in chunk:
            outcome = validate_ticket(row)
            if isinstance(outcome, TicketSnapshot):
                accepted.append((outcome, received))
            else:
                rejected += 1
        result = runtime.ingest.ingest(workspace.id, "support_tickets", [RawRow(r, "") for r in chunk])
        result.committed.result()
    # Another workspace's tickets with the same ids must never leak into the answers.
    runtime.ingest.ingest(other.id, "support_tickets", [RawRow(r, "") for r in rows[:200]]).committed.result()
    try:
        calendars = runtime.configuration.calendar_choice(workspace.id, workspace.timezone)
        yield Loaded(runtime, workspace, reference.current_state(accepted), rejected, calendars)
    finally:
        runtime.close()


def _date_text(rng: random.Random, moment: datetime, *, end: bool) -> tuple[str, datetime]:
    """A query date in one of the accepted spellings, and the instant it means."""
    choice = rng.randrange(3)
    if choice == 0:
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        meant = day + timedelta(days=1) - timedelta(milliseconds=1) if end else day
        return day.strftime("%Y-%m-%d"), meant
    moment = moment.replace(microsecond=0)
    if choice == 1:
        return moment.strftime("%Y-%m-%d %H:%M:%S"), moment
    return moment.astimezone(datetime.now().astimezone().tzinfo).isoformat(), moment


def _window(rng: random.Random) -> tuple[dict[str, str], datetime, datetime]:
    start = BASE + timedelta(days=rng.uniform(-20, 300), hours=rng.uniform(0, 24))
    end = start + timedelta(days=rng.uniform(0, 200))
    start_text, start_meant = _date_text(rng, start, end=False)
    end_text, end_meant = _date_text(rng, end, end=True)
    return {"start_date": start_text, "end_date": end_text}, start_meant, end_meant


def _maybe(rng: random.Random, values: list[str]) -> str | None:
    return rng.choice(values) if rng.random() < 0.4 else None


def _thresholds(rng: random.Random, query: dict[str, str], *, resolution: bool) -> reference.SlaThresholds:
    values: dict[str, Any] = {}
    kinds = ["response", "resolution"] if resolution else ["response"]
    for kind in kinds:
        for level in ("urgent", "high", "medium", "low"):
            if rng.random() < 0.3:
                minutes = rng.choice([1, 15, 30, 45.5, 60, 240, 1000, 0.3333, 16.666667, 0])
                query[f"{level}_priority_{kind}_sla"] = str(minutes)
                values[f"{level}_{kind}"] = float(minutes)
        if rng.random() < 0.3:
            minutes = rng.choice([5, 90, 600])
            query[f"default_{kind}_sla"] = str(minutes)
            values[f"default_{kind}"] = float(minutes)
    return reference.SlaThresholds(**values)


def _set(query: dict[str, str], name: str, value: str | None) -> None:
    if value is not None:
        query[name] = value


# Pipes whose durations may be in business time, and pipes that take a timezone of their own.
BUSINESS_PIPES = ("time_trends", "agent_performance", "category_analysis", "ticket_metrics")
ZONED_PIPES = ("time_trends", "arrivals")


def _filters(rng: random.Random, query: dict[str, str]) -> dict[str, str | None]:
    """Random dashboard filters (the five every pipe takes), set in the query too."""
    chosen = {
        "category": _maybe(rng, ["billing", "BILLING", "technical", "shipping", "none"]),
        "priority": _maybe(rng, ["urgent", "critical", "High", "low", "p5"]),
        "agent_id": _maybe(rng, ["A1", "A3", "nobody"]),
        "channel": rng.choice(["email", "CHAT", "fax"]) if rng.random() < 0.2 else None,
        "group_id": rng.choice(["east", "india", "night", "nobody"]) if rng.random() < 0.2 else None,
    }
    for name, value in chosen.items():
        _set(query, name, value)
    return chosen


def _case(
    pipe: str, rng: random.Random, calendars: CalendarChoice
) -> tuple[dict[str, str], dict[str, Any], str]:
    """A random query for the pipe, the reference function's arguments for it, and the workspace's
    reporting timezone."""
    query, start, end = _window(rng)
    extra: dict[str, Any] = {}
    if pipe == "time_trends":
        interval = rng.choice(["day", "week", "month", "quarter", "year", "yyyy-MM-dd", "yyyy-MM", "hour"])
        if interval == "hour":
            query, start, end = _window(rng)
            end = min(end, start + timedelta(days=10))
            query["end_date"] = end.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        query["time_interval"] = extra["time_interval"] = interval
    zone = rng.choice(ZONES)
    if pipe in BUSINESS_PIPES and rng.random() < 0.35:
        query["business_hours"] = rng.choice(["true", "1", "yes"])
        extra["business"] = calendars
    if pipe in ZONED_PIPES:
        extra["tz"] = zone
        if rng.random() < 0.5:
            extra["tz"] = rng.choice(ZONES)
            query["timezone"] = rng.choice([extra["tz"], extra["tz"].lower()])  # any case
    window = {"start": start, "end": end}
    if pipe == "ticket_details":
        return _details_case(rng, zone)
    filters = _filters(rng, query)
    if pipe == "sla_performance":
        extra["thresholds"] = _thresholds(rng, query, resolution=True)
    if pipe == "agent_performance":
        extra["thresholds"] = _thresholds(rng, query, resolution=False)
    if pipe == "ticket_metrics":
        filters["customer_id"] = _maybe(rng, ["C1", "C2"])
        _set(query, "customer_id", filters["customer_id"])
    return query, {**window, **filters, **extra}, zone


def _details_case(rng: random.Random, zone: str) -> tuple[dict[str, str], dict[str, Any], str]:
    query: dict[str, str] = {}
    details: dict[str, Any] = {
        "ticket_id": _maybe(rng, ["T00001", "T00002", "T01000"]) if rng.random() < 0.2 else None,
        "customer_id": _maybe(rng, ["C1", "C2"]),
        "status": _maybe(rng, ["resolved", "OPEN", "closed"]),
        **_filters(rng, query),
        "created_after": None,
        "created_before": None,
        "limit": rng.choice([1, 10, 100, 10_000]),
        "offset": rng.choice([0, 0, 5, 300]),
    }
    for name in ("ticket_id", "customer_id", "status"):
        _set(query, name, details[name])
    query["limit"], query["offset"] = str(details["limit"]), str(details["offset"])
    if rng.random() < 0.6:
        window_query, start, end = _window(rng)
        query["created_after"], query["created_before"] = window_query["start_date"], window_query["end_date"]
        details["created_after"], details["created_before"] = start, end
    _drill_down_case(rng, query, details, zone)
    return query, details, zone


DRILL_DOWNS = {"open_at", "created_weekday", "created_hour"}
# The backlog's age buckets, and other limits.
AGES = [(0, 1), (1, 3), (3, 7), (7, 30), (30, None), (0, None), (2, 5), (45, None)]


def _drill_down_case(rng: random.Random, query: dict[str, str], details: dict[str, Any], zone: str) -> None:
    """Random drill-down parameters of ticket_details: open at an instant (of an age), created in
    a local weekday and hour, time in a status category (none here: these tickets have no log)."""
    if rng.random() < 0.45:
        moment = BASE + timedelta(days=rng.uniform(-5, 380), seconds=rng.randrange(86_400))
        query["open_at"], details["open_at"] = _date_text(rng, moment, end=True)
        if rng.random() < 0.7:
            youngest, oldest = rng.choice(AGES)
            if youngest or rng.random() < 0.5:
                query["age_min_days"] = str(youngest)
            if oldest is not None:
                query["age_max_days"] = str(oldest)
            details["age_min_days"], details["age_max_days"] = youngest, oldest
    if rng.random() < 0.45:
        details["tz"] = zone
        if rng.random() < 0.5:
            details["tz"] = rng.choice(ZONES)
            query["timezone"] = details["tz"]
        weekday, hour = rng.choice(
            [(rng.randint(1, 7), rng.randrange(24)), (rng.randint(1, 7), None), (None, rng.randrange(24))]
        )
        _set(query, "created_weekday", None if weekday is None else str(weekday))
        _set(query, "created_hour", None if hour is None else str(hour))
        details["created_weekday"], details["created_hour"] = weekday, hour
    if rng.random() < 0.1:
        query["in_status_category"] = details["in_status_category"] = rng.choice(["open", "solved"])


@pytest.mark.parametrize(
    "pipe",
    [
        "time_trends",
        "sla_performance",
        "agent_performance",
        "ticket_details",
        "category_analysis",
        "ticket_metrics",
        "arrivals",
    ],
)
def test_pipe_matches_reference(loaded: Loaded, pipe: str) -> None:
    rng = random.Random(f"{SEED}-{pipe}")
    function = getattr(reference, pipe)
    non_empty = business = 0
    drilled: Counter[str] = Counter()
    for attempt in range(100 if pipe == "ticket_details" else 60):
        query, arguments, zone = _case(pipe, rng, loaded.calendars)
        workspace = replace(loaded.workspace, timezone=zone)
        result = loaded.runtime.run_pipe(pipe, workspace, query)
        expected = function(loaded.tickets, **arguments)
        if pipe == "ticket_details":
            expected_rows, expected_total = expected
            assert result.rows_before_limit == expected_total, (attempt, query)
            assert result.rows == expected_rows, (attempt, query)
        elif pipe == "ticket_metrics":
            assert result.rows == [expected], (attempt, query)
        else:
            assert result.rows == expected, (attempt, query, zone)
        for row in result.rows:
            assert list(row) == [name for name, _ in result.columns]
        non_empty += bool(result.rows_read)
        business += "business" in arguments and bool(result.rows_read)
        if result.rows_read:
            drilled.update(DRILL_DOWNS & set(query))
    # The random cases must actually exercise data, not compare empty answers.
    assert non_empty >= 25
    assert business >= 5 or pipe not in BUSINESS_PIPES
    assert pipe != "ticket_details" or min(drilled[name] for name in DRILL_DOWNS) >= 5, drilled


def test_business_hours_change_the_answer(loaded: Loaded) -> None:
    """The business-time answers are not the calendar ones by accident (the calendars matter)."""
    query = {"start_date": "2025-01-01", "end_date": "2025-12-31"}
    calendar = loaded.runtime.run_pipe("ticket_metrics", loaded.workspace, query).rows[0]
    business = loaded.runtime.run_pipe(
        "ticket_metrics", loaded.workspace, {**query, "business_hours": "true"}
    ).rows[0]
    assert business["total_tickets"] == calendar["total_tickets"]
    assert business["avg_resolution_time_minutes"] < calendar["avg_resolution_time_minutes"]
    by_group = {
        group: reference.ticket_metrics(
            loaded.tickets,
            start=datetime(2025, 1, 1, tzinfo=UTC),
            end=datetime(2025, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
            business=loaded.calendars,
            group_id=group,
        )["avg_first_response_time_minutes"]
        for group in ("east", "india", "night")
    }
    assert len(set(by_group.values())) == 3  # the group calendars differ from each other and the default


def test_every_ticket_counted_once(loaded: Loaded) -> None:
    query = {"start_date": "2020-01-01", "end_date": "2030-01-01"}
    result = loaded.runtime.run_pipe("ticket_metrics", loaded.workspace, query)
    assert result.rows[0]["total_tickets"] == len(loaded.tickets) > TICKETS * 0.9


def test_default_window_is_the_last_365_days(loaded: Loaded) -> None:
    now = datetime.now(UTC)
    result = loaded.runtime.run_pipe("ticket_metrics", loaded.workspace, {})
    row = result.rows[0]
    expected = reference.ticket_metrics(
        loaded.tickets,
        start=now - timedelta(days=365),
        end=now,
        category=None,
        priority=None,
        customer_id=None,
        agent_id=None,
    )
    assert row["total_tickets"] == expected["total_tickets"]
    assert row["avg_resolution_time_minutes"] == expected["avg_resolution_time_minutes"]
