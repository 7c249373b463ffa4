"""``/v1/support/categories``: seed 002's categories, their SLA targets (kept as SLA policies, which
the tickets' ``sla`` block follows) and their subcategories' routing, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from supportlens.auth.tokens import Scope
from supportlens.ingest.timestamps import parse_timestamp
from tests.api.conftest import Api, open_api

# Seed 002's answer to GET /v1/support/categories (its auto_assign teams written as team:<name>: no
# agent is in them yet).
SEED_CATEGORIES = [
    {
        "id": "network",
        "name": "Network & Connectivity",
        "description": "Internet, MPLS, SD-WAN, and network infrastructure issues",
        "sla": {"response_time": "2 hours", "resolution_time": "8 hours"},
        "subcategories": [
            {
                "id": "connectivity",
                "name": "Connectivity Issues",
                "routing_rules": {"auto_assign": "team:network_team", "escalation_threshold": "4 hours"},
            },
            {
                "id": "performance",
                "name": "Performance Issues",
                "routing_rules": {
                    "auto_assign": "team:network_performance_team",
                    "escalation_threshold": "6 hours",
                },
            },
        ],
    },
    {
        "id": "voice",
        "name": "Voice Services",
        "description": "VoIP, PBX, and voice communication issues",
        "sla": {"response_time": "1 hour", "resolution_time": "4 hours"},
        "subcategories": [
            {"id": "call_quality", "name": "Call Quality Issues"},
            {"id": "features", "name": "Feature Configuration"},
        ],
    },
]


@pytest.fixture
def api(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(
        engine_name, tmp_path, routing_timer_interval_seconds=0, sla_evaluator_interval_seconds=0
    )


def _category(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/v1/support/categories", json=body, headers=api.headers())
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def _ticket(api: Api, **fields: Any) -> dict[str, Any]:
    response = api.client.post("/v1/support/tickets", json={"title": "Help", **fields}, headers=api.headers())
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()["ticket"]
    return found


def _near(due: str, expected: datetime) -> bool:
    """The SLA engine counts elapsed time in whole milliseconds up to the instant it evaluates at, so
    an open target's due time may sit up to a millisecond off (domain/sla.py)."""
    return abs(parse_timestamp(due) - expected) <= timedelta(milliseconds=1)


def _seed_shape(category: dict[str, Any]) -> dict[str, Any]:
    """The category as the seed shows it: subcategories without routing leave ``routing_rules`` out."""
    shown = {key: category[key] for key in ("id", "name", "description", "sla", "subcategories")}
    shown["subcategories"] = [
        {key: value for key, value in sub.items() if value is not None} for sub in category["subcategories"]
    ]
    return shown


def test_the_seeds_categories_are_answered_in_the_seeds_shape(api: Api) -> None:
    for body in reversed(SEED_CATEGORIES):
        _category(api, body)
    reader = api.headers(api.token(Scope.READ))
    listed = api.client.get("/v1/support/categories", headers=reader)
    assert listed.status_code == 200
    assert [_seed_shape(c) for c in listed.json()["categories"]] == SEED_CATEGORIES

    one = api.client.get("/v1/support/categories/Network", headers=reader)
    assert one.status_code == 200
    assert one.headers["etag"] == '"network.1"'
    assert _seed_shape(one.json()) == SEED_CATEGORIES[0]


def test_categories_are_created_once_replaced_and_deleted(api: Api) -> None:
    created = _category(api, {"id": "Billing", "name": "Billing", "sla": {"response_time": "1.5 hours"}})
    assert created["id"] == "billing"
    assert created["sla"] == {"response_time": "1 hour 30 minutes", "resolution_time": None}
    duplicate = api.client.post(
        "/v1/support/categories", json={"id": "billing", "name": "Again"}, headers=api.headers()
    )
    assert duplicate.status_code == 409

    url = "/v1/support/categories/billing"
    body = {"id": "billing", "name": "Billing & Invoices", "sla": {"resolution_time": "1 day"}}
    stale = api.client.put(url, json=body, headers={**api.headers(), "If-Match": '"billing.9"'})
    assert stale.status_code == 412
    replaced = api.client.put(url, json=body, headers={**api.headers(), "If-Match": '"billing.1"'})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "Billing & Invoices"
    assert replaced.json()["sla"] == {"response_time": None, "resolution_time": "24 hours"}
    assert replaced.json()["version"] == 2
    assert replaced.json()["sla_policy_id"] == created["sla_policy_id"]

    other_id = api.client.put(url, json={**body, "id": "invoices"}, headers=api.headers())
    assert other_id.status_code == 422
    assert [e["field"] for e in other_id.json()["errors"]] == ["id"]
    missing = api.client.put(
        "/v1/support/categories/nothing", json={**body, "id": "nothing"}, headers=api.headers()
    )
    assert missing.status_code == 404

    assert api.client.delete(url, headers=api.headers()).status_code == 204
    assert api.client.get(url, headers=api.headers()).status_code == 404
    policies = api.client.get("/v1/sla-policies", headers=api.headers()).json()["data"]
    assert policies == []


def test_only_admins_write_categories(api: Api) -> None:
    for scope in (Scope.READ, Scope.TICKETS):
        headers = api.headers(api.token(scope))
        response = api.client.post("/v1/support/categories", json={"id": "x", "name": "X"}, headers=headers)
        assert response.status_code == 403
        assert api.client.get("/v1/support/categories", headers=headers).status_code == 200


