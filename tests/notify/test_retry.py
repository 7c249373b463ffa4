"""The retry policy and how an attempt moves a notification on (pure: no I/O, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supportlens.notify.records import (
    Channel,
    Delivery,
    Notification,
    NotificationStatus,
    Outcome,
    Recipient,
    RecipientResult,
)
from supportlens.notify.retry import RetryPolicy, settle

T0 = datetime(2024, 11, 1, 15, 0, tzinfo=UTC)
POLICY = RetryPolicy(base=timedelta(seconds=30), max_delay=timedelta(hours=1), max_attempts=5)
SENT = RecipientResult(Outcome.SENT, provider_message_id="msg_1")
LATER = RecipientResult(Outcome.RETRYABLE_FAILURE, "provider answered 503")
NEVER = RecipientResult(Outcome.PERMANENT_FAILURE, "provider answered 400")


def notification(*numbers: str) -> Notification:
    return Notification(
        id="ntf_1",
        workspace_id="ws1",
        ticket_id="ticket_1",
        channel=Channel.SMS,
        template="custom",
        deliveries=tuple(Delivery(Recipient(number)) for number in numbers),
        subject=None,
        body="hello",
        status=NotificationStatus.PENDING,
        attempts=(),
        last_error=None,
        next_attempt_at=None,
        created_at=T0,
        sent_at=None,
    )


@pytest.mark.parametrize("jitter", [0.0, 0.37, 1.0])
def test_waits_double_until_the_cap(jitter: float) -> None:
    waits = [POLICY.delay(attempt, jitter) for attempt in range(1, 10)]
    full = [min(30 * 2 ** (n - 1), 3600) for n in range(1, 10)]
    assert [w.total_seconds() for w in waits] == pytest.approx([f * (0.5 + jitter / 2) for f in full])


def test_with_any_jitter_no_wait_is_shorter_than_the_one_before() -> None:
    # The worst case: the most jitter before, the least after.
    for attempt in range(1, 7):
        assert POLICY.delay(attempt + 1, 0.0) >= POLICY.delay(attempt, 1.0)


def test_a_sent_attempt_completes_the_notification() -> None:
    after = settle(notification("+15550000001"), {"+15550000001": SENT}, at=T0, policy=POLICY, jitter=0.5)
    assert after.status is NotificationStatus.SENT
    assert after.sent_at == T0
    assert after.next_attempt_at is None
    assert after.deliveries[0].provider_message_id == "msg_1"
    assert [(a.number, a.outcome, a.error) for a in after.attempts] == [(1, Outcome.SENT, None)]


def test_a_retryable_failure_schedules_the_next_attempt() -> None:
    after = settle(notification("+15550000001"), {"+15550000001": LATER}, at=T0, policy=POLICY, jitter=1.0)
    assert after.status is NotificationStatus.PENDING
    assert after.next_attempt_at == T0 + timedelta(seconds=30)
    assert after.attempts[0].outcome is Outcome.RETRYABLE_FAILURE
    assert after.last_error == "+15550000001: provider answered 503"


def test_a_permanent_failure_fails_at_once() -> None:
    after = settle(notification("+15550000001"), {"+15550000001": NEVER}, at=T0, policy=POLICY, jitter=0.5)
    assert after.status is NotificationStatus.FAILED
    assert after.next_attempt_at is None
    assert after.attempts[0].outcome is Outcome.PERMANENT_FAILURE


def test_only_recipients_still_waiting_are_tried_again() -> None:
    first = settle(
        notification("+15550000001", "+15550000002", "+15550000003"),
        {"+15550000001": SENT, "+15550000002": LATER, "+15550000003": NEVER},
        at=T0,
        policy=POLICY,
        jitter=0.5,
    )
    assert first.status is NotificationStatus.PENDING
    assert [r.address for r in first.pending_recipients()] == ["+15550000002"]
    second = settle(first, {"+15550000002": SENT}, at=T0 + timedelta(minutes=1), policy=POLICY, jitter=0.5)
    # One recipient never got it: the notification failed, each recipient says what happened.
    assert second.status is NotificationStatus.FAILED
    assert [d.status for d in second.deliveries] == [
        NotificationStatus.SENT,
        NotificationStatus.SENT,
        NotificationStatus.FAILED,
    ]
    assert [a.outcome for a in second.attempts] == [Outcome.RETRYABLE_FAILURE, Outcome.SENT]


def test_the_last_allowed_attempt_gives_up() -> None:
    policy = RetryPolicy(base=timedelta(seconds=1), max_attempts=3)
    current = notification("+15550000001")
    for _ in range(3):
        current = settle(current, {"+15550000001": LATER}, at=T0, policy=policy, jitter=0.5)
    assert current.status is NotificationStatus.FAILED
    assert current.next_attempt_at is None
    assert len(current.attempts) == 3
    assert current.attempts[-1].error is not None
    assert current.attempts[-1].error.endswith("giving up after 3 attempts")
    assert current.deliveries[0].status is NotificationStatus.FAILED
