"""The ticket management API over HTTP on both engines: seed 002's bodies and shapes, numbering,
ETags, state transitions, search, comments, escalation, bulk changes, relationships, merging and
history, each checked against what analytics (the pipes, fed through the one ingest path) says."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from supportlens.auth.tokens import Scope
from supportlens.runtime import Runtime
from supportlens.tickets.changes import Actor, EntryMaker, creation
from supportlens.tickets.records import TicketRecord, now_ms
from supportlens.tickets.repository import TicketRepository
from tests.api.conftest import Api, open_api
from tests.api.test_configuration_api import field_errors, problem
from tests.conftest import make_settings
from tests.tickets import sample_files

# Seed 002's "Create New Ticket" body (its attachment is exercised in test_attachments.py).
SEED_TICKET: dict[str, Any] = {
    "title": "Network connectivity issues in San Francisco office",
    "description": "Users in our SF office are experiencing intermittent connectivity issues with our MPLS "
    "connection. The issue started at approximately 2:00 PM PST and affects roughly 50% of users.",
    "customer_id": "cust_1234567890",
    "contact": {
        "name": "John Smith",
        "email": "john.smith@example.com",
        "phone": "+1-555-123-4567",
        "role": "IT Manager",
    },
    "category": "network",
    "subcategory": "connectivity",
    "priority": "high",
    "severity": "business_impacting",
    "service_affected": "mpls_network",
    "location": {
        "site_id": "site_sf_001",
        "address": "123 Market St, San Francisco, CA 94105",
        "timezone": "America/Los_Angeles",
    },
    "metadata": {
        "affected_users": 25,
        "business_impact": "50% productivity reduction",
        "troubleshooting_attempted": [
            "Restarted network equipment",
            "Verified cable connections",
            "Contacted ISP for circuit status",
        ],
    },
}
# Seed 002's "Update Ticket Status and Information" body.
SEED_UPDATE: dict[str, Any] = {
    "status": "in_progress",
    "priority": "critical",
    "assigned_to": "agent_network_specialist",
    "estimated_resolution": "2024-11-01T20:00:00Z",
    "internal_notes": "Escalated to network engineering team. Circuit provider confirms equipment failure.",
    "customer_update": "We have identified the issue and are working with our circuit provider.",
    "metadata": {"root_cause": "Provider equipment failure", "escalation_level": 2, "vendor_ticket": "ISP-1"},
}


@pytest.fixture
def api(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(engine_name, tmp_path, sla_evaluator_interval_seconds=0)


def create(
    api: Api, body: dict[str, Any] | None = None, token: str | None = None, **fields: Any
) -> dict[str, Any]:
    response = api.client.post(
        "/v1/support/tickets", json={**(body or SEED_TICKET), **fields}, headers=api.headers(token)
    )
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()["ticket"]
    assert response.headers["etag"] == f'"{ticket["id"]}.{ticket["version"]}"'
    return ticket


def pipe(api: Api, name: str, **params: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/v0/pipes/{name}.json", params=params, headers=api.headers())
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_seed_ticket_is_created_with_number_sla_and_urls(api: Api) -> None:
    ticket = create(api)
    assert ticket["id"].startswith("ticket_")
    year = datetime.now(UTC).year
    assert ticket["number"] == f"ACME-{year}-000001"
    assert ticket["status"] == "open"
    assert ticket["contact"] == SEED_TICKET["contact"]
    assert ticket["location"] == SEED_TICKET["location"]
    assert ticket["metadata"] == SEED_TICKET["metadata"]
    for name in ("title", "description", "customer_id", "category", "subcategory", "priority", "severity"):
        assert ticket[name] == SEED_TICKET[name]
    # The built-in SLA policy: high priority = 30 minutes to respond, 4 hours to resolve.
    created = datetime.fromisoformat(ticket["created_at"])
    sla = ticket["sla"]
    assert sla["response_time"] == "30 minutes"
    assert sla["resolution_time"] == "4 hours"
    assert abs(datetime.fromisoformat(sla["response_due"]) - (created + timedelta(minutes=30))) < timedelta(
        seconds=1
    )
    assert abs(datetime.fromisoformat(sla["resolution_due"]) - (created + timedelta(hours=4))) < timedelta(
        seconds=1
    )
    assert ticket["urls"]["self"].endswith(f"/v1/support/tickets/{ticket['id']}")
    # The same ticket by number, and it is in analytics at once.
    by_number = api.client.get(f"/v1/support/tickets/{ticket['number']}", headers=api.headers())
    assert by_number.json()["ticket"]["id"] == ticket["id"]
    metrics = pipe(api, "ticket_metrics")
    assert metrics[0]["total_tickets"] == 1
    assert metrics[0]["open_tickets"] == 1


def test_numbers_are_sequential_and_never_reused_and_deleted_tickets_leave_analytics(api: Api) -> None:
    year = datetime.now(UTC).year
    first, second = create(api), create(api)
    assert [first["number"], second["number"]] == [f"ACME-{year}-000001", f"ACME-{year}-000002"]
    deleted = api.client.delete(f"/v1/support/tickets/{second['id']}", headers=api.headers())
    assert deleted.status_code == 204
    assert api.client.get(f"/v1/support/tickets/{second['id']}", headers=api.headers()).status_code == 404
    # A deleted ticket leaves the analytics too (its events stay in the activity log).
    assert pipe(api, "ticket_metrics")[0]["total_tickets"] == 1
    listed = {row["ticket_id"] for row in pipe(api, "ticket_details")}
    assert listed == {first["id"]}
    settings = api.client.put("/v1/support/settings", json={"prefix": "SF"}, headers=api.headers())
    assert settings.status_code == 200, settings.text
    assert create(api)["number"] == f"SF-{year}-000003"
    bad = api.client.put("/v1/support/settings", json={"prefix": "sf-1"}, headers=api.headers())
    assert "prefix" in field_errors(bad)


def test_seed_update_changes_the_ticket_and_analytics(api: Api) -> None:
    ticket = create(api)
    response = api.client.put(
        f"/v1/support/tickets/{ticket['id']}",
        json=SEED_UPDATE,
        headers={**api.headers(), "If-Match": f'"{ticket["id"]}.1"'},
    )
    assert response.status_code == 200, response.text
    updated = response.json()["ticket"]
    assert updated["status"] == "in_progress"
    assert updated["priority"] == "urgent"  # critical and urgent are one level
    assert updated["assigned_to"] == {
        "agent_id": "agent_network_specialist",
        "name": None,
        "email": None,
        "specialization": None,
    }
    assert updated["estimated_resolution"] == "2024-11-01T20:00:00Z"
    assert updated["metadata"] == {**SEED_TICKET["metadata"], **SEED_UPDATE["metadata"]}
    assert updated["version"] == 2
    assert updated["sla"]["response_met"] is True  # customer_update is the first reply
    assert response.headers["etag"] == f'"{ticket["id"]}.2"'
    # Analytics: first response recorded, the agent's performance counts the ticket.
    metrics = pipe(api, "ticket_metrics")[0]
    assert metrics["avg_first_response_time_minutes"] is not None
    agents = pipe(api, "agent_performance")
    assert [row["agent_id"] for row in agents] == ["agent_network_specialist"]
    # Stale If-Match: 412; unknown fields and values: 422 naming them.
    stale = api.client.patch(
        f"/v1/support/tickets/{ticket['id']}",
        json={"status": "open"},
        headers={**api.headers(), "If-Match": f'"{ticket["id"]}.1"'},
    )
    problem(stale, 412)
    errors = field_errors(
        api.client.patch(
            f"/v1/support/tickets/{ticket['id']}",
            json={"priority": "whenever", "statuss": "open", "estimated_resolution": "soon"},
            headers=api.headers(),
        )
    )
    assert set(errors) == {"priority", "statuss", "estimated_resolution"}
    unknown_status = field_errors(
        api.client.patch(
            f"/v1/support/tickets/{ticket['id']}", json={"status": "limbo"}, headers=api.headers()
        )
    )
    assert "unknown status 'limbo'" in unknown_status["status"]
    # Metadata merges; null removes a key.
    merged = api.client.patch(
        f"/v1/support/tickets/{ticket['id']}",
        json={"metadata": {"vendor_ticket": None, "x": 1}},
        headers=api.headers(),
    )
    assert "vendor_ticket" not in merged.json()["ticket"]["metadata"]
    assert merged.json()["ticket"]["metadata"]["x"] == 1


def test_invalid_create_names_every_bad_field(api: Api) -> None:
    body = {
        **SEED_TICKET,
        "title": "",
        "priority": "p0",
        "contact": {"email": "not-an-email"},
        "location": {"timezone": "Mars/Base"},
    }
    errors = field_errors(api.client.post("/v1/support/tickets", json=body, headers=api.headers()))
    assert set(errors) == {"title", "priority", "contact.email", "location.timezone"}
    assert "not an email" in errors["contact.email"]
    broken = api.client.post(
        "/v1/support/tickets", content=b"{", headers={**api.headers(), "content-type": "application/json"}
    )
    problem(broken, 422)


def test_resolve_close_reopen_and_their_conflicts(api: Api) -> None:
    ticket = create(api)
    url = f"/v1/support/tickets/{ticket['id']}"
    problem(api.client.post(f"{url}/reopen", headers=api.headers()), 409)
    resolved = api.client.post(
        f"{url}/resolve", json={"customer_update": "Fixed: the circuit is back."}, headers=api.headers()
    )
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()["ticket"]
    assert body["status"] == "resolved"
    assert body["resolved_at"] is not None
    assert body["first_response_at"] is not None
    problem(api.client.post(f"{url}/resolve", headers=api.headers()), 409)
    assert pipe(api, "ticket_metrics")[0]["resolved_tickets"] == 1
    reopened = api.client.post(f"{url}/reopen", json={"reason": "still down"}, headers=api.headers())
    assert reopened.json()["ticket"]["status"] == "open"
    assert reopened.json()["ticket"]["resolved_at"] is None
    assert pipe(api, "ticket_metrics")[0]["resolved_tickets"] == 0
    closed = api.client.post(f"{url}/close", headers=api.headers())
    assert closed.json()["ticket"]["status"] == "closed"
    assert closed.json()["ticket"]["closed_at"] is not None
    problem(api.client.post(f"{url}/close", headers=api.headers()), 409)


def test_comments_drive_replies_and_a_customer_reopens(api: Api) -> None:
    ticket = create(api)
    url = f"/v1/support/tickets/{ticket['id']}/comments"
    note = api.client.post(
        url,
        json={
            "content": "Checking with the carrier.",
            "visibility": "internal",
            "author": {"type": "agent", "id": "agent_a"},
        },
        headers=api.headers(),
    )
    assert note.status_code == 201, note.text
    assert pipe(api, "ticket_metrics")[0]["avg_first_response_time_minutes"] is None  # a note is no reply
    seed_comment = {
        "content": "Circuit provider has replaced the failed equipment. Testing connectivity now.",
        "type": "customer_update",
        "visibility": "customer",
        "author": {"type": "agent", "id": "agent_network_specialist", "name": "Michael Chen"},
        "metadata": {"update_type": "progress_update", "next_update_eta": "2024-11-01T16:30:00Z"},
    }
    reply = api.client.post(url, json=seed_comment, headers=api.headers())
    assert reply.status_code == 201, reply.text
    comment = reply.json()["comment"]
    assert comment["id"].startswith("comment_")
    assert comment["author"] == {"type": "agent", "id": "agent_network_specialist", "name": "Michael Chen"}
    assert pipe(api, "ticket_metrics")[0]["avg_first_response_time_minutes"] is not None
    api.client.post(f"/v1/support/tickets/{ticket['id']}/resolve", headers=api.headers())
    again = api.client.post(
        url, json={"content": "Down again!", "author": {"type": "customer"}}, headers=api.headers()
    )
    assert again.status_code == 201
    current = api.client.get(f"/v1/support/tickets/{ticket['id']}", headers=api.headers()).json()["ticket"]
    assert current["status"] == "reopened"
    assert pipe(api, "ticket_metrics")[0]["resolved_tickets"] == 0
    listed = api.client.get(url, params={"limit": 2}, headers=api.headers()).json()
    assert listed["pagination"] == {"total": 3, "page": 1, "limit": 2, "pages": 2}
    assert [c["visibility"] for c in listed["comments"]] == ["internal", "customer"]
    internal = api.client.get(url, params={"visibility": "internal"}, headers=api.headers()).json()
    assert [c["content"] for c in internal["comments"]] == ["Checking with the carrier."]


def test_customer_comment_does_not_reopen_when_the_workspace_says_so(api: Api) -> None:
    api.client.put(
        "/v1/support/settings",
        json={"prefix": "ACME", "reopen_on_customer_reply": False},
        headers=api.headers(),
    )
    ticket = create(api)
    api.client.post(f"/v1/support/tickets/{ticket['id']}/resolve", headers=api.headers())
    api.client.post(
        f"/v1/support/tickets/{ticket['id']}/comments",
        json={"content": "Thanks!", "author": {"type": "customer"}},
        headers=api.headers(),
    )
    current = api.client.get(f"/v1/support/tickets/{ticket['id']}", headers=api.headers()).json()["ticket"]
    assert current["status"] == "resolved"


def test_search_filters_sorts_and_pages(api: Api) -> None:
    network = create(api, tags=["vip"])
    create(
        api,
        title="Invoice has the wrong VAT",
        description="billing question",
        category="billing",
        priority="low",
    )
    create(
        api,
        title="VoIP calls drop",
        description="call quality",
        category="voice",
        priority="urgent",
        tags=["vip", "voip"],
    )
    api.client.put(
        f"/v1/support/tickets/{network['id']}",
        json={"status": "in_progress", "assigned_to": "agent_tech_001"},
        headers=api.headers(),
    )

    def titles(**params: Any) -> list[str]:
        response = api.client.get("/v1/support/tickets", params=params, headers=api.headers())
        assert response.status_code == 200, response.text
        return [t["title"] for t in response.json()["tickets"]]

    assert titles(status=["open", "in_progress"], priority="high") == [network["title"]]
    assert titles(category="billing") == ["Invoice has the wrong VAT"]
    assert titles(assigned_to="agent_tech_001") == [network["title"]]
    assert titles(tags="voip") == ["VoIP calls drop"]
    assert titles(q="connectiv franc") == [network["title"]]  # words as prefixes
    assert titles(sort="priority", order="asc") == [
        "VoIP calls drop",
        network["title"],
        "Invoice has the wrong VAT",
    ]
    assert titles(customer_id="nobody") == []
    assert len(titles(created_after=network["created_at"])) == 3
    body = {
        "filters": {
            "customer_id": "cust_1234567890",
            "status": ["open", "in_progress"],
            "priority": ["high", "critical"],
        },
        "sort": {"field": "created_at", "order": "desc"},
        "pagination": {"page": 1, "limit": 1},
    }
    found = api.client.post("/v1/support/tickets/search", json=body, headers=api.headers())
    assert found.status_code == 200, found.text
    page = found.json()
    assert page["pagination"] == {"total": 2, "page": 1, "limit": 1, "pages": 2}
    first = page["tickets"][0]
    assert first["title"] == "VoIP calls drop"
    assert set(first["sla_status"]) == {"response_met", "resolution_due", "time_remaining", "breached"}
    assert first["sla_status"]["time_remaining"] is not None
    assert "sort.field" in field_errors(
        api.client.post(
            "/v1/support/tickets/search", json={"sort": {"field": "title"}}, headers=api.headers()
        )
    )


def test_tokens_see_only_their_workspace_and_fixed_filters(api: Api) -> None:
    mine = create(api)
    other_customer = create(api, customer_id="cust_other")
    other_workspace = api.runtime.metadata.create_workspace("globex")
    _, stranger = api.runtime.metadata.create_token(other_workspace.id, "admin", {Scope.ADMIN})
    assert (
        api.client.get(f"/v1/support/tickets/{mine['id']}", headers=api.headers(stranger)).status_code == 404
    )
    assert (
        api.client.get("/v1/support/tickets", headers=api.headers(stranger)).json()["pagination"]["total"]
        == 0
    )
    problem(
        api.client.patch(
            f"/v1/support/tickets/{mine['id']}", json={"status": "closed"}, headers=api.headers(stranger)
        ),
        404,
    )
    scoped = api.token(Scope.TICKETS, fixed_filters={"customer_id": "cust_1234567890"})
    listed = api.client.get(
        "/v1/support/tickets", params={"customer_id": "cust_other"}, headers=api.headers(scoped)
    )
    assert listed.json()["pagination"]["total"] == 0
    assert (
        api.client.get(f"/v1/support/tickets/{other_customer['id']}", headers=api.headers(scoped)).status_code
        == 404
    )
    reader = api.token(Scope.READ)
    assert api.client.get(f"/v1/support/tickets/{mine['id']}", headers=api.headers(reader)).status_code == 200
    problem(api.client.post("/v1/support/tickets", json=SEED_TICKET, headers=api.headers(reader)), 403)
    problem(api.client.get("/v1/support/tickets", headers={}), 401)


def test_escalation_raises_the_level_and_is_recorded(api: Api) -> None:
    ticket = create(api)
    url = f"/v1/support/tickets/{ticket['id']}"
    seed = {
        "escalation_level": 3,
        "reason": "Customer request - business critical impact",
        "notify": ["escalation-team@solveforce.com"],
        "metadata": {"customer_escalation": True},
        "comments": "Customer CEO called directly.",
    }
    escalated = api.client.post(
        f"{url}/escalate", json=seed, headers={**api.headers(), "X-Agent-Id": "agent_lead"}
    )
    assert escalated.status_code == 200, escalated.text
    body = escalated.json()["ticket"]
    assert body["escalation_level"] == 3
    assert body["sla"]["escalated"] is True
    assert body["sla"]["escalation_reason"] == seed["reason"]
    problem(
        api.client.post(f"{url}/escalate", json={**seed, "escalation_level": 2}, headers=api.headers()), 409
    )
    entries = api.client.get(f"{url}/history", headers=api.headers()).json()["history"]
    escalation = next(e for e in entries if e["type"] == "escalated")
    assert escalation["actor"] == {"type": "agent", "id": "agent_lead", "name": None}
    assert escalation["details"]["to"] == 3
    assert [e["type"] for e in entries][-1] == "internal_note"


def test_bulk_applies_each_item_on_its_own(api: Api) -> None:
    first, second = create(api), create(api, tags=["old"])
    body = {
        "ticket_ids": [first["id"], "ticket_missing", second["number"]],
        "changes": {"status": "pending", "priority": "low", "tags": {"add": ["bulk"], "remove": ["old"]}},
    }
    response = api.client.post("/v1/support/tickets/bulk", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["applied"], result["unchanged"], result["rejected"]) == (2, 0, 1)
    outcomes = {item["ticket_id"]: item for item in result["results"]}
    assert outcomes["ticket_missing"]["outcome"] == "rejected"
    assert "no ticket" in outcomes["ticket_missing"]["error"]
    assert outcomes[second["id"]]["ticket"]["tags"] == ["bulk"]
    assert outcomes[first["id"]]["ticket"]["status"] == "pending"
    rejected_status = api.client.post(
        "/v1/support/tickets/bulk",
        json={"ticket_ids": [first["id"]], "changes": {"status": "limbo"}},
        headers=api.headers(),
    )
    assert rejected_status.json()["results"][0]["outcome"] == "rejected"
    too_many = {"ticket_ids": [f"t{i}" for i in range(1001)], "changes": {"status": "open"}}
    assert "ticket_ids" in field_errors(
        api.client.post("/v1/support/tickets/bulk", json=too_many, headers=api.headers())
    )
    rows = pipe(api, "ticket_details", status="pending")
    assert sorted(row["ticket_id"] for row in rows) == sorted([first["id"], second["id"]])


def test_relationships_and_merging(api: Api) -> None:
    survivor, duplicate, related = create(api), create(api), create(api)
    url = f"/v1/support/tickets/{survivor['id']}/relationships"
    linked = api.client.post(
        url, json={"type": "related_to", "ticket_id": related["number"]}, headers=api.headers()
    )
    assert linked.status_code == 201, linked.text
    assert linked.json()["related_to"] == [related["id"]]
    assert linked.json()["submitted_by"] == "cust_1234567890"
    reverse = api.client.get(
        f"/v1/support/tickets/{related['id']}/relationships", headers=api.headers()
    ).json()
    assert reverse["related_to"] == [survivor["id"]]
    merged = api.client.post(
        f"/v1/support/tickets/{duplicate['id']}/merge",
        json={"into": survivor["id"], "reason": "same outage"},
        headers=api.headers(),
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged"]["status"] == "closed"
    assert merged.json()["merged"]["merged_into"] == survivor["id"]
    assert api.client.get(url, headers=api.headers()).json()["merged_from"] == [duplicate["id"]]
    problem(
        api.client.post(
            f"/v1/support/tickets/{duplicate['id']}/merge",
            json={"into": survivor["id"]},
            headers=api.headers(),
        ),
        409,
    )
    assert "into" in field_errors(
        api.client.post(
            f"/v1/support/tickets/{related['id']}/merge", json={"into": related["id"]}, headers=api.headers()
        )
    )
    survivor_history = api.client.get(
        f"/v1/support/tickets/{survivor['id']}/history", headers=api.headers()
    ).json()
    assert [e["type"] for e in survivor_history["history"]] == ["created", "related", "merged_from"]
    assert api.client.delete(f"{url}/{related['id']}", headers=api.headers()).status_code == 204
    assert api.client.delete(f"{url}/{related['id']}", headers=api.headers()).status_code == 404


def test_history_lists_every_event_with_actor_and_time(api: Api) -> None:
    ticket = create(api)
    url = f"/v1/support/tickets/{ticket['id']}"
    api.client.patch(
        url,
        json={"assigned_to": "agent_a", "severity": "minor"},
        headers={**api.headers(), "X-Agent-Id": "agent_lead"},
    )
    api.client.post(f"{url}/resolve", headers=api.headers())
    history = api.client.get(f"{url}/history", headers=api.headers()).json()
    kinds = [(e["type"], e["actor"]["type"], e["details"].get("field")) for e in history["history"]]
    assert kinds == [
        ("created", "customer", None),
        ("assigned", "agent", "assigned_to"),
        ("field_changed", "agent", "severity"),
        ("status_changed", "agent", "status"),
    ]
    assert history["history"][1]["actor"]["id"] == "agent_lead"
    times = [datetime.fromisoformat(e["at"]) for e in history["history"]]
    assert times == sorted(times)
    # The activity log holds the same events (those it has columns for).
    stored = api.runtime.engine.events_of(api.workspace_id, [ticket["id"]]).column("type").to_pylist()
    assert sorted(stored) == ["assigned", "created", "status_changed"]


def test_events_left_in_the_outbox_are_delivered_on_restart(engine_name: str, tmp_path: Path) -> None:
    """A crash between storing a ticket and handing its events to the writer loses nothing: the
    next start sends them (event ids make a second delivery harmless)."""
    settings = make_settings(engine_name, tmp_path, sla_evaluator_interval_seconds=0)
    runtime = Runtime.open(settings)
    workspace = runtime.metadata.create_workspace("acme")
    runtime.close()
    repository = TicketRepository(settings.tickets_path)  # as if the process died right after this
    at = now_ms()
    record = TicketRecord(
        "ticket_crash", "ACME-2026-000001", workspace.id, "Lost?", "open", at, at, 1, customer_id="c1"
    )
    maker = EntryMaker(record.id, at, Actor("agent", "a"))
    creation(maker, record)
    repository.create([(record, maker.entries)])
    repository.close()
    reopened = Runtime.open(settings)
    try:
        assert reopened.engine.events_of(workspace.id, ["ticket_crash"]).num_rows == 1
        assert reopened.tickets.repository.undelivered(10) == []
        assert reopened.tickets.deliver_pending() == 0
    finally:
        reopened.close()


def test_agents_directory_describes_the_assignee(api: Api) -> None:
    agent = {
        "name": "Sarah Johnson",
        "email": "sarah.johnson@solveforce.com",
        "specialization": "network_infrastructure",
        "teams": ["network_team"],
    }
    assert (
        api.client.put("/v1/support/agents/agent_tech_001", json=agent, headers=api.headers()).status_code
        == 200
    )
    ticket = create(api, assigned_to="agent_tech_001")
    assert ticket["assigned_to"] == {
        "agent_id": "agent_tech_001",
        "name": "Sarah Johnson",
        "email": "sarah.johnson@solveforce.com",
        "specialization": "network_infrastructure",
    }
    listed = api.client.get("/v1/support/agents", headers=api.headers()).json()
    assert [a["id"] for a in listed["data"]] == ["agent_tech_001"]
    problem(
        api.client.put("/v1/support/agents/x", json=agent, headers=api.headers(api.token(Scope.TICKETS))), 403
    )


def test_sla_engine_levels_escalate_the_ticket_record(api: Api) -> None:
    policy = {
        "name": "Network",
        "conditions": {"category": ["network"]},
        "targets": {"default": [{"type": "first_response", "minutes": 60}]},
        "escalations": [
            {"level": 1, "offset_minutes": -30, "actions": ["notify"]},
            {"level": 2, "offset_minutes": 0, "actions": ["reassign"]},
        ],
    }
    assert api.client.post("/v1/sla-policies", json=policy, headers=api.headers()).status_code == 201
    ticket, other = create(api), create(api, category="billing")
    created = datetime.fromisoformat(ticket["created_at"])
    evaluator = api.runtime.sla_evaluator()
    evaluator.run_once(now=created + timedelta(minutes=40))  # level 1 fired, level 2 not yet

    def level(ticket_id: str) -> int:
        found: int = api.client.get(f"/v1/support/tickets/{ticket_id}", headers=api.headers()).json()[
            "ticket"
        ]["escalation_level"]
        return found

    assert (level(ticket["id"]), level(other["id"])) == (1, 0)
    evaluator.run_once(now=created + timedelta(minutes=61))
    assert level(ticket["id"]) == 2
    evaluator.run_once(now=created + timedelta(minutes=90))  # nothing new: no second entry
    entries = api.client.get(f"/v1/support/tickets/{ticket['id']}/history", headers=api.headers()).json()[
        "history"
    ]
    escalations = [e for e in entries if e["type"] == "escalated"]
    assert [(e["actor"]["type"], e["details"]["to"]) for e in escalations] == [("system", 1), ("system", 2)]
    assert escalations[0]["details"]["reason"] == "SLA escalation level 1 (first response)"


def test_files_come_with_the_ticket_and_its_comments(api: Api) -> None:
    diagnostics = sample_files.pdf()
    seed_attachment = {
        "filename": "network_diagnostics.pdf",
        "content_type": "application/pdf",
        "size": len(diagnostics),
        "data": base64.b64encode(diagnostics).decode(),
    }
    ticket = create(api, {**SEED_TICKET, "attachments": [seed_attachment]})
    listed = api.client.get(ticket["urls"]["attachments"], headers=api.headers()).json()["data"]
    assert [(a["filename"], a["size"]) for a in listed] == [("network_diagnostics.pdf", len(diagnostics))]
    assert api.client.get(listed[0]["download_url"], headers=api.headers()).content == diagnostics
    screenshot = sample_files.png()
    comment = {
        "content": "Test results attached.",
        "author": {"type": "agent", "id": "agent_a"},
        "attachments": [
            {
                "filename": "circuit_test_results.png",
                "content_type": "image/png",
                "data": base64.b64encode(screenshot).decode(),
            }
        ],
    }
    answered = api.client.post(
        f"/v1/support/tickets/{ticket['id']}/comments", json=comment, headers=api.headers()
    )
    assert answered.status_code == 201, answered.text
    (attached,) = answered.json()["comment"]["attachments"]
    assert (attached["filename"], attached["size"], attached["comment_id"]) == (
        "circuit_test_results.png",
        len(screenshot),
        answered.json()["comment"]["id"],
    )
    listed_comments = api.client.get(
        f"/v1/support/tickets/{ticket['id']}/comments", headers=api.headers()
    ).json()["comments"]
    assert [len(c["attachments"]) for c in listed_comments] == [1]
    kinds = [
        e["type"]
        for e in api.client.get(f"/v1/support/tickets/{ticket['id']}/history", headers=api.headers()).json()[
            "history"
        ]
    ]
    assert kinds == ["created", "attachment_added", "reply", "attachment_added"]
    # A file that is not what it says refuses the whole request: no ticket is created.
    lying = {**seed_attachment, "data": base64.b64encode(screenshot).decode(), "size": len(screenshot)}
    errors = field_errors(
        api.client.post(
            "/v1/support/tickets", json={**SEED_TICKET, "attachments": [lying]}, headers=api.headers()
        )
    )
    assert "looks like image/png" in errors["attachments[0].content_type"]
    seed_placeholder = api.client.post(
        "/v1/support/tickets",
        json={**SEED_TICKET, "attachments": [{**seed_attachment, "data": "base64_encoded_file_data"}]},
        headers=api.headers(),
    )
    assert "attachments[0].data" in field_errors(seed_placeholder)
    assert api.client.get("/v1/support/tickets", headers=api.headers()).json()["pagination"]["total"] == 1


def test_custom_fields_follow_the_workspace_schema(api: Api) -> None:
    template = orjson.loads((Path(__file__).parent.parent / "records" / "seed001_template.json").read_bytes())
    collections = {c["id"]: c["json_schema"] for c in template["collections"]}
    tickets_schema = collections["tickets"]
    tickets_schema["properties"]["plan_tier"] = {"type": "string", "enum": ["gold", "silver"]}
    assert (
        api.client.put("/v1/schemas/tickets", json=tickets_schema, headers=api.headers()).status_code == 200
    )
    assert (
        api.client.put(
            "/v1/schemas/responses", json=collections["responses"], headers=api.headers()
        ).status_code
        == 200
    )
    # Seed 001's categories are bug, feature_request, question, billing, other; custom fields are checked too.
    errors = field_errors(
        api.client.post(
            "/v1/support/tickets",
            json={**SEED_TICKET, "custom_fields": {"plan_tier": "bronze"}},
            headers=api.headers(),
        )
    )
    assert set(errors) == {"category", "custom_fields.plan_tier"}
    assert "'network' is not one of" in errors["category"]
    ticket = create(api, category="billing", custom_fields={"plan_tier": "gold"})
    assert ticket["custom_fields"] == {"plan_tier": "gold"}
    changed = api.client.patch(
        f"/v1/support/tickets/{ticket['id']}", json={"status": "pending"}, headers=api.headers()
    )
    assert "status" in field_errors(changed)  # seed 001 knows open, in_progress, waiting, resolved, closed
    comment = {"content": "Any news?", "author": {"type": "customer", "name": "John"}}
    assert (
        api.client.post(
            f"/v1/support/tickets/{ticket['id']}/comments", json=comment, headers=api.headers()
        ).status_code
        == 201
    )


def test_the_customers_plan_picks_the_sla_policy(api: Api) -> None:
    customer = {
        "id": "cust_1234567890",
        "name": "Acme Corp",
        "email": "it@acme.example",
        "plan": "enterprise",
    }
    assert api.client.post("/v1/customers", json=customer, headers=api.headers()).status_code == 201
    policy = {
        "name": "Enterprise",
        "conditions": {"customer_plan": ["enterprise"]},
        "targets": {
            "default": [{"type": "first_response", "minutes": 15}, {"type": "resolution", "minutes": 120}]
        },
    }
    assert api.client.post("/v1/sla-policies", json=policy, headers=api.headers()).status_code == 201
    enterprise = create(api)
    other = create(api, customer_id="cust_unknown")
    assert (enterprise["sla"]["response_time"], enterprise["sla"]["resolution_time"]) == (
        "15 minutes",
        "2 hours",
    )
    assert (other["sla"]["response_time"], other["sla"]["resolution_time"]) == ("30 minutes", "4 hours")


def test_the_sla_block_agrees_with_the_activity_log(api: Api) -> None:
    """Answers evaluate the SLA from the ticket's own history; /sla from the activity log: the same."""
    ticket = create(api)
    url = f"/v1/support/tickets/{ticket['id']}"
    api.client.patch(url, json={"status": "pending", "priority": "urgent"}, headers=api.headers())
    api.client.post(
        f"{url}/comments",
        json={"content": "Any news?", "author": {"type": "customer"}},
        headers=api.headers(),
    )
    current = api.client.patch(url, json={"customer_update": "Working on it."}, headers=api.headers()).json()[
        "ticket"
    ]["sla"]
    logged = api.client.get(f"{url}/sla", headers=api.headers()).json()["sla_status"]
    assert current["policy_id"] == logged["policy"]["id"]
    assert current["response_due"] == logged["response_time"]["due_at"]
    assert current["resolution_due"] == logged["resolution_time"]["due_at"]
    assert current["response_met"] is (logged["response_time"]["status"] == "met")
