"""Every pipe, on both engines, against the independent pure-Python reference, on randomized
postings and randomized parameters."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from supportlens.auth.repository import Workspace
from supportlens.domain import reference
from supportlens.domain.models import TicketSnapshot
from supportlens.ingest.service import RawRow
from supportlens.ingest.tickets import validate_ticket
from supportlens.runtime import Runtime
from tests.conftest import ENGINES, make_settings
from tests.randomized import BASE, postings

SEED = 20261122
TICKETS = 1500
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin", "Asia/Kathmandu", "Australia/Lord_Howe"]


class Loaded:
    def __init__(self, runtime: Runtime, workspace: Workspace, tickets: list[TicketSnapshot], rejected: int):
        self.runtime = runtime
        self.workspace = workspace
        self.tickets = tickets
        self.rejected = rejected


@pytest.fixture(scope="module", params=ENGINES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    directory: Path = tmp_path_factory.mktemp(str(request.param))
    runtime = Runtime.open(make_settings(str(request.param), directory))
    workspace = runtime.metadata.create_workspace("equivalence")
    other = runtime.metadata.create_workspace("other")
    rows = postings(SEED, TICKETS)
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
        yield Loaded(runtime, workspace, reference.current_state(accepted), rejected)
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


def _case(pipe: str, rng: random.Random) -> tuple[dict[str, str], dict[str, Any], str]:
    """A random query for the pipe, and the reference function's arguments for it."""
    query, start, end = _window(rng)
    category = _maybe(rng, ["billing", "BILLING", "technical", "shipping", "none"])
    priority = _maybe(rng, ["urgent", "critical", "High", "low", "p5"])
    agent = _maybe(rng, ["A1", "A3", "nobody"])
    customer = _maybe(rng, ["C1", "C2"])
    zone = rng.choice(ZONES)
    window = {"start": start, "end": end}
    if pipe == "time_trends":
        interval = rng.choice(["day", "week", "month", "quarter", "year", "yyyy-MM-dd", "yyyy-MM", "hour"])
        if interval == "hour":
            query, start, end = _window(rng)
            end = min(end, start + timedelta(days=10))
            query["end_date"] = end.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            window = {"start": start, "end": end}
        query["time_interval"] = interval
        _set(query, "category", category)
        _set(query, "priority", priority)
        return (
            query,
            {**window, "category": category, "priority": priority, "time_interval": interval, "tz": zone},
            zone,
        )
    if pipe == "sla_performance":
        _set(query, "category", category)
        _set(query, "agent_id", agent)
        thresholds = _thresholds(rng, query, resolution=True)
        return query, {**window, "category": category, "agent_id": agent, "thresholds": thresholds}, zone
    if pipe == "agent_performance":
        _set(query, "agent_id", agent)
        thresholds = _thresholds(rng, query, resolution=False)
        return query, {**window, "agent_id": agent, "thresholds": thresholds}, zone
    if pipe == "category_analysis":
        _set(query, "priority", priority)
        return query, {**window, "priority": priority}, zone
    if pipe == "ticket_metrics":
        for name, value in (
            ("category", category),
            ("priority", priority),
            ("customer_id", customer),
            ("agent_id", agent),
        ):
            _set(query, name, value)
        return (
            query,
            {
                **window,
                "category": category,
                "priority": priority,
                "customer_id": customer,
                "agent_id": agent,
            },
            zone,
        )
    assert pipe == "ticket_details"
    details: dict[str, Any] = {
        "ticket_id": _maybe(rng, ["T00001", "T00002", "T01000"]) if rng.random() < 0.2 else None,
        "customer_id": customer,
        "agent_id": agent,
        "status": _maybe(rng, ["resolved", "OPEN", "closed"]),
        "category": category,
        "priority": priority,
        "created_after": None,
        "created_before": None,
        "limit": rng.choice([1, 10, 100, 10_000]),
        "offset": rng.choice([0, 0, 5, 300]),
    }
    query = {k: str(v) for k, v in details.items() if v is not None and k not in {"limit", "offset"}}
    query["limit"], query["offset"] = str(details["limit"]), str(details["offset"])
    if rng.random() < 0.6:
        window_query, start, end = _window(rng)
        query["created_after"], query["created_before"] = window_query["start_date"], window_query["end_date"]
        details["created_after"], details["created_before"] = start, end
    return query, details, zone


@pytest.mark.parametrize(
    "pipe",
    [
        "time_trends",
        "sla_performance",
        "agent_performance",
        "ticket_details",
        "category_analysis",
        "ticket_metrics",
    ],
)
def test_pipe_matches_reference(loaded: Loaded, pipe: str) -> None:
    rng = random.Random(f"{SEED}-{pipe}")
    function = getattr(reference, pipe)
    non_empty = 0
    for attempt in range(40):
        query, arguments, zone = _case(pipe, rng)
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
    # The random cases must actually exercise data, not compare empty answers.
    assert non_empty >= 25


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
