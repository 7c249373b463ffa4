"""Sending notifications about tickets and retrying those a provider could not take.

``send`` validates and renders the notification, records it, and makes the first attempt at once;
a retryable failure leaves it pending with ``next_attempt_at`` set by the retry policy, and
``retry_due`` (called periodically by the server, workers/periodic.py) makes the attempts that have come
due.  Every attempt is recorded with its outcome.  The provider secrets (SMTP password, SMS token)
are blanked out of every error before it is stored or logged."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from supportlens.config import Settings
from supportlens.notify.addresses import display_name, email_address, phone_number
from supportlens.notify.email import EmailSender, SmtpServer
from supportlens.notify.records import (
    Channel,
    Delivery,
    InvalidField,
    Loc,
    Notification,
    NotificationStatus,
    Outcome,
    Recipient,
    RecipientResult,
)
from supportlens.notify.repository import NotificationPage, NotificationRepository
from supportlens.notify.retry import RetryPolicy, settle
from supportlens.notify.sms import SmsProvider, SmsSender
from supportlens.notify.templates import CUSTOM, render, ticket_variables
from supportlens.tickets.records import TicketRecord

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
# How long an attempt in progress keeps others off its notification; one cut short by a crash is
# retried after it.  Longer than any attempt takes (every provider call has a timeout).
ATTEMPT_LEASE = timedelta(minutes=10)
_REDACTED = "[redacted]"
_SETTINGS = {Channel.EMAIL: "SUPPORTLENS_SMTP_HOST", Channel.SMS: "SUPPORTLENS_SMS_PROVIDER_URL"}


class ChannelNotConfigured(RuntimeError):
    def __init__(self, channel: Channel) -> None:
        super().__init__(f"{channel.value} is not configured on this server: set {_SETTINGS[channel]}")
        self.channel = channel


class InvalidNotification(ValueError):
    """Request fields at fault, each with its location (``("recipients", 0, "phone")``)."""

    def __init__(self, problems: Sequence[InvalidField]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)


class Sender(Protocol):
    def deliver(
        self, recipients: Sequence[Recipient], subject: str | None, body: str
    ) -> dict[str, RecipientResult]: ...


@dataclass(frozen=True, slots=True)
class NotificationRequest:
    channel: Channel
    recipients: Sequence[Recipient]  # addresses as given: validated and normalized by ``send``
    template: str = CUSTOM
    subject: str | None = None
    message: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    include_comments: bool = False
    comment_filter: Literal["customer_visible", "all"] = "customer_visible"


class NotificationService:
    def __init__(
        self,
        repository: NotificationRepository,
        senders: Mapping[Channel, Sender],
        *,
        retry: RetryPolicy,
        secrets: Sequence[str] = (),
    ) -> None:
        self._repository = repository
        self._senders = senders
        self._retry = retry
        self._secrets = [secret for secret in secrets if secret]

    @classmethod
    def open(cls, settings: Settings) -> NotificationService:
        senders: dict[Channel, Sender] = {}
        if (server := SmtpServer.configured(settings)) is not None:
            senders[Channel.EMAIL] = EmailSender(server)
        if (provider := SmsProvider.configured(settings)) is not None:
            senders[Channel.SMS] = SmsSender(provider)
        retry = RetryPolicy(
            base=timedelta(seconds=settings.notify_retry_base_seconds),
            max_delay=timedelta(seconds=settings.notify_retry_max_delay_seconds),
            max_attempts=settings.notify_max_attempts,
        )
        secrets = [s.get_secret_value() for s in (settings.smtp_password, settings.sms_provider_token) if s]
        return cls(NotificationRepository(settings.metadata_path), senders, retry=retry, secrets=secrets)

    def close(self) -> None:
        self._repository.close()

    def send(
        self,
        workspace_id: str,
        ticket: Mapping[str, Any],
        request: NotificationRequest,
        comments: Sequence[Mapping[str, Any]] = (),
    ) -> Notification:
        """Record a notification about ``ticket`` (its fields: id, number, title, status, ...,
        contact) and attempt it once.  ``comments`` (author_name, created_at, content, visibility)
        are listed in an email when the request includes them.  ChannelNotConfigured,
        InvalidNotification."""
        if request.channel not in self._senders:
            raise ChannelNotConfigured(request.channel)
        recipients, problems = _recipients(request.channel, request.recipients)
        try:
            rendered = render(
                request.template,
                request.channel,
                {**ticket_variables(ticket), **request.variables},
                subject=request.subject,
                message=request.message,
                comments=_shown_comments(request, comments),
            )
        except InvalidField as problem:
            problems.append(problem)
        if problems:
            raise InvalidNotification(problems)
        now = datetime.now(UTC)
        notification = Notification(
            id=f"ntf_{uuid.uuid4().hex[:24]}",
            workspace_id=workspace_id,
            ticket_id=str(ticket["id"]),
            channel=request.channel,
            template=request.template,
            deliveries=tuple(Delivery(recipient) for recipient in recipients),
            subject=rendered.subject,
            body=rendered.body,
            status=NotificationStatus.PENDING,
            attempts=(),
            last_error=None,
            next_attempt_at=now + ATTEMPT_LEASE,  # this call holds it while it makes the attempt
            created_at=now,
            sent_at=None,
        )
        self._repository.insert(notification)
        return self._attempt(notification, now)

    def notify_emails(
        self,
        workspace_id: str,
        ticket: Mapping[str, Any],
        emails: Sequence[str],
        template: str,
        variables: Mapping[str, Any] | None = None,
    ) -> Notification:
        """Email ``template`` about ``ticket`` to ``emails`` (routing and escalation notify lists).
        ChannelNotConfigured when email is not configured, InvalidNotification."""
        request = NotificationRequest(
            Channel.EMAIL, [Recipient(email) for email in emails], template, variables=variables or {}
        )
        return self.send(workspace_id, ticket, request)

    def notify_list(
        self, record: TicketRecord, emails: Sequence[str], template: str, variables: dict[str, Any]
    ) -> None:
        """The ticket service's ``Notifier`` (routing rules' and escalations' notify lists): a list
        that cannot be notified (email not configured, a bad address) is logged, not raised, since
        the change it reports is made already."""
        try:
            self.notify_emails(record.workspace_id, asdict(record), emails, template, variables)
        except (ChannelNotConfigured, InvalidNotification) as exc:
            log.warning("ticket %s: not notifying %s (%s): %s", record.id, list(emails), template, exc)

    def of_ticket(self, workspace_id: str, ticket_id: str, *, page: int, limit: int) -> NotificationPage:
        return self._repository.of_ticket(workspace_id, ticket_id, offset=(page - 1) * limit, limit=limit)

    def retry_due(self, now: datetime, *, limit: int = 100) -> int:
        """Attempt (at ``now``) up to ``limit`` pending notifications due by ``now``; how many."""
        due = self._repository.claim_due(now, now + ATTEMPT_LEASE, limit)
        for notification in due:
            try:
                self._attempt(notification, now)
            except Exception:  # one broken notification must not hold up the others; its lease ends
                log.exception("notification %s: the retry failed", notification.id)
        return len(due)

    def _attempt(self, notification: Notification, at: datetime) -> Notification:
        sender = self._senders.get(notification.channel)
        recipients = notification.pending_recipients()
        if sender is None:  # the server was reconfigured since the notification was recorded
            unconfigured = RecipientResult(
                Outcome.PERMANENT_FAILURE, str(ChannelNotConfigured(notification.channel))
            )
            answers = {recipient.address: unconfigured for recipient in recipients}
        else:
            answers = sender.deliver(recipients, notification.subject, notification.body)
        results = {address: replace(r, error=self._redact(r.error)) for address, r in answers.items()}
        settled = settle(notification, results, at=at, policy=self._retry, jitter=random.random())
        self._repository.record_attempt(settled)
        attempt = settled.attempts[-1]
        if attempt.error:
            log.warning(
                "notification %s attempt %d: %s (%s)",
                settled.id,
                attempt.number,
                attempt.outcome,
                attempt.error,
            )
        else:
            log.info("notification %s attempt %d: %s", settled.id, attempt.number, attempt.outcome)
        return settled

    def _redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text


def _recipients(channel: Channel, given: Sequence[Recipient]) -> tuple[list[Recipient], list[InvalidField]]:
    """``given`` with addresses normalized and duplicates dropped, and what is wrong with them."""
    problems: list[InvalidField] = []
    if not given:
        problems.append(InvalidField(("recipients",), "give at least one recipient"))
    if len(given) > MAX_RECIPIENTS:
        problems.append(InvalidField(("recipients",), f"at most {MAX_RECIPIENTS} recipients"))
    normalize = email_address if channel is Channel.EMAIL else phone_number
    found: dict[str, Recipient] = {}
    for index, recipient in enumerate(given):
        where: Loc = ("recipients", index)
        try:
            address = normalize(recipient.address)
        except ValueError as exc:
            problems.append(InvalidField((*where, channel.address_field), str(exc)))
            continue
        try:
            name = display_name(recipient.name) if recipient.name else None
        except ValueError as exc:
            problems.append(InvalidField((*where, "name"), str(exc)))
            continue
        found.setdefault(address, Recipient(address, name, recipient.role))
    return list(found.values()), problems


def _shown_comments(
    request: NotificationRequest, comments: Sequence[Mapping[str, Any]]
) -> Sequence[Mapping[str, Any]]:
    if not request.include_comments:
        return ()
    if request.comment_filter == "all":
        return comments
    return [comment for comment in comments if comment.get("visibility") == "customer"]