def test_a_categorys_sla_sets_the_due_times_of_its_tickets(api: Api) -> None:
    policy = {
        "name": "Everything",
        "conditions": {},
        "targets": {
            "default": [{"type": "first_response", "minutes": 600}, {"type": "resolution", "minutes": 6000}]
        },
    }
    assert api.client.post("/v1/sla-policies", json=policy, headers=api.headers()).status_code == 201
    network = _category(api, SEED_CATEGORIES[0])
    policies = api.client.get("/v1/sla-policies", headers=api.headers()).json()["data"]
    assert [p["name"] for p in policies] == ["category network", "Everything"]  # tried first

    ticket = _ticket(api, category="network", priority="high")
    created = parse_timestamp(ticket["created_at"])
    sla = ticket["sla"]
    assert sla["policy_id"] == network["sla_policy_id"]
    assert (sla["response_time"], sla["resolution_time"]) == ("2 hours", "8 hours")
    assert _near(sla["response_due"], created + timedelta(hours=2))
    assert _near(sla["resolution_due"], created + timedelta(hours=8))
    elsewhere = _ticket(api, category="voice", priority="high")["sla"]
    assert (elsewhere["response_time"], elsewhere["resolution_time"]) == ("10 hours", "100 hours")

    faster = {**SEED_CATEGORIES[0], "sla": {"response_time": "30 minutes", "resolution_time": "4 hours"}}
    assert (
        api.client.put("/v1/support/categories/network", json=faster, headers=api.headers()).status_code
        == 200
    )
    again = api.client.get(f"/v1/support/tickets/{ticket['id']}", headers=api.headers()).json()["ticket"][
        "sla"
    ]
    assert _near(again["response_due"], created + timedelta(minutes=30))
    assert _near(again["resolution_due"], created + timedelta(hours=4))

    without = {key: value for key, value in SEED_CATEGORIES[0].items() if key != "sla"}
    replaced = api.client.put("/v1/support/categories/network", json=without, headers=api.headers())
    assert replaced.json()["sla_policy_id"] is None
    back = api.client.get(f"/v1/support/tickets/{ticket['id']}", headers=api.headers()).json()["ticket"][
        "sla"
    ]
    assert back["response_time"] == "10 hours"
    assert [p["name"] for p in api.client.get("/v1/sla-policies", headers=api.headers()).json()["data"]] == [
        "Everything"
    ]


def test_a_subcategorys_routing_applies_after_the_workspaces_rules(api: Api) -> None:
    for agent_id, teams in (("n1", ["network_team"]), ("n2", ["network_team"]), ("lead", [])):
        api.client.put(
            f"/v1/support/agents/{agent_id}", json={"name": agent_id, "teams": teams}, headers=api.headers()
        )
    _category(api, {**SEED_CATEGORIES[0], "subcategories": [{**SEED_CATEGORIES[0]["subcategories"][0]}]})

    first = _ticket(api, category="network", subcategory="connectivity")
    second = _ticket(api, category="network", subcategory="connectivity")
    other = _ticket(api, category="network", subcategory="performance")
    assert [t["assigned_to"]["agent_id"] for t in (first, second)] == ["n1", "n2"]
    assert first["group_id"] == "network_team"
    assert other["assigned_to"] is None
    history = api.client.get(f"/v1/support/tickets/{first['id']}/history", headers=api.headers()).json()[
        "history"
    ]
    applied = [e["details"] for e in history if e["type"] == "routing_rule_applied"]
    assert applied[0]["rule_id"] == "subcategory:network/connectivity"
    escalate_at = parse_timestamp(applied[0]["actions"]["escalate_at"])
    assert escalate_at == parse_timestamp(first["created_at"]) + timedelta(hours=4)
    assert (
        api.runtime.routing.escalate_due(escalate_at + timedelta(minutes=1)) == 2
    )  # both connectivity tickets

    rule = {
        "rule_name": "outages to the lead",
        "conditions": {"keywords": ["outage"]},
        "actions": {"assign_to": "lead"},
    }
    assert api.client.post("/v1/support/routing-rules", json=rule, headers=api.headers()).status_code == 201
    outage = _ticket(api, title="Outage", category="network", subcategory="connectivity")
    assert outage["assigned_to"]["agent_id"] == "lead"
    assert outage["group_id"] is None

    assert api.client.delete("/v1/support/categories/network", headers=api.headers()).status_code == 204
    assert api.runtime.routing.escalate_due(escalate_at + timedelta(days=1)) == 0  # its timers went with it


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "x", "name": "X", "sla": {"response_time": "2 hourz"}}, "sla.response_time"),
        ({"id": "x", "name": "X", "sla": {"resolution_time": "0.1 minutes"}}, "sla.resolution_time"),
        ({"id": "x", "name": "X", "sla": {}}, "sla"),
        ({"id": " ", "name": "X"}, "id"),
        (
            {"id": "x", "name": "X", "subcategories": [{"id": "a", "name": "A"}, {"id": "A", "name": "B"}]},
            "subcategories",
        ),
        (
            {
                "id": "x",
                "name": "X",
                "subcategories": [{"id": "a", "name": "A", "routing_rules": {"auto_assign": "ghost"}}],
            },
            "subcategories[0].routing_rules.auto_assign",
        ),
        (
            {
                "id": "x",
                "name": "X",
                "subcategories": [
                    {"id": "a", "name": "A", "routing_rules": {"escalation_threshold": "later"}}
                ],
            },
            "subcategories[0].routing_rules.escalation_threshold",
        ),
    ],
)
def test_invalid_categories_are_refused_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.client.post("/v1/support/categories", json=body, headers=api.headers())
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
