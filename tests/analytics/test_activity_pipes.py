"""The history-based aggregate pipes (time_in_status, reply_times, resolution_quality, csat,
backlog) on both engines, against aggregates computed here in plain Python from the per-ticket
reference (domain/timeline.py) on random histories."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.activity import period_label, period_labels
from supportlens.analytics.history import from_epoch_ms
from supportlens.domain.events import EventType, TicketEvent
from supportlens.domain.metrics import MS_PER_MINUTE, percentage, round2
from supportlens.domain.periods import PeriodUnit
from supportlens.domain.statuses import DEFAULT_STATUS_MAP
from supportlens.domain.timeline import TicketTimeMetrics, status_intervals, ticket_time_metrics
from supportlens.ingest.service import RawRow
from supportlens.runtime import Runtime
from tests.domain.test_timeline import History, at, histories
from tests.ingest.test_ticket_events import _row

_NAMES = itertools.count()
AS_OF = at(500)
QUERY = {"start_date": "2024-03-01", "end_date": "2024-03-31", "as_of": AS_OF.isoformat()}
AGENTS = ("A1", "A2", None)


def _quantile(values: list[int], level: Fraction) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = level * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round2((ordered[low] + (position - low) * (ordered[high] - ordered[low])) / MS_PER_MINUTE)


def _stats(values: list[int]) -> tuple[int, float | None, float | None, float | None]:
    mean = round2(Fraction(sum(values), len(values) * MS_PER_MINUTE)) if values else None
    return len(values), mean, _quantile(values, Fraction(1, 2)), _quantile(values, Fraction(9, 10))


def _load(
    runtime: Runtime, batch: list[History], agents: list[str | None]
) -> tuple[Any, dict[str, list[TicketEvent]]]:
    workspace = runtime.metadata.create_workspace(f"w{next(_NAMES)}")
    tickets: dict[str, list[TicketEvent]] = {}
    rows: list[dict[str, Any]] = []
    for index, (history, agent) in enumerate(zip(batch, agents, strict=True)):
        ticket_id = f"T{index}"
        events = []
        for e in history.events:
            fields = {n: getattr(e, n) for n in TicketEvent.__slots__}
            fields.update(ticket_id=ticket_id, event_id=f"{ticket_id}{e.event_id}")
            if e.type is EventType.CREATED:
                fields["agent_id"] = agent
            events.append(TicketEvent(**fields))  # type: ignore[arg-type]
        tickets[ticket_id] = events
        for event in events:
            row = _row(event)
            if event.agent_id is not None:
                row["agent_id"] = event.agent_id
            rows.append(row)
    runtime.ingest.ingest(workspace.id, "ticket_events", [RawRow(r, str(r)) for r in rows]).committed.result()
    return workspace, tickets


def _reference(tickets: dict[str, list[TicketEvent]]) -> dict[str, TicketTimeMetrics]:
    return {t: ticket_time_metrics(e, as_of=AS_OF, statuses=DEFAULT_STATUS_MAP) for t, e in tickets.items()}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(histories(), st.sampled_from(AGENTS)), min_size=1, max_size=8))
def test_aggregates_equal_plain_python(runtime: Runtime, drawn: list[tuple[History, str | None]]) -> None:
    batch = [h for h, _ in drawn]
    agents = [a for _, a in drawn]
    workspace, tickets = _load(runtime, batch, agents)
    expected = _reference(tickets)
    agent_of = dict(zip(tickets, agents, strict=True))

    # time_in_status: per status, the tickets that visited it and the time each spent there.
    spent: dict[str, list[int]] = defaultdict(list)
    for ticket_id, events in tickets.items():
        metrics = expected[ticket_id]
        ordered = sorted(events, key=lambda e: e.at)
        visited = {i.status for i in status_intervals(ordered, DEFAULT_STATUS_MAP, AS_OF, metrics.created_at)}
        for status in visited:
            spent[status].append(metrics.time_in_status_ms.get(status, 0))
    rows = runtime.run_pipe("time_in_status", workspace, QUERY).rows
    got = {
        row["status"]: (row["tickets"], row["mean_minutes"], row["median_minutes"], row["p90_minutes"])
        for row in rows
    }
    assert got == {status: _stats(values) for status, values in spent.items()}

    # reply_times by agent: first waits and later waits.
    waits: dict[str | None, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for ticket_id, metrics in expected.items():
        times = list(metrics.reply_times_ms)
        waits[agent_of[ticket_id]][0].extend(times[:1])
        waits[agent_of[ticket_id]][1].extend(times[1:])
    rows = runtime.run_pipe("reply_times", workspace, {**QUERY, "group_by": "agent"}).rows
    got_waits = {
        row["group"]: (
            row["first_replies"],
            row["first_reply_mean_minutes"],
            row["first_reply_median_minutes"],
            row["first_reply_p90_minutes"],
            row["later_replies"],
            row["later_reply_mean_minutes"],
            row["later_reply_median_minutes"],
            row["later_reply_p90_minutes"],
        )
        for row in rows
    }
    assert got_waits == {
        agent: (*_stats(first), *_stats(later)) for agent, (first, later) in waits.items() if first or later
    }

    # resolution_quality by agent.
    rows = runtime.run_pipe("resolution_quality", workspace, {**QUERY, "group_by": "agent"}).rows
    for row in rows:
        mine = [expected[t] for t in tickets if agent_of[t] == row["group"]]
        done = [m for m in mine if m.is_resolved]
        assert row["tickets"] == len(mine)
        assert row["resolved_tickets"] == len(done)
        assert row["reopen_rate"] == percentage(sum(1 for m in done if m.reopens), len(done))
        assert row["one_touch_rate"] == percentage(sum(1 for m in done if m.agent_replies == 1), len(done))
        assert row["first_contact_resolution_rate"] == percentage(
            sum(1 for m in done if m.first_contact_resolution), len(done)
        )

    # group_by=none: one row for the whole selection, its group null.
    everyone = {**QUERY, "group_by": "none"}
    (row,) = runtime.run_pipe("reply_times", workspace, everyone).rows
    firsts = [w for first, _ in waits.values() for w in first]
    laters = [w for _, later in waits.values() for w in later]
    assert row["group"] is None
    assert (row["first_replies"], row["first_reply_mean_minutes"], row["first_reply_p90_minutes"]) == (
        _stats(firsts)[0],
        _stats(firsts)[1],
        _stats(firsts)[3],
    )
    assert (row["later_replies"], row["later_reply_median_minutes"]) == (_stats(laters)[0], _stats(laters)[2])
    (row,) = runtime.run_pipe("resolution_quality", workspace, everyone).rows
    done = [m for m in expected.values() if m.is_resolved]
    assert (row["group"], row["tickets"], row["resolved_tickets"]) == (None, len(tickets), len(done))
    (row,) = runtime.run_pipe("csat", workspace, everyone).rows
    assert (row["group"], row["tickets"]) == (None, len(tickets))


def test_backlog_counts_unresolved_tickets_at_each_day_end(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("b")
    day = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)

    def event(ticket: str, n: int, hours: float, kind: str, **fields: Any) -> dict[str, Any]:
        return {
            "event_id": f"{ticket}{n}",
            "ticket_id": ticket,
            "at": (day + timedelta(hours=hours)).isoformat(),
            "type": kind,
            **fields,
        }

    rows = [
        event("A", 0, 0, "created", status="open", priority="high"),  # open for good
        event("B", 0, 0, "created", status="open", priority="low"),
        event("B", 1, 30, "status_changed", to="resolved"),  # resolved on day 2
        event("C", 0, 24, "created", status="pending", priority="low"),
        event("C", 1, 40, "status_changed", to="solved"),
        event("C", 2, 60, "status_changed", to="open"),  # reopened on day 3
    ]
    runtime.ingest.ingest(workspace.id, "ticket_events", [RawRow(r, str(r)) for r in rows]).committed.result()
    snapshot = {"ticket_id": "S", "created_at": "2024-03-01 12:00:00", "status": "open", "priority": "low"}
    runtime.ingest.ingest(workspace.id, "support_tickets", [RawRow(snapshot, "")]).committed.result()
    query = {"start_date": "2024-03-04", "end_date": "2024-03-07", "as_of": "2024-03-08"}
    series = runtime.run_pipe("backlog", workspace, query).rows
    assert [(r["day"], r["open_tickets"]) for r in series] == [
        ("2024-03-04", 3),  # A, B, S
        ("2024-03-05", 3),  # A, C, S (B resolved at 15:00 on the 5th)
        ("2024-03-06", 3),  # A, S, C reopened at 21:00 on the 6th
        ("2024-03-07", 3),
    ]
    first = series[0]
    # A and B are 15 hours old; S, created on the 1st at noon, three and a half days.
    assert (first["age_under_1d"], first["age_1_3d"], first["age_3_7d"]) == (2, 0, 1)
    by_priority = runtime.run_pipe("backlog", workspace, {**query, "group_by": "priority"}).rows
    assert {(r["day"], r["group"]): r["open_tickets"] for r in by_priority}[("2024-03-05", "low")] == 2


def test_backlog_at_the_day_end_instant_itself(runtime: Runtime) -> None:
    """A day end is the day's last millisecond: a ticket created at it is open there (age 0), and
    exactly a day old at the next one; a ticket resolved at it is not open there."""
    workspace = runtime.metadata.create_workspace("edges")
    tickets = [
        {"ticket_id": "E", "created_at": "2024-03-04 23:59:59.999", "status": "open"},
        {
            "ticket_id": "F",
            "created_at": "2024-03-03 10:00:00",
            "status": "resolved",
            "resolved_at": "2024-03-05 23:59:59.999",
        },
    ]
    rows = [RawRow(ticket, str(ticket)) for ticket in tickets]
    runtime.ingest.ingest(workspace.id, "support_tickets", rows).committed.result()
    query = {"start_date": "2024-03-04", "end_date": "2024-03-06", "as_of": "2024-03-08"}
    series = runtime.run_pipe("backlog", workspace, query).rows
    assert [(r["day"], r["open_tickets"], r["age_under_1d"], r["age_1_3d"]) for r in series] == [
        ("2024-03-04", 2, 1, 1),  # E just created, F a day and 14 hours old
        ("2024-03-05", 1, 0, 1),  # E exactly a day old; F resolved at this instant
        ("2024-03-06", 1, 0, 1),
    ]


def test_csat_leaves_unrated_tickets_out(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("c")
    tickets = [
        {
            "ticket_id": f"T{i}",
            "created_at": "2024-03-05 10:00:00",
            "agent_id": "A1",
            "satisfaction_score": score,
        }
        for i, score in enumerate([5, 4, 2, None, None])
    ]
    runtime.ingest.ingest(
        workspace.id, "support_tickets", [RawRow(t, "") for t in tickets]
    ).committed.result()
    (row,) = runtime.run_pipe("csat", workspace, {**QUERY, "group_by": "agent"}).rows
    assert (row["tickets"], row["ratings"], row["csat_pct"], row["csat_mean"]) == (5, 3, 66.67, 3.67)


def test_group_by_none_answers_one_row_even_for_nothing(runtime: Runtime) -> None:
    workspace = runtime.metadata.create_workspace("n")
    for pipe in ("reply_times", "resolution_quality", "csat"):
        (row,) = runtime.run_pipe(pipe, workspace, {**QUERY, "group_by": "none"}).rows
        assert row["group"] is None
    assert runtime.run_pipe("sla_attainment", workspace, {**QUERY, "group_by": "none"}).rows == []


def test_timezone_parameter_cuts_the_periods(runtime: Runtime) -> None:
    """A ticket created at 23:30 UTC belongs to the next day in Berlin, whatever the workspace's
    reporting timezone; the backlog's days are Berlin days too."""
    workspace = runtime.metadata.create_workspace("z")
    ticket = {
        "ticket_id": "T1",
        "created_at": "2024-03-05 23:30:00",
        "status": "open",
        "satisfaction_score": 5,
    }
    runtime.ingest.ingest(workspace.id, "support_tickets", [RawRow(ticket, "")]).committed.result()
    daily = {**QUERY, "group_by": "period", "time_interval": "day"}
    for pipe in ("csat", "resolution_quality"):
        (utc,) = runtime.run_pipe(pipe, workspace, daily).rows
        (berlin,) = runtime.run_pipe(pipe, workspace, {**daily, "timezone": "Europe/Berlin"}).rows
        assert (utc["group"], berlin["group"]) == ("2024-03-05 00:00:00", "2024-03-06 00:00:00")
    window = {"start_date": "2024-03-05 12:00:00", "end_date": "2024-03-06 12:00:00", "as_of": "2024-03-07"}
    days = runtime.run_pipe("backlog", workspace, {**window, "timezone": "Europe/Berlin"}).rows
    assert [(r["day"], r["open_tickets"]) for r in days] == [("2024-03-05", 0), ("2024-03-06", 1)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 7_258_118_399_999), min_size=1, max_size=40),
    st.sampled_from(list(PeriodUnit)),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
    st.booleans(),
)
def test_period_labels_match_one_at_a_time(
    instants: list[int], unit: PeriodUnit, zone: str, recent: bool
) -> None:
    """The vectorized labels (Arrow, up to 2037) equal ``period_label`` of each instant, in zones
    with DST, half-hour and half-hour-DST offsets; later instants take the exact path."""
    if recent:  # keep most draws where the vectorized path runs
        instants = [ms % 2_114_380_800_000 for ms in instants]
    found = np.array(instants, dtype=np.int64)
    expected = [period_label(from_epoch_ms(ms), unit, zone) for ms in instants]
    assert period_labels(found, unit, zone) == expected
