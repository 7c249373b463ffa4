"""How a notification moves on after an attempt: which recipients are done, whether to retry and when.

Waits grow exponentially (``base``, then twice that, ...) up to ``max_delay``, each scaled by a
random factor in [0.5, 1] ("equal jitter"): notifications that failed together (a provider outage)
spread their retries out, and no wait is shorter than the one before it until the cap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from supportlens.notify.records import (
    Attempt,
    Delivery,
    Notification,
    NotificationStatus,
    Outcome,
    RecipientResult,
)

_STATUS_AFTER = {
    Outcome.SENT: NotificationStatus.SENT,
    Outcome.PERMANENT_FAILURE: NotificationStatus.FAILED,
    Outcome.RETRYABLE_FAILURE: NotificationStatus.PENDING,
}
_MAX_DOUBLINGS = 60  # beyond this every wait is the cap anyway; keeps the float finite


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 5

    def delay(self, attempt: int, jitter: float) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1 for the first), ``jitter`` in [0, 1]."""
        full = self.base.total_seconds() * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS)
        capped = min(full, self.max_delay.total_seconds())
        return timedelta(seconds=capped * (0.5 + jitter / 2))


def settle(
    notification: Notification,
    results: Mapping[str, RecipientResult],
    *,
    at: datetime,
    policy: RetryPolicy,
    jitter: float,
) -> Notification:
    """``notification`` after an attempt at ``at`` that tried its pending recipients, with what the
    provider answered for each (``results``, by address)."""
    number = len(notification.attempts) + 1
    deliveries = tuple(_after(delivery, results) for delivery in notification.deliveries)
    errors = [f"{address}: {result.error}" for address, result in results.items() if result.error]
    outcomes = {result.outcome for result in results.values()}
    outcome = next(
        (o for o in (Outcome.RETRYABLE_FAILURE, Outcome.PERMANENT_FAILURE) if o in outcomes), Outcome.SENT
    )
    waiting = any(d.status is NotificationStatus.PENDING for d in deliveries)
    if waiting and number >= policy.max_attempts:
        errors.append(f"giving up after {number} attempts")
        deliveries = tuple(_give_up(delivery) for delivery in deliveries)
        waiting = False
    error = "; ".join(errors) or None
    if waiting:
        status = NotificationStatus.PENDING
    elif all(d.status is NotificationStatus.SENT for d in deliveries):
        status = NotificationStatus.SENT
    else:
        status = NotificationStatus.FAILED
    return replace(
        notification,
        deliveries=deliveries,
        status=status,
        attempts=(*notification.attempts, Attempt(number, at, outcome, error)),
        last_error=error or notification.last_error,
        next_attempt_at=at + policy.delay(number, jitter) if waiting else None,
        sent_at=at if status is NotificationStatus.SENT else notification.sent_at,
    )


def _after(delivery: Delivery, results: Mapping[str, RecipientResult]) -> Delivery:
    result = results.get(delivery.recipient.address)
    if delivery.status is not NotificationStatus.PENDING or result is None:
        return delivery
    return replace(
        delivery,
        status=_STATUS_AFTER[result.outcome],
        provider_message_id=result.provider_message_id,
        error=result.error,
    )


def _give_up(delivery: Delivery) -> Delivery:
    if delivery.status is NotificationStatus.PENDING:
        return replace(delivery, status=NotificationStatus.FAILED)
    return delivery
