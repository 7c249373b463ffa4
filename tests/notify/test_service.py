"""The notification service: what it refuses (naming the field), what it keeps, and who may retry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from supportlens.notify.records import Channel, NotificationStatus, Outcome, Recipient
from supportlens.notify.repository import NotificationRepository
from supportlens.notify.service import (
    ATTEMPT_LEASE,
    ChannelNotConfigured,
    InvalidNotification,
    NotificationRequest,
)
from supportlens.tickets.records import TicketRecord
from tests.notify.conftest import SEED_TICKET, OpenService
from tests.notify.fakes import sms_provider, smtp_server


def sms(*numbers: str, **options: object) -> NotificationRequest:
    return NotificationRequest(Channel.SMS, [Recipient(n) for n in numbers], **options)  # type: ignore[arg-type]


def test_an_unconfigured_channel_is_refused_by_name(open_service: OpenService) -> None:
    service = open_service()
    for channel in Channel:
        with pytest.raises(ChannelNotConfigured, match=f"{channel.value} is not configured"):
            service.send("ws1", SEED_TICKET, NotificationRequest(channel, [Recipient("x")], message="hi"))


def test_every_bad_field_is_named_at_once(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        service = open_service(sms_provider_url=url)
        with pytest.raises(InvalidNotification) as refused:
            service.send(
                "ws1",
                SEED_TICKET,
                NotificationRequest(
                    Channel.SMS,
                    [
                        Recipient("+1-555-123-4567"),
                        Recipient("555-1234"),
                        Recipient(""),
                        Recipient("+15551234567", "A\nB"),
                    ],
                    message="ETA {{ eta }}",
                ),
            )
    assert [p.loc for p in refused.value.problems] == [
        ("recipients", 1, "phone"),
        ("recipients", 2, "phone"),
        ("recipients", 3, "name"),
        ("variables", "eta"),
    ]
    assert state.requests == []


def test_a_template_problem_is_refused_before_anything_is_recorded(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        service = open_service(sms_provider_url=url)
        with pytest.raises(InvalidNotification) as refused:
            service.send("ws1", SEED_TICKET, sms("+15551234567", message="ETA {{ eta }}"))
        with pytest.raises(InvalidNotification):
            service.send("ws1", SEED_TICKET, sms("+15551234567", template="nope"))
    assert [p.loc for p in refused.value.problems] == [("variables", "eta")]
    assert service.of_ticket("ws1", SEED_TICKET["id"], page=1, limit=10).total == 0
    assert state.requests == []


def test_the_same_number_twice_is_sent_once(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        sent = open_service(sms_provider_url=url).send(
            "ws1", SEED_TICKET, sms("+1-555-123-4567", "+1 555 123 4567", message="hi")
        )
    assert [d.recipient.address for d in sent.deliveries] == ["+15551234567"]
    assert len(state.requests) == 1


def test_notifications_and_attempts_are_kept_across_restarts_newest_first(
    open_service: OpenService, tmp_path: Path
) -> None:
    with sms_provider() as (state, url):
        service = open_service(sms_provider_url=url)
        state.answers.append((503, ""))
        first = service.send("ws1", SEED_TICKET, sms("+15550000001", message="first"))
        second = service.send("ws1", SEED_TICKET, sms("+15550000002", message="second"))
        service.send("ws2", SEED_TICKET, sms("+15550000003", message="another workspace"))
    reopened = open_service()
    page = reopened.of_ticket("ws1", SEED_TICKET["id"], page=1, limit=1)
    assert page.total == 2
    assert [n.id for n in page.notifications] == [second.id]
    [older] = reopened.of_ticket("ws1", SEED_TICKET["id"], page=2, limit=1).notifications
    assert older == first
    assert older.attempts[0].outcome is Outcome.RETRYABLE_FAILURE
    assert reopened.of_ticket("ws1", SEED_TICKET["id"], page=3, limit=1).notifications == []


def test_a_due_notification_is_claimed_by_one_retrier_only(open_service: OpenService, tmp_path: Path) -> None:
    with sms_provider() as (state, url):
        state.answers.append((503, ""))
        pending = open_service(sms_provider_url=url).send(
            "ws1", SEED_TICKET, sms("+15550000001", message="hi")
        )
    due = pending.next_attempt_at
    assert due is not None
    one, other = (NotificationRepository(tmp_path / "metadata.sqlite") for _ in range(2))
    try:
        assert [n.id for n in one.claim_due(due, due + ATTEMPT_LEASE, 10)] == [pending.id]
        assert other.claim_due(due, due + ATTEMPT_LEASE, 10) == []
        # The claimer crashed without recording an attempt: once its lease has passed, it is due again.
        assert [n.id for n in other.claim_due(due + ATTEMPT_LEASE, due + 2 * ATTEMPT_LEASE, 10)] == [
            pending.id
        ]
    finally:
        one.close()
        other.close()


def test_a_notification_whose_channel_was_unconfigured_fails_when_retried(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        state.answers.append((503, ""))
        pending = open_service(sms_provider_url=url).send(
            "ws1", SEED_TICKET, sms("+15550000001", message="hi")
        )
    assert pending.next_attempt_at is not None
    without_sms = open_service()
    assert without_sms.retry_due(pending.next_attempt_at) == 1
    [failed] = without_sms.of_ticket("ws1", SEED_TICKET["id"], page=1, limit=10).notifications
    assert failed.status is NotificationStatus.FAILED
    assert "sms is not configured" in (failed.last_error or "")


RECORD = TicketRecord(
    id="ticket_abc123def456",
    number="SF-2024-001234",
    workspace_id="ws1",
    title="Network connectivity issues in San Francisco office",
    status="in_progress",
    priority="critical",
    created_at=datetime(2024, 11, 1, 14, 30, tzinfo=UTC),
    updated_at=datetime(2024, 11, 1, 18, 0, tzinfo=UTC),
    version=3,
    escalation_level=3,
)


def test_the_ticket_service_notify_lists_are_emailed(open_service: OpenService) -> None:
    with smtp_server() as (inbox, port):
        service = open_service(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
        service.notify_list(
            RECORD,
            ["escalation-team@solveforce.com", "customer-success@solveforce.com"],
            "escalation",
            {"escalation_level": 3, "reason": "Customer request - business critical impact"},
        )
    [received] = inbox.received
    assert received.rcpt_tos == ["escalation-team@solveforce.com", "customer-success@solveforce.com"]
    assert received.message["Subject"] == (
        "Escalated to level 3: SF-2024-001234 Network connectivity issues in San Francisco office"
    )
    assert "Reason: Customer request - business critical impact" in received.message.get_content()
    [kept] = service.of_ticket("ws1", RECORD.id, page=1, limit=10).notifications
    assert (kept.template, kept.status) == ("escalation", NotificationStatus.SENT)


def test_a_notify_list_that_cannot_be_sent_is_logged_not_raised(
    open_service: OpenService, caplog: pytest.LogCaptureFixture
) -> None:
    service = open_service()
    service.notify_list(RECORD, ["oncall@example.com"], "escalation", {})
    assert "email is not configured" in caplog.text
    with smtp_server() as (inbox, port):
        configured = open_service(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
        with caplog.at_level(logging.WARNING):
            configured.notify_list(RECORD, ["not an address"], "escalation", {})
    assert "not an email address" in caplog.text
    assert inbox.received == []


def test_retry_due_takes_only_what_is_due(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        service = open_service(sms_provider_url=url)
        state.answers.extend([(503, ""), (503, "")])
        early = service.send("ws1", SEED_TICKET, sms("+15550000001", message="early"))
        late = service.send("ws1", SEED_TICKET, sms("+15550000002", message="late"))
        assert early.next_attempt_at is not None
        assert late.next_attempt_at is not None
        first_due = min(early.next_attempt_at, late.next_attempt_at)
        assert service.retry_due(first_due - timedelta(microseconds=1)) == 0
        assert service.retry_due(first_due) == 1
        assert service.retry_due(max(early.next_attempt_at, late.next_attempt_at)) == 1
    assert len(state.requests) == 4
