"""Email notifications through an SMTP server: plain, STARTTLS or implicit TLS, with optional AUTH.

One attempt is one SMTP transaction to the recipients still waiting.  What the server answers
decides what happens next: a 5xx reply (or a certificate the CA bundle does not trust, or a server
without a needed extension) is permanent, a 4xx reply or a lost connection is retried."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from supportlens.config import Settings
from supportlens.notify.records import Outcome, Recipient, RecipientResult


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    security: Literal["none", "starttls", "tls"]
    sender: str  # the From header: an address, or 'Name <address>'
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = 30.0
    ca_file: Path | None = None  # trusted instead of the system's CAs (a private or test CA)

    @classmethod
    def configured(cls, settings: Settings) -> SmtpServer | None:
        """The server the settings name, or None when email is not configured."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout_seconds,
            ca_file=settings.smtp_ca_file,
        )


class EmailSender:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server
        self._tls = ssl.create_default_context(cafile=server.ca_file)  # verifies host names

    def deliver(
        self, recipients: Sequence[Recipient], subject: str | None, body: str
    ) -> dict[str, RecipientResult]:
        """Send one message to ``recipients``; what the server answered for each, by address."""
        addresses = [recipient.address for recipient in recipients]
        try:
            refused = self._send(self._message(recipients, subject, body), addresses)
        except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused
            refused = exc.recipients
        except (smtplib.SMTPException, OSError) as exc:
            failure = RecipientResult(_outcome(exc), _describe(exc))
            return dict.fromkeys(addresses, failure)
        return {
            address: _refusal(*refused[address]) if address in refused else RecipientResult(Outcome.SENT)
            for address in addresses
        }

    def _message(self, recipients: Sequence[Recipient], subject: str | None, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._server.sender
        message["To"] = [Address(display_name=r.name or "", addr_spec=r.address) for r in recipients]
        message["Subject"] = subject or ""
        message["Date"] = format_datetime(datetime.now(UTC))
        domain = parseaddr(self._server.sender)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)  # a domain: no slow host name lookup
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not answer it
        message.set_content(body)
        return message

    def _send(self, message: EmailMessage, addresses: list[str]) -> dict[str, tuple[int, bytes]]:
        smtp = self._connect()
        try:
            if self._server.username:
                password = self._server.password.get_secret_value() if self._server.password else ""
                smtp.login(self._server.username, password)
            return smtp.send_message(message, to_addrs=addresses)
        finally:
            _close(smtp)

    def _connect(self) -> smtplib.SMTP:
        server = self._server
        if server.security == "tls":
            return smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout, context=self._tls)
        smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        if server.security == "starttls":
            try:
                smtp.starttls(context=self._tls)
            except BaseException:
                _close(smtp)
                raise
        return smtp


def _close(smtp: smtplib.SMTP) -> None:
    """Say QUIT, ignoring what the server answers: the message is sent (or not) by then."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _outcome(exc: Exception) -> Outcome:
    if isinstance(exc, smtplib.SMTPResponseException):
        return Outcome.PERMANENT_FAILURE if exc.smtp_code >= 500 else Outcome.RETRYABLE_FAILURE
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Outcome.RETRYABLE_FAILURE
    if isinstance(exc, smtplib.SMTPException | ssl.SSLCertVerificationError):
        return Outcome.PERMANENT_FAILURE  # a missing extension or an untrusted certificate stays so
    return Outcome.RETRYABLE_FAILURE  # refused or lost connections, timeouts


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    return f"{type(exc).__name__}: {exc}"


def _refusal(code: int, reply: bytes) -> RecipientResult:
    outcome = Outcome.PERMANENT_FAILURE if code >= 500 else Outcome.RETRYABLE_FAILURE
    return RecipientResult(outcome, f"refused: {_reply(code, reply)}")


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return f"SMTP {code} {text}"
