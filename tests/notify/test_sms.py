"""SMS notifications through a fake HTTP provider on 127.0.0.1: what it answers decides between sent,
retried with growing waits, and failed; the provider token never reaches stored errors or logs."""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from supportlens.notify.records import Channel, NotificationStatus, Outcome, Recipient
from supportlens.notify.service import NotificationRequest, NotificationService
from supportlens.workers.periodic import Periodic
from tests.notify.conftest import SEED_TICKET, OpenService
from tests.notify.fakes import SMS_TOKEN, sms_provider

SEED_SMS = NotificationRequest(
    Channel.SMS,
    [Recipient("+1-555-123-4567", "John Smith")],
    message="SOLVEFORCE Update: Network issue #{{ ticket_number }} - Equipment replaced, testing in progress. "
    "ETA: 8PM. Reply STOP to opt out.",
)


def provider(url: str, **settings: Any) -> dict[str, Any]:
    return {
        "sms_provider_url": url,
        "sms_provider_token": SMS_TOKEN,
        "sms_from": "+15550000000",
        "sms_timeout_seconds": 5,
        **settings,
    }


def send(service: NotificationService, request: NotificationRequest = SEED_SMS) -> Any:
    return service.send("ws1", SEED_TICKET, request)


def stored(service: NotificationService) -> Any:
    [notification] = service.of_ticket("ws1", SEED_TICKET["id"], page=1, limit=10).notifications
    return notification


