"""Email notifications through a real SMTP server on 127.0.0.1 (aiosmtpd): plain, STARTTLS, implicit
TLS with a test CA, AUTH; the server's refusals decide between retrying and failing."""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from supportlens.notify.records import Channel, NotificationStatus, Outcome, Recipient
from supportlens.notify.service import NotificationRequest, NotificationService
from tests.notify.conftest import SEED_TICKET, OpenService
from tests.notify.fakes import SMTP_PASSWORD, SMTP_USER, smtp_server

SEED_EMAIL = NotificationRequest(
    Channel.EMAIL,
    [
        Recipient("john.smith@example.com", "John Smith", "primary_contact"),
        Recipient("it-team@example.com", "IT Team", "notification_list"),
    ],
    template="status_update",
    subject="Update on Network Connectivity Issue - Ticket #SF-2024-001234",
    variables={
        "customer_name": "John Smith",
        "ticket_number": "SF-2024-001234",
        "status": "In Progress",
        "expected_resolution": "2024-11-01T20:00:00Z",
        "next_update": "2024-11-01T18:00:00Z",
    },
    include_comments=True,
    comment_filter="customer_visible",
)
COMMENTS = [
    {
        "author_name": "Sarah Johnson",
        "created_at": "2024-11-01T15:15:00Z",
        "content": "Equipment replaced.",
        "visibility": "customer",
    },
    {
        "author_name": "Sarah Johnson",
        "created_at": "2024-11-01T15:20:00Z",
        "content": "Vendor ticket ISP-2024-567890.",
        "visibility": "internal",
    },
]


def smtp(port: int, **settings: Any) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_from": "SupportLens <support@example.com>",
        "smtp_timeout_seconds": 5,
        **settings,
    }


def send(service: NotificationService, request: NotificationRequest = SEED_EMAIL, **options: Any) -> Any:
    return service.send("ws1", SEED_TICKET, request, **options)


def test_the_seed_email_arrives_with_its_recipients_subject_and_body(open_service: OpenService) -> None:
    with smtp_server() as (inbox, port):
        sent = send(open_service(**smtp(port)), comments=COMMENTS)
    assert sent.status is NotificationStatus.SENT
    assert [(a.number, a.outcome) for a in sent.attempts] == [(1, Outcome.SENT)]
    [received] = inbox.received
    assert received.mail_from == "support@example.com"
    assert received.rcpt_tos == ["john.smith@example.com", "it-team@example.com"]
    message = received.message
    assert message["To"] == "John Smith <john.smith@example.com>, IT Team <it-team@example.com>"
    assert message["From"] == "SupportLens <support@example.com>"
    assert message["Subject"] == "Update on Network Connectivity Issue - Ticket #SF-2024-001234"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content()
    assert body.startswith("Hello John Smith,\n")
    assert "is now In Progress." in body
    assert "Expected resolution: 2024-11-01T20:00:00Z" in body
    assert "Equipment replaced." in body  # the customer-visible comment
    assert "ISP-2024-567890" not in body  # not the internal one
    assert sent.body == body


def test_all_comments_when_the_filter_says_all(open_service: OpenService) -> None:
    with smtp_server() as (inbox, port):
        send(open_service(**smtp(port)), replace(SEED_EMAIL, comment_filter="all"), comments=COMMENTS)
    assert "ISP-2024-567890" in inbox.received[0].message.get_content()


def test_no_comments_unless_asked(open_service: OpenService) -> None:
    with smtp_server() as (inbox, port):
        send(open_service(**smtp(port)), replace(SEED_EMAIL, include_comments=False), comments=COMMENTS)
    assert "Equipment replaced." not in inbox.received[0].message.get_content()


def test_starttls_with_auth_login(
    open_service: OpenService, server_tls: ssl.SSLContext, ca_file: Path
) -> None:
    settings = smtp(
        0,
        smtp_security="starttls",
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_ca_file=ca_file,
    )
    with smtp_server(starttls=server_tls, auth=True) as (inbox, port):
        sent = send(open_service(**{**settings, "smtp_port": port}))
    assert sent.status is NotificationStatus.SENT
    assert len(inbox.logins) == 1  # it authenticated (the server offers AUTH only after STARTTLS)
    assert inbox.received[0].message["Subject"].startswith("Update on Network Connectivity Issue")


