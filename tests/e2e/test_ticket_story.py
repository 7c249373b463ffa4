"""Seed 002's story, end to end against a live server: the network-connectivity ticket is created,
routed by the workspace's rule to the network team, gets its SLA due times from the network
category, is answered, escalated and resolved; after each step ticket_metrics, agent_performance
and ticket_sla say so, and the people the rule and the escalation name receive their mail."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.live import cli_env, free_port, live_server
from tests.live import run_cli as _cli
from tests.tickets.test_tickets_api import SEED_TICKET

pytestmark = pytest.mark.e2e

AGENTS = {
    "agent_tech_001": {
        "name": "Sarah Johnson",
        "email": "sarah.johnson@solveforce.com",
        "specialization": "network_infrastructure",
        "teams": ["network_escalation_team"],
    },
    "agent_network_specialist": {
        "name": "Michael Chen",
        "email": "michael.chen@solveforce.com",
        "specialization": "network_engineering",
        "teams": ["network_escalation_team"],
    },
}
CATEGORY = {
    "id": "network",
    "name": "Network & Connectivity",
    "description": "Internet, MPLS, SD-WAN, and network infrastructure issues",
    "sla": {"response_time": "2 hours", "resolution_time": "8 hours"},
    "subcategories": [{"id": "connectivity", "name": "Connectivity Issues"}],
}
RULE = {
    "rule_name": "High Priority Network Issues",
    "conditions": {
        "category": "network",
        "priority": ["high", "critical"],
        "keywords": ["outage", "connectivity", "offline"],
    },
    "actions": {
        "assign_to": "network_escalation_team",
        "notify": ["network-oncall@solveforce.com", "management@solveforce.com"],
        "escalate_after": "1 hour",
        "auto_update_frequency": "30 minutes",
    },
    "active": True,
}
ESCALATION = {
    "escalation_level": 3,
    "reason": "Customer request - business critical impact",
    "notify": ["escalation-team@solveforce.com", "customer-success@solveforce.com"],
    "metadata": {"business_impact": "Complete office offline", "customer_escalation": True},
    "comments": "Customer CEO called directly. This is affecting their quarterly board meeting preparation.",
}


class Mailbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def recipients(self) -> set[str]:
        return {address.strip() for message in self.messages for address in str(message["To"]).split(",")}


@dataclass
class Story:
    client: httpx.Client
    mailbox: Mailbox

    def targets(self, ticket_id: str) -> dict[str, str]:
        """ticket_sla's state of each target of the ticket (one row per target)."""
        return {row["target_type"]: row["state"] for row in self.pipe("ticket_sla", ticket_id=ticket_id)}

    def pipe(self, name: str, **params: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/v0/pipes/{name}.json", params=params)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {
        **cli_env(tmp_path),
        "SUPPORTLENS_SMTP_HOST": "127.0.0.1",
        "SUPPORTLENS_SMTP_PORT": str(smtp.port),
        "SUPPORTLENS_SMTP_SECURITY": "none",
        "SUPPORTLENS_SMTP_FROM": "support@solveforce.com",
        "SUPPORTLENS_SLA_EVALUATOR_INTERVAL_SECONDS": "0",
    }
    token = _cli(env, "workspace", "create", "solveforce").strip().splitlines()[-1]
    try:
        with (
            live_server(env) as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client,
        ):
            yield Story(client, mailbox)
    finally:
        smtp.stop()


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_seed_story_shows_in_analytics_at_each_step(story: Story) -> None:
    client = story.client
    _ok(client.put("/v1/support/settings", json={"prefix": "SF"}))
    for agent_id, agent in AGENTS.items():
        _ok(client.put(f"/v1/support/agents/{agent_id}", json=agent))
    _ok(client.post("/v1/support/categories", json=CATEGORY), 201)
    _ok(client.post("/v1/support/routing-rules", json=RULE), 201)

    # 1. Created: routed to the network team, due times from the network category's SLA.
    ticket = _ok(client.post("/v1/support/tickets", json=SEED_TICKET), 201)["ticket"]
    assert ticket["number"].startswith("SF-")
    assert ticket["assigned_to"]["agent_id"] in AGENTS
    assert ticket["group_id"] == "network_escalation_team"
    created = datetime.fromisoformat(ticket["created_at"])
    assert ticket["sla"]["response_time"] == "2 hours"
    assert ticket["sla"]["resolution_time"] == "8 hours"
    assert abs(
        datetime.fromisoformat(ticket["sla"]["response_due"]) - (created + timedelta(hours=2))
    ) < timedelta(seconds=1)
    assert abs(
        datetime.fromisoformat(ticket["sla"]["resolution_due"]) - (created + timedelta(hours=8))
    ) < timedelta(seconds=1)
    history = _ok(client.get(f"/v1/support/tickets/{ticket['id']}/history"))["history"]
    assert [e["type"] for e in history][:3] == ["created", "routing_rule_applied", "assigned"]
    assert {"network-oncall@solveforce.com", "management@solveforce.com"} <= story.mailbox.recipients()
    metrics = story.pipe("ticket_metrics")[0]
    assert (
        metrics["total_tickets"],
        metrics["open_tickets"],
        metrics["avg_first_response_time_minutes"],
    ) == (1, 1, None)
    assert story.targets(ticket["id"]) == {"first_response": "active", "resolution": "active"}

    # 2. The assigned agent answers: first response met.
    agent_id = ticket["assigned_to"]["agent_id"]
    comment = {
        "content": "Circuit provider has replaced the failed equipment. Testing connectivity now.",
        "type": "customer_update",
        "visibility": "customer",
        "author": {"type": "agent", "id": agent_id, "name": AGENTS[agent_id]["name"]},
    }
    _ok(client.post(f"/v1/support/tickets/{ticket['id']}/comments", json=comment), 201)
    assert story.pipe("ticket_metrics")[0]["avg_first_response_time_minutes"] is not None
    (performance,) = story.pipe("agent_performance")
    assert performance["agent_id"] == agent_id
    assert story.targets(ticket["id"]) == {"first_response": "achieved", "resolution": "active"}

    # 3. Escalated by hand: level 3, recorded, the escalation team told.
    escalated = _ok(client.post(f"/v1/support/tickets/{ticket['id']}/escalate", json=ESCALATION))["ticket"]
    assert escalated["escalation_level"] == 3
    assert {"escalation-team@solveforce.com", "customer-success@solveforce.com"} <= story.mailbox.recipients()

    # 4. Resolved: resolution met, the agent's resolved count and the metrics follow.
    resolved = _ok(
        client.post(
            f"/v1/support/tickets/{ticket['id']}/resolve", json={"customer_update": "Connectivity restored."}
        )
    )["ticket"]
    assert resolved["status"] == "resolved"
    assert resolved["sla"]["resolution_met"] is True
    metrics = story.pipe("ticket_metrics")[0]
    assert (metrics["resolved_tickets"], metrics["open_tickets"]) == (1, 0)
    (performance,) = story.pipe("agent_performance")
    assert performance["resolved_tickets"] == 1
    assert story.targets(ticket["id"]) == {"first_response": "achieved", "resolution": "achieved"}
    kinds = [e["type"] for e in _ok(client.get(f"/v1/support/tickets/{ticket['id']}/history"))["history"]]
    assert kinds[-4:] == ["escalated", "internal_note", "status_changed", "reply"]
