"""SLA policies and SLA state over HTTP on both engines: policy CRUD and order with problem details,
one ticket's SLA status (from its events, and from its snapshot alone) checked by hand, and the
three SLA pipes checked against ``domain.sla.evaluate`` called here."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow.parquet as pq

from supportlens.auth.tokens import Scope
from supportlens.configuration.sla import SlaPolicyDefinition, builtin_policy
from supportlens.domain.calendars import default_business_hours
from supportlens.domain.events import ActorType, EventType, TicketEvent
from supportlens.domain.metrics import minutes
from supportlens.domain.sla import PolicySet, TargetStatus, TargetType, TicketSla, evaluate
from supportlens.domain.statuses import DEFAULT_STATUS_MAP
from tests.api.conftest import Api
from tests.api.test_configuration_api import field_errors, problem

ENTERPRISE: dict[str, Any] = {
    "name": "Enterprise network",
    "conditions": {"category": ["network"]},
    "targets": {
        "high": [
            {"type": "first_response", "minutes": 120},
            {"type": "next_response", "minutes": 60},
            {"type": "resolution", "minutes": 480},
        ],
        "default": [{"type": "resolution", "minutes": 960}],
    },
    "escalations": [
        {"level": 1, "offset_minutes": -30, "actions": ["notify"]},
        {"level": 2, "offset_minutes": 0, "actions": ["reassign"]},
    ],
}
BASIC: dict[str, Any] = {"name": "Basic", "targets": {"default": [{"type": "resolution", "minutes": 60}]}}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# T1: created 14:30 (high, network), answered 15:15, pending 15:20-16:00, the customer writes at
# 16:00 and is answered at 16:20.
EVENTS: list[dict[str, Any]] = [
    {
        "event_id": "e1",
        "ticket_id": "T1",
        "at": "2024-11-01T14:30:00Z",
        "type": "created",
        "actor_type": "customer",
        "priority": "high",
        "category": "network",
        "status": "open",
        "agent_id": "A1",
    },
    {
        "event_id": "e2",
        "ticket_id": "T1",
        "at": "2024-11-01T15:15:00Z",
        "type": "reply",
        "actor_type": "agent",
    },
    {
        "event_id": "e3",
        "ticket_id": "T1",
        "at": "2024-11-01T15:20:00Z",
        "type": "status_changed",
        "to": "pending",
    },
    {
        "event_id": "e4",
        "ticket_id": "T1",
        "at": "2024-11-01T16:00:00Z",
        "type": "customer_message",
        "actor_type": "customer",
    },
    {
        "event_id": "e5",
        "ticket_id": "T1",
        "at": "2024-11-01T16:00:00Z",
        "type": "status_changed",
        "to": "open",
    },
    {
        "event_id": "e6",
        "ticket_id": "T1",
        "at": "2024-11-01T16:20:00Z",
        "type": "reply",
        "actor_type": "agent",
    },
]
SNAPSHOTS: list[dict[str, Any]] = [
    {  # answered after 150 minutes (low: 120), resolved after 11 hours (low: 24 hours)
        "ticket_id": "S1",
        "agent_id": "A2",
        "category": "billing",
        "priority": "low",
        "status": "resolved",
        "created_at": "2024-11-01 09:00:00",
        "first_response_at": "2024-11-01 11:30:00",
        "resolved_at": "2024-11-01 20:00:00",
    },
    {  # unanswered, pending since its last update at 13:00 (medium: 60 / 480)
        "ticket_id": "S2",
        "agent_id": "A2",
        "category": "billing",
        "priority": "medium",
        "status": "pending",
        "created_at": "2024-11-01 12:00:00",
        "updated_at": "2024-11-01 13:00:00",
    },
]
AS_OF = "2024-11-01T20:45:00Z"
WINDOW = f"start_date=2024-10-01&end_date=2024-11-30&as_of={AS_OF}"


def post_policy(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/v1/sla-policies", json=body, headers=api.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/sla-policies/{created['id']}"
    return created


def load(api: Api) -> None:
    for name, rows in (("ticket_events", EVENTS), ("support_tickets", SNAPSHOTS)):
        body = b"\n".join(orjson.dumps(row) for row in rows)
        response = api.client.post(f"/v0/events?name={name}&wait=true", content=body, headers=api.headers())
        assert response.json() == {"successful_rows": len(rows), "quarantined_rows": 0}


def test_policy_crud_order_and_errors(api: Api) -> None:
    assert api.client.get("/v1/sla-policies", headers=api.headers()).json() == {"data": [], "total": 0}
    first = post_policy(api, ENTERPRISE)
    assert (first["name"], first["position"], first["default"]) == ("Enterprise network", 0, False)
    assert first["pause_statuses"] == ["on_hold", "pending"]
    assert first["at_risk_percent"] == 80
    second = post_policy(api, {**BASIC, "default": True})
    url = f"/v1/sla-policies/{first['id']}"
    assert api.client.get(url, headers=api.headers()).json() == first
    listed = api.client.get("/v1/sla-policies", headers=api.headers()).json()
    assert [p["id"] for p in listed["data"]] == [first["id"], second["id"]]
    assert listed["total"] == 2

    reordered = api.client.put(
        "/v1/sla-policies/order", json={"ids": [second["id"], first["id"]]}, headers=api.headers()
    )
    assert [(p["id"], p["position"]) for p in reordered.json()["data"]] == [
        (second["id"], 0),
        (first["id"], 1),
    ]
    assert (
        "missing"
        in field_errors(
            api.client.put("/v1/sla-policies/order", json={"ids": [first["id"]]}, headers=api.headers())
        )["ids"]
    )

    replaced = api.client.put(url, json={**ENTERPRISE, "at_risk_minutes": 15}, headers=api.headers()).json()
    assert (replaced["at_risk_minutes"], replaced["position"], replaced["created_at"]) == (
        15,
        1,
        first["created_at"],
    )
    duplicate = api.client.post("/v1/sla-policies", json={**BASIC, "name": "BASIC"}, headers=api.headers())
    assert "already exists" in problem(duplicate, 409)["detail"]
    assert problem(api.client.put(url, json=BASIC, headers=api.headers()), 409)

    bad = {**ENTERPRISE, "at_risk_percent": 101, "targets": {"high": [{"type": "resolution", "minutes": 0}]}}
    assert field_errors(api.client.post("/v1/sla-policies", json=bad, headers=api.headers())) == {
        "targets.high[0].minutes": "Target.minutes must be at least 1, got 0"
    }
    errors = field_errors(
        api.client.post("/v1/sla-policies", json={**BASIC, "at_risk_percent": 101}, headers=api.headers())
    )
    assert errors == {"at_risk_percent": "SlaPolicy.at_risk_percent must be 1 to 100, got 101"}
    errors = field_errors(
        api.client.post("/v1/sla-policies", json={**BASIC, "calendar_id": "nope"}, headers=api.headers())
    )
    assert errors == {"calendar_id": "no calendar 'nope' in this workspace"}

    # Scopes, and nothing of another workspace is visible.
    reader = api.token(Scope.READ)
    assert api.client.get(url, headers=api.headers(reader)).status_code == 200
    assert problem(api.client.post("/v1/sla-policies", json=BASIC, headers=api.headers(reader)), 403)
    other = api.runtime.metadata.create_workspace("other")
    _, stranger = api.runtime.metadata.create_token(other.id, "admin", {Scope.ADMIN})
    assert problem(api.client.get(url, headers=api.headers(stranger)), 404)
    assert problem(api.client.put(url, json=BASIC, headers=api.headers(stranger)), 404)
    assert problem(api.client.delete(url, headers=api.headers(stranger)), 404)
    assert api.client.get("/v1/sla-policies", headers=api.headers(stranger)).json()["total"] == 0

    assert api.client.delete(url, headers=api.headers()).status_code == 204
    assert problem(api.client.get(url, headers=api.headers()), 404)


def test_ticket_sla_from_events(api: Api) -> None:
    policy = post_policy(api, ENTERPRISE)
    load(api)
    status = api.client.get(f"/v1/support/tickets/T1/sla?as_of={AS_OF}", headers=api.headers()).json()[
        "sla_status"
    ]
    assert (status["ticket_id"], status["priority"], status["category"]) == ("T1", "high", "network")
    assert status["policy"] == {"id": policy["id"], "name": "Enterprise network"}
    assert status["evaluated_from"] == "events"
    response = status["response_time"]
    assert {k: response[k] for k in ("target", "actual", "status", "due_at", "responded_at")} == {
        "target": "2 hours",
        "actual": "45 minutes",
        "status": "met",
        "due_at": "2024-11-01T16:30:00Z",
        "responded_at": "2024-11-01T15:15:00Z",
    }
    assert (response["target_minutes"], response["actual_minutes"], response["business_hours"]) == (
        120,
        45.0,
        False,
    )
    # Resolution runs 14:30-15:20 and 16:00-20:45 (pending pauses it): 50 + 285 = 335 of 480 minutes.
    resolution = status["resolution_time"]
    assert {k: resolution[k] for k in ("target", "elapsed", "status", "due_at", "time_remaining")} == {
        "target": "8 hours",
        "elapsed": "5 hours 35 minutes",
        "status": "in_progress",
        "due_at": "2024-11-01T23:10:00Z",
        "time_remaining": "2 hours 25 minutes",
    }
    assert (resolution["elapsed_minutes"], resolution["remaining_minutes"], resolution["at_risk"]) == (
        335.0,
        145.0,
        False,
    )
    [answer] = status["next_responses"]
    assert (answer["status"], answer["actual"], answer["responded_at"]) == (
        "met",
        "20 minutes",
        "2024-11-01T16:20:00Z",
    )
    assert status["escalation"] == {
        "current_level": 0,
        "escalated_at": None,
        "escalation_reason": None,
        "next_escalation": {
            "level": 1,
            "at": "2024-11-01T22:40:00Z",
            "target_type": "resolution",
            "actions": ["notify"],
        },
    }
    assert [(t["type"], t["instance"], t["state"]) for t in status["targets"]] == [
        ("first_response", 0, "achieved"),
        ("next_response", 0, "achieved"),
        ("resolution", 0, "active"),
    ]

    # At 22:50 level 1 (30 minutes before the due time) has fired and the target is at risk.
    later = api.client.get(
        "/v1/support/tickets/T1/sla?as_of=2024-11-01T22:50:00", headers=api.headers()
    ).json()
    status = later["sla_status"]
    assert status["resolution_time"]["time_remaining"] == "20 minutes"
    assert status["resolution_time"]["at_risk"] is True
    assert status["escalation"] == {
        "current_level": 1,
        "escalated_at": "2024-11-01T22:40:00Z",
        "escalation_reason": "Approaching SLA deadline (resolution due in 30 minutes)",
        "next_escalation": {
            "level": 2,
            "at": "2024-11-01T23:10:00Z",
            "target_type": "resolution",
            "actions": ["reassign"],
        },
    }
    assert problem(api.client.get("/v1/support/tickets/nope/sla", headers=api.headers()), 404)
    assert "as_of" in field_errors(
        api.client.get("/v1/support/tickets/T1/sla?as_of=soon", headers=api.headers())
    )


def test_ticket_sla_from_a_snapshot(api: Api) -> None:
    load(api)
    status = api.client.get(f"/v1/support/tickets/S1/sla?as_of={AS_OF}", headers=api.headers()).json()[
        "sla_status"
    ]
    assert status["policy"] == {"id": "builtin", "name": "Built-in default"}
    assert status["evaluated_from"] == "snapshot"
    response, resolution = status["response_time"], status["resolution_time"]
    assert (response["target"], response["actual"], response["status"], response["due_at"]) == (
        "2 hours",
        "2 hours 30 minutes",
        "missed",
        "2024-11-01T11:00:00Z",
    )
    assert (resolution["target"], resolution["actual"], resolution["status"], resolution["resolved_at"]) == (
        "24 hours",
        "11 hours",
        "met",
        "2024-11-01T20:00:00Z",
    )
    assert status["next_responses"] == []
    assert status["escalation"]["current_level"] == 0
    # A customer-scoped token sees only its tickets.
    scoped = api.token(Scope.READ, fixed_filters={"agent_id": "A1"})
    assert problem(api.client.get("/v1/support/tickets/S1/sla", headers=api.headers(scoped)), 404)


def _reference(policy_id: str) -> dict[str, TicketSla]:
    """The three tickets evaluated here: T1 from its events, S1 and S2 from the events their snapshots
    stand for (created; a reply at first_response_at; the status at resolved_at or updated_at)."""
    policies = PolicySet(
        (SlaPolicyDefinition.model_validate(ENTERPRISE).to_domain(policy_id),), builtin_policy()
    )
    created = EventType.CREATED
    customer, agent = ActorType.CUSTOMER, ActorType.AGENT
    histories = {
        "T1": [
            TicketEvent(
                "e1",
                "T1",
                utc("2024-11-01T14:30"),
                created,
                customer,
                priority="high",
                category="network",
                status="open",
            ),
            TicketEvent("e2", "T1", utc("2024-11-01T15:15"), EventType.REPLY, agent),
            TicketEvent("e3", "T1", utc("2024-11-01T15:20"), EventType.STATUS_CHANGED, status="pending"),
            TicketEvent("e4", "T1", utc("2024-11-01T16:00"), EventType.CUSTOMER_MESSAGE, customer),
            TicketEvent("e5", "T1", utc("2024-11-01T16:00"), EventType.STATUS_CHANGED, status="open"),
            TicketEvent("e6", "T1", utc("2024-11-01T16:20"), EventType.REPLY, agent),
        ],
        "S1": [
            TicketEvent(
                "c", "S1", utc("2024-11-01T09:00"), created, customer, priority="low", category="billing"
            ),
            TicketEvent("r", "S1", utc("2024-11-01T11:30"), EventType.REPLY, agent),
            TicketEvent("s", "S1", utc("2024-11-01T20:00"), EventType.STATUS_CHANGED, status="resolved"),
        ],
        "S2": [
            TicketEvent(
                "c", "S2", utc("2024-11-01T12:00"), created, customer, priority="medium", category="billing"
            ),
            TicketEvent("s", "S2", utc("2024-11-01T13:00"), EventType.STATUS_CHANGED, status="pending"),
        ],
    }
    return {
        ticket: evaluate(
            events,
            policies=policies,
            calendars={None: default_business_hours("UTC")},
            statuses=DEFAULT_STATUS_MAP,
            as_of=utc(AS_OF.removesuffix("Z")),
        )
        for ticket, events in histories.items()
    }


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def test_sla_pipes_match_the_reference(api: Api) -> None:
    policy = post_policy(api, ENTERPRISE)
    load(api)
    expected = _reference(policy["id"])
    assert expected["S2"].targets[-1].state is TargetStatus.PAUSED  # pending pauses the resolution clock

    body = api.client.get(f"/v0/pipes/ticket_sla.json?{WINDOW}", headers=api.headers()).json()
    rows = body["data"]
    assert [(r["ticket_id"], r["target_type"], r["instance"]) for r in rows] == [
        (sla.ticket_id, t.type.value, t.instance)
        for ticket in ("S1", "S2", "T1")  # by creation time
        for sla in [expected[ticket]]
        for t in sla.targets
    ]
    for row in rows:
        target = expected[row["ticket_id"]].target(TargetType(row["target_type"]), row["instance"])
        assert target is not None
        assert row == {
            "ticket_id": row["ticket_id"],
            "policy_id": target.policy_id,
            "target_type": target.type.value,
            "instance": target.instance,
            "priority": target.priority,
            "target_minutes": target.target_minutes,
            "business_hours": target.business_hours,
            "state": target.state.value,
            "breached": target.breached,
            "started_at": _text(target.started_at),
            "due_at": _text(target.due_at),
            "achieved_at": _text(target.achieved_at),
            "breached_at": _text(target.breached_at),
            "elapsed_minutes": minutes(target.elapsed_ms),
            "remaining_minutes": minutes(target.remaining_ms),
            "at_risk": target.at_risk,
        }
    assert body["rows_before_limit_at_least"] == 3  # tickets
    # A page of tickets: the second one, with every target of it.
    page = api.client.get(
        f"/v0/pipes/ticket_sla.json?{WINDOW}&limit=1&offset=1", headers=api.headers()
    ).json()
    assert [(r["ticket_id"], r["target_type"]) for r in page["data"]] == [
        (r["ticket_id"], r["target_type"]) for r in rows if r["ticket_id"] == "S2"
    ]
    assert page["rows_before_limit_at_least"] == 3
    as_csv = api.client.get(f"/v0/pipes/ticket_sla.csv?{WINDOW}", headers=api.headers()).text
    records = list(csv.DictReader(io.StringIO(as_csv)))
    assert [(r["ticket_id"], r["state"], r["due_at"]) for r in records] == [
        (r["ticket_id"], r["state"], r["due_at"] or "") for r in rows
    ]

    # Attainment per target type: achieved / (achieved + breached) of the completed targets.
    body = api.client.get(f"/v0/pipes/sla_attainment.json?{WINDOW}", headers=api.headers()).json()
    counted: dict[str, list[int]] = {}
    for sla in expected.values():
        for t in sla.targets:
            tally = counted.setdefault(t.type.value, [0, 0, 0])
            tally[{TargetStatus.ACHIEVED: 0, TargetStatus.BREACHED: 1}.get(t.state, 2)] += 1
    assert {r["target_type"]: [r["achieved"], r["breached"], r["running"]] for r in body["data"]} == counted
    by_type = {r["target_type"]: r["attainment_pct"] for r in body["data"]}
    # first_response: T1 met, S1 missed (S2 still running); resolution: S1 met (T1, S2 running).
    assert by_type == {"first_response": 50.0, "next_response": 100.0, "resolution": 100.0}
    by_agent = api.client.get(
        f"/v0/pipes/sla_attainment.parquet?{WINDOW}&group_by=agent", headers=api.headers()
    )
    table = pq.read_table(io.BytesIO(by_agent.content)).to_pylist()  # S1 and S2 were never waited on again
    assert [(r["group"], r["target_type"], r["achieved"], r["breached"]) for r in table] == [
        ("A1", "first_response", 1, 0),
        ("A1", "next_response", 1, 0),
        ("A1", "resolution", 0, 0),
        ("A2", "first_response", 0, 1),
        ("A2", "resolution", 1, 0),
    ]
    bad = api.client.get("/v0/pipes/sla_attainment.json?group_by=channel", headers=api.headers())
    assert bad.status_code == 400
    assert "group_by" in bad.json()["error"]

    # At risk: the running targets at risk or breached, soonest due first.
    body = api.client.get(f"/v0/pipes/sla_at_risk.json?{WINDOW}", headers=api.headers()).json()
    risky = sorted(
        (
            (t.due_at, sla.ticket_id, t.type.value)
            for sla in expected.values()
            for t in sla.targets
            if t.state is TargetStatus.ACTIVE and (t.at_risk or t.breached)
        ),
    )
    assert risky == [(utc("2024-11-01T13:00"), "S2", "first_response")]  # unanswered since 12:00
    assert body["data"] == [
        {
            "ticket_id": "S2",
            "target_type": "first_response",
            "instance": 0,
            "priority": "medium",
            "agent_id": "A2",
            "policy_id": "builtin",
            "due_at": "2024-11-01 13:00:00",
            "remaining_minutes": -465.0,
            "breached": True,
            "at_risk": False,
        }
    ]
    as_ndjson = api.client.get(f"/v0/pipes/sla_at_risk.ndjson?{WINDOW}", headers=api.headers()).text
    assert [orjson.loads(line) for line in as_ndjson.splitlines()] == body["data"]
