"""``/v1/support/routing-rules`` and what the rules do to tickets created and changed through
``/v1/support/tickets``, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from supportlens.app import create_app
from supportlens.auth.tokens import Scope
from supportlens.ingest.timestamps import parse_timestamp
from tests.api.conftest import Api, open_api
from tests.conftest import make_settings

QUIET = {"routing_timer_interval_seconds": 0, "sla_evaluator_interval_seconds": 0}


@pytest.fixture
def api(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(engine_name, tmp_path, **QUIET)


def _agent(api: Api, agent_id: str, *teams: str) -> None:
    response = api.client.put(
        f"/v1/support/agents/{agent_id}", json={"name": agent_id, "teams": list(teams)}, headers=api.headers()
    )
    assert response.status_code == 200, response.text


def _rule(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/v1/support/routing-rules", json=body, headers=api.headers())
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def _ticket(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"title": "Something", **fields}
    response = api.client.post("/v1/support/tickets", json=body, headers=api.headers())
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()["ticket"]
    return found


def _history(api: Api, ticket_id: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/v1/support/tickets/{ticket_id}/history", headers=api.headers())
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["history"]
    return found


def _applied(api: Api, ticket_id: str) -> list[dict[str, Any]]:
    return [e["details"] for e in _history(api, ticket_id) if e["type"] == "routing_rule_applied"]


def _assignee(ticket: dict[str, Any]) -> str | None:
    return None if ticket["assigned_to"] is None else str(ticket["assigned_to"]["agent_id"])


def test_a_matching_rule_assigns_the_ticket_and_says_so_in_its_history(api: Api) -> None:
    _agent(api, "agent_net")
    rule = _rule(
        api,
        {
            "rule_name": "High Priority Network Issues",
            "conditions": {
                "category": "Network",
                "priority": ["high", "critical"],
                "keywords": ["outage", "down"],
            },
            "actions": {"assign_to": "agent_net"},
        },
    )

    routed = _ticket(api, title="MPLS link DOWN in SF", category="network", priority="high")
    missed = _ticket(api, title="Slow download", category="network", priority="high")
    low = _ticket(api, title="Total outage", category="network", priority="low")

    assert _assignee(routed) == "agent_net"
    assert _assignee(missed) is None
    assert _assignee(low) is None
    history = _history(api, routed["id"])
    applied = [e for e in history if e["type"] == "routing_rule_applied"]
    assert [e["details"] for e in applied] == [
        {
            "rule_id": rule["id"],
            "rule_name": "High Priority Network Issues",
            "actions": {"assigned_to": "agent_net"},
        }
    ]
    assert applied[0]["actor"]["type"] == "system"
    assigned = [e for e in history if e["type"] == "assigned"]
    assert [(e["actor"]["type"], e["details"]["to"]) for e in assigned] == [("system", "agent_net")]
    assert _applied(api, missed["id"]) == []
    assert _applied(api, low["id"]) == []


def test_rules_are_listed_read_replaced_and_deleted_with_etags(api: Api) -> None:
    first = _rule(api, {"rule_name": "first", "actions": {"set_priority": "high"}})
    second = _rule(api, {"rule_name": "second", "conditions": {"channel": "Email"}})
    assert first["conditions"] == {
        "category": [],
        "priority": [],
        "keywords": [],
        "customer_tier": [],
        "channel": [],
    }
    assert second["conditions"]["channel"] == ["email"]
    assert (first["position"], second["position"]) == (0, 1)

    listed = api.client.get("/v1/support/routing-rules", headers=api.headers(api.token(Scope.READ))).json()
    assert [r["rule_name"] for r in listed["data"]] == ["first", "second"]
    assert listed["total"] == 2

    one = api.client.get(f"/v1/support/routing-rules/{first['id']}", headers=api.headers())
    assert one.status_code == 200
    assert one.headers["etag"] == f'"{first["id"]}.1"'
    url = f"/v1/support/routing-rules/{first['id']}"
    body = {"rule_name": "first, renamed", "actions": {"escalate_after": "1.5 hours"}}
    stale = api.client.put(url, json=body, headers={**api.headers(), "If-Match": f'"{first["id"]}.7"'})
    assert stale.status_code == 412
    replaced = api.client.put(url, json=body, headers={**api.headers(), "If-Match": one.headers["etag"]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2
    assert replaced.json()["position"] == 0
    assert replaced.json()["actions"]["escalate_after"] == "1 hour 30 minutes"

    reordered = api.client.put(
        "/v1/support/routing-rules/order", json={"ids": [second["id"], first["id"]]}, headers=api.headers()
    )
    assert [r["rule_name"] for r in reordered.json()["data"]] == ["second", "first, renamed"]

    assert api.client.delete(url, headers=api.headers()).status_code == 204
    assert api.client.get(url, headers=api.headers()).status_code == 404
    assert api.client.delete(url, headers=api.headers()).status_code == 404


def test_only_admins_write_rules(api: Api) -> None:
    body = {"rule_name": "r"}
    for scope in (Scope.READ, Scope.TICKETS):
        response = api.client.post(
            "/v1/support/routing-rules", json=body, headers=api.headers(api.token(scope))
        )
        assert response.status_code == 403
    tickets = api.client.get("/v1/support/routing-rules", headers=api.headers(api.token(Scope.TICKETS)))
    assert tickets.status_code == 200
    append = api.client.get("/v1/support/routing-rules", headers=api.headers(api.token(Scope.APPEND)))
    assert append.status_code == 403


def test_a_team_is_served_round_robin_and_the_turn_survives_a_restart(
    engine_name: str, tmp_path: Path
) -> None:
    opened = open_api(engine_name, tmp_path, **QUIET)
    api = next(opened)
    for agent_id in ("a1", "a2", "a3"):
        _agent(api, agent_id, "network_team")
    _agent(api, "a4", "voice_team")
    _rule(
        api,
        {
            "rule_name": "network",
            "conditions": {"category": "network"},
            "actions": {"assign_to": "network_team"},
        },
    )
    picked = [_ticket(api, category="network") for _ in range(4)]
    assert [_assignee(t) for t in picked] == ["a1", "a2", "a3", "a1"]
    assert {t["group_id"] for t in picked} == {"network_team"}
    assert _applied(api, picked[0]["id"])[0]["actions"] == {
        "team": "network_team",
        "assignment": "round_robin",
        "assigned_to": "a1",
    }
    workspace_id, admin = api.workspace_id, api.admin
    next(opened, None)  # closes the app

    with TestClient(create_app(make_settings(engine_name, tmp_path, **QUIET))) as client:
        response = client.post(
            "/v1/support/tickets",
            json={"title": "After the restart", "category": "network"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert response.status_code == 201, (workspace_id, response.text)
        assert response.json()["ticket"]["assigned_to"]["agent_id"] == "a2"


def test_least_loaded_picks_the_agent_with_fewest_open_tickets(api: Api) -> None:
    for agent_id in ("a1", "a2", "a3"):
        _agent(api, agent_id, "support")
    load = {"a1": 2, "a2": 1, "a3": 0}
    for agent_id, count in load.items():
        for _ in range(count):
            _ticket(api, title="Open work", assigned_to=agent_id)
    for _ in range(3):  # resolved tickets are no load
        done = _ticket(api, title="Done work", assigned_to="a3")
        assert (
            api.client.post(f"/v1/support/tickets/{done['id']}/resolve", headers=api.headers()).status_code
            == 200
        )
    _rule(
        api,
        {
            "rule_name": "balance",
            "conditions": {"keywords": ["routeme"]},
            "actions": {"assign_to": "team:support", "assignment": "least_loaded"},
        },
    )

    first = _ticket(api, title="please routeme")
    second = _ticket(api, title="please routeme")  # a2 and a3 now have one each: the lower id wins
    third = _ticket(api, title="please routeme")

    assert [_assignee(t) for t in (first, second, third)] == ["a3", "a2", "a3"]


def test_a_rule_sets_the_priority(api: Api) -> None:
    _rule(
        api,
        {
            "rule_name": "outages are critical",
            "conditions": {"keywords": ["outage"]},
            "actions": {"set_priority": "critical"},
        },
    )
    ticket = _ticket(api, title="Outage", priority="low")
    assert ticket["priority"] == "urgent"  # critical is urgent
    changed = [e for e in _history(api, ticket["id"]) if e["type"] == "priority_changed"]
    assert [(e["actor"]["type"], e["details"]["from"], e["details"]["to"]) for e in changed] == [
        ("system", "low", "urgent")
    ]


def test_an_assignee_the_request_names_is_kept(api: Api) -> None:
    _agent(api, "a1")
    _agent(api, "a2")
    _rule(api, {"rule_name": "all to a1", "actions": {"assign_to": "a1"}})
    ticket = _ticket(api, assigned_to="a2")
    assert _assignee(ticket) == "a2"
    assert _applied(api, ticket["id"])[0]["actions"] == {"assignment_skipped": "assigned by the request"}


def test_a_change_to_a_field_a_rule_reads_routes_the_ticket_again(api: Api) -> None:
    _agent(api, "billing_agent")
    _rule(
        api,
        {
            "rule_name": "billing",
            "conditions": {"category": "billing"},
            "actions": {"assign_to": "billing_agent"},
        },
    )
    _rule(api, {"rule_name": "everything", "actions": {"set_priority": "low"}})
    ticket = _ticket(api, category="network", priority="high")
    assert _assignee(ticket) is None
    assert ticket["priority"] == "low"

    status_only = api.client.put(
        f"/v1/support/tickets/{ticket['id']}", json={"status": "in_progress"}, headers=api.headers()
    )
    assert status_only.status_code == 200
    assert [d["rule_name"] for d in _applied(api, ticket["id"])] == ["everything"]

    moved = api.client.put(
        f"/v1/support/tickets/{ticket['id']}", json={"category": "Billing"}, headers=api.headers()
    )
    assert moved.status_code == 200, moved.text
    assert _assignee(moved.json()["ticket"]) == "billing_agent"
    assert moved.json()["ticket"]["priority"] == "low"  # the match-everything rule applies on creation only
    assert [d["rule_name"] for d in _applied(api, ticket["id"])] == ["everything", "billing"]


def test_rules_apply_in_order_until_one_stops_processing(api: Api) -> None:
    _agent(api, "a1")
    _agent(api, "a2")
    vip = _rule(
        api,
        {
            "rule_name": "vip",
            "conditions": {"keywords": ["vip"]},
            "actions": {"assign_to": "a1"},
            "stop_processing": True,
        },
    )
    rest = _rule(api, {"rule_name": "rest", "actions": {"assign_to": "a2", "set_priority": "low"}})

    stopped = _ticket(api, title="VIP customer", priority="high")
    assert _assignee(stopped) == "a1"
    assert stopped["priority"] == "high"
    assert [d["rule_name"] for d in _applied(api, stopped["id"])] == ["vip"]
    normal = _ticket(api, title="Regular", priority="high")
    assert _assignee(normal) == "a2"
    assert normal["priority"] == "low"

    api.client.put(
        "/v1/support/routing-rules/order", json={"ids": [rest["id"], vip["id"]]}, headers=api.headers()
    )
    reordered = _ticket(api, title="VIP again", priority="high")
    assert _assignee(reordered) == "a2"  # the first assignment stands
    assert [d["actions"] for d in _applied(api, reordered["id"])] == [
        {"set_priority": "low", "assigned_to": "a2"},
        {"assignment_skipped": "assigned by rule rest"},
    ]

    api.client.put(
        f"/v1/support/routing-rules/{rest['id']}",
        json={"rule_name": "rest", "active": False},
        headers=api.headers(),
    )
    assert _assignee(_ticket(api, title="Regular again")) is None


def test_a_tier_condition_matches_the_customers_plan(api: Api) -> None:
    for customer_id, plan in (("cust_big", "Enterprise"), ("cust_small", "starter")):
        created = api.client.post(
            "/v1/customers",
            json={
                "id": customer_id,
                "name": customer_id,
                "email": f"{customer_id}@example.com",
                "plan": plan,
            },
            headers=api.headers(),
        )
        assert created.status_code == 201, created.text
    _agent(api, "enterprise_desk")
    _rule(
        api,
        {
            "rule_name": "enterprise",
            "conditions": {"customer_tier": "enterprise"},
            "actions": {"assign_to": "enterprise_desk"},
        },
    )
    assert _assignee(_ticket(api, customer_id="cust_big")) == "enterprise_desk"
    assert _assignee(_ticket(api, customer_id="cust_small")) is None
    assert _assignee(_ticket(api, customer_id="cust_unknown")) is None
    moved = _ticket(api, customer_id="cust_small")
    changed = api.client.put(
        f"/v1/support/tickets/{moved['id']}", json={"customer_id": "cust_big"}, headers=api.headers()
    )
    assert _assignee(changed.json()["ticket"]) == "enterprise_desk"


def test_escalate_after_escalates_an_unresolved_ticket_when_due_and_not_before(api: Api) -> None:
    _rule(
        api,
        {
            "rule_name": "network watch",
            "conditions": {"category": "network"},
            "actions": {"escalate_after": "1 hour", "notify": ["oncall@example.com"]},
        },
    )
    waiting = _ticket(api, category="network")
    resolved = _ticket(api, category="network")
    assert (
        api.client.post(f"/v1/support/tickets/{resolved['id']}/resolve", headers=api.headers()).status_code
        == 200
    )
    due = parse_timestamp(_applied(api, waiting["id"])[0]["actions"]["escalate_at"])
    assert due == parse_timestamp(waiting["created_at"]) + timedelta(hours=1)

    routing = api.runtime.routing
    assert routing.escalate_due(due - timedelta(milliseconds=1)) == 0
    assert routing.escalate_due(due) == 1
    assert routing.escalate_due(due + timedelta(hours=5)) == 0  # each timer fires once

    escalated = api.client.get(f"/v1/support/tickets/{waiting['id']}", headers=api.headers()).json()["ticket"]
    assert escalated["escalation_level"] == 1
    assert escalated["sla"]["escalation_reason"] == "routing rule network watch: not resolved within 1 hour"
    events = [e for e in _history(api, waiting["id"]) if e["type"] == "escalated"]
    assert [(e["actor"]["type"], e["details"]["to"], e["details"]["notify"]) for e in events] == [
        ("system", 1, ["oncall@example.com"])
    ]
    untouched = api.client.get(f"/v1/support/tickets/{resolved['id']}", headers=api.headers()).json()[
        "ticket"
    ]
    assert untouched["escalation_level"] == 0


def test_deleting_a_rule_drops_the_escalations_it_had_pending(api: Api) -> None:
    rule = _rule(api, {"rule_name": "watch", "actions": {"escalate_after": "30 minutes"}})
    ticket = _ticket(api)
    assert (
        api.client.delete(f"/v1/support/routing-rules/{rule['id']}", headers=api.headers()).status_code == 204
    )
    assert api.runtime.routing.escalate_due(parse_timestamp(ticket["created_at"]) + timedelta(days=1)) == 0
    current = api.client.get(f"/v1/support/tickets/{ticket['id']}", headers=api.headers()).json()["ticket"]
    assert current["escalation_level"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rule_name": "r", "conditions": {"priority": "whenever"}}, "conditions.priority[0]"),
        ({"rule_name": "r", "conditions": {"priority": ["high", "soon"]}}, "conditions.priority[1]"),
        ({"rule_name": "r", "actions": {"notify": ["not-an-address"]}}, "actions.notify[0]"),
        ({"rule_name": "r", "actions": {"escalate_after": "1 fortnight"}}, "actions.escalate_after"),
        ({"rule_name": "r", "actions": {"escalate_after": 0}}, "actions.escalate_after"),
        ({"rule_name": "r", "actions": {"auto_update_frequency": "often"}}, "actions.auto_update_frequency"),
        ({"rule_name": "r", "actions": {"set_priority": "asap"}}, "actions.set_priority"),
        ({"rule_name": "r", "actions": {"assignment": "random"}}, "actions.assignment"),
        ({"rule_name": "r", "actions": {"assign_to": "ghost_team"}}, "actions.assign_to"),
        ({"rule_name": "r", "conditions": {"color": "red"}}, "conditions.color"),
        ({"rule_name": " "}, "rule_name"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.client.post("/v1/support/routing-rules", json=body, headers=api.headers())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_the_order_must_list_every_rule_once(api: Api) -> None:
    rule = _rule(api, {"rule_name": "only"})
    for ids in ([], [rule["id"], rule["id"]], [rule["id"], "rule_nope"]):
        response = api.client.put("/v1/support/routing-rules/order", json={"ids": ids}, headers=api.headers())
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["ids"]
