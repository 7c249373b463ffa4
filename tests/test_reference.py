"""Hand-computed cases for the pure-Python reference implementation of the pipes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from supportlens.domain.models import TicketSnapshot
from supportlens.domain.reference import (
    SlaThresholds,
    _round2,
    agent_performance,
    category_analysis,
    current_state,
    sla_performance,
    ticket_details,
    ticket_metrics,
    time_trends,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ticket(
    ticket_id: str,
    created: str,
    *,
    response_ms: int | None = None,
    resolution_ms: int | None = None,
    **fields: Any,
) -> TicketSnapshot:
    created_at = at(created)
    if response_ms is not None:
        fields["first_response_at"] = created_at + timedelta(milliseconds=response_ms)
    if resolution_ms is not None:
        fields["resolved_at"] = created_at + timedelta(milliseconds=resolution_ms)
    return TicketSnapshot(ticket_id=ticket_id, created_at=created_at, **fields)


MIN = 60_000  # one minute in milliseconds
JAN_START = at("2024-01-01 00:00:00")
JAN_END = at("2024-01-31 23:59:59.999")


# --------------------------------------------------------------------------------------------------
# rounding helper
# --------------------------------------------------------------------------------------------------


def test_round2_is_half_away_from_zero_on_exact_values() -> None:
    assert _round2(Fraction(1005, 1000)) == 1.01  # round(1.005, 2) == 1.0 with floats
    assert _round2(Fraction(1, 8)) == 0.13  # banker's rounding would give 0.12
    assert _round2(Fraction(-1, 8)) == -0.13
    assert _round2(Fraction(1, 3)) == 0.33
    assert _round2(Fraction(2, 3)) == 0.67
    assert _round2(Fraction(-1, 1000)) == 0.0
    assert str(_round2(Fraction(-1, 1000))) == "0.0"  # no negative zero


# --------------------------------------------------------------------------------------------------
# current_state
# --------------------------------------------------------------------------------------------------


def test_current_state_newest_by_updated_at_then_arrival() -> None:
    a1 = ticket("A", "2024-01-01 08:00:00", status="open", updated_at=at("2024-01-01 10:00:00"))
    a2 = ticket("A", "2024-01-01 08:00:00", status="closed", updated_at=at("2024-01-01 09:00:00"))
    b1 = ticket("B", "2024-01-01 08:00:00", status="open", updated_at=at("2024-01-01 10:00:00"))
    b2 = ticket("B", "2024-01-01 08:00:00", status="pending", updated_at=at("2024-01-01 10:00:00"))
    c1 = ticket("C", "2024-01-01 08:00:00", status="open")
    c2 = ticket("C", "2024-01-01 08:00:00", status="closed", updated_at=at("2024-01-01 10:30:00"))
    d1 = ticket("D", "2024-01-01 08:00:00", status="open", updated_at=at("2024-01-01 10:00:00"))
    d2 = ticket("D", "2024-01-01 08:00:00", status="closed")
    e1 = ticket("E", "2024-01-01 08:00:00", status="open", updated_at=at("2024-01-01 10:00:00.000900"))
    e2 = ticket("E", "2024-01-01 08:00:00", status="closed", updated_at=at("2024-01-01 10:00:00.000400"))
    postings = [
        (b1, at("2024-01-01 10:00:01")),
        (a1, at("2024-01-01 10:00:02")),
        (c1, at("2024-01-01 11:00:00")),  # no updated_at: counts as updated at 11:00
        (d1, at("2024-01-01 10:05:00")),
        (e1, at("2024-01-01 10:06:00")),
        (a2, at("2024-01-01 10:07:00")),  # older snapshot arriving late never overwrites
        (b2, at("2024-01-01 10:08:00")),  # same updated_at: later arrival wins
        (c2, at("2024-01-01 12:00:00")),  # 10:30 < 11:00: c1 stays
        (d2, at("2024-01-01 10:00:00")),  # received 10:00 = d1's updated_at: later arrival wins
        (e2, at("2024-01-01 10:09:00")),  # equal at millisecond precision: later arrival wins
    ]
    assert current_state(postings) == [a1, b2, c1, d2, e2]


def test_current_state_counts_a_ticket_once() -> None:
    snapshots = [ticket("T", "2024-01-01 08:00:00", status=s) for s in ("new", "open", "solved")]
    postings = [(s, at("2024-01-01 09:00:00") + timedelta(minutes=i)) for i, s in enumerate(snapshots)]
    assert current_state(postings) == [snapshots[2]]
    assert current_state([]) == []


# --------------------------------------------------------------------------------------------------
# ticket_metrics
# --------------------------------------------------------------------------------------------------

METRIC_TICKETS = [
    ticket(
        "T1",
        "2024-01-05 10:00:00",
        category="billing",
        priority="high",
        customer_id="C1",
        agent_id="A1",
        status="resolved",
        response_ms=10 * MIN,
        resolution_ms=60 * MIN,
        satisfaction_score=5,
    ),
    ticket(
        "T2",
        "2024-01-06 10:00:00",
        category="billing",
        priority="high",
        customer_id="C1",
        agent_id="A1",
        status="closed",
        response_ms=20 * MIN,
        resolution_ms=120 * MIN,
        satisfaction_score=3,
    ),
    ticket(
        "T3",
        "2024-01-07 10:00:00",
        category="billing",
        priority="urgent",
        customer_id="C1",
        agent_id="A2",
        status="open",
        response_ms=30 * MIN,
    ),
    ticket("T4", "2024-01-08 10:00:00", category="billing", priority="high", customer_id="C1", agent_id="A1"),
    ticket(
        "T5",
        "2024-01-09 10:00:00",
        category="billing",
        priority="low",
        customer_id="C1",
        agent_id="A1",
        status="pending",
        response_ms=40 * MIN,
        resolution_ms=100 * MIN,
        satisfaction_score=4,
    ),
    ticket("T6", "2024-02-01 00:00:00", category="billing", status="resolved", response_ms=1),
    ticket("T7", "2023-12-31 23:59:59.999", category="billing", status="resolved", response_ms=1),
    ticket("T8", "2024-01-31 23:59:59.999", category="tech", status="new", response_ms=5 * MIN),
]


def metrics(**overrides: Any) -> dict[str, object]:
    arguments: dict[str, Any] = {
        "start": JAN_START,
        "end": JAN_END,
        "category": None,
        "priority": None,
        "customer_id": None,
        "agent_id": None,
    }
    arguments.update(overrides)
    return ticket_metrics(METRIC_TICKETS, **arguments)


def test_ticket_metrics_whole_window() -> None:
    assert metrics() == {
        "start_date": "2024-01-01 00:00:00",
        "end_date": "2024-01-31 23:59:59.999",
        "total_tickets": 6,  # T1..T5 and T8 (window inclusive at both ends)
        "resolved_tickets": 2,
        "open_tickets": 4,
        "avg_resolution_time_minutes": 93.33,  # (60 + 120 + 100) / 3
        "avg_first_response_time_minutes": 21.0,  # (10 + 20 + 30 + 40 + 5) / 5
        "avg_satisfaction_score": 4.0,
        "median_resolution_time_minutes": 100.0,
        "p90_resolution_time_minutes": 116.0,  # 100 + 0.8 * (120 - 100)
        "median_first_response_time_minutes": 20.0,
        "p90_first_response_time_minutes": 36.0,  # 30 + 0.6 * (40 - 30)
    }
    assert list(metrics()) == [
        "start_date",
        "end_date",
        "total_tickets",
        "resolved_tickets",
        "open_tickets",
        "avg_resolution_time_minutes",
        "avg_first_response_time_minutes",
        "avg_satisfaction_score",
        "median_resolution_time_minutes",
        "p90_resolution_time_minutes",
        "median_first_response_time_minutes",
        "p90_first_response_time_minutes",
    ]


def test_ticket_metrics_normalized_filters() -> None:
    row = metrics(category=" BILLING ", priority="High", customer_id=" C1 ", agent_id="A1")
    assert row["total_tickets"] == 3  # T1, T2, T4
    assert row["resolved_tickets"] == 2
    assert row["open_tickets"] == 1
    assert row["avg_resolution_time_minutes"] == 90.0
    assert row["median_resolution_time_minutes"] == 90.0
    assert row["p90_resolution_time_minutes"] == 114.0  # 60 + 0.9 * 60
    assert row["avg_first_response_time_minutes"] == 15.0
    assert row["p90_first_response_time_minutes"] == 19.0
    assert row["avg_satisfaction_score"] == 4.0

    urgent = metrics(priority="Critical")
    assert urgent["total_tickets"] == 1  # T3
    assert urgent["open_tickets"] == 1
    assert urgent["avg_resolution_time_minutes"] is None
    assert urgent["median_first_response_time_minutes"] == 30.0
    assert urgent["avg_satisfaction_score"] is None  # unrated


def test_ticket_metrics_empty_and_blank_filters() -> None:
    empty = metrics(agent_id="nobody")
    assert empty["total_tickets"] == 0
    assert empty["open_tickets"] == 0
    for column in (
        "avg_resolution_time_minutes",
        "avg_first_response_time_minutes",
        "avg_satisfaction_score",
        "median_resolution_time_minutes",
        "p90_resolution_time_minutes",
        "median_first_response_time_minutes",
        "p90_first_response_time_minutes",
    ):
        assert empty[column] is None
    assert metrics(category="  ", priority="", agent_id=" ") == metrics()
    with pytest.raises(ValueError, match="start_date"):
        metrics(start=JAN_END, end=JAN_START)


def test_ticket_metrics_rounding_and_interpolation() -> None:
    tickets = [
        ticket("R1", "2024-01-02 00:00:00", response_ms=60_000, resolution_ms=7_500),
        ticket("R2", "2024-01-02 00:00:00", response_ms=60_600),
    ]
    row = ticket_metrics(
        tickets, start=JAN_START, end=JAN_END, category=None, priority=None, customer_id=None, agent_id=None
    )
    assert row["avg_first_response_time_minutes"] == 1.01  # exactly 1.005
    assert row["median_first_response_time_minutes"] == 1.01  # exactly 1.005
    assert row["p90_first_response_time_minutes"] == 1.01  # 60540 ms = 1.009
    assert row["avg_resolution_time_minutes"] == 0.13  # exactly 0.125

    # p90 of [3000, 8000] ms = 3000 + 0.9 * 5000 = 7500 ms = exactly 0.125 minutes
    tickets = [
        ticket("P1", "2024-01-02 00:00:00", response_ms=3_000),
        ticket("P2", "2024-01-02 00:00:00", response_ms=8_000),
    ]
    row = ticket_metrics(
        tickets, start=JAN_START, end=JAN_END, category=None, priority=None, customer_id=None, agent_id=None
    )
    assert row["p90_first_response_time_minutes"] == 0.13
    assert row["median_first_response_time_minutes"] == 0.09  # 5500 ms = 0.0917
    assert row["avg_first_response_time_minutes"] == 0.09


# --------------------------------------------------------------------------------------------------
# sla_performance
# --------------------------------------------------------------------------------------------------

SLA_TICKETS = [
    ticket(
        "U1",
        "2024-01-02 00:00:00",
        category="billing",
        priority="urgent",
        agent_id="A1",
        response_ms=30 * MIN,
        resolution_ms=240 * MIN,
    ),
    ticket(
        "U2",
        "2024-01-02 00:00:00",
        category="billing",
        priority="urgent",
        response_ms=31 * MIN,
        resolution_ms=241 * MIN,
    ),
    ticket("U3", "2024-01-02 00:00:00", category="billing", priority="urgent"),  # unanswered
    ticket(
        "H1",
        "2024-01-02 00:00:00",
        category="billing",
        priority="high",
        response_ms=30 * MIN + 1,
        resolution_ms=100 * MIN,
    ),
    ticket(
        "M1",
        "2024-01-02 00:00:00",
        category="billing",
        priority="medium",
        agent_id="A1",
        response_ms=60 * MIN,
        resolution_ms=480 * MIN,
    ),
    ticket("L1", "2024-01-02 00:00:00", category="billing", priority="low", response_ms=121 * MIN),
    ticket(
        "O1",
        "2024-01-02 00:00:00",
        category="billing",
        priority="p5",
        response_ms=60 * MIN,
        resolution_ms=481 * MIN,
    ),
    ticket(
        "O2",
        "2024-01-02 00:00:00",
        category="billing",
        priority="abc",
        response_ms=59 * MIN,
        resolution_ms=10 * MIN,
    ),
    ticket("N1", "2024-01-02 00:00:00", category="billing", response_ms=61 * MIN, resolution_ms=480 * MIN),
    ticket("X1", "2024-01-02 00:00:00", category="tech", priority="high", response_ms=1),
    ticket("Y1", "2024-02-02 00:00:00", category="billing", priority="high", response_ms=1),
]


def sla(thresholds: SlaThresholds, **overrides: Any) -> list[dict[str, object]]:
    arguments: dict[str, Any] = {
        "start": JAN_START,
        "end": JAN_END,
        "category": " Billing ",
        "agent_id": None,
    }
    arguments.update(overrides)
    return sla_performance(SLA_TICKETS, thresholds=thresholds, **arguments)


def sla_tuple(row: dict[str, object]) -> tuple[object, ...]:
    return tuple(row.values())


def test_sla_thresholds_urgent_takes_high_in_force() -> None:
    assert SlaThresholds().for_priority("urgent") == (30, 240)
    assert SlaThresholds(high_response=45).for_priority("urgent") == (45, 240)
    assert SlaThresholds(urgent_resolution=10).for_priority("urgent") == (30, 10)
    assert SlaThresholds().for_priority("low") == (120, 1440)
    assert SlaThresholds().for_priority("p5") == (60, 480)
    assert SlaThresholds().for_priority(None) == (60, 480)


def test_sla_performance_default_thresholds_and_order() -> None:
    rows = sla(SlaThresholds())
    assert list(rows[0]) == [
        "priority",
        "total_tickets",
        "met_response_sla",
        "met_resolution_sla",
        "response_sla_percentage",
        "resolution_sla_percentage",
    ]
    assert [sla_tuple(r) for r in rows] == [
        ("urgent", 3, 1, 1, 33.33, 33.33),
        ("high", 1, 0, 1, 0.0, 100.0),
        ("medium", 1, 1, 1, 100.0, 100.0),
        ("low", 1, 0, 0, 0.0, 0.0),
        ("abc", 1, 1, 1, 100.0, 100.0),
        ("p5", 1, 1, 0, 100.0, 0.0),
        (None, 1, 0, 1, 0.0, 100.0),
    ]


def test_sla_performance_given_thresholds_and_agent_filter() -> None:
    rows = sla(SlaThresholds(high_response=45, high_resolution=250))
    assert sla_tuple(rows[0]) == ("urgent", 3, 2, 2, 66.67, 66.67)
    assert sla_tuple(rows[1]) == ("high", 1, 1, 1, 100.0, 100.0)

    rows = sla(SlaThresholds(high_response=45, urgent_response=10, urgent_resolution=1000))
    assert sla_tuple(rows[0]) == ("urgent", 3, 0, 2, 0.0, 66.67)

    rows = sla(SlaThresholds(), agent_id=" A1 ")
    assert [sla_tuple(r) for r in rows] == [
        ("urgent", 1, 1, 1, 100.0, 100.0),
        ("medium", 1, 1, 1, 100.0, 100.0),
    ]

    rows = sla(SlaThresholds(), category=None)
    assert sla_tuple(rows[1]) == ("high", 2, 1, 1, 50.0, 50.0)  # H1 and X1 (X1 unresolved)
    assert sla(SlaThresholds(), category="nothing") == []


# --------------------------------------------------------------------------------------------------
# agent_performance
# --------------------------------------------------------------------------------------------------

AGENT_TICKETS = [
    ticket(
        "t1",
        "2024-01-02 00:00:00",
        agent_id="A1",
        priority="high",
        status="resolved",
        response_ms=30 * MIN,
        resolution_ms=60 * MIN,
        satisfaction_score=5,
    ),
    ticket(
        "t2",
        "2024-01-02 00:00:00",
        agent_id="A1",
        priority="low",
        status="closed",
        response_ms=150 * MIN,
        resolution_ms=300 * MIN,
    ),
    ticket(
        "t3",
        "2024-01-02 00:00:00",
        agent_id="A2",
        priority="urgent",
        status="open",
        response_ms=30 * MIN,
        satisfaction_score=2,
    ),
    ticket(
        "t4",
        "2024-01-02 00:00:00",
        agent_id="A2",
        priority="medium",
        status="resolved",
        resolution_ms=90 * MIN,
        satisfaction_score=3,
    ),
    ticket("t5", "2024-01-02 00:00:00", status="open", response_ms=60 * MIN, satisfaction_score=4),
    ticket(
        "t6",
        "2024-01-02 00:00:00",
        priority="p5",
        status="closed",
        response_ms=61 * MIN,
        resolution_ms=61 * MIN,
    ),
    ticket("t7", "2024-01-02 00:00:00", agent_id="B", priority="high", status="open", response_ms=MIN),
    ticket("t8", "2024-02-02 00:00:00", agent_id="B", priority="high"),
    ticket("t9", "2024-02-02 00:00:00", agent_id="B", priority="high"),
]


def agents(thresholds: SlaThresholds, agent_id: str | None = None) -> list[tuple[object, ...]]:
    rows = agent_performance(
        AGENT_TICKETS, start=JAN_START, end=JAN_END, agent_id=agent_id, thresholds=thresholds
    )
    return [tuple(row.values()) for row in rows]


def test_agent_performance_rows_and_order() -> None:
    rows = agent_performance(
        AGENT_TICKETS, start=JAN_START, end=JAN_END, agent_id=None, thresholds=SlaThresholds()
    )
    assert list(rows[0]) == [
        "agent_id",
        "tickets_handled",
        "resolved_tickets",
        "resolution_rate",
        "avg_satisfaction",
        "avg_resolution_time_minutes",
        "avg_response_time_minutes",
        "met_response_sla",
        "response_sla_percentage",
    ]
    assert agents(SlaThresholds()) == [
        ("A1", 2, 2, 100.0, 5.0, 180.0, 90.0, 1, 50.0),
        ("A2", 2, 1, 50.0, 2.5, 90.0, 30.0, 1, 50.0),
        (None, 2, 1, 50.0, 4.0, 61.0, 60.5, 1, 50.0),  # ties: null agent last
        ("B", 1, 0, 0.0, None, None, 1.0, 1, 100.0),
    ]


def test_agent_performance_filter_and_thresholds() -> None:
    assert agents(SlaThresholds(), agent_id=" A2 ") == [("A2", 2, 1, 50.0, 2.5, 90.0, 30.0, 1, 50.0)]
    assert agents(SlaThresholds(urgent_response=10), agent_id="A2") == [
        ("A2", 2, 1, 50.0, 2.5, 90.0, 30.0, 0, 0.0)
    ]
    assert agents(SlaThresholds(), agent_id="a2") == []  # ids compare exactly


# --------------------------------------------------------------------------------------------------
# ticket_details
# --------------------------------------------------------------------------------------------------

DETAIL_TICKETS = [
    TicketSnapshot(
        ticket_id="D1",
        created_at=at("2024-03-01 10:00:00.250"),
        customer_id="C1",
        agent_id="A1",
        category="billing",
        priority="urgent",
        status="resolved",
        first_response_at=at("2024-03-01 10:00:07.750"),
        resolved_at=at("2024-03-01 10:30:00.250"),
        satisfaction_score=4,
        tags=("x", "y"),
        updated_at=at("2024-03-02 00:00:00"),
        channel="email",
        subject="Hi",
    ),
    ticket("D2", "2024-03-02 09:00:00", customer_id="C2", status="open"),
    ticket("D0", "2024-03-02 09:00:00", customer_id="C2", status="open"),
    ticket("D4", "2024-02-01 00:00:00", customer_id="C1", agent_id="A1", category="billing", status="closed"),
]


def details(**overrides: Any) -> tuple[list[str], int]:
    arguments: dict[str, Any] = {
        "ticket_id": None,
        "customer_id": None,
        "agent_id": None,
        "status": None,
        "category": None,
        "priority": None,
        "created_after": None,
        "created_before": None,
        "limit": 100,
        "offset": 0,
    }
    arguments.update(overrides)
    rows, total = ticket_details(DETAIL_TICKETS, **arguments)
    return [str(row["ticket_id"]) for row in rows], total


def test_ticket_details_rows() -> None:
    rows, total = ticket_details(
        DETAIL_TICKETS,
        ticket_id=None,
        customer_id=None,
        agent_id=None,
        status=None,
        category=None,
        priority=None,
        created_after=None,
        created_before=None,
        limit=100,
        offset=0,
    )
    assert total == 4
    assert rows[2] == {
        "ticket_id": "D1",
        "customer_id": "C1",
        "agent_id": "A1",
        "category": "billing",
        "priority": "urgent",
        "status": "resolved",
        "created_at": "2024-03-01 10:00:00.250",
        "first_response_at": "2024-03-01 10:00:07.750",
        "resolved_at": "2024-03-01 10:30:00.250",
        "satisfaction_score": 4,
        "tags": ["x", "y"],
        "updated_at": "2024-03-02 00:00:00",
        "channel": "email",
        "subject": "Hi",
        "response_time_minutes": 0.13,  # 7500 ms = exactly 0.125
        "resolution_time_minutes": 30.0,
    }
    assert rows[1] == {
        "ticket_id": "D2",
        "customer_id": "C2",
        "agent_id": None,
        "category": None,
        "priority": None,
        "status": "open",
        "created_at": "2024-03-02 09:00:00",
        "first_response_at": None,
        "resolved_at": None,
        "satisfaction_score": None,
        "tags": [],
        "updated_at": None,
        "channel": None,
        "subject": None,
        "response_time_minutes": None,
        "resolution_time_minutes": None,
    }


def test_ticket_details_order_filters_and_paging() -> None:
    assert details() == (["D0", "D2", "D1", "D4"], 4)
    assert details(limit=2, offset=1) == (["D2", "D1"], 4)
    assert details(offset=10) == ([], 4)
    assert details(status=" RESOLVED ") == (["D1"], 1)
    assert details(priority="CRITICAL") == (["D1"], 1)
    assert details(customer_id=" C1 ", category="Billing") == (["D1", "D4"], 2)
    assert details(created_after=at("2024-03-01 10:00:00.250")) == (["D0", "D2", "D1"], 3)
    assert details(created_before=at("2024-03-01 10:00:00.250")) == (["D1", "D4"], 2)
    assert details(ticket_id="D4", status="") == (["D4"], 1)
    assert details(agent_id="A1", status="closed", limit=1) == (["D4"], 1)
    with pytest.raises(ValueError, match="limit"):
        details(limit=0)
    with pytest.raises(ValueError, match="limit"):
        details(limit=10_001)


# --------------------------------------------------------------------------------------------------
# category_analysis
# --------------------------------------------------------------------------------------------------

CATEGORY_TICKETS = [
    ticket(
        "b1",
        "2024-01-02 00:00:00",
        category="billing",
        priority="urgent",
        response_ms=10 * MIN,
        resolution_ms=100 * MIN,
        satisfaction_score=5,
    ),
    ticket("b2", "2024-01-02 00:00:00", category="billing", priority="high", resolution_ms=50 * MIN),
    ticket("n1", "2024-01-02 00:00:00", response_ms=MIN, satisfaction_score=1),
    ticket("n2", "2024-01-02 00:00:00", response_ms=2 * MIN, satisfaction_score=2),
    ticket("c1", "2024-01-02 00:00:00", category="tech"),
    ticket("c2", "2024-01-02 00:00:00", category="tech"),
    ticket("a1", "2024-01-02 00:00:00", category="account", satisfaction_score=3),
    ticket("z1", "2024-02-02 00:00:00", category="zzz"),
]


def test_category_analysis_rows_and_order() -> None:
    rows = category_analysis(CATEGORY_TICKETS, start=JAN_START, end=JAN_END, priority=None)
    assert list(rows[0]) == [
        "category",
        "ticket_count",
        "percentage_of_total",
        "avg_resolution_time_minutes",
        "avg_response_time_minutes",
        "avg_satisfaction_score",
    ]
    assert [tuple(r.values()) for r in rows] == [
        ("billing", 2, 28.57, 75.0, 10.0, 5.0),
        ("tech", 2, 28.57, None, None, None),
        (None, 2, 28.57, None, 1.5, 1.5),
        ("account", 1, 14.29, None, None, 3.0),
    ]


def test_category_analysis_priority_filter() -> None:
    rows = category_analysis(CATEGORY_TICKETS, start=JAN_START, end=JAN_END, priority=" Critical")
    assert [tuple(r.values()) for r in rows] == [("billing", 1, 100.0, 100.0, 10.0, 5.0)]
    assert category_analysis(CATEGORY_TICKETS, start=JAN_START, end=JAN_END, priority="low") == []


# --------------------------------------------------------------------------------------------------
# time_trends
# --------------------------------------------------------------------------------------------------


def trends(
    tickets: list[TicketSnapshot],
    start: str,
    end: str,
    time_interval: str = "day",
    tz: str = "UTC",
    **filters: Any,
) -> list[dict[str, object]]:
    arguments: dict[str, Any] = {"category": None, "priority": None}
    arguments.update(filters)
    return time_trends(tickets, start=at(start), end=at(end), time_interval=time_interval, tz=tz, **arguments)


def counts(rows: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(row["time_period"], row["ticket_count"]) for row in rows]


TREND_TICKETS = [
    ticket(
        "k1",
        "2024-01-01 08:00:00",
        category="billing",
        priority="urgent",
        status="resolved",
        response_ms=10 * MIN,
        resolution_ms=20 * MIN,
        satisfaction_score=4,
    ),
    ticket(
        "k2", "2024-01-01 09:00:00", category="billing", priority="high", status="open", response_ms=20 * MIN
    ),
    ticket("k4", "2024-01-02 12:00:00", category="tech"),
    ticket(
        "k3",
        "2024-01-03 23:59:59.999",
        category="billing",
        priority="high",
        status="closed",
        resolution_ms=30 * MIN,
        satisfaction_score=2,
    ),
    ticket("k5", "2024-01-04 00:00:00", category="billing"),
]


def test_time_trends_day_rows_and_zero_fill() -> None:
    rows = trends(TREND_TICKETS, "2024-01-01 00:00:00", "2024-01-03 23:59:59.999")
    assert list(rows[0]) == [
        "time_period",
        "ticket_count",
        "resolved_tickets",
        "avg_resolution_time_minutes",
        "avg_response_time_minutes",
        "avg_satisfaction_score",
        "median_response_time_minutes",
        "p90_response_time_minutes",
        "median_resolution_time_minutes",
        "p90_resolution_time_minutes",
    ]
    assert [tuple(r.values())[:6] for r in rows] == [
        ("2024-01-01 00:00:00", 2, 1, 20.0, 15.0, 4.0),
        ("2024-01-02 00:00:00", 1, 0, None, None, None),
        ("2024-01-03 00:00:00", 1, 1, 30.0, None, 2.0),
    ]
    rows = trends(TREND_TICKETS, "2024-01-01 00:00:00", "2024-01-03 23:59:59.999", category=" BILLING ")
    assert rows[1] == {
        "time_period": "2024-01-02 00:00:00",
        "ticket_count": 0,
        "resolved_tickets": 0,
        "avg_resolution_time_minutes": None,
        "avg_response_time_minutes": None,
        "avg_satisfaction_score": None,
        "median_response_time_minutes": None,
        "p90_response_time_minutes": None,
        "median_resolution_time_minutes": None,
        "p90_resolution_time_minutes": None,
    }
    rows = trends(TREND_TICKETS, "2024-01-01 00:00:00", "2024-01-03 23:59:59.999", priority="Critical")
    assert counts(rows) == [
        ("2024-01-01 00:00:00", 1),
        ("2024-01-02 00:00:00", 0),
        ("2024-01-03 00:00:00", 0),
    ]
    # an empty interval means the default (day); no tickets still lists every period
    assert counts(trends([], "2024-01-01 12:00:00", "2024-01-02 00:00:00", time_interval="")) == [
        ("2024-01-01 00:00:00", 0),
        ("2024-01-02 00:00:00", 0),
    ]


def test_time_trends_new_york_days_across_spring_forward() -> None:
    tickets = [
        ticket("n1", "2024-03-10 04:30:00"),  # 2024-03-09 23:30 EST
        ticket("n2", "2024-03-11 04:30:00"),  # 2024-03-11 00:30 EDT
        ticket("n3", "2024-03-09 04:59:59.999"),  # before the window (2024-03-08 local)
    ]
    start, end = "2024-03-09 05:00:00", "2024-03-12 03:59:59.999"  # 03-09 00:00 EST .. 03-11 23:59 EDT
    assert counts(trends(tickets, start, end, tz="America/New_York")) == [
        ("2024-03-09 00:00:00", 1),
        ("2024-03-10 00:00:00", 0),
        ("2024-03-11 00:00:00", 1),
    ]
    assert counts(trends(tickets, start, end, tz="UTC")) == [
        ("2024-03-09 00:00:00", 0),
        ("2024-03-10 00:00:00", 1),
        ("2024-03-11 00:00:00", 1),
        ("2024-03-12 00:00:00", 0),
    ]


def test_time_trends_hours_across_dst_changes() -> None:
    # fall back: 05:xx UTC = 01:xx EDT and 06:xx UTC = 01:xx EST share the wall-clock hour 01:00
    tickets = [ticket("f1", "2024-11-03 05:30:00"), ticket("f2", "2024-11-03 06:30:00")]
    rows = trends(tickets, "2024-11-03 04:00:00", "2024-11-03 07:59:59.999", "hour", "America/New_York")
    assert counts(rows) == [
        ("2024-11-03 00:00:00", 0),
        ("2024-11-03 01:00:00", 2),
        ("2024-11-03 02:00:00", 0),
    ]
    # spring forward: the local hour 02:00 does not exist
    rows = trends([], "2024-03-10 06:00:00", "2024-03-10 07:59:59.999", "hour", "America/New_York")
    assert counts(rows) == [("2024-03-10 01:00:00", 0), ("2024-03-10 03:00:00", 0)]


def test_time_trends_days_whose_midnight_or_whole_day_is_skipped() -> None:
    # America/Santiago skips 2024-09-08 00:00..01:00; the day still exists
    tickets = [ticket("s1", "2024-09-08 04:00:00")]  # 2024-09-08 01:00 -03
    rows = trends(tickets, "2024-09-07 04:00:00", "2024-09-09 02:59:59.999", tz="America/Santiago")
    assert counts(rows) == [("2024-09-07 00:00:00", 0), ("2024-09-08 00:00:00", 1)]
    # Pacific/Apia skipped 2011-12-30 entirely
    rows = trends([], "2011-12-29 10:00:00", "2011-12-31 09:59:59.999", tz="Pacific/Apia")
    assert counts(rows) == [("2011-12-29 00:00:00", 0), ("2011-12-31 00:00:00", 0)]


def test_time_trends_month_pattern_and_zero_filled_months() -> None:
    tickets = [
        ticket("m1", "2024-01-20 00:00:00"),
        ticket("m2", "2024-03-01 00:00:00"),
        ticket("m3", "2024-03-31 23:59:59.999"),
        ticket("m4", "2024-04-01 02:00:00"),  # 2024-03-31 22:00 EDT
        ticket("m5", "2024-04-10 12:00:00"),
    ]
    window = ("2024-01-15 00:00:00", "2024-04-10 23:59:59.999")
    assert counts(trends(tickets, *window, "yyyy-MM")) == [
        ("2024-01", 1),
        ("2024-02", 0),
        ("2024-03", 2),
        ("2024-04", 2),
    ]
    # in New York m2 is 2024-02-29 19:00 and m4 is 2024-03-31 22:00
    assert counts(trends(tickets, *window, "yyyy-MM", "America/New_York")) == [
        ("2024-01", 1),
        ("2024-02", 1),
        ("2024-03", 2),
        ("2024-04", 1),
    ]
    assert counts(trends(tickets, *window, "month")) == [
        ("2024-01-01 00:00:00", 1),
        ("2024-02-01 00:00:00", 0),
        ("2024-03-01 00:00:00", 2),
        ("2024-04-01 00:00:00", 2),
    ]


def test_time_trends_other_patterns_and_named_intervals() -> None:
    rows = trends([], "2024-01-01 05:00:00", "2024-01-01 06:30:00", "yyyy-MM-dd HH:00")
    assert counts(rows) == [("2024-01-01 05:00", 0), ("2024-01-01 06:00", 0)]
    rows = trends([], "2024-01-01 05:00:00", "2024-01-01 05:00:00", "yyyy-MM-dd HH:00:00")
    assert counts(rows) == [("2024-01-01 05:00:00", 0)]
    # ordered by period start, not by label
    rows = trends([], "2024-01-31 00:00:00", "2024-02-01 23:59:59.999", "dd/MM/yyyy")
    assert counts(rows) == [("31/01/2024", 0), ("01/02/2024", 0)]
    rows = trends([ticket("w", "2024-01-07 23:59:59")], "2024-01-03 00:00:00", "2024-01-16 00:00:00", "week")
    assert counts(rows) == [
        ("2024-01-01 00:00:00", 1),
        ("2024-01-08 00:00:00", 0),
        ("2024-01-15 00:00:00", 0),
    ]
    rows = trends([], "2024-05-10 00:00:00", "2024-08-01 00:00:00", "quarter")
    assert counts(rows) == [("2024-04-01 00:00:00", 0), ("2024-07-01 00:00:00", 0)]
    rows = trends([], "2023-12-31 00:00:00", "2024-01-01 00:00:00", "year")
    assert counts(rows) == [("2023-01-01 00:00:00", 0), ("2024-01-01 00:00:00", 0)]
    rows = trends([], "2023-12-31 00:00:00", "2024-01-01 00:00:00", "yyyy")
    assert counts(rows) == [("2023", 0), ("2024", 0)]


@pytest.mark.parametrize(
    "interval",
    [
        "minute",
        "Day",
        "yyyy-MM-dd HH:mm",
        "yyyy-MM-dd HH:00:ss",
        "MM-dd",
        "yyyy-dd",
        "yyyyy",
        "2024",
        "yy-MM",
    ],
)
def test_time_trends_invalid_interval(interval: str) -> None:
    with pytest.raises(ValueError, match="time_interval"):
        trends([], "2024-01-01 00:00:00", "2024-01-02 00:00:00", interval)


def test_time_trends_invalid_zone_and_window() -> None:
    with pytest.raises(ValueError, match="timezone"):
        trends([], "2024-01-01 00:00:00", "2024-01-02 00:00:00", tz="Mars/Olympus")
    with pytest.raises(ValueError, match="start_date"):
        trends([], "2024-01-02 00:00:00", "2024-01-01 00:00:00")


def test_minutes_array_equals_minutes() -> None:
    """The vectorized rounding gives the very same floats as the exact scalar one."""
    import numpy as np

    from supportlens.domain.metrics import minutes, minutes_array

    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.integers(-(10**12), 10**12, 20_000),
            np.arange(0, 5_000) * 300,  # every half-hundredth boundary near zero
            np.array([0, 299, 300, 301, 599, 600, 601, -300, -301, 2**52]),
        ]
    ).astype(np.int64)
    assert minutes_array(values).tolist() == [minutes(int(v)) for v in values]