def test_the_seed_sms_is_posted_with_the_token_and_the_provider_id_is_kept(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        sent = send(open_service(**provider(url)))
    assert sent.status is NotificationStatus.SENT
    [request] = state.requests
    assert request.path == "/v1/messages"
    assert request.authorization == f"Bearer {SMS_TOKEN}"
    assert request.body == {
        "to": "+15551234567",
        "from": "+15550000000",
        "body": "SOLVEFORCE Update: Network issue #SF-2024-001234 - Equipment replaced, testing in progress. "
        "ETA: 8PM. Reply STOP to opt out.",
    }
    assert sent.deliveries[0].provider_message_id == "msg_1"
    assert stored(open_service(**provider(url))).deliveries[0].provider_message_id == "msg_1"


def test_a_server_error_is_retried_when_due_and_then_sent(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        service = open_service(**provider(url))
        state.answers.append((500, '{"error": "internal"}'))
        first = send(service)
        assert first.status is NotificationStatus.PENDING
        assert first.next_attempt_at is not None
        assert service.retry_due(first.next_attempt_at - timedelta(seconds=1)) == 0  # not due yet
        assert len(state.requests) == 1
        assert service.retry_due(first.next_attempt_at) == 1
    after = stored(service)
    assert after.status is NotificationStatus.SENT
    assert [(a.number, a.outcome) for a in after.attempts] == [
        (1, Outcome.RETRYABLE_FAILURE),
        (2, Outcome.SENT),
    ]
    assert after.attempts[0].error == '+15551234567: provider answered 500: {"error": "internal"}'
    assert after.sent_at == after.attempts[1].at
    assert after.next_attempt_at is None
    assert len(state.requests) == 2


def test_a_bad_request_fails_at_once(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        state.answers.append((400, '{"error": "unsupported destination"}'))
        sent = send(open_service(**provider(url)))
        assert open_service(**provider(url)).retry_due(sent.created_at + timedelta(days=1)) == 0
    assert sent.status is NotificationStatus.FAILED
    assert sent.attempts[0].outcome is Outcome.PERMANENT_FAILURE
    assert "unsupported destination" in (sent.last_error or "")
    assert len(state.requests) == 1


@pytest.mark.parametrize("status", [429, 503, 408])
def test_throttling_and_unavailability_are_retried(open_service: OpenService, status: int) -> None:
    with sms_provider() as (state, url):
        state.answers.append((status, ""))
        sent = send(open_service(**provider(url)))
    assert sent.status is NotificationStatus.PENDING
    assert sent.attempts[0].outcome is Outcome.RETRYABLE_FAILURE
    assert sent.last_error == f"+15551234567: provider answered {status}"


def test_a_provider_that_does_not_answer_in_time_is_retried(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        state.hang = True
        sent = send(open_service(**provider(url, sms_timeout_seconds=0.3)))
    assert sent.status is NotificationStatus.PENDING
    assert "ReadTimeout" in (sent.last_error or "")


def test_a_provider_that_is_down_is_retried(open_service: OpenService) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        closed_port = taken.getsockname()[1]
    sent = send(open_service(**provider(f"http://127.0.0.1:{closed_port}/v1/messages")))
    assert sent.status is NotificationStatus.PENDING
    assert "ConnectError" in (sent.last_error or "")


def test_waits_grow_until_the_last_attempt_fails_it(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        service = open_service(**provider(url, notify_max_attempts=5, notify_retry_base_seconds=10))
        state.answers.extend([(503, "")] * 5)
        current = send(service)
        waits = []
        while current.status is NotificationStatus.PENDING:
            due = current.next_attempt_at
            waits.append(due - current.attempts[-1].at)
            assert service.retry_due(due) == 1
            current = stored(service)
    assert current.status is NotificationStatus.FAILED
    assert [a.outcome for a in current.attempts] == [Outcome.RETRYABLE_FAILURE] * 5
    assert current.attempts[-1].error is not None
    assert current.attempts[-1].error.endswith("giving up after 5 attempts")
    assert len(waits) == 4
    assert all(later >= earlier for earlier, later in pairwise(waits))
    assert waits[-1] >= 4 * waits[0]  # 40 to 80 s after 5 to 10 s: doubling, whatever the jitter
    assert timedelta(seconds=5) <= waits[0] <= timedelta(seconds=10)
    assert len(state.requests) == 5


def test_a_retry_reaches_only_the_recipients_still_waiting(open_service: OpenService) -> None:
    two = NotificationRequest(
        Channel.SMS,
        [Recipient("+15550000001"), Recipient("+15550000002")],
        message="Ticket {{ ticket_number }}",
    )
    with sms_provider() as (state, url):
        service = open_service(**provider(url))
        state.answers.extend([(200, '{"id": "first"}'), (502, "")])
        sent = send(service, two)
        assert sent.next_attempt_at is not None
        service.retry_due(sent.next_attempt_at)
    assert [r.body["to"] for r in state.requests] == ["+15550000001", "+15550000002", "+15550000002"]
    after = stored(service)
    assert after.status is NotificationStatus.SENT
    assert [d.provider_message_id for d in after.deliveries] == ["first", "msg_3"]


def test_the_token_never_reaches_stored_errors_or_logs(
    open_service: OpenService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = json.dumps({"error": "unauthorized", "you_sent": f"Bearer {SMS_TOKEN}"})
    with sms_provider() as (state, url):
        service = open_service(**provider(url))
        state.answers.extend([(503, echo), (401, echo)])
        sent = send(service)
        assert sent.next_attempt_at is not None
        service.retry_due(sent.next_attempt_at)
    after = stored(service)
    assert after.status is NotificationStatus.FAILED
    texts = [after.last_error, *(a.error for a in after.attempts), *(d.error for d in after.deliveries)]
    assert all(text and "[redacted]" in text for text in texts)
    assert all(SMS_TOKEN not in (text or "") for text in texts)
    assert "you_sent" in caplog.text  # the failure was logged...
    assert SMS_TOKEN not in caplog.text  # ...without the token


def test_the_background_worker_retries_what_comes_due(open_service: OpenService) -> None:
    with sms_provider() as (state, url):
        service = open_service(**provider(url, notify_retry_base_seconds=0.01))
        state.answers.append((503, ""))
        assert send(service).status is NotificationStatus.PENDING
        worker = Periodic("notification-retries", service.retry_due, interval=0.05)
        worker.start()
        try:
            assert state.wait_for(2), "the worker never retried"
        finally:
            worker.stop()
    assert stored(service).status is NotificationStatus.SENT
