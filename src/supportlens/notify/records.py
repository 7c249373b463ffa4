"""What a notification is: its channel, its recipients with what happened to each, and its attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

Loc = tuple[str | int, ...]  # a request field: ("recipients", 0, "phone")


class InvalidField(ValueError):
    """A request field the notification cannot be sent with; ``loc`` names it."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"

    @property
    def address_field(self) -> str:
        """The request field that holds a recipient's address on this channel."""
        return "email" if self is Channel.EMAIL else "phone"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # some recipient still waits for a (re)try
    SENT = "sent"  # every recipient accepted it
    FAILED = "failed"  # nothing left to try and some recipient was never reached


class Outcome(StrEnum):
    """What one attempt did (for one recipient, or for the whole attempt)."""

    SENT = "sent"
    RETRYABLE_FAILURE = "retryable_failure"  # the provider may take it later: retried with backoff
    PERMANENT_FAILURE = "permanent_failure"  # retrying cannot help (rejected address, bad request)


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str  # an email address, or a phone number in E.164 form
    name: str | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """What the provider answered for one recipient in one attempt."""

    outcome: Outcome
    error: str | None = None
    provider_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient of a notification and where its delivery stands."""

    recipient: Recipient
    status: NotificationStatus = NotificationStatus.PENDING
    provider_message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: datetime
    outcome: Outcome
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    workspace_id: str
    ticket_id: str
    channel: Channel
    template: str
    deliveries: tuple[Delivery, ...]
    subject: str | None  # email only
    body: str
    status: NotificationStatus
    attempts: tuple[Attempt, ...]
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None

    def pending_recipients(self) -> list[Recipient]:
        return [d.recipient for d in self.deliveries if d.status is NotificationStatus.PENDING]