def test_implicit_tls(open_service: OpenService, server_tls: ssl.SSLContext, ca_file: Path) -> None:
    with smtp_server(implicit_tls=server_tls) as (inbox, port):
        sent = send(open_service(**smtp(port, smtp_security="tls", smtp_ca_file=ca_file)))
    assert sent.status is NotificationStatus.SENT
    assert inbox.received[0].rcpt_tos == ["john.smith@example.com", "it-team@example.com"]


def test_an_untrusted_certificate_fails_for_good(
    open_service: OpenService, server_tls: ssl.SSLContext
) -> None:
    with smtp_server(implicit_tls=server_tls) as (inbox, port):
        sent = send(open_service(**smtp(port, smtp_security="tls")))  # the system CAs: not the test CA
    assert sent.status is NotificationStatus.FAILED
    assert sent.attempts[0].outcome is Outcome.PERMANENT_FAILURE
    assert "CERTIFICATE_VERIFY_FAILED" in (sent.last_error or "")
    assert inbox.received == []


def test_a_wrong_password_fails_and_no_password_is_stored_or_logged(
    open_service: OpenService, server_tls: ssl.SSLContext, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = SMTP_PASSWORD + "-but-wrong"
    caplog.set_level(logging.DEBUG)
    with smtp_server(starttls=server_tls, auth=True) as (inbox, port):
        service = open_service(
            **smtp(
                port,
                smtp_security="starttls",
                smtp_username=SMTP_USER,
                smtp_password=wrong,
                smtp_ca_file=ca_file,
            )
        )
        sent = send(service)
    assert sent.status is NotificationStatus.FAILED
    assert sent.attempts[0].outcome is Outcome.PERMANENT_FAILURE
    assert "SMTP 535" in (sent.last_error or "")
    stored = service.of_ticket("ws1", SEED_TICKET["id"], page=1, limit=10).notifications[0]
    texts = [stored.last_error, *(a.error for a in stored.attempts), *(d.error for d in stored.deliveries)]
    assert all(wrong not in (text or "") for text in texts)
    assert wrong not in caplog.text
    assert inbox.received == []


def test_a_temporary_refusal_is_retried_when_due(open_service: OpenService) -> None:
    with smtp_server() as (inbox, port):
        service = open_service(**smtp(port))
        inbox.data_replies.append("451 4.3.0 mailbox busy, try again")
        first = send(service)
        assert first.status is NotificationStatus.PENDING
        assert first.attempts[0].outcome is Outcome.RETRYABLE_FAILURE
        assert first.next_attempt_at is not None
        assert service.retry_due(first.next_attempt_at) == 1
    [after] = service.of_ticket("ws1", SEED_TICKET["id"], page=1, limit=10).notifications
    assert after.status is NotificationStatus.SENT
    assert [a.outcome for a in after.attempts] == [Outcome.RETRYABLE_FAILURE, Outcome.SENT]
    assert "SMTP 451" in (after.attempts[0].error or "")
    assert len(inbox.received) == 1


def test_a_refused_recipient_fails_while_the_others_get_it(open_service: OpenService) -> None:
    with smtp_server() as (inbox, port):
        inbox.refuse_recipients["it-team@example.com"] = "550 5.1.1 no such mailbox"
        sent = send(open_service(**smtp(port)))
    assert sent.status is NotificationStatus.FAILED  # not every recipient got it
    assert [(d.recipient.address, d.status) for d in sent.deliveries] == [
        ("john.smith@example.com", NotificationStatus.SENT),
        ("it-team@example.com", NotificationStatus.FAILED),
    ]
    assert "550" in (sent.deliveries[1].error or "")
    assert inbox.received[0].rcpt_tos == ["john.smith@example.com"]


def test_a_server_that_is_down_is_retried(open_service: OpenService) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        closed_port = taken.getsockname()[1]
    sent = send(open_service(**smtp(closed_port)))
    assert sent.status is NotificationStatus.PENDING
    assert sent.attempts[0].outcome is Outcome.RETRYABLE_FAILURE
    assert "ConnectionRefusedError" in (sent.last_error or "")
