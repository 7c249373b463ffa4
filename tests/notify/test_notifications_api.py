"""POST /v1/support/tickets/{id}/notify and GET .../notifications over HTTP on both engines, with the
seed's bodies, against a real SMTP server and a fake SMS provider on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from supportlens.auth.tokens import Scope
from tests.api.conftest import Api, open_api
from tests.api.test_configuration_api import field_errors, problem
from tests.notify.fakes import SMS_TOKEN, Inbox, SmsProviderState, sms_provider, smtp_server

SEED_EMAIL: dict[str, Any] = {
    "type": "email",
    "recipients": [
        {"email": "john.smith@example.com", "name": "John Smith", "role": "primary_contact"},
        {"email": "it-team@example.com", "name": "IT Team", "role": "notification_list"},
    ],
    "template": "status_update",
    "subject": "Update on Network Connectivity Issue - Ticket #SF-2024-001234",
    "variables": {
        "customer_name": "John Smith",
        "ticket_number": "SF-2024-001234",
        "status": "In Progress",
        "expected_resolution": "2024-11-01T20:00:00Z",
        "next_update": "2024-11-01T18:00:00Z",
    },
    "include_comments": True,
    "comment_filter": "customer_visible",
}
SEED_SMS: dict[str, Any] = {
    "type": "sms",
    "recipients": [{"phone": "+1-555-123-4567", "name": "John Smith"}],
    "message": "SOLVEFORCE Update: Network issue #SF-2024-001234 - Equipment replaced, testing in progress. "
    "ETA: 8PM. Reply STOP to opt out.",
}
TICKET = {
    "title": "Network connectivity issues in San Francisco office",
    "description": "Users in our SF office are experiencing intermittent connectivity issues.",
    "contact": {"name": "John Smith", "email": "john.smith@example.com"},
    "category": "network",
    "priority": "high",
}


@dataclass
class Providers:
    inbox: Inbox
    sms: SmsProviderState
    settings: dict[str, Any]


@pytest.fixture
def providers() -> Iterator[Providers]:
    with smtp_server() as (inbox, smtp_port), sms_provider() as (sms, sms_url):
        yield Providers(
            inbox,
            sms,
            {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "smtp_security": "none",
                "smtp_from": "support@example.com",
                "sms_provider_url": sms_url,
                "sms_provider_token": SMS_TOKEN,
            },
        )


QUIET = {"sla_evaluator_interval_seconds": 0, "notify_retry_interval_seconds": 0}  # tests call retry_due


@pytest.fixture
def api(engine_name: str, tmp_path: Path, providers: Providers) -> Iterator[Api]:
    yield from open_api(engine_name, tmp_path, **QUIET, **providers.settings)


def create_ticket(api: Api, **fields: Any) -> dict[str, Any]:
    response = api.client.post("/v1/support/tickets", json={**TICKET, **fields}, headers=api.headers())
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()["ticket"]
    return ticket


def comment(api: Api, ticket: dict[str, Any], content: str, visibility: str) -> None:
    response = api.client.post(
        f"/v1/support/tickets/{ticket['id']}/comments",
        json={
            "content": content,
            "visibility": visibility,
            "author": {"type": "agent", "name": "Sarah Johnson"},
        },
        headers=api.headers(),
    )
    assert response.status_code == 201, response.text


def notify(api: Api, ticket_ref: str, body: dict[str, Any], token: str | None = None) -> Any:
    return api.client.post(f"/v1/support/tickets/{ticket_ref}/notify", json=body, headers=api.headers(token))


def test_the_seed_email_is_sent_with_the_customer_visible_comments(api: Api, providers: Providers) -> None:
    ticket = create_ticket(api)
    comment(api, ticket, "Circuit provider has replaced the failed equipment.", "customer")
    comment(api, ticket, "Vendor ticket ISP-2024-567890.", "internal")
    response = notify(api, ticket["id"], SEED_EMAIL)
    assert response.status_code == 201, response.text
    sent = response.json()["notification"]
    assert sent["id"].startswith("ntf_")
    assert sent["ticket_id"] == ticket["id"]
    assert (sent["type"], sent["template"], sent["status"]) == ("email", "status_update", "sent")
    assert [(r["email"], r["name"], r["role"], r["status"]) for r in sent["recipients"]] == [
        ("john.smith@example.com", "John Smith", "primary_contact", "sent"),
        ("it-team@example.com", "IT Team", "notification_list", "sent"),
    ]
    assert [(a["number"], a["outcome"], a["error"]) for a in sent["attempts"]] == [(1, "sent", None)]
    assert sent["next_attempt_at"] is None
    assert datetime.fromisoformat(sent["sent_at"]) >= datetime.fromisoformat(sent["created_at"])
    [received] = providers.inbox.received
    assert received.rcpt_tos == ["john.smith@example.com", "it-team@example.com"]
    assert received.message["Subject"] == SEED_EMAIL["subject"]
    body = received.message.get_content()
    assert body == sent["body"]
    assert "is now In Progress." in body
    assert "Circuit provider has replaced the failed equipment." in body
    assert "ISP-2024-567890" not in body


def test_the_seed_sms_is_retried_after_a_provider_error(api: Api, providers: Providers) -> None:
    ticket = create_ticket(api)
    providers.sms.answers.append((500, '{"error": "upstream"}'))
    response = notify(api, ticket["number"], SEED_SMS)  # by number, as well as by id
    assert response.status_code == 202, response.text  # accepted: a retry is scheduled
    pending = response.json()["notification"]
    assert pending["status"] == "pending"
    assert pending["recipients"] == [
        {
            "email": None,
            "phone": "+15551234567",
            "name": "John Smith",
            "role": None,
            "status": "pending",
            "provider_message_id": None,
            "error": 'provider answered 500: {"error": "upstream"}',
        }
    ]
    assert pending["attempts"][0]["outcome"] == "retryable_failure"
    assert api.runtime.notifications.retry_due(datetime.fromisoformat(pending["next_attempt_at"])) == 1
    listed = api.client.get(f"/v1/support/tickets/{ticket['id']}/notifications", headers=api.headers()).json()
    [after] = listed["notifications"]
    assert after["status"] == "sent"
    assert [a["outcome"] for a in after["attempts"]] == ["retryable_failure", "sent"]
    assert after["recipients"][0]["provider_message_id"] == "msg_2"
    assert [r.body["to"] for r in providers.sms.requests] == ["+15551234567", "+15551234567"]


def test_a_permanent_provider_refusal_is_created_as_failed(api: Api, providers: Providers) -> None:
    ticket = create_ticket(api)
    providers.sms.answers.append((400, '{"error": "invalid destination"}'))
    response = notify(api, ticket["id"], SEED_SMS)
    assert response.status_code == 201, response.text
    failed = response.json()["notification"]
    assert failed["status"] == "failed"
    assert failed["attempts"][0]["outcome"] == "permanent_failure"
    assert "invalid destination" in failed["last_error"]


def test_bad_requests_name_the_field(api: Api) -> None:
    ticket = create_ticket(api)
    nameless = create_ticket(api, contact=None)

    def errors(ticket_id: str, body: dict[str, Any]) -> dict[str, str]:
        return field_errors(notify(api, ticket_id, body))

    assert "recipients[0].phone" in errors(ticket["id"], {**SEED_SMS, "recipients": [{"phone": "555-1234"}]})
    assert "recipients[1].email" in errors(
        ticket["id"], {**SEED_EMAIL, "recipients": [{"email": "a@example.com"}, {"phone": "+15551234567"}]}
    )
    unnamed = {**SEED_EMAIL, "variables": {}}
    assert "customer_name" in errors(nameless["id"], unnamed)["variables.customer_name"]
    assert "status_update" in errors(ticket["id"], {**SEED_EMAIL, "template": "weekly"})["template"]
    assert "message" in errors(ticket["id"], {**SEED_SMS, "message": None})
    assert "recipients" in errors(ticket["id"], {**SEED_SMS, "recipients": []})
    assert "type" in errors(ticket["id"], {**SEED_SMS, "type": "fax"})
    assert "cc" in errors(ticket["id"], {**SEED_EMAIL, "cc": ["x@example.com"]})
    assert "comment_filter" in errors(ticket["id"], {**SEED_EMAIL, "comment_filter": "mine"})
    assert "message" in errors(ticket["id"], {**SEED_SMS, "message": "{{ ticket_number.__class__ }}"})


def test_a_channel_the_server_lacks_is_a_conflict(engine_name: str, tmp_path: Path) -> None:
    with contextmanager(open_api)(engine_name, tmp_path, **QUIET) as bare:
        ticket = create_ticket(bare)
        assert "SUPPORTLENS_SMTP_HOST" in problem(notify(bare, ticket["id"], SEED_EMAIL), 409)["detail"]
        assert "SUPPORTLENS_SMS_PROVIDER_URL" in problem(notify(bare, ticket["id"], SEED_SMS), 409)["detail"]


def test_unknown_tickets_and_scopes(api: Api, providers: Providers) -> None:
    problem(notify(api, "ticket_nope", SEED_SMS), 404)
    problem(api.client.get("/v1/support/tickets/ticket_nope/notifications", headers=api.headers()), 404)
    ticket = create_ticket(api)
    reader = api.token(Scope.READ)
    problem(notify(api, ticket["id"], SEED_SMS, token=reader), 403)
    assert notify(api, ticket["id"], SEED_SMS, token=api.token(Scope.TICKETS)).status_code == 201
    listed = api.client.get(f"/v1/support/tickets/{ticket['id']}/notifications", headers=api.headers(reader))
    assert listed.json()["pagination"]["total"] == 1
    problem(api.client.get(f"/v1/support/tickets/{ticket['id']}/notifications"), 401)
    assert len(providers.sms.requests) == 1


def test_notifications_are_listed_newest_first_in_pages(api: Api) -> None:
    ticket, other = create_ticket(api), create_ticket(api)
    for text in ("first", "second", "third"):
        assert notify(api, ticket["id"], {**SEED_SMS, "message": text}).status_code == 201
    notify(api, other["id"], SEED_SMS)
    url = f"/v1/support/tickets/{ticket['id']}/notifications"
    first = api.client.get(url, params={"limit": 2}, headers=api.headers()).json()
    assert [n["body"] for n in first["notifications"]] == ["third", "second"]
    assert first["pagination"] == {"total": 3, "page": 1, "limit": 2, "pages": 2}
    second = api.client.get(url, params={"limit": 2, "page": 2}, headers=api.headers()).json()
    assert [n["body"] for n in second["notifications"]] == ["first"]
    assert "limit" in field_errors(api.client.get(url, params={"limit": 0}, headers=api.headers()))
